"""Encryption of personal data at rest, and blind indexes to look it up.

Fernet (AES-128-CBC + HMAC-SHA256) encrypts names, national IDs, phone numbers, OTP
secrets, queued messages and uploaded files. Values that must be searched for (a phone's
OTP history, "is this national ID used for another school") get a keyed HMAC: equal values
give equal indexes, and the index reveals nothing without the key. Every key is derived
from a secret (KIDDIARY_SECRET_KEY) with HKDF, one per purpose.

Keys are versioned: a `Crypto` holds the current secret and, during and after a rotation
(`kiddiary-bot rotate-key`), older ones. cryptography's MultiFernet encrypts with the current
key and decrypts with any; seals and links signed under an old key still verify
(`signing_keys`); indexes are always made with the current key, which is why a rotation
rebuilds them. A secret is known by its *check value*, a keyed hash that identifies it
without revealing it: the database records the check value of the key its data is under.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Sequence

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def _derive(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret.encode())


def check_value(secret: str) -> str:
    """The key check value of a secret: 16 hex digits, the same for the same secret, useless
    for finding the secret or any key made from it (a separate HKDF purpose)."""
    return _derive(secret, b"kiddiary/check").hex()[:16]


class Crypto:
    def __init__(self, secret_key: str, old_keys: Sequence[str] = ()) -> None:
        secrets = [secret_key, *(k for k in old_keys if k != secret_key)]
        self._fernets = [Fernet(base64.urlsafe_b64encode(_derive(s, b"kiddiary/encrypt"))) for s in secrets]
        self._fernet = MultiFernet(self._fernets)
        self._current = self._fernets[0]
        self._index_keys = [_derive(s, b"kiddiary/index") for s in secrets]
        self.signing_keys = tuple(_derive(s, b"kiddiary/sign") for s in secrets)  # current first
        self.signing_key = self.signing_keys[0]  # for signed links and letter QR codes
        self._checks = [check_value(s) for s in secrets]
        self.check_value = self._checks[0]
        self.old_check_values = tuple(self._checks[1:])

    def encrypt(self, value: str | None) -> bytes | None:
        return None if value is None else self._fernet.encrypt(value.encode())

    def decrypt(self, token: bytes | None) -> str | None:
        if token is None:
            return None
        try:
            return self._fernet.decrypt(token).decode()
        except InvalidToken as e:
            raise RuntimeError("stored personal data cannot be decrypted: wrong KIDDIARY_SECRET_KEY?") from e

    def encrypt_bytes(self, data: bytes) -> bytes:
        return self._fernet.encrypt(data)

    def decrypt_bytes(self, token: bytes) -> bytes:
        try:
            return self._fernet.decrypt(token)
        except InvalidToken as e:
            raise RuntimeError("stored file cannot be decrypted: wrong KIDDIARY_SECRET_KEY?") from e

    def rotate(self, token: bytes) -> bytes:
        """The same plaintext encrypted under the current key (from a token under any key we hold)."""
        try:
            return self._fernet.rotate(token)
        except InvalidToken as e:
            raise RuntimeError("a stored value is under none of the configured keys") from e

    def is_current(self, token: bytes) -> bool:
        """Whether `token` is already under the current key (a rotation skips it)."""
        try:
            self._current.decrypt(token)
        except InvalidToken:
            return False
        return True

    def key_of(self, token: bytes) -> str | None:
        """The check value of the configured key `token` is under, None if none is (the start-up
        check of a database from before check values were kept)."""
        for fernet, check in zip(self._fernets, self._checks, strict=True):
            try:
                fernet.decrypt(token)
            except InvalidToken:
                continue
            return check
        return None

    def index(self, kind: str, value: str) -> str:
        return _hmac(self._index_keys[0], kind, value)

    def old_indexes(self, kind: str, value: str) -> list[str]:
        """The index `value` had under each older key: what a rotation finds and replaces."""
        return [_hmac(key, kind, value) for key in self._index_keys[1:]]


def _hmac(key: bytes, kind: str, value: str) -> str:
    return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
