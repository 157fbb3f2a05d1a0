"""Admins' deadline and broadcasts, on chat.

/deadline [YYYY-MM-DD | clear]     the registration deadline (Bangkok), shown to officers
/broadcast SEGMENT TEXT            counts who it reaches on which channel, shows the text as the
                                   first of them will read it, and waits for «send» or «drop»
/broadcasts                        the latest broadcasts and reminders
/broadcast_status ID               sent, failed, blocked, remaining, the rate, the expected end
/broadcast_cancel ID               stops one: whoever has not got it yet will not

The sending itself is bot/broadcaster.py's; what is to be sent to whom is decided here
(`segment`, `render`, `reminder_text`), so the shell (`kiddiary-bot broadcast`) and the chat
say and send the same.
"""

from __future__ import annotations

import string
from datetime import date, datetime, timedelta

from handlers import validation as v
from handlers.deadline import DEADLINE_KEY, days_left, parse_date, quiet_until, thai_date
from handlers.normalize import ascii_digits, fold
from handlers.turn import BANGKOK, Turn
from storage import Repository
from storage.broadcasts import (
    BLOCKED,
    DRAFT_BROADCAST,
    FAILED,
    SENDING,
    SENT,
    UNKNOWN,
    Broadcast,
    Progress,
    Recipient,
    Segment,
)
from storage.models import DRAFT, LETTER_ISSUED, REJECTED
from templates import has, text

COMMANDS = {"/deadline": "deadline", "/broadcast": "broadcast", "/broadcasts": "list",
            "/broadcast_status": "status", "/broadcast_cancel": "cancel"}
SEGMENT_WORDS = {
    "all": Segment("all"), "not_started": Segment("not_started"),
    "in_progress": Segment("status", "draft"), "awaiting_letter": Segment("status", "letter_issued"),
    "submitted": Segment("status", "submitted"), "rejected": Segment("status", "rejected"),
    "approved": Segment("status", "approved"),
    "obec": Segment("affiliation", "obec"), "สพฐ": Segment("affiliation", "obec"),
    "lao": Segment("affiliation", "lao"), "อปท": Segment("affiliation", "lao"),
}
PLACEHOLDERS = ("school", "ref", "deadline")
MAX_TEXT = 2000  # characters: one message on every platform, readable on a phone


def parse(text_: str, payload: str | None) -> tuple[str, str] | None:
    """(action, the rest of the message) when it is meant for this module, else None."""
    if payload and payload.startswith("bcast:"):
        return payload.removeprefix("bcast:"), ""
    word, _, rest = text_.strip().partition(" ")
    word, _, glued = word.partition("\n")  # "/broadcast all\nline two": the text may start on a new line
    action = COMMANDS.get(word.split("@", 1)[0].lower())
    return None if action is None else (action, (glued + " " + rest).strip() if glued else rest.strip())


async def handle(turn: Turn, action: str, rest: str) -> None:
    if turn.inbound.sender not in turn.settings.admins:
        turn.say("not_allowed")
        return
    if action == "deadline":
        await deadline(turn, rest)
    elif action == "broadcast":
        await broadcast(turn, rest)
    elif action == "list":
        await listing(turn)
    elif action in ("status", "cancel"):
        number = ascii_digits(rest)
        if not number.isdigit() or len(number) > 12:
            turn.say(f"broadcast_{action}_usage")
        elif action == "status":
            await status(turn, int(number))
        else:
            await cancel(turn, int(number))
    elif action.startswith("send:") or action.startswith("drop:"):
        verb, _, number = action.partition(":")
        if number.isdigit():
            await (confirm(turn, int(number)) if verb == "send" else drop(turn, int(number)))
        else:
            turn.say("stale_button")
    else:
        turn.say("stale_button")


# --- the deadline --------------------------------------------------------------------


async def deadline(turn: Turn, argument: str) -> None:
    current = await turn.deadline()
    if not argument:
        if current is None:
            turn.say("deadline_none")
        else:
            turn.say("deadline_current", date=thai_date(current, turn.conv.lang), days=days_left(current, turn.now))
        return
    if fold(argument) in ("clear", "ลบ", "ยกเลิก"):
        await turn.repo.broadcasts.set_setting(DEADLINE_KEY, None, turn.actor, turn.now)
        turn.say("deadline_cleared")
        return
    day = parse_date(argument)
    if day is None:
        turn.say("deadline_usage", example=(turn.now.astimezone(BANGKOK).date() + timedelta(days=30)).isoformat())
        return
    if days_left(day, turn.now) < 0:
        turn.say("deadline_in_past", date=thai_date(day, turn.conv.lang))
        return
    await set_deadline(turn.repo, day, turn.actor, turn.now)
    turn.say("deadline_set", date=thai_date(day, turn.conv.lang), days=days_left(day, turn.now),
             reminders=", ".join(str(d) for d in turn.settings.reminder_days))


async def set_deadline(repo: Repository, day: date, by: str, at: datetime) -> None:
    """Shared with `kiddiary-bot deadline`."""
    await repo.broadcasts.set_setting(DEADLINE_KEY, day.isoformat(), by, at)


# --- what a broadcast says, to whom ----------------------------------------------------


def segment(word: str) -> Segment | v.Invalid:
    """A segment from what an admin typed: a keyword, an affiliation or a province."""
    key = fold(word).removesuffix(".")
    if key in SEGMENT_WORDS:
        return SEGMENT_WORDS[key]
    province = v.province(word)
    if isinstance(province, str):
        return Segment("province", province)
    return v.Invalid("broadcast_segment", {"suggestion": province.params.get("suggestion", "")})


def check_text(body: str) -> v.Invalid | None:
    """Why the admin's text cannot be sent as it is, if it cannot."""
    if not body.strip():
        return v.Invalid("broadcast_empty")
    if len(body) > MAX_TEXT:
        return v.Invalid("broadcast_too_long", {"count": len(body), "max": MAX_TEXT})
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(body) if name is not None]
    except ValueError:
        return v.Invalid("broadcast_braces")
    unknown = [f for f in fields if f not in PLACEHOLDERS]
    if unknown:
        return v.Invalid("broadcast_placeholder", {"name": unknown[0]})
    return None


def same_for_everyone(body: str) -> str | None:
    """The text every recipient reads, when it quotes nothing of theirs (None when it does)."""
    if any(name for _, name, _, _ in string.Formatter().parse(body)):
        return None
    return body.format()  # {{ and }} become single braces


def render(body: str, person: Recipient, deadline_: date | None) -> str:
    """The admin's text as `person` reads it."""
    lang = person.lang
    return body.format(
        school=person.school or text("broadcast_no_school", lang),
        ref=person.ref or text("broadcast_no_ref", lang),
        deadline=thai_date(deadline_, lang) if deadline_ else text("broadcast_no_deadline", lang),
    )


def reminder_text(person: Recipient, deadline_: date, now: datetime) -> str:
    """A reminder that says what is left for this person."""
    lang, left = person.lang, days_left(deadline_, now)
    what = {DRAFT: "reminder_draft", LETTER_ISSUED: "reminder_letter", REJECTED: "reminder_rejected"}.get(
        person.status or "", "reminder_not_started")
    when = text("reminder_today" if left == 0 else "reminder_days", lang, days=left)
    return text(what, lang, date=thai_date(deadline_, lang), when=when, school=person.school or "",
                ref=person.ref or "")


# --- /broadcast ----------------------------------------------------------------------


async def broadcast(turn: Turn, rest: str) -> None:
    word, body = [*rest.split(maxsplit=1), "", ""][:2]  # the segment ends at a space or a line end
    if not word:
        turn.say("broadcast_usage")
        return
    chosen = segment(word)
    if isinstance(chosen, v.Invalid):
        suggestion = chosen.params.get("suggestion")
        turn.say("err_broadcast_segment_suggest" if suggestion else "err_broadcast_segment", word=word,
                 suggestion=suggestion)
        return
    body = body.strip()
    if (problem := check_text(body)) is not None:
        turn.say(f"err_{problem.reason}", **problem.params)
        return
    audience = await turn.repo.broadcasts.audience(chosen)
    reachable = {ch: n for (ch, blocked), n in audience.items() if not blocked}
    blocked = sum(n for (_, b), n in audience.items() if b)
    if not reachable:
        turn.say("broadcast_nobody", segment=word, blocked=blocked)
        return
    made = await turn.repo.broadcasts.create("broadcast", chosen, body, turn.actor, turn.now)
    assert made is not None  # no key: never a duplicate
    sample = await turn.repo.broadcasts.sample(chosen)
    preview = render(body, sample, await turn.deadline()) if sample else body
    channels = ", ".join(f"{turn.t(f'channel_{ch}') if has(f'channel_{ch}') else ch} {n}"
                         for ch, n in sorted(reachable.items()))
    quiet = quiet_until(turn.now)
    turn.say("broadcast_confirm", id=made.id, segment=word, total=sum(reachable.values()), channels=channels,
             blocked=blocked, preview=preview,
             choices=[turn.button("btn_broadcast_send", f"bcast:send:{made.id}"),
                      turn.button("btn_broadcast_drop", f"bcast:drop:{made.id}")])
    if quiet is not None:
        turn.say("broadcast_quiet_note", time=quiet.astimezone(BANGKOK).strftime("%H:%M"))


async def confirm(turn: Turn, broadcast_id: int) -> None:
    made = await turn.repo.broadcasts.get(broadcast_id)
    if made is None:
        turn.say("broadcast_not_found", id=broadcast_id)
        return
    if made.status != DRAFT_BROADCAST:
        turn.say("broadcast_not_draft", id=broadcast_id, status=turn.t(f"broadcast_status_{made.status}"))
        return
    count = await turn.repo.broadcasts.start(broadcast_id, turn.now)
    turn.say("broadcast_started", id=broadcast_id, count=count)


async def drop(turn: Turn, broadcast_id: int) -> None:
    made = await turn.repo.broadcasts.get(broadcast_id)
    if made is None or made.status != DRAFT_BROADCAST:
        turn.say("broadcast_not_draft", id=broadcast_id,
                 status=turn.t(f"broadcast_status_{made.status}") if made else "-")
        return
    await turn.repo.broadcasts.cancel(broadcast_id, turn.now)
    turn.say("broadcast_dropped", id=broadcast_id)


# --- following one -------------------------------------------------------------------


async def listing(turn: Turn) -> None:
    recent = await turn.repo.broadcasts.recent()
    if not recent:
        turn.say("broadcast_list_empty")
        return
    lines = []
    for made in recent:
        progress = await turn.repo.broadcasts.progress(made.id)
        lines.append(turn.t("broadcast_list_item", id=made.id, kind=turn.t(f"broadcast_kind_{made.kind}"),
                            segment=str(made.segment), status=turn.t(f"broadcast_status_{made.status}"),
                            sent=progress.counts.get(SENT, 0), total=progress.total, when=turn.when(made.created_at)))
    turn.say("broadcast_list", lines="\n".join(lines))


async def status(turn: Turn, broadcast_id: int) -> None:
    made = await turn.repo.broadcasts.get(broadcast_id)
    if made is None:
        turn.say("broadcast_not_found", id=broadcast_id)
        return
    progress = await turn.repo.broadcasts.progress(broadcast_id)
    rate, end = pace(made, progress, turn.now)
    turn.say("broadcast_progress", id=made.id, status=turn.t(f"broadcast_status_{made.status}"),
             segment=str(made.segment), total=progress.total, sent=progress.counts.get(SENT, 0),
             failed=progress.counts.get(FAILED, 0) + progress.counts.get(UNKNOWN, 0),
             blocked=progress.counts.get(BLOCKED, 0), remaining=progress.remaining,
             rate=f"{rate:.1f}" if rate is not None else "-",
             end=turn.when(end) if end is not None and made.status == SENDING else "-")


def pace(made: Broadcast, progress: Progress, now: datetime) -> tuple[float | None, datetime | None]:
    """Messages a second so far, and when the rest should be sent at that rate."""
    sent = progress.counts.get(SENT, 0)
    if not sent or made.started_at is None or progress.last_sent is None:
        return None, None
    seconds = max((progress.last_sent - made.started_at).total_seconds(), 1.0)
    rate = sent / seconds
    return rate, now + timedelta(seconds=progress.remaining / rate)


async def cancel(turn: Turn, broadcast_id: int) -> None:
    made = await turn.repo.broadcasts.get(broadcast_id)
    if made is None:
        turn.say("broadcast_not_found", id=broadcast_id)
        return
    if await turn.repo.broadcasts.cancel(broadcast_id, turn.now) is None:
        turn.say("broadcast_not_running", id=broadcast_id, status=turn.t(f"broadcast_status_{made.status}"))
        return
    progress = await turn.repo.broadcasts.progress(broadcast_id)
    turn.say("broadcast_cancelled", id=broadcast_id, sent=progress.counts.get(SENT, 0),
             stopped=progress.counts.get("cancelled", 0))
