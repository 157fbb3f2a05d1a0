"""The operator's SMS budget for one-time codes, over all users together.

Per-phone and per-user limits (handlers/otp.py) do not stop a crowd: ~2,000 throwaway chat
accounts sending their 10 codes each would use up a 20,000-code day and stop real registrations
until the next day. So besides the daily cap there is an hourly ceiling (the crowd needs at
least day/hour hours), the admins are told on chat when the last 24 hours reach 50% and 80% of
the cap (each at most once a day), and an admin can pause codes or change the caps:

    /sms                 where the budget stands
    /sms pause | resume  stop or restart sending codes (other SMS, like passwords, still go)
    /sms cap N           the daily cap (codes in any 24 hours)
    /sms hour N          the hourly ceiling (codes in any hour)

What the admins set is kept in the settings table and outlives a restart; without it the
configured KIDDIARY_OTP_DAILY_LIMIT and KIDDIARY_OTP_HOURLY_LIMIT hold.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from handlers.messages import Outbound
from handlers.normalize import ascii_digits
from handlers.turn import Turn
from handlers.validation import Invalid
from templates import text

log = logging.getLogger(__name__)

DAY, HOUR = timedelta(days=1), timedelta(hours=1)
PAUSED_KEY, DAY_CAP_KEY, HOUR_CAP_KEY = "sms_paused", "sms_day_cap", "sms_hour_cap"
ALERT_LEVELS = (50, 80)  # percent of the daily cap at which the admins are told
MAX_CAP = 10_000_000


def alert_key(level: int) -> str:
    return f"sms_alert_{level}"  # the value: when the admins were last told of this level


@dataclass(frozen=True)
class Budget:
    paused: bool
    day_cap: int
    hour_cap: int


async def budget(turn: Turn) -> Budget:
    """The caps in force: the admins' (on chat) over the configured ones."""
    settings, policy = turn.repo.broadcasts, turn.settings.otp
    day, hour = await settings.setting(DAY_CAP_KEY), await settings.setting(HOUR_CAP_KEY)
    return Budget(
        paused=await settings.setting(PAUSED_KEY) == "1",
        day_cap=int(day) if day else policy.global_day,
        hour_cap=int(hour) if hour else policy.global_hour,
    )


async def refusal(turn: Turn) -> Invalid | None:
    """Why no code may be sent to anyone now, or None. Codes whose SMS may or may not have gone
    out (a gateway timeout) count as sent."""
    current, now, otp = await budget(turn), turn.now, turn.repo.otp
    if current.paused:
        return Invalid("otp_paused")
    total, oldest = await otp.sent_total(since=now - DAY)
    if total >= current.day_cap and oldest is not None:
        log.warning("daily OTP cap reached: %d codes in 24 h; refusing until %s", total, oldest + DAY)
        return Invalid("otp_global", {"until": turn.when(oldest + DAY)})
    in_hour, oldest = await otp.sent_total(since=now - HOUR)
    if in_hour >= current.hour_cap and oldest is not None:
        log.warning("hourly OTP ceiling reached: %d codes in 1 h; refusing until %s", in_hour, oldest + HOUR)
        return Invalid("otp_global", {"until": turn.when(oldest + HOUR)})
    return None


async def after_sending(turn: Turn) -> None:
    """Tell the admins when the codes of the last 24 hours (this one included) reach 50% or 80%
    of the daily cap; each level at most once in 24 hours."""
    current, now, settings = await budget(turn), turn.now, turn.repo.broadcasts
    total, _ = await turn.repo.otp.sent_total(since=now - DAY)
    for level in ALERT_LEVELS:
        if total * 100 < level * current.day_cap:
            continue
        last = await settings.setting(alert_key(level))
        if last is not None and now - datetime.fromisoformat(last) < DAY:
            continue
        await settings.set_setting(alert_key(level), now.isoformat(), "system", now)
        log.warning("SMS budget: %d codes in 24 h, %d%% of the daily cap %d", total, level, current.day_cap)
        for admin in sorted(turn.settings.admins, key=str):
            conv = await turn.repo.get_conversation(admin.channel, admin.id)
            lang = conv.lang if conv else "th"
            turn.replies.append(Outbound(text("sms_budget_alert", lang, level=level, count=total,
                                              cap=current.day_cap, hour_cap=current.hour_cap), to=admin))


# --- /sms for admins -------------------------------------------------------------------------

def parse(text_: str) -> str | None:
    """The argument of `/sms …`, or None when the message is something else."""
    word, _, rest = text_.strip().partition(" ")
    return rest.strip() if word.split("@", 1)[0].lower() == "/sms" else None


async def handle(turn: Turn, argument: str) -> None:
    if turn.inbound.sender not in turn.settings.admins:
        turn.say("not_allowed")
        return
    verb, _, value = argument.lower().partition(" ")
    settings, by, now = turn.repo.broadcasts, turn.actor, turn.now
    if verb in ("pause", "resume") and not value:
        await settings.set_setting(PAUSED_KEY, "1" if verb == "pause" else None, by, now)
        await turn.repo.audit_log.add(now, by, f"sms_{verb}")
    elif verb in ("cap", "hour") and value:
        number = ascii_digits(value.strip())
        if not number.isdigit() or not 1 <= int(number) <= MAX_CAP:
            turn.say("sms_budget_usage", max=MAX_CAP)
            return
        await settings.set_setting(DAY_CAP_KEY if verb == "cap" else HOUR_CAP_KEY, str(int(number)), by, now)
        await turn.repo.audit_log.add(now, by, f"sms_{verb}", {"value": int(number)})
    elif verb:
        turn.say("sms_budget_usage", max=MAX_CAP)
        return
    await status(turn)


async def status(turn: Turn) -> None:
    current, now = await budget(turn), turn.now
    day, _ = await turn.repo.otp.sent_total(since=now - DAY)
    hour, _ = await turn.repo.otp.sent_total(since=now - HOUR)
    turn.say("sms_budget_status", state=turn.t("sms_budget_paused" if current.paused else "sms_budget_running"),
             day=day, cap=current.day_cap, percent=day * 100 // current.day_cap, hour=hour,
             hour_cap=current.hour_cap)
