"""One-time codes: every limit, with time moved by the test (nothing sleeps)."""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import replace
from datetime import timedelta

import pytest

from handlers.messages import Inbound, Kind
from handlers.otp_policy import OtpPolicy
from tests.helpers import PHONE, Officer, delivery_of, stop_delivery


async def registered_phone(officer: Officer) -> str | None:
    repo = officer.dispatcher.repo
    async with repo.transaction():
        conv = await repo.get_conversation(officer.channel, officer.user_id)
        return (await repo.get_registration(conv.registration_id)).phone


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


async def test_the_code_verifies_the_phone(officer: Officer, sms):
    await officer.up_to("otp")
    assert await registered_phone(officer) is None  # typed, not verified yet
    await officer.say(sms.last_code())
    assert officer.said("otp_verified", phone="081-234-5678")
    assert await registered_phone(officer) == PHONE


async def test_code_typed_in_thai_digits_with_spaces(officer: Officer, sms):
    await officer.up_to("otp")
    code = sms.last_code().translate(str.maketrans("0123456789", "๐๑๒๓๔๕๖๗๘๙"))
    await officer.say(f"{code[:3]} {code[3:]}")
    assert await registered_phone(officer) == PHONE


async def test_code_valid_for_five_minutes(officer: Officer, sms, clock):
    await officer.up_to("otp")
    clock.advance(minutes=4, seconds=59)
    await officer.say(sms.last_code())
    assert await registered_phone(officer) == PHONE


async def test_code_expires_after_five_minutes(officer: Officer, sms, clock):
    await officer.up_to("otp")
    clock.advance(minutes=5)
    await officer.say(sms.last_code())
    assert officer.said("err_otp_expired")
    assert await registered_phone(officer) is None
    await officer.press("otp:resend")
    await officer.say(sms.last_code())
    assert await registered_phone(officer) == PHONE


async def test_only_the_newest_code_counts_and_a_code_works_once(officer: Officer, sms, clock, repo):
    await officer.up_to("otp")
    first = sms.last_code()
    clock.advance(seconds=61)
    await officer.press("otp:resend")
    second = sms.last_code()
    assert first != second  # fresh secrets: equal codes have a one-in-a-million chance
    await officer.say(first)  # replaced: told so, and not a wrong try (tests/test_officer_path.py)
    assert officer.said("err_otp_replaced", phone="08x-xxx-5678")
    async with repo.transaction():
        challenge_id = (await repo.get_conversation(officer.channel, officer.user_id)).otp_challenge_id
    await officer.say(second)
    async with repo.transaction():
        challenge = await repo.otp.get(challenge_id)
        conv = await repo.get_conversation(officer.channel, officer.user_id)
    assert challenge.closed_at is not None and conv.otp_challenge_id is None


async def test_five_wrong_codes_lock_the_phone_for_an_hour(officer: Officer, sms, clock):
    await officer.up_to("otp")
    code = sms.last_code()
    for left in (4, 3, 2, 1):
        await officer.say(wrong(code))
        assert officer.said("err_otp_wrong", left=left)
    await officer.say(wrong(code))
    assert officer.said("err_otp_locked", until="11:00 น.")  # 03:00 UTC + 1 h, in Thai time
    await officer.say(code)  # even the right code is refused now
    assert officer.said("err_otp_locked", until="11:00 น.")
    assert await registered_phone(officer) is None
    clock.advance(minutes=30)
    await officer.press("otp:resend")
    assert officer.said("err_otp_locked", until="11:00 น.")
    clock.advance(minutes=31)
    await officer.press("otp:resend")
    await officer.say(sms.last_code())
    assert await registered_phone(officer) == PHONE


async def test_a_new_code_does_not_reset_the_wrong_tries(officer: Officer, sms, clock):
    await officer.up_to("otp")
    for _ in range(3):
        await officer.say(wrong(sms.last_code()))
    clock.advance(seconds=61)
    await officer.press("otp:resend")
    await officer.say(wrong(sms.last_code()))
    assert officer.said("err_otp_wrong", left=1)
    await officer.say(wrong(sms.last_code()))
    assert "11:01 น." in officer.text and officer.said("err_otp_locked", until="11:01 น.")


async def test_a_malformed_code_is_not_counted_as_a_try(officer: Officer, sms):
    await officer.up_to("otp")
    for _ in range(6):
        await officer.say("12345")
        assert officer.said("err_otp_format")
    await officer.say(wrong(sms.last_code()))
    assert officer.said("err_otp_wrong", left=4)


async def test_resend_waits_sixty_seconds(officer: Officer, sms, clock):
    await officer.up_to("otp")
    clock.advance(seconds=30)
    await officer.press("otp:resend")
    assert officer.said("err_otp_cooldown", seconds=30)
    assert len(sms.sent) == 1
    clock.advance(seconds=30)
    await officer.press("otp:resend")
    assert len(sms.sent) == 2
    assert officer.said("ask_otp", phone="08x-xxx-5678", minutes=5)


async def test_five_codes_per_phone_per_hour(officer: Officer, sms, clock):
    await officer.up_to("otp")  # code 1 at 10:00 Thai time
    for _ in range(4):
        clock.advance(seconds=61)
        await officer.press("otp:resend")
    assert len(sms.sent) == 5
    clock.advance(seconds=61)
    await officer.press("otp:resend")
    assert officer.said("err_otp_phone_hour", limit=5, until="11:00 น.")
    assert len(sms.sent) == 5
    clock.now = clock.now.replace(hour=4, minute=0, second=0)
    await officer.press("otp:resend")
    assert len(sms.sent) == 6


async def test_ten_codes_per_phone_per_day(officer: Officer, sms, clock):
    await officer.up_to("otp")
    for sent in range(2, 12):
        clock.advance(minutes=13)  # 13 minutes apart: never five in one hour
        await officer.press("otp:resend")
        if sent <= 10:
            assert len(sms.sent) == sent
    assert len(sms.sent) == 10
    assert officer.said("err_otp_phone_day", limit=10, until="10:00 น. วันที่ 29 พ.ย. 2569")


async def test_ten_codes_per_chat_user_per_day_whatever_the_numbers(officer: Officer, sms, clock):
    await officer.up_to("phone")
    for n in range(10):
        await officer.say(f"08123456{n:02d}")
        assert officer.said("ask_otp", phone=f"08x-xxx-56{n:02d}", minutes=5)
        await officer.press("otp:change")
    await officer.say("0899999999")
    assert officer.said("err_otp_user_day", limit=10, until="10:00 น. วันที่ 29 พ.ย. 2569")
    assert len(sms.sent) == 10


async def test_a_global_daily_cap_against_sms_pumping(dispatcher, sms, settings):
    dispatcher.settings = replace(settings, otp=OtpPolicy(global_day=3))
    for n in range(3):
        officer = Officer(dispatcher, sms, user_id=f"u{n}")
        await officer.up_to("phone")
        await officer.say(f"08100000{n:02d}")
    late = Officer(dispatcher, sms, user_id="late")
    await late.up_to("phone")
    await late.say("0819999999")
    assert late.said("err_otp_global", until="10:00 น. วันที่ 29 พ.ย. 2569")
    assert len(sms.sent) == 3


async def test_a_failed_sms_is_said_and_can_be_retried(officer: Officer, sms, clock):
    await officer.up_to("phone")
    sms.fail_next = 1
    await officer.say("081-234-5678")
    assert officer.said("sms_failed")
    clock.advance(seconds=61)
    await officer.press("otp:resend")
    await officer.say(sms.last_code())
    assert await registered_phone(officer) == PHONE


async def test_codes_and_phones_are_neither_stored_nor_logged_in_clear(officer: Officer, sms, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    await officer.up_to("otp")
    code = sms.last_code()
    await officer.say(wrong(code))
    await officer.say(code)
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "08x-xxx-5678" in logged  # the OTP events are logged, masked
    for secret in (code, PHONE, "0812345678", "081-234-5678"):
        assert secret not in logged
    await officer.dispatcher.repo.close()
    raw = b""
    for path in tmp_path.glob("kiddiary.sqlite3*"):
        raw += path.read_bytes()
    with sqlite3.connect(tmp_path / "kiddiary.sqlite3") as db:
        rows = db.execute("SELECT * FROM otp_challenges").fetchall()
    assert rows
    for secret in (code, PHONE, "812345678"):
        assert secret.encode() not in raw
        assert not any(secret in str(value) for row in rows for value in row)


async def test_codes_the_gateway_could_not_send_use_up_no_limit(officer: Officer, sms, clock):
    await officer.up_to("phone")
    sms.fail_next = 6
    await officer.say("081-234-5678")
    assert officer.said("sms_failed")
    for _ in range(5):
        clock.advance(seconds=61)
        await officer.press("otp:resend")
        assert officer.said("sms_failed")
    clock.advance(seconds=1)  # no cooldown either: nothing was sent
    await officer.press("otp:resend")
    assert len(sms.sent) == 1 and officer.said("ask_otp", phone="08x-xxx-5678", minutes=5)
    await officer.say(sms.last_code())
    assert await registered_phone(officer) == PHONE


async def test_a_code_typed_when_none_could_be_sent(officer: Officer, sms):
    await officer.up_to("phone")
    sms.fail_next = 1
    await officer.say("081-234-5678")
    await officer.say("123456")
    assert officer.said("err_otp_no_code")
    assert await registered_phone(officer) is None


async def test_the_announced_time_is_when_a_new_code_is_allowed(officer: Officer, sms, clock):
    await officer.up_to("otp")
    start = clock.now
    for _ in range(4):
        clock.advance(seconds=61)
        await officer.press("otp:resend")
    clock.advance(seconds=61)
    await officer.press("otp:resend")
    assert officer.said("err_otp_phone_hour", limit=5, until="11:00 น.")
    clock.now = start + timedelta(hours=1)  # exactly the time announced
    await officer.press("otp:resend")
    assert len(sms.sent) == 6


@pytest.mark.parametrize("down_for, sent", [(2, True), (6, False)])
async def test_a_code_left_in_the_outbox_by_a_crash_is_sent_only_while_valid(officer, dispatcher, sms, clock,
                                                                             down_for, sent):
    await officer.up_to("phone")
    await stop_delivery(dispatcher)  # the process dies: what is committed stays in the outbox, unsent
    await dispatcher.handle(Inbound("test", officer.user_id, Kind.TEXT, text="081-234-5678", event_id="ph"))
    assert sms.sent == []
    clock.advance(minutes=down_for)
    await (await delivery_of(dispatcher))[0].idle()  # the next start sends what was left
    assert len(sms.sent) == int(sent)
    async with dispatcher.repo.transaction():
        assert await dispatcher.repo.outbox.count() == {}  # sent or dropped: nothing left behind
    if sent:
        assert "ใช้ได้ 3 นาที" in sms.sent[0][1]  # the minutes it has left, not the five it had
        await officer.say(sms.last_code())
        assert officer.said("otp_verified", phone="081-234-5678")
