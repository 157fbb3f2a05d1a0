"""The values that cross the line between the core and the channel adapters.

An adapter turns whatever its platform delivers into one `Inbound`, hands it to the
dispatcher, and turns the `Outbound` values it gets back into platform calls. Nothing
here knows about LINE, Telegram or the console.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum


class Kind(StrEnum):
    """What the user sent. Everything the platforms can deliver maps to one of these."""

    TEXT = "text"
    BUTTON = "button"  # a press on one of our choices; `payload` carries its value
    PHOTO = "photo"
    FILE = "file"
    STICKER = "sticker"
    LOCATION = "location"
    AUDIO = "audio"
    VIDEO = "video"
    CONTACT = "contact"
    FOLLOW = "follow"  # the user added the bot (LINE follow, Telegram first /start)
    OTHER = "other"


@dataclass(frozen=True)
class Address:
    """A chat user or a group chat on one channel, written `channel:id` in configuration."""

    channel: str
    id: str

    def __str__(self) -> str:
        return f"{self.channel}:{self.id}"

    @classmethod
    def parse(cls, text: str) -> Address:
        channel, sep, ident = text.strip().partition(":")
        if not sep or not channel or not ident:
            raise ValueError(f"expected channel:id, got {text!r}")
        return cls(channel, ident)


@dataclass(frozen=True)
class Attachment:
    """A photo or file as downloaded by the adapter. When the platform says a file is too big
    to fetch, `data` is empty and `declared_size` says how big it is."""

    data: bytes
    filename: str | None = None
    mime_type: str | None = None
    declared_size: int | None = None


@dataclass(frozen=True)
class SharedContact:
    """A phone number shared with the platform's "share my number" button."""

    phone: str
    own: bool  # the sender's own number (not a contact from their address book)


@dataclass(frozen=True)
class Inbound:
    channel: str
    user_id: str
    kind: Kind
    text: str = ""
    payload: str = ""
    # The platform's id for this delivery (LINE webhookEventId, Telegram update_id):
    # a second delivery with the same id is not processed again. None = no such id.
    event_id: str | None = None
    attachment: Attachment | None = None
    contact: SharedContact | None = None
    # Set when the message came from a group chat rather than a private one.
    group_id: str | None = None
    # The language the platform says the user prefers ("th", "en"), for a new user.
    language_hint: str | None = None

    @property
    def sender(self) -> Address:
        return Address(self.channel, self.user_id)


@dataclass(frozen=True)
class Choice:
    """A button. `label` is shown; `payload` comes back in `Inbound.payload` when pressed.

    `action` asks for a platform feature where there is one: "share_phone" (Telegram's
    contact button), "camera" and "camera_roll" (LINE's quick replies). Channels without it
    leave the button out; the conversation never depends on it."""

    label: str
    payload: str
    action: str = "reply"


@dataclass(frozen=True)
class Document:
    filename: str
    data: bytes = b""
    mime_type: str = "application/pdf"
    # Made by the dispatcher after the turn is committed, in a worker thread (a letter takes
    # tens of milliseconds); the adapters always receive `data` filled in.
    render: Callable[[], bytes] | None = field(default=None, compare=False, repr=False)
    # For channels that cannot send a file (LINE) and link to it instead: what it is
    # (("letter", registration id, version) or ("signed", signed letter id, 0)) and the label
    # of the button that opens it.
    link: tuple[str, int, int] | None = None
    link_label: str = ""


@dataclass(frozen=True)
class Outbound:
    """One message to send. `to` is None for a reply to the sender of the inbound."""

    text: str
    choices: tuple[Choice, ...] = ()
    to: Address | None = None
    document: Document | None = None


@dataclass(frozen=True)
class Sms:
    """An SMS the dispatcher sends through the gateway once the turn is committed."""

    phone: str  # E.164
    text: str = field(repr=False)  # may hold a one-time code: never printed in reprs or logs
    otp_challenge_id: int | None = None  # the code it carries, released from the limits if sending fails
