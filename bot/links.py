"""Signed, expiring links to a letter or a signed photo (for LINE, which cannot send a file).

`<payload>.<mac>`: the payload names what it is (a letter: registration and version; a signed
letter: its id), and the expiry;
the MAC (HMAC-SHA256, key derived from KIDDIARY_SECRET_KEY) makes it unforgeable. A wrong,
altered or expired token reads as None, and the server answers 404 without saying why.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class LetterLink:
    kind: str  # "letter" (id: registration) | "signed" (id: signed letter) | "chart" (version: language)
    id: int
    version: int = 0


class LetterLinks:
    def __init__(self, key: bytes, lifetime: timedelta, old_keys: tuple[bytes, ...] = ()) -> None:
        self._key = key
        self._old_keys = old_keys  # links sent before a key rotation keep working until they expire
        self.lifetime = lifetime

    def _mac(self, payload: str, key: bytes | None = None) -> str:
        return _b64(hmac.new(key or self._key, f"letter:{payload}".encode(), hashlib.sha256).digest()[:18])

    def token(self, link: LetterLink, now: datetime) -> str:
        expires = int((now + self.lifetime).timestamp())
        payload = _b64(f"{link.kind}.{link.id}.{link.version}.{expires}".encode())
        return f"{payload}.{self._mac(payload)}"

    def read(self, token: str, now: datetime) -> LetterLink | None:
        payload, _, mac = token.partition(".")
        if not payload or not any(hmac.compare_digest(mac.encode(), self._mac(payload, key).encode())
                                  for key in (self._key, *self._old_keys)):
            return None
        try:
            kind, ident, version, expires = _unb64(payload).decode().split(".")
            link = LetterLink(kind, int(ident), int(version))
        except ValueError:
            return None
        if now.timestamp() >= int(expires):
            return None
        return link
