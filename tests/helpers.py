"""Driving the core like a chat user would: text, button presses, other message kinds."""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Awaitable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from itertools import count

from bot.delivery import Delivery
from bot.letter_files import LetterFiles
from bot.links import LetterLinks
from bot.sms import SmsSender
from handlers.dispatch import Dispatcher
from handlers.messages import Address, Attachment, Inbound, Kind, Outbound
from handlers.validation import thai_mobile
from templates import text as t
from tests.fakes.chat import RecordingChat
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


_deliveries: weakref.WeakKeyDictionary[Dispatcher, tuple[Delivery, RecordingChat, asyncio.Task[None]]] = (
    weakref.WeakKeyDictionary()
)


async def delivery_of(dispatcher: Dispatcher) -> tuple[Delivery, RecordingChat]:
    """The real delivery of the outbox for a core dispatcher: SMS to its gateway, chat messages
    to a recording chat platform. Made and started on first use."""
    if dispatcher not in _deliveries:
        links = LetterLinks(dispatcher.settings.seal_key, timedelta(days=7))
        chat = RecordingChat(LetterFiles(dispatcher.repo, dispatcher.settings.seal_key, links, dispatcher.clock,
                                         dispatcher.files))
        delivery = Delivery(dispatcher.repo, ManualTimer(dispatcher.clock().timestamp()))
        sms = SmsSender(dispatcher.sms, dispatcher)
        delivery.add_sender(sms, on_refused=sms.refused)
        delivery.add_sender(chat)
        dispatcher.on_commit = delivery.take
        _deliveries[dispatcher] = (delivery, chat, asyncio.ensure_future(delivery.start()))
    delivery, chat, started = _deliveries[dispatcher]
    await started
    return delivery, chat


async def stop_delivery(dispatcher: Dispatcher) -> None:
    if dispatcher in _deliveries:
        delivery, _, started = _deliveries.pop(dispatcher)
        await started
        await delivery.stop()


async def delivered(dispatcher: Dispatcher, action: Awaitable[object], own: Address | None = None) -> list[Outbound]:
    """Await `action` and deliver what it sent; the messages delivered, in the order they were
    written (`to` None for those to the chat `own`)."""
    delivery, chat = await delivery_of(dispatcher)
    before = len(chat.delivered)
    await action
    await dispatcher.settle()
    await delivery.idle()
    return [message if message.to != own else replace(message, to=None)
            for _, message in sorted(chat.delivered[before:], key=lambda d: d[0])]


async def handled(dispatcher: Dispatcher, inbound: Inbound) -> list[Outbound]:
    """Handle `inbound` and deliver what it sent (`to` None for the answers to its chat)."""
    return await delivered(dispatcher, dispatcher.handle(inbound), inbound.chat)


class ManualTimer:
    """The delivery's clock, moved by the test: `wait` returns when its event is set or when
    `advance` has moved past its deadline. Nothing sleeps."""

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.t = start
        self._sleepers: list[tuple[float, asyncio.Future[None]]] = []

    def now(self) -> float:
        return self.t

    async def wait(self, event: asyncio.Event, timeout: float | None) -> None:
        if timeout is None:
            await event.wait()
            return
        entry = (self.t + timeout, asyncio.get_running_loop().create_future())
        self._sleepers.append(entry)
        waiter = asyncio.ensure_future(event.wait())
        try:
            await asyncio.wait({entry[1], waiter}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
            self._sleepers.remove(entry)

    def advance(self, seconds: float) -> None:
        self.t += seconds
        for deadline, future in self._sleepers:
            if deadline <= self.t and not future.done():
                future.set_result(None)


@dataclass
class Officer:
    dispatcher: Dispatcher
    sms: RecordingSmsGateway
    user_id: str = "officer-1"
    channel: str = "test"
    phone: str = ANSWERS["phone"]  # what `up_to` types at the phone step
    replies: list[Outbound] = field(default_factory=list)
    # True: each step waits until its answers are delivered, and `replies` are what arrived.
    # False (benchmarks: many officers at once, never all quiet): `replies` are what the turn
    # committed, delivered in the background meanwhile.
    wait_for_delivery: bool = True

    async def send(self, kind: Kind = Kind.TEXT, **fields: object) -> list[Outbound]:
        fields.setdefault("event_id", f"ev-{next(_event_ids)}")
        inbound = Inbound(self.channel, self.user_id, kind, **fields)  # type: ignore[arg-type]
        if self.wait_for_delivery:
            self.replies = await handled(self.dispatcher, inbound)
        else:
            await delivery_of(self.dispatcher)
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
        phone = thai_mobile(self.phone)
        while not any(to == phone for to, _ in self.sms.sent):  # sent in the background
            await asyncio.sleep(0.02)
        await self.say(self.sms.last_code(phone))  # type: ignore[arg-type]
        assert step == "summary", step
