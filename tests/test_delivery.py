"""Delivery from the outbox on a clock the test moves: Telegram's pacing per chat, per group and
overall, RetryAfter waited out however often, priorities, and review cards replaced, not piled up.

The real python-telegram-bot talks to the fake Bot API; only time is the test's."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
import pytest

from bot.app import App, open_app
from bot.config import load_config
from bot.delivery import Delivery
from bot.sender import Policy, Sent, Unit
from bot.telegram import TelegramChannel
from handlers.messages import Choice, Outbound, encode
from storage import OutboxRow
from storage.models import ANSWER, BROADCAST, NOTICE
from tests.fakes.sms import RecordingSmsGateway
from tests.fakes.telegram_api import FakeTelegram
from tests.helpers import ManualTimer
from tests.test_telegram import TOKEN

GROUP = "-100555"
_batches = itertools.count(1)


@dataclass
class Paced:
    fake: FakeTelegram
    app: App
    timer: ManualTimer

    async def write(self, chat: str, texts: list[str], priority: int = ANSWER, key: str | None = None,
                    choices: tuple[Choice, ...] = ()) -> None:
        """Messages committed to the outbox, as a turn writes them."""
        rows = [OutboxRow("telegram", chat, priority, f"b{next(_batches)}", encode(Outbound(text, choices)),
                          replace_key=key) for text in texts]
        async with self.app.repo.transaction():
            rows = await self.app.repo.outbox.add(rows, self.app.dispatcher.clock())
        self.app.delivery.take(rows)
        await self.settle()

    async def settle(self) -> None:
        await self.app.delivery.idle()

    async def later(self, seconds: float, step: float = 0.5) -> None:
        """Move the clock on by `seconds`, a little at a time, sending what falls due on the way."""
        for _ in range(int(seconds / step)):
            self.timer.advance(step)
            await self.settle()

    def texts(self, chat: str) -> list[str]:
        return [c.params["text"] for c in self.fake.sent("sendMessage") if str(c.params["chat_id"]) == chat]


@asynccontextmanager
async def paced(tmp_path: Path) -> AsyncIterator[Paced]:
    fake = FakeTelegram(TOKEN)
    url = await fake.start()
    config = load_config({"KIDDIARY_DATA_DIR": str(tmp_path), "KIDDIARY_TELEGRAM_TOKEN": TOKEN,
                          "KIDDIARY_TELEGRAM_API_URL": url}, dotenv=None)
    timer = ManualTimer()
    async with open_app(config, RecordingSmsGateway(), timer=timer) as app:
        channel = TelegramChannel(app.config, app.dispatcher, app.letters, poll_timeout=1)
        await channel.app.initialize()  # the Bot API client, without polling: only sending is tested
        app.delivery.add_sender(channel)
        await app.delivery.start()
        try:
            yield Paced(fake, app, timer)
        finally:
            await app.delivery.stop()
            await channel.app.shutdown()
            await fake.stop()


@pytest.fixture
async def tg(tmp_path) -> AsyncIterator[Paced]:
    async with paced(tmp_path) as harness:
        yield harness


async def test_a_private_chat_gets_a_short_burst_then_one_message_a_second(tg: Paced):
    await tg.write("5001", [f"ข้อความ {n}" for n in range(8)])
    assert tg.texts("5001") == ["ข้อความ 0", "ข้อความ 1", "ข้อความ 2"]  # the burst
    await tg.later(1)
    assert len(tg.texts("5001")) == 4
    await tg.later(4)
    assert tg.texts("5001") == [f"ข้อความ {n}" for n in range(8)]  # all, in order


async def test_a_group_gets_twenty_a_minute_and_delays_nobody_else(tg: Paced):
    await tg.write(GROUP, [f"การ์ด {n}" for n in range(10)], priority=NOTICE)
    assert len(tg.texts(GROUP)) == 3
    await tg.write("5002", ["คำตอบของครู"])  # an officer, meanwhile: not behind the group's backlog
    assert tg.texts("5002") == ["คำตอบของครู"]
    await tg.later(3)
    assert len(tg.texts(GROUP)) == 4  # one more every three seconds
    await tg.later(18)
    assert tg.texts(GROUP) == [f"การ์ด {n}" for n in range(10)]


async def test_retry_after_is_waited_out_for_as_long_as_telegram_asks(tg: Paced):
    tg.fake.fail("sendMessage", 429, retry_after=30, description="Too Many Requests: retry after 30")
    await tg.write("5003", ["สวัสดี", "ขั้นที่ 1"])
    assert tg.texts("5003") == []
    await tg.later(29)
    assert tg.texts("5003") == []  # not a moment before it said
    await tg.later(2)
    assert tg.texts("5003") == ["สวัสดี", "ขั้นที่ 1"]


async def test_a_storm_of_429s_ends_in_delivery_not_a_drop(tg: Paced):
    tg.fake.fail("sendMessage", 429, times=12, retry_after=5, description="Too Many Requests: retry after 5")
    await tg.write("5004", ["ข้อความสำคัญ"])
    await tg.later(12 * 5 + 5)
    assert tg.texts("5004") == ["ข้อความสำคัญ"]
    assert len(tg.fake.sent("sendMessage", refused=True)) == 12
    async with tg.app.repo.transaction():
        assert await tg.app.repo.outbox.count() == {}  # delivered, so gone from the outbox


async def test_server_errors_back_off_and_the_message_still_goes(tg: Paced):
    tg.fake.fail("sendMessage", 502, times=3, description="Bad Gateway")
    await tg.write("5005", ["ข้อความ"])
    await tg.later(1 + 2 + 4 + 1)
    assert tg.texts("5005") == ["ข้อความ"]


async def test_answers_go_before_a_broadcast_at_the_overall_limit(tg: Paced):
    # 200 broadcast messages, each to its own chat: the overall limit (30 a second) holds them back.
    rows = [OutboxRow("telegram", str(7000 + n), BROADCAST, f"bc{n}", encode(Outbound("ประกาศ")))
            for n in range(200)]
    async with tg.app.repo.transaction():
        rows = await tg.app.repo.outbox.add(rows, tg.app.dispatcher.clock())
    tg.app.delivery.take(rows)
    await tg.settle()
    assert 25 <= len(tg.fake.sent("sendMessage")) <= 32  # one second's worth
    await tg.write("5006", ["คำตอบ"])
    await tg.later(0.5, step=0.1)
    assert tg.texts("5006") == ["คำตอบ"]  # within the next tokens, ahead of 170 broadcasts
    await tg.later(8)
    assert len(tg.fake.sent("sendMessage")) == 201


async def test_broadcast_rows_taken_back_while_waiting_for_the_pace_are_never_sent(tg: Paced):
    """A cancelled broadcast deletes its waiting rows; the delivery still holds them, and finds
    out when it claims them just before sending (the claims of a burst share one transaction)."""
    rows = [OutboxRow("telegram", str(7000 + n), BROADCAST, f"bc{n}", encode(Outbound("ประกาศ")))
            for n in range(100)]
    async with tg.app.repo.transaction():
        rows = await tg.app.repo.outbox.add(rows, tg.app.dispatcher.clock())
    tg.app.delivery.take(rows)
    await tg.settle()
    first = len(tg.fake.sent("sendMessage"))
    assert 25 <= first <= 32  # one second's worth; the rest wait for the pace
    async with tg.app.repo.transaction():
        await tg.app.repo.outbox.done([r.id for r in rows[50:]])  # as BroadcastStore.cancel does
    await tg.later(5)
    sent = {str(c.params["chat_id"]) for c in tg.fake.sent("sendMessage")}
    assert sent == {str(7000 + n) for n in range(50)}  # the first half, each once; none of the rest
    assert len(tg.fake.sent("sendMessage")) == 50
    async with tg.app.repo.transaction():
        assert await tg.app.repo.outbox.count() == {}


async def test_a_long_text_is_split_at_lines_and_sent_whole(tg: Paced):
    lines = [f"{n:04d} " + "ก" * 90 for n in range(100)]  # about 9,500 characters
    await tg.write("5007", ["\n".join(lines)], choices=(Choice("ตกลง", "ok"),))
    await tg.later(3)
    parts = tg.texts("5007")
    assert len(parts) == 3 and all(len(p) <= 4096 for p in parts)
    assert "\n".join(parts).split("\n") == lines  # nothing cut, nothing lost, cut between lines
    buttons = [c.params.get("reply_markup") for c in tg.fake.sent("sendMessage")]
    assert buttons[:2] == [None, None] and buttons[2]  # the buttons come with the last part


async def test_a_newer_card_replaces_an_unsent_one_and_edits_a_sent_one(tg: Paced):
    await tg.write(GROUP, [f"กันคิว {n}" for n in range(3)], priority=NOTICE)  # the group's burst is used up
    await tg.write(GROUP, ["การ์ด ฉบับ 1"], priority=NOTICE, key="card:1",
                   choices=(Choice("อนุมัติ", "review:approve:KD-1:1"),))
    await tg.write(GROUP, ["การ์ด ฉบับ 2"], priority=NOTICE, key="card:1",
                   choices=(Choice("อนุมัติ", "review:approve:KD-1:2"),))
    await tg.later(4)
    assert tg.texts(GROUP)[3:] == ["การ์ด ฉบับ 2"]  # one card, the newest
    await tg.write(GROUP, ["การ์ด ฉบับ 3"], priority=NOTICE, key="card:1")
    await tg.later(4)
    [edit] = tg.fake.sent("editMessageText")
    assert edit.params["text"] == "การ์ด ฉบับ 3" and len(tg.texts(GROUP)) == 4  # edited in place


class Slow:
    """A platform that takes its time: each send waits until the test lets it go."""

    channel = "slow"
    policy = Policy(concurrency=4)

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.sent: list[str] = []

    async def deliver(self, unit: Unit) -> Sent:
        await self.gate.wait()
        self.sent += [r.payload["text"] for r in unit.rows]
        return Sent()


async def test_broadcasts_leave_sending_slots_for_answers(tmp_path):
    from storage import Crypto, Repository

    repo = await Repository.open(tmp_path / "db.sqlite3", Crypto("x" * 40))
    slow, timer = Slow(), ManualTimer()
    delivery = Delivery(repo, timer)
    delivery.add_sender(slow)
    await delivery.start()
    rows = [OutboxRow("slow", f"c{n}", BROADCAST, f"b{n}", {"text": f"ประกาศ {n}"}) for n in range(10)]
    rows.append(OutboxRow("slow", "officer", ANSWER, "a", {"text": "คำตอบ"}))
    async with repo.transaction():
        rows = await repo.outbox.add(rows, datetime.now(UTC))
    worker = delivery.workers["slow"]
    worker.add(rows[:10])  # broadcasts first: they fill what they may
    await asyncio.sleep(0.01)
    assert worker._busy == 2  # four slots, two kept free
    worker.add(rows[10:])
    await asyncio.sleep(0.01)
    assert worker._busy == 3  # the answer took a kept slot at once
    slow.gate.set()
    await delivery.idle()
    assert "คำตอบ" in slow.sent[:3] and len(slow.sent) == 11
    await delivery.stop()
    await repo.close()


class OneAtATime(Slow):
    """A sender of one slot, as the console is."""

    channel = "single"
    policy = Policy(concurrency=1)


async def test_an_answer_overtakes_a_broadcast_waiting_for_the_same_chat_even_with_one_slot(tmp_path):
    from storage import Crypto, Repository

    repo = await Repository.open(tmp_path / "db.sqlite3", Crypto("x" * 40))
    single = OneAtATime()
    delivery = Delivery(repo, ManualTimer())
    delivery.add_sender(single)
    await delivery.start()
    rows = [OutboxRow("single", "busy", ANSWER, "a0", {"text": "กำลังส่ง"}),
            OutboxRow("single", "officer", BROADCAST, "b1", {"text": "ประกาศ 1"}),
            OutboxRow("single", "officer", BROADCAST, "b2", {"text": "ประกาศ 2"}),
            OutboxRow("single", "officer", ANSWER, "a1", {"text": "คำตอบ 1"}),
            OutboxRow("single", "officer", NOTICE, "n1", {"text": "แจ้ง"}),
            OutboxRow("single", "officer", ANSWER, "a2", {"text": "คำตอบ 2"})]
    async with repo.transaction():
        rows = await repo.outbox.add(rows, datetime.now(UTC))
    worker = delivery.workers["single"]
    worker.add(rows[:1])  # the only slot is busy
    await asyncio.sleep(0.01)
    worker.add(rows[1:3])  # broadcasts wait for the officer...
    await asyncio.sleep(0.01)
    worker.add(rows[3:])  # ...and the officer's answers and notices, written later, go before them
    single.gate.set()
    await delivery.idle()
    assert single.sent == ["กำลังส่ง", "คำตอบ 1", "แจ้ง", "คำตอบ 2", "ประกาศ 1", "ประกาศ 2"]
    async with repo.transaction():
        assert await repo.outbox.pending("single") == []
    await delivery.stop()
    await repo.close()


async def test_a_hundred_signed_letters_at_once_answer_every_officer_while_cards_trickle(tmp_path):
    """The review group takes twenty messages a minute; the officers are answered without
    waiting for it: every answer goes while the clock stands still, the cards as it moves."""
    import io

    from PIL import Image, ImageDraw

    from bot import web
    from storage import Conversation
    from storage.models import LETTER_ISSUED
    from templates import text as t
    from tests.helpers import NATIONAL_ID, PHONE
    from tests.test_telegram import SECRET

    fake = FakeTelegram(TOKEN)
    url = await fake.start()
    config = load_config({"KIDDIARY_DATA_DIR": str(tmp_path), "KIDDIARY_TELEGRAM_TOKEN": TOKEN,
                          "KIDDIARY_TELEGRAM_API_URL": url, "KIDDIARY_TELEGRAM_WEBHOOK_SECRET": SECRET,
                          "KIDDIARY_REVIEW_CHATS": f"telegram:{GROUP}"}, dotenv=None)
    page = Image.new("RGB", (1200, 1600), "white")
    ImageDraw.Draw(page).text((100, 100), "signed letter, no QR code", fill="black")
    buffer = io.BytesIO()
    page.save(buffer, "JPEG", quality=80)
    photo = buffer.getvalue()
    officers = [9_000_000 + n for n in range(100)]
    timer = ManualTimer()
    async with open_app(config, RecordingSmsGateway(), timer=timer) as app:
        repo, now = app.repo, app.dispatcher.clock()
        async with repo.transaction():  # a hundred officers with their letter printed and signed
            for n, uid in enumerate(officers):
                reg = await repo.create_registration("telegram", str(uid), LETTER_ISSUED, now)
                reg.affiliation, reg.school_code, reg.school_name = "obec", f"10545301{n:02d}", f"โรงเรียนที่ {n}"
                reg.province, reg.old_tsl_username, reg.old_kiddiary_username = "แพร่", "", ""
                reg.officer_title, reg.officer_first_name, reg.officer_last_name = "นาย", "ครู", f"คนที่{n}"
                reg.national_id, reg.phone, reg.phone_verified_at = NATIONAL_ID, PHONE, now
                reg.confirmed_at, reg.letter_version, reg.letter_issued_at = now, 1, now
                await repo.save_registration(reg, now)
                await repo.save_conversation(Conversation("telegram", str(uid), "letter", registration_id=reg.id,
                                                          consent_at=now), now)
        channel = TelegramChannel(app.config, app.dispatcher, app.letters)
        runner = await web.serve(web.make_app(telegram=channel), "127.0.0.1", 0)
        app.delivery.add_sender(channel)
        await channel.start()
        await app.delivery.start()
        try:
            fake.add_file("signed", photo)
            updates = [{"update_id": n + 1, "message": {
                "message_id": n + 1, "date": 0, "chat": {"id": uid, "type": "private"},
                "from": {"id": uid, "is_bot": False, "first_name": "ครู"},
                "photo": [{"file_id": "signed", "file_unique_id": "s", "width": 1200, "height": 1600,
                           "file_size": len(photo)}]}} for n, uid in enumerate(officers)]
            web_url = f"http://127.0.0.1:{runner.addresses[0][1]}/telegram/webhook"

            async def post(update: dict) -> None:
                async with aiohttp.ClientSession() as session, session.post(
                        web_url, json=update, headers={web.TELEGRAM_SECRET_HEADER: SECRET}) as response:
                    assert response.status == 200

            def answered() -> set[int]:
                return {int(c.params["chat_id"]) for c in fake.sent("sendMessage")
                        if t("letter_received_unverified", "th") in c.params["text"]}

            def cards() -> int:
                return len([c for c in fake.sent("sendPhoto") if str(c.params["chat_id"]) == GROUP])

            await asyncio.gather(*(post(u) for u in updates))
            await app.delivery.idle()
            waited = 0.0
            while answered() != set(officers) and waited < 30:
                timer.advance(0.25)
                waited += 0.25
                await app.delivery.idle()
            # Two messages to each of a hundred officers at Telegram's thirty a second: every officer
            # answered within seven seconds…
            assert answered() == set(officers) and waited <= 7
            assert cards() <= 3 + 3  # …while the group got its burst and one card every three seconds
            for _ in range(60):
                timer.advance(1)
                await app.delivery.idle()
            assert 3 + 20 <= cards() <= 3 + 22  # and twenty a minute (a minute and a few seconds in)
            async with repo.transaction():
                assert (await repo.outbox.count()).get("telegram") == 100 - cards()  # the rest wait their turn
        finally:
            await app.delivery.stop()
            await channel.stop()
            await runner.cleanup()
            await fake.stop()
