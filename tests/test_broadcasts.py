"""Admins' deadline, broadcasts and reminders, through the dispatcher and the real delivery."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest

from bot.broadcaster import Broadcaster
from handlers.deadline import quiet_until, reminder_due, thai_date
from handlers.messages import Address, Kind
from storage.broadcasts import Segment
from templates import text as t
from tests.helpers import Officer, delivery_of

ADMIN = Address("test", "boss")
DEADLINE = date(2026, 12, 31)


@pytest.fixture
async def admin(dispatcher, sms, settings) -> Officer:
    dispatcher.settings = replace(settings, admins=frozenset({ADMIN}))
    return Officer(dispatcher, sms, user_id=ADMIN.id)


async def broadcaster_of(dispatcher) -> Broadcaster:
    delivery, _ = await delivery_of(dispatcher)
    return Broadcaster(dispatcher.repo, delivery, dispatcher.settings, delivery.timer)


async def send_out(dispatcher, clock) -> list:
    """Passes of the broadcaster until nothing is left to feed; what the recording chat got."""
    delivery, chat = await delivery_of(dispatcher)
    delivery.timer.t = clock.now.timestamp()
    broadcaster = Broadcaster(dispatcher.repo, delivery, dispatcher.settings, delivery.timer)
    before = len(chat.delivered)
    for _ in range(50):
        await broadcaster.run_once()
        await delivery.idle()
        async with dispatcher.repo.transaction():
            if not await dispatcher.repo.broadcasts.sending():
                break
    return [m for _, m in chat.delivered[before:]]


async def people(dispatcher, sms) -> dict[str, Officer]:
    """Officers at different points: not started, a draft, a letter issued, and one who blocked the bot."""
    crowd = {name: Officer(dispatcher, sms, user_id=name, phone=f"08123456{n:02d}")
             for n, name in enumerate(("fresh", "drafting", "lettered", "gone"))}
    await crowd["fresh"].say("สวัสดี")
    await crowd["drafting"].up_to("province")
    await crowd["lettered"].up_to("summary")
    await crowd["lettered"].press("confirm")
    await crowd["gone"].up_to("old_tsl")
    async with dispatcher.repo.transaction():
        await dispatcher.repo.set_blocked("test", "gone", datetime.now(UTC))
    return crowd


# --- the deadline ---------------------------------------------------------------------


async def test_only_admins_set_the_deadline_and_bad_dates_are_explained(dispatcher, officer, admin, repo):
    await officer.say("/deadline 2026-12-31")
    assert officer.said("not_allowed")
    for bad in ("31/12/2026", "2026-02-30", "tomorrow"):
        await admin.say(f"/deadline {bad}")
        assert admin.said("deadline_usage", example="2026-12-28")
    await admin.say("/deadline 2026-11-01")
    assert admin.said("deadline_in_past", date="1 พฤศจิกายน 2569")
    async with repo.transaction():
        assert await repo.broadcasts.setting("deadline") is None
    await admin.say("/deadline")
    assert admin.said("deadline_none")

    await admin.say("/deadline 2026-12-31")
    assert admin.said("deadline_set", date="31 ธันวาคม 2569", days=33, reminders="7, 3, 1")
    await admin.say("/deadline")
    assert admin.said("deadline_current", date="31 ธันวาคม 2569", days=33)
    await admin.say("/deadline clear")
    assert admin.said("deadline_cleared")
    async with repo.transaction():
        assert await repo.broadcasts.setting("deadline") is None


async def test_officers_see_the_deadline_in_status_the_summary_and_the_letter_step(dispatcher, officer, admin):
    await officer.up_to("province")
    await officer.say("/status")
    assert not officer.said("deadline_note", date=thai_date(DEADLINE, "th"), days=33)
    await admin.say("/deadline 2026-12-31")
    note = t("deadline_note", "th", date="31 ธันวาคม 2569", days=33)
    await officer.say("/status")
    assert note in officer.text
    await officer.say("แพร่")
    for answer in ("ไม่มี", "ไม่มี", "นางสาวสมศรี ใจดี", "1-2345-45678-78-1", officer.phone):
        await officer.say(answer)
    await officer.say(officer.sms.last_code("+66812345678"))
    assert note in officer.text  # the summary
    await officer.press("confirm")
    assert note in officer.text  # the letter step
    await officer.say("/status")
    assert note in officer.text


def test_thai_dates_and_the_quiet_hours():
    assert thai_date(date(2027, 1, 31), "th") == "31 มกราคม 2570"
    assert thai_date(date(2027, 1, 31), "en") == "31 January 2027"
    bangkok = lambda h, m=0: datetime(2026, 12, 1, h, m, tzinfo=UTC) - timedelta(hours=7)  # noqa: E731
    assert quiet_until(bangkok(12)) is None
    assert quiet_until(bangkok(20, 59)) is None
    assert quiet_until(bangkok(21)) == datetime(2026, 12, 2, 0, 0, tzinfo=UTC)  # 07:00 Bangkok, next day
    assert quiet_until(bangkok(3)) == datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
    assert quiet_until(bangkok(7)) is None


def test_which_reminder_is_due():
    at = lambda day: datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=3)  # noqa: E731
    schedule = (7, 3, 1)
    assert reminder_due(DEADLINE, at(DEADLINE - timedelta(days=8)), schedule) is None
    assert reminder_due(DEADLINE, at(DEADLINE - timedelta(days=7)), schedule) == 7
    assert reminder_due(DEADLINE, at(DEADLINE - timedelta(days=5)), schedule) == 7  # the bot was down that day
    assert reminder_due(DEADLINE, at(DEADLINE - timedelta(days=2)), schedule) == 3  # never a stale 7
    assert reminder_due(DEADLINE, at(DEADLINE), schedule) == 1
    assert reminder_due(DEADLINE, at(DEADLINE + timedelta(days=1)), schedule) is None


# --- broadcasts -----------------------------------------------------------------------


async def test_a_broadcast_counts_its_audience_asks_to_confirm_and_reaches_them_once(
        dispatcher, sms, admin, clock, repo):
    crowd = await people(dispatcher, sms)
    await admin.say("/deadline 2026-12-31")
    await admin.say("/broadcast in_progress โปรดกรอกข้อมูลของ {school} ให้ครบภายใน {deadline} ({ref})")
    async with repo.transaction():
        [made] = await repo.broadcasts.recent()
        drafting = (await repo.registrations_of("test", "drafting"))[0]
    assert admin.said("broadcast_confirm", id=made.id, segment="in_progress", total=1,
                      channels="test 1", blocked=1,
                      preview=f"โปรดกรอกข้อมูลของ โรงเรียนบ้านหนองบัว ให้ครบภายใน 31 ธันวาคม 2569 ({drafting.ref})")
    assert admin.payloads == [f"bcast:send:{made.id}", f"bcast:drop:{made.id}"]
    assert await send_out(dispatcher, clock) == []  # nothing goes before the admin says so

    await admin.press(f"bcast:send:{made.id}")
    assert admin.said("broadcast_started", id=made.id, count=2)  # the blocked one counted, not sent to
    got = await send_out(dispatcher, clock)
    assert [(m.to.id, m.text) for m in got] == [
        ("drafting", f"โปรดกรอกข้อมูลของ โรงเรียนบ้านหนองบัว ให้ครบภายใน 31 ธันวาคม 2569 ({drafting.ref})")]
    assert await send_out(dispatcher, clock) == []  # never twice

    await admin.say(f"/broadcast_status {made.id}")
    assert "ส่งแล้ว 1" in admin.text and "บล็อกบอต 1" in admin.text and "เหลือ 0" in admin.text
    assert t("broadcast_status_done", "th") in admin.text
    await admin.send(Kind.BUTTON, payload=f"bcast:send:{made.id}")  # a second press of the old button
    assert admin.said("broadcast_not_draft", id=made.id, status=t("broadcast_status_done", "th"))
    assert len(crowd) == 4


async def test_a_text_of_several_lines_keeps_them(dispatcher, sms, admin, repo):
    await people(dispatcher, sms)
    await admin.say("/broadcast all\nบรรทัดแรก\nบรรทัดที่สอง")
    async with repo.transaction():
        [made] = await repo.broadcasts.recent()
    assert made.segment == Segment("all") and made.text == "บรรทัดแรก\nบรรทัดที่สอง"


async def test_segments_pick_the_right_people(dispatcher, sms, admin, repo):
    await people(dispatcher, sms)
    await admin.say("/broadcasts")  # the admin has talked to the bot too: one of "all" and "not_started"
    expected = {
        "all": 4, "not_started": 2, "in_progress": 1, "awaiting_letter": 1, "submitted": 0, "approved": 0,
        "obec": 2, "สพฐ": 2, "lao": 0, "แพร่": 1, "จังหวัดแพร่": 1, "น่าน": 0,  # the draft has no province yet
    }
    for word, reachable in expected.items():
        await admin.say(f"/broadcast {word} ทดสอบ")
        if reachable:
            assert f": {reachable} คน" in admin.text, (word, admin.text)
        else:
            assert admin.said("broadcast_nobody", segment=word, blocked=0) or "ไม่มีผู้รับ" in admin.text, word


async def test_bad_broadcasts_are_explained_and_create_nothing(dispatcher, sms, admin, officer, repo):
    await people(dispatcher, sms)
    cases = {
        "/broadcast": ("broadcast_usage", {}),
        "/broadcast everyone สวัสดี": ("err_broadcast_segment", {"word": "everyone"}),
        "/broadcast แพร สวัสดี": ("err_broadcast_segment_suggest", {"word": "แพร", "suggestion": "แพร่"}),
        "/broadcast all": ("err_broadcast_empty", {}),
        "/broadcast all สวัสดี {name}": ("err_broadcast_placeholder", {"name": "name"}),
        "/broadcast all สวัสดี {school": ("err_broadcast_braces", {}),
        "/broadcast all " + "ก" * 2001: ("err_broadcast_too_long", {"count": 2001, "max": 2000}),
        "/broadcast_status": ("broadcast_status_usage", {}),
        "/broadcast_status 99999999999999999999": ("broadcast_status_usage", {}),
        "/broadcast_status 42": ("broadcast_not_found", {"id": 42}),
        "/broadcast_cancel x": ("broadcast_cancel_usage", {}),
    }
    for message, (key, params) in cases.items():
        await admin.say(message)
        assert admin.said(key, **params), (message, admin.text)
    await admin.send(Kind.BUTTON, payload="bcast:send:nope")
    assert admin.said("stale_button")
    await officer.say("/broadcast all สวัสดี")
    assert officer.said("not_allowed")
    await admin.say("/broadcasts")
    assert admin.said("broadcast_list_empty")
    async with repo.transaction():
        assert await repo.broadcasts.recent() == []


async def test_a_dropped_or_cancelled_broadcast_sends_nothing_more(dispatcher, sms, admin, clock, repo):
    await people(dispatcher, sms)
    await admin.say("/broadcast all ข่าว")
    async with repo.transaction():
        [first] = await repo.broadcasts.recent()
    await admin.press(f"bcast:drop:{first.id}")
    assert admin.said("broadcast_dropped", id=first.id)
    assert await send_out(dispatcher, clock) == []

    await admin.say("/broadcast all ข่าวใหม่")
    async with repo.transaction():
        second = (await repo.broadcasts.recent())[0]
    await admin.press(f"bcast:send:{second.id}")
    await admin.say(f"/broadcast_cancel {second.id}")
    assert admin.said("broadcast_cancelled", id=second.id, sent=0, stopped=4)
    assert await send_out(dispatcher, clock) == []
    await admin.say(f"/broadcast_cancel {second.id}")
    assert admin.said("broadcast_not_running", id=second.id, status=t("broadcast_status_cancelled", "th"))
    await admin.say("/broadcasts")
    assert f"#{second.id}" in admin.text and f"#{first.id}" in admin.text


# --- reminders ------------------------------------------------------------------------


async def test_reminders_go_on_their_days_by_day_once_each_saying_what_is_left(
        dispatcher, sms, admin, clock, repo):
    crowd = await people(dispatcher, sms)
    await admin.say("/deadline 2026-12-31")
    lettered = (await _regs(repo, "lettered"))[0]

    def at(days_before: int, hour: int) -> None:  # Bangkok time
        day = DEADLINE - timedelta(days=days_before)
        clock.now = datetime(day.year, day.month, day.day, hour, tzinfo=UTC) - timedelta(hours=7)

    at(8, 12)
    assert await send_out(dispatcher, clock) == []
    at(7, 22)  # the day has come, but it is night
    assert await send_out(dispatcher, clock) == []
    at(6, 6)
    assert await send_out(dispatcher, clock) == []
    at(6, 7)  # morning: the 7-day reminder, late but not stale
    got = await send_out(dispatcher, clock)
    by = {m.to.id: m.text for m in got}
    assert set(by) == {"fresh", "drafting", "lettered"}  # not the one who blocked the bot, nor the admin
    assert "/start" in by["fresh"] and "/status" in by["drafting"]
    assert by["lettered"] == t("reminder_letter", "th", school="โรงเรียนบ้านหนองบัว", ref=lettered.ref,
                               date="31 ธันวาคม 2569", when=t("reminder_days", "th", days=6))
    at(6, 15)
    assert await send_out(dispatcher, clock) == []  # never the same reminder twice
    at(3, 9)
    assert {m.to.id for m in await send_out(dispatcher, clock)} == set(by)
    at(0, 9)
    last = await send_out(dispatcher, clock)
    assert t("reminder_today", "th") in last[0].text
    at(-1, 9)
    assert await send_out(dispatcher, clock) == []  # after the deadline: no more
    assert len(crowd) == 4


async def _regs(repo, user_id: str):
    async with repo.transaction():
        return await repo.registrations_of("test", user_id)


def test_the_rate_so_far_gives_the_expected_end():
    from handlers.broadcasts import pace
    from storage.broadcasts import Broadcast, Progress

    started = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    made = Broadcast(1, "broadcast", None, Segment("all"), "x", "t", started, "sending", started, None)
    progress = Progress({"sent": 300, "pending": 1200, "queued": 300, "blocked": 7}, started + timedelta(seconds=10))
    rate, end = pace(made, progress, now=started + timedelta(seconds=12))
    assert rate == 30.0 and end == started + timedelta(seconds=12 + 1500 / 30)
    assert pace(made, Progress({"pending": 10}, None), started) == (None, None)  # nothing sent yet: no guess
