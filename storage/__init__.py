"""Storage: one typed repository (`Repository`) over aiosqlite; the only place with SQL."""

from storage.crypto import Crypto
from storage.files import UploadStore
from storage.models import Conversation, OtpChallenge, OutboxRow, PhoneGuard, Registration, School, SignedLetter
from storage.sqlite import Repository

__all__ = [
    "Conversation", "Crypto", "OtpChallenge", "OutboxRow", "PhoneGuard", "Registration", "Repository", "School",
    "SignedLetter", "UploadStore",
]
