"""Driving the core like a chat user would: text, button presses, other message kinds."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import count

from handlers.dispatch import Dispatcher
from handlers.messages import Attachment, Inbound, Kind, Outbound
from handlers.validation import thai_mobile
from templates import text as t
from tests.fakes.sms import RecordingSmsGateway

_event_ids = count(1)

PHONE = "+66812345678"
NATIONAL_ID = "1234545678781"
ANSWERS = {  # a valid answer for every typed step, in order
    "school_code": "1054530001",
    "school_name": "โรงเรียนบ้านหนองบัว",
    "province": "แพร่",
    "old_tsl": "tsl1234",
    "old_kiddiary": "nongbua.school",
    "officer_name": "นางสาวสมศรี ใจดี",
    "national_id": "1-2345-45678-78-1",
    "phone": "081-234-5678",
}


class Clock:
    """Time as the test sets it: nothing in the tests sleeps."""

    def __init__(self, start: datetime = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Officer:
    dispatcher: Dispatcher
    sms: RecordingSmsGateway
    user_id: str = "officer-1"
    channel: str = "test"
    phone: str = ANSWERS["phone"]  # what `up_to` types at the phone step
    replies: list[Outbound] = field(default_factory=list)

    async def send(self, kind: Kind = Kind.TEXT, **fields: object) -> list[Outbound]:
        fields.setdefault("event_id", f"ev-{next(_event_ids)}")
        inbound = Inbound(self.channel, self.user_id, kind, **fields)  # type: ignore[arg-type]
        self.replies = await self.dispatcher.handle(inbound)
        return self.replies

    async def say(self, text: str) -> list[Outbound]:
        return await self.send(Kind.TEXT, text=text)

    async def press(self, payload: str) -> list[Outbound]:
        assert payload in self.payloads, f"no button {payload!r} among {self.payloads}"
        return await self.send(Kind.BUTTON, payload=payload)

    async def photo(self, data: bytes = b"\x89PNG\r\n\x1a\n") -> list[Outbound]:
        return await self.send(Kind.PHOTO, attachment=Attachment(data, "photo.png", "image/png"))

    @property
    def text(self) -> str:
        return "\n".join(r.text for r in self.replies)

    @property
    def payloads(self) -> list[str]:
        return [c.payload for r in self.replies for c in r.choices]

    def said(self, key: str, lang: str = "th", **params: object) -> bool:
        """Whether the last replies contain the template sentence `key` (as rendered)."""
        return t(key, lang, **params) in self.text

    async def up_to(self, step: str) -> None:
        """Answer every question correctly until the one named `step` is asked."""
        await self.say("/start")
        await self.press("consent:accept")
        if step == "affiliation":
            return
        await self.press("aff:obec")
        for name, answer in ANSWERS.items():
            if name == step:
                return
            await self.say(self.phone if name == "phone" else answer)
        if step == "otp":
            return
        await self.say(self.sms.last_code(thai_mobile(self.phone)))  # type: ignore[arg-type]
        assert step == "summary", step
