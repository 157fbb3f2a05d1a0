"""Encryption of personal data at rest, and blind indexes to look it up.

Fernet (AES-128-CBC + HMAC-SHA256) encrypts names, national IDs, phone numbers and OTP
secrets. Values that must be searched for (a phone's OTP history, "is this national ID
used for another school") get a keyed HMAC: equal values give equal indexes, and the
index reveals nothing without the key. Both keys are derived from KIDDIARY_SECRET_KEY.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def _derive(secret: str, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose).derive(secret.encode())


class Crypto:
    def __init__(self, secret_key: str) -> None:
        self._fernet = Fernet(base64.urlsafe_b64encode(_derive(secret_key, b"kiddiary/encrypt")))
        self._index_key = _derive(secret_key, b"kiddiary/index")
        self.signing_key = _derive(secret_key, b"kiddiary/sign")  # for signed links and letter QR codes

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

    def index(self, kind: str, value: str) -> str:
        return hmac.new(self._index_key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()
