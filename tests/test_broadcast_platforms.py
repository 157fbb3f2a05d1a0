"""Broadcasts on the real SDKs against the fake platforms: LINE multicasts of 500 under retry
keys, Telegram paced on a controlled clock, blocked users skipped and counted."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.app import App, open_app
from bot.broadcaster import Broadcaster
from bot.config import load_config
from bot.telegram import TelegramChannel
from storage import Conversation
from storage.broadcasts import BLOCKED, SENT, Segment
from tests.fakes.sms import RecordingSmsGateway
from tests.fakes.telegram_api import FakeTelegram
from tests.helpers import ManualTimer
from tests.test_line import Harness, User, running

TOKEN = "123456:BROADCAST-token-for-the-fake-api"
MULTICAST = "/v2/bot/message/multicast"


async def audience(app: App, channel: str, ids: list[str], blocked: frozenset[str] | set[str] = frozenset()) -> None:
    now = datetime.now(UTC)
    async with app.repo.transaction():
        for user_id in ids:
            await app.repo.save_conversation(
                Conversation(channel, user_id, "start", blocked=user_id in blocked), now)


async def start_broadcast(app: App, body: str) -> int:
    now = datetime.now(UTC)
    async with app.repo.transaction():
        made = await app.repo.broadcasts.create("broadcast", Segment("all"), body, "test:admin", now)
        assert made is not None
        await app.repo.broadcasts.start(made.id, now)
    return made.id


async def states(app: App, broadcast_id: int) -> Counter[str]:
    async with app.repo.transaction():
        return Counter((await app.repo.broadcasts.recipient_states(broadcast_id)).values())


# --- LINE ----------------------------------------------------------------------------------


@pytest.fixture
async def line(tmp_path) -> AsyncIterator[Harness]:
    async with running(tmp_path) as harness:
        yield harness


async def test_line_1201_recipients_go_in_three_multicasts_each_once(line: Harness):
    users = [f"U{n:032x}" for n in range(1, 1206)]
    unfollowed = set(users[:4])  # their unfollow event was seen: skipped, counted
    await audience(line.app, "line", users, blocked=unfollowed)
    broadcast_id = await start_broadcast(line.app, "ประกาศ: ขยายเวลาลงทะเบียน")
    broadcaster = Broadcaster(line.app.repo, line.app.delivery, line.app.dispatcher.settings, line.timer)
    await broadcaster.run_once()
    await line.settle()
    await broadcaster.run_once()

    calls = line.fake.sent(MULTICAST)
    assert sorted(len(c.body["to"]) for c in calls) == [201, 500, 500]
    assert len({c.headers["X-Line-Retry-Key"] for c in calls}) == 3
    deliveries = line.fake.multicast_deliveries()
    assert set(deliveries) == set(users) - unfollowed and set(deliveries.values()) == {1}
    assert await states(line.app, broadcast_id) == {SENT: 1201, BLOCKED: 4}
    async with line.app.repo.transaction():
        assert (await line.app.repo.broadcasts.get(broadcast_id)).status == "done"  # type: ignore[union-attr]



async def test_a_multicast_whose_answer_was_lost_is_sent_again_under_its_key_and_delivered_once(line: Harness):
    users = [f"U{n:032x}" for n in range(1, 11)]
    await audience(line.app, "line", users)
    line.fake.lost_answers.append(504)  # LINE delivered it, the bot heard a timeout
    broadcast_id = await start_broadcast(line.app, "ประกาศ")
    broadcaster = Broadcaster(line.app.repo, line.app.delivery, line.app.dispatcher.settings, line.timer)
    await broadcaster.run_once()
    await line.settle()
    await line.later(5)  # the retry, with the same retry key
    tries = [r for r in line.fake.requests if r.path == MULTICAST]
    assert [r.status for r in tries] == [504, 409]
    assert tries[0].headers["X-Line-Retry-Key"] == tries[1].headers["X-Line-Retry-Key"]
    assert line.fake.multicast_deliveries() == dict.fromkeys(users, 1)
    assert await states(line.app, broadcast_id) == {SENT: 10}


async def test_an_answer_goes_before_a_broadcast_waiting_on_line(line: Harness):
    users = [f"U{n:032x}" for n in range(1, 40)]
    await audience(line.app, "line", users)
    line.fake.fail(MULTICAST, 429)  # the broadcast is throttled: its retry waits for the clock
    await start_broadcast(line.app, "ประกาศ")
    broadcaster = Broadcaster(line.app.repo, line.app.delivery, line.app.dispatcher.settings, line.timer)
    await broadcaster.run_once()
    await line.settle()
    officer = User(line, "U" + "f" * 32)
    answer = await officer.say("/start")
    assert answer, "the officer was answered while the broadcast waits"
    assert not line.fake.multicast_deliveries()
    await line.later(5)
    assert len(line.fake.multicast_deliveries()) == len(users)


# --- Telegram ------------------------------------------------------------------------------


@asynccontextmanager
async def telegram_paced(tmp_path: Path) -> AsyncIterator[tuple[FakeTelegram, App, ManualTimer]]:
    """The bot with Telegram and its real pacing, on a clock the test moves."""
    fake = FakeTelegram(TOKEN)
    url = await fake.start()
    config = load_config({"KIDDIARY_DATA_DIR": str(tmp_path), "KIDDIARY_TELEGRAM_TOKEN": TOKEN,
                          "KIDDIARY_TELEGRAM_API_URL": url}, dotenv=None)
    timer = ManualTimer(time.time())
    async with open_app(config, RecordingSmsGateway(), timer=timer) as app:
        channel = TelegramChannel(app.config, app.dispatcher, app.letters, poll_timeout=1)
        app.delivery.add_sender(channel)
        await channel.start()
        await app.delivery.start()
        try:
            yield fake, app, timer
        finally:
            await app.delivery.stop()
            await channel.stop()
            await fake.stop()


async def test_telegram_broadcasts_keep_the_pace_wait_out_retry_after_and_skip_the_blocked(tmp_path):
    async with telegram_paced(tmp_path) as (fake, app, timer):
        users = [str(7_000_000 + n) for n in range(100)]
        await audience(app, "telegram", users, blocked={users[0]})
        fake.blocked.add(users[1])  # blocked the bot without our knowing: Telegram says 403
        broadcast_id = await start_broadcast(app, "ประกาศถึงทุกคน")
        broadcaster = Broadcaster(app.repo, app.delivery, app.dispatcher.settings, timer)
        await broadcaster.run_once()

        async def sent() -> int:
            await app.delivery.idle()
            return len([c for c in fake.calls if c.method == "sendMessage"])  # refused ones too

        assert await sent() == 30  # the overall burst: 30 messages at once, no more
        timer.advance(1)
        assert await sent() == 60  # then 30 a second
        fake.fail("sendMessage", 429, times=1, retry_after=7)
        timer.advance(1)
        assert await sent() == 90  # 30 more tries, one of them told to wait 7 s
        [throttled] = [str(c.params["chat_id"]) for c in fake.calls if c.refused == 429]

        def got(chat: str) -> bool:
            return any(str(c.params["chat_id"]) == chat for c in fake.sent("sendMessage"))

        for _ in range(6):
            timer.advance(1)
            await sent()
        assert not got(throttled)  # 6 s later: still waiting
        timer.advance(1)
        await sent()
        assert got(throttled)  # 7 s: sent
        await broadcaster.run_once()
        delivered = Counter(str(c.params["chat_id"]) for c in fake.sent("sendMessage"))
        assert set(delivered) == set(users[2:]) and set(delivered.values()) == {1}
        assert await states(app, broadcast_id) == {SENT: 98, BLOCKED: 2}
        async with app.repo.transaction():
            assert await app.repo.get_conversation("telegram", users[1]) is not None
            assert (await app.repo.get_conversation("telegram", users[1])).blocked  # type: ignore[union-attr]
        await asyncio.sleep(0)


async def test_line_multicasts_keep_to_200_requests_a_second_on_a_controlled_clock(line: Harness):
    users = [f"U{n:032x}" for n in range(1, 15_001)]  # 30 multicasts
    await audience(line.app, "line", users)
    await start_broadcast(line.app, "ประกาศ")
    broadcaster = Broadcaster(line.app.repo, line.app.delivery, line.app.dispatcher.settings, line.timer)
    await broadcaster.run_once()
    await line.settle()
    assert len(line.fake.sent(MULTICAST)) == 10  # the burst; the rest wait for the clock
    for step in range(4):
        line.timer.advance(0.025)  # 5 more requests' worth each time
        await line.settle()
        assert len(line.fake.sent(MULTICAST)) == 10 + 5 * (step + 1)
    line.timer.advance(1.0)
    await line.settle()
    await broadcaster.run_once()
    assert len(line.fake.multicast_deliveries()) == 15_000
