"""The values that cross the line between the core and the channel adapters.

An adapter turns whatever its platform delivers into one `Inbound`, hands it to the
dispatcher, and turns the `Outbound` values it gets back into platform calls. Nothing
here knows about LINE, Telegram or the console.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


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
    """A photo or file. `fetch` downloads it: the dispatcher calls it only when the officer is
    at a step that takes one (never in a group), and fills in `data`. When the platform says a
    file is too big to fetch, `data` stays empty and `declared_size` says how big it is."""

    data: bytes = b""
    filename: str | None = None
    mime_type: str | None = None
    declared_size: int | None = None
    fetch: Callable[[], Awaitable[bytes]] | None = field(default=None, compare=False, repr=False)


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
    # The platform's token to answer this message with (LINE), and when the platform got it.
    reply_token: str | None = None
    received_at: datetime | None = None
    from_inbox: bool = False  # kept in the inbox before it was handled: the turn removes it

    @property
    def chat(self) -> Address:
        """Where answers go: the group it came from, or the sender's private chat."""
        return Address(self.channel, self.group_id or self.user_id)

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
    # (("letter", registration id, version) or ("signed", signed letter id, content check)) and the label
    # of the button that opens it.
    link: tuple[str, int, int] | None = None
    link_label: str = ""


@dataclass(frozen=True)
class Field:
    """One line of a card: what it is, its value, and the payload of the button that edits it
    (None: not editable here)."""

    label: str
    value: str
    edit: str | None = None


@dataclass(frozen=True)
class Card:
    """The structured form of a message that lists fields (the summary, a review card), for
    channels that draw cards (LINE's Flex Messages). The message's `text` stays the whole
    message, for every other channel and as the card's plain-text alternative."""

    title: str
    fields: tuple[Field, ...]
    note: str = ""  # the closing lines (what to press, the deadline, a decision)
    edit_label: str = ""  # the short label of a field's edit button


@dataclass(frozen=True)
class Outbound:
    """One message to send. `to` is None for a reply to the sender of the inbound.

    `replace_key` names a message that has newer versions (a review card): a version not sent
    yet is replaced by the newer one, and one already sent is edited where the platform can.
    `edit_only`: send this version only as an edit (a card whose decision buttons go away)."""

    text: str
    choices: tuple[Choice, ...] = ()
    to: Address | None = None
    document: Document | None = None
    replace_key: str | None = None
    edit_only: bool = False
    card: Card | None = None  # drawn as a card where the channel can; `text` everywhere else


@dataclass(frozen=True)
class Sms:
    """An SMS, sent through the gateway once the turn is committed (the outbox).

    A one-time code is not written anywhere: its SMS names the challenge, and the text is made
    from the challenge's secret when it is sent (and not at all once the code has expired)."""

    phone: str  # E.164
    text: str = field(default="", repr=False)
    otp_challenge_id: int | None = None  # the code it carries
    lang: str = "th"
    notify: Address | None = None  # told in chat when the code could not be sent


# --- as stored in the outbox (JSON) ----------------------------------------------------

def encode(message: Outbound) -> dict[str, Any]:
    """What the outbox keeps of a message: no file bytes (a document is named by its link and
    made again when sent), no recipient (the outbox row has it)."""
    data: dict[str, Any] = {"text": message.text, "choices": [[c.label, c.payload, c.action] for c in message.choices]}
    if message.document is not None:
        d = message.document
        data["document"] = {"filename": d.filename, "mime_type": d.mime_type, "link": list(d.link or ()),
                            "link_label": d.link_label}
    if message.edit_only:
        data["edit_only"] = True
    if (c := message.card) is not None:
        data["card"] = {"title": c.title, "fields": [[f.label, f.value, f.edit] for f in c.fields], "note": c.note,
                        "edit_label": c.edit_label}
    return data


def decode(data: dict[str, Any], replace_key: str | None = None) -> Outbound:
    document = None
    if (d := data.get("document")) is not None:
        link = tuple(d["link"]) if d.get("link") else None
        document = Document(d["filename"], mime_type=d["mime_type"], link=link,  # type: ignore[arg-type]
                            link_label=d.get("link_label", ""))
    card = None
    if (c := data.get("card")) is not None:
        card = Card(c["title"], tuple(Field(*f) for f in c["fields"]), c.get("note", ""), c.get("edit_label", ""))
    return Outbound(data["text"], tuple(Choice(*c) for c in data.get("choices", ())), document=document,
                    replace_key=replace_key, edit_only=bool(data.get("edit_only")), card=card)


def encode_sms(sms: Sms) -> dict[str, Any]:
    return {"phone": sms.phone, "text": sms.text, "otp": sms.otp_challenge_id, "lang": sms.lang,
            "notify": str(sms.notify) if sms.notify else None}


def decode_sms(data: dict[str, Any]) -> Sms:
    notify = Address.parse(data["notify"]) if data.get("notify") else None
    return Sms(data["phone"], data.get("text") or "", data.get("otp"), data.get("lang") or "th", notify)


def split_text(text: str, limit: int) -> list[str]:
    """`text` in pieces of at most `limit` characters, cut at line ends where it can be, else
    at spaces, else anywhere: a long message is sent whole, in several parts, never cut off."""
    parts: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit + 1)
        if cut <= 0:
            cut = text.rfind(" ", 0, limit + 1)
        if cut <= 0:
            cut = limit
        parts.append(text[:cut].rstrip())
        text = text[cut:].lstrip("\n ")
    if text or not parts:
        parts.append(text)
    return parts
