"""The SMS budget over all users: hourly ceiling, admins alerted at 50% and 80% of the daily cap
(once a day each), and /sms for admins to pause, resume or change the caps. On a controlled clock."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from itertools import count

import pytest

from handlers.messages import Address
from handlers.otp_policy import OtpPolicy
from templates import text as t
from tests.helpers import Officer

ADMIN = Address("test", "boss")
_numbers = count(1)


@pytest.fixture
def budgeted(dispatcher, settings):
    dispatcher.settings = replace(settings, admins=frozenset({ADMIN}), otp=OtpPolicy(global_day=10, global_hour=100))
    return dispatcher


async def ask_code(dispatcher, sms) -> Officer:
    """A new officer asks for a code to a number of their own."""
    n = next(_numbers)
    officer = Officer(dispatcher, sms, user_id=f"officer-{n}")
    await officer.up_to("phone")
    await officer.say(f"0810000{n:03d}")
    return officer


def alerts(officer: Officer) -> list[str]:
    return [r.text for r in officer.replies if r.to == ADMIN]


async def test_admins_are_alerted_at_half_and_four_fifths_of_the_daily_cap_once_a_day(budgeted, sms, clock):
    seen = []
    for _ in range(10):
        seen.append(alerts(await ask_code(budgeted, sms)))
        clock.advance(minutes=1)
    fifty = t("sms_budget_alert", "th", level=50, count=5, cap=10, hour_cap=100)
    eighty = t("sms_budget_alert", "th", level=80, count=8, cap=10, hour_cap=100)
    assert seen == [[], [], [], [], [fifty], [], [], [eighty], [], []]
    assert len(sms.sent) == 10

    late = await ask_code(budgeted, sms)  # the cap is reached: refused, no alert again
    assert late.said("err_otp_global", until="10:00 น. วันที่ 29 พ.ย. 2569") and alerts(late) == []

    clock.advance(days=1)  # the next day: the old codes left the window, the alerts may come again
    seen = [alerts(await ask_code(budgeted, sms)) for _ in range(5)]
    assert seen == [[], [], [], [], [fifty]]


async def test_an_hourly_ceiling_spreads_a_flood_over_the_day(budgeted, sms, clock, settings):
    budgeted.settings = replace(budgeted.settings, otp=OtpPolicy(global_day=100, global_hour=3))
    for _ in range(3):
        await ask_code(budgeted, sms)
    clock.advance(minutes=10)
    refused = await ask_code(budgeted, sms)
    assert refused.said("err_otp_global", until="11:00 น.")  # the first code of the hour was at 03:00 UTC
    assert len(sms.sent) == 3
    clock.advance(minutes=51)
    await refused.say("0819999999")
    assert refused.said("ask_otp", phone="08x-xxx-9999", minutes=5)
    assert len(sms.sent) == 4


async def test_an_admin_pauses_and_resumes_codes(budgeted, sms):
    admin = Officer(budgeted, sms, user_id=ADMIN.id)
    await admin.say("/sms pause")
    assert admin.said("sms_budget_paused")
    officer = await ask_code(budgeted, sms)
    assert officer.said("err_otp_paused") and sms.sent == []
    await admin.say("/sms resume")
    assert admin.said("sms_budget_running")
    await officer.say("0819999998")
    assert officer.said("ask_otp", phone="08x-xxx-9998", minutes=5) and len(sms.sent) == 1


async def test_an_admin_raises_the_cap(budgeted, sms, clock):
    budgeted.settings = replace(budgeted.settings, otp=OtpPolicy(global_day=1, global_hour=100))
    await ask_code(budgeted, sms)
    officer = await ask_code(budgeted, sms)
    assert officer.said("err_otp_global", until="10:00 น. วันที่ 29 พ.ย. 2569")
    admin = Officer(budgeted, sms, user_id=ADMIN.id)
    await admin.say("/sms cap 20")
    assert admin.said("sms_budget_status", state=t("sms_budget_running", "th"), day=1, cap=20, percent=5, hour=1,
                      hour_cap=100)
    await officer.say("0819999997")
    assert officer.said("ask_otp", phone="08x-xxx-9997", minutes=5) and len(sms.sent) == 2
    async with budgeted.repo.transaction():
        entry = await budgeted.repo.audit_log.latest(str(ADMIN), ["sms_cap"], since=clock() - timedelta(hours=1))
    assert entry is not None and entry.detail == {"value": 20}


@pytest.mark.parametrize("typed", ["/sms cap", "/sms cap abc", "/sms cap 0", "/sms cap 99999999999", "/sms stop",
                                   "/sms pause now"])
async def test_a_wrong_sms_command_says_how_and_changes_nothing(budgeted, sms, typed):
    admin = Officer(budgeted, sms, user_id=ADMIN.id)
    await admin.say(typed)
    assert admin.said("sms_budget_usage", max=10_000_000)
    await admin.say("/sms")
    assert admin.said("sms_budget_status", state=t("sms_budget_running", "th"), day=0, cap=10, percent=0, hour=0,
                      hour_cap=100)


async def test_only_admins_change_the_budget(budgeted, sms):
    stranger = Officer(budgeted, sms, user_id="stranger")
    await stranger.say("/sms pause")
    assert stranger.said("not_allowed")
    await ask_code(budgeted, sms)  # codes still go
    assert len(sms.sent) == 1
