"""The seal printed as a QR code on each letter: which registration, which version, and a MAC.

`KDL1.<ref>.<version>.<mac>`, all in QR "alphanumeric" characters so the code stays small.
The MAC (HMAC-SHA256 with a key derived from KIDDIARY_SECRET_KEY, 80 bits in base32) makes
an edited reference or version detectable: nobody without the key can make a valid seal.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from dataclasses import dataclass

from handlers.validation import Invalid

PREFIX = "KDL1"
_SEAL = re.compile(rf"^{PREFIX}\.(KD-[0-9A-Z]{{4}}-[0-9A-Z]{{4}})\.(\d{{1,6}})\.([A-Z2-7]{{16}})$")
_LOOKS_OURS = re.compile(rf"^{PREFIX}\.")


@dataclass(frozen=True)
class Seal:
    ref: str
    version: int


def _mac(key: bytes, ref: str, version: int) -> str:
    digest = hmac.new(key, f"{PREFIX}.{ref}.{version}".encode(), hashlib.sha256).digest()
    return base64.b32encode(digest[:10]).decode()


def seal(key: bytes, ref: str, version: int) -> str:
    return f"{PREFIX}.{ref}.{version}.{_mac(key, ref, version)}"


def unseal(key: bytes, payload: str, old_keys: tuple[bytes, ...] = ()) -> Seal | Invalid | None:
    """The seal in a QR payload; Invalid when it is ours but altered; None when it is not ours.
    A seal made under an older key (before `kiddiary-bot rotate-key`) is still valid while that
    key is configured: letters printed before the rotation come back after it."""
    payload = payload.strip()
    if not _LOOKS_OURS.match(payload):
        return None
    match = _SEAL.match(payload)
    if match is None:
        return Invalid("letter_tampered")
    ref, version, mac = match.group(1), int(match.group(2)), match.group(3)
    if not any(hmac.compare_digest(mac, _mac(k, ref, version)) for k in (key, *old_keys)):
        return Invalid("letter_tampered")
    return Seal(ref, version)
