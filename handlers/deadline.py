"""The registration deadline, the reminders before it, and the quiet hours: all in Bangkok time.

The deadline is a date: registrations are taken until the end of that day, Bangkok time. A
reminder goes N days before it (settings: 7, 3 and 1 by default) to everyone who has not
submitted yet; if the bot was down on that day, the reminder still goes once it is back, unless a
later reminder (fewer days) is due by then: a person never gets a stale "7 days left" on the eve
of the deadline. Nothing is broadcast between 21:00 and 07:00: it waits until morning.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

from handlers.turn import BANGKOK, Turn
from templates import text

QUIET_FROM, QUIET_UNTIL = time(21, 0), time(7, 0)
DEADLINE_KEY = "deadline"


def parse_date(value: str) -> date | None:
    """A YYYY-MM-DD date (as an admin types it: Gregorian); None when it is not one."""
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        return None


def days_left(deadline: date, now: datetime) -> int:
    """Whole days from today (Bangkok) to the deadline: 0 on the day itself, negative after."""
    return (deadline - now.astimezone(BANGKOK).date()).days


def quiet_until(now: datetime) -> datetime | None:
    """When the quiet hours end, if `now` is inside them; None when sending may go on."""
    local = now.astimezone(BANGKOK)
    if QUIET_UNTIL <= local.time() < QUIET_FROM:
        return None
    morning = local.date() + timedelta(days=1) if local.time() >= QUIET_FROM else local.date()
    return datetime.combine(morning, QUIET_UNTIL, BANGKOK)


def reminder_due(deadline: date, now: datetime, schedule: tuple[int, ...]) -> int | None:
    """Which reminder (days before the deadline) is due now, if any: the one for the fewest days
    whose day has come, as long as the deadline has not passed."""
    left = days_left(deadline, now)
    if left < 0:
        return None
    due = [days for days in schedule if left <= days]
    return min(due) if due else None


def reminder_key(deadline: date, days: int) -> str:
    return f"reminder:{deadline.isoformat()}:{days}"


def thai_date(day: date, lang: str) -> str:
    """31 มีนาคม 2570 (Buddhist Era) in Thai; 31 March 2027 in English."""
    month = text("months_full", lang).split()[day.month - 1]
    year = day.year + 543 if lang == "th" else day.year
    return text("date_format", lang, day=day.day, month=month, year=year)


async def deadline_note(turn: Turn) -> str | None:
    """The sentence that tells an officer the deadline, if an admin set one."""
    day = await turn.deadline()
    if day is None:
        return None
    left = days_left(day, turn.now)
    key = "deadline_note_passed" if left < 0 else "deadline_note_today" if left == 0 else "deadline_note"
    return turn.t(key, date=thai_date(day, turn.conv.lang), days=left)
