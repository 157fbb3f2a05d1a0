"""The records the repository stores and returns. Plain dataclasses, personal data in clear:
the repository encrypts it on the way to disk and decrypts it on the way back."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

# Statuses of a registration: draft → letter_issued → submitted → approved | rejected,
# or cancelled; an approval is revoked when a reviewer approves another officer of its school
# in its place.
DRAFT = "draft"
LETTER_ISSUED = "letter_issued"
SUBMITTED = "submitted"
APPROVED = "approved"
REJECTED = "rejected"
CANCELLED = "cancelled"
REVOKED = "revoked"
STATUSES = (DRAFT, LETTER_ISSUED, SUBMITTED, APPROVED, REJECTED, CANCELLED, REVOKED)


class UsernameTaken(ValueError):
    """An account username already held by another registration (they are unique)."""


@dataclass
class Conversation:
    """Where one chat user stands. Saved after every inbound, in the same transaction."""

    channel: str
    user_id: str
    state: str
    lang: str = "th"
    registration_id: int | None = None
    consent_at: datetime | None = None
    editing: bool = False  # answering one field from the summary; the next valid answer returns there
    confirm_cancel: bool = False  # asked "really cancel?", waiting for the answer
    otp_challenge_id: int | None = None  # the code the officer is expected to type
    blocked: bool = False  # the user blocked or unfollowed the bot: send nothing more


@dataclass
class Registration:
    id: int
    ref: str
    channel: str
    user_id: str
    status: str
    created_at: datetime
    affiliation: str | None = None  # "obec" (สพฐ.) or "lao" (อปท.)
    school_code: str | None = None
    school_name: str | None = None
    province: str | None = None
    school_from_directory: bool = False
    # None = not answered yet; "" = the officer said the school had none.
    old_tsl_username: str | None = None
    old_kiddiary_username: str | None = None
    officer_title: str | None = None
    officer_first_name: str | None = None
    officer_last_name: str | None = None
    national_id: str | None = None
    phone: str | None = None  # E.164, set only once verified by OTP
    phone_verified_at: datetime | None = None
    confirmed_at: datetime | None = None
    letter_version: int = 0  # bumped each time a letter is issued; the QR code carries it
    letter_issued_at: datetime | None = None
    submitted_at: datetime | None = None
    decided_at: datetime | None = None
    decided_by: str | None = None  # the reviewer, channel:user_id
    reject_reason: str | None = None
    account_username: str | None = None  # the new account, once provisioned
    account_password_hash: str | None = None  # scrypt hash of its initial password (never the password)
    provision_status: str | None = None  # pending | done | failed (approved registrations)
    provision_attempts: int = 0
    provision_error: str | None = None


@dataclass
class OtpChallenge:
    id: int
    phone: str  # E.164, the number the code was sent to (not verified yet)
    secret: str  # pyotp base32 secret; the code is derived from it, never stored
    channel: str
    user_id: str
    created_at: datetime
    expires_at: datetime
    closed_at: datetime | None = None  # used, replaced by a newer code, or burnt by wrong tries


@dataclass
class PhoneGuard:
    """Wrong-code count per phone number: it survives new codes (NIST SP 800-63B)."""

    phone: str
    failures: int = 0
    locked_until: datetime | None = None


@dataclass
class School:
    code: str
    name: str
    province: str
    affiliation: str


@dataclass
class SignedLetter:
    """A photo or scan of the signed letter, as received."""

    id: int
    registration_id: int
    sha256: str
    kind: str  # image | pdf
    mime_type: str
    size: int
    qr_status: str  # matched (the QR code is this registration's) | unverified (no QR code found)
    path: str  # in the upload store
    received_at: datetime
    rejected_at: datetime | None = None
    reject_reason: str | None = None
    signature: str = "unchecked"  # signed | blank | unchecked: ink found in the signature boxes on arrival
    number: int = 1  # 1, 2, 3 … among this registration's letters (ฉบับที่), not the table's id


# Outbox priorities: an officer's answer is never queued behind someone else's traffic.
ANSWER, NOTICE, BROADCAST = 0, 1, 2


@dataclass
class OutboxRow:
    """One message to send, as stored in the outbox. `payload` is the message as JSON-ready data
    (handlers/messages.py encodes and decodes it); the repository encrypts it on disk."""

    channel: str
    chat_id: str
    priority: int
    batch: str
    payload: dict[str, Any]
    replace_key: str | None = None
    reply_token: str | None = None
    event_at: datetime | None = None
    id: int = 0  # given by the outbox when the row is written
    idem_key: str = ""
    created_at: datetime | None = None
    attempted: bool = False  # handed to a platform before (see OutboxStore.attempting)
