"""What the officer can say at any step: back, cancel, status, help, language, start, new, letter
(and /stats for admins: handlers/stats.py)."""

from __future__ import annotations

from dataclasses import replace

from handlers import directory_import, privacy, registrations, staff
from handlers import stats as admin_stats
from handlers.deadline import deadline_note
from handlers.messages import Outbound
from handlers.normalize import fold
from handlers.steps import (
    AWAITING,
    STEPS,
    TOTAL_STEPS,
    State,
    advance,
    ask,
    decision_status,
    discard,
    drop_pending_code,
    go_to,
    previous_state,
    step_choices,
    take_answer,
)
from handlers.turn import Turn
from storage.models import APPROVED, DRAFT, LETTER_ISSUED, REJECTED, REVOKED, SUBMITTED
from templates import LANGUAGES

# Typed words (folded) that mean a command, in Thai and English, with or without a slash.
WORDS: dict[str, str] = {
    "/start": "start", "start": "start", "เริ่ม": "start", "เริ่มลงทะเบียน": "start",
    "/back": "back", "back": "back", "ย้อนกลับ": "back", "กลับ": "back",
    "/cancel": "cancel", "cancel": "cancel", "ยกเลิก": "cancel",
    "/status": "status", "status": "status", "สถานะ": "status",
    "/help": "help", "help": "help", "ช่วยเหลือ": "help", "?": "help",
    "/new": "new", "/stats": "stats", "/lang": "lang", "/import": "import",
    "/mydata": "mydata", "ข้อมูลของฉัน": "mydata", "/delete_my_data": "delete_my_data", "ลบข้อมูลของฉัน": "delete_my_data",
    "/letter": "letter", "ส่งหนังสือ": "letter", "ส่งหนังสือที่ลงนามแล้ว": "letter",
}
# Commands that take an argument. /start's is a deep link's payload (t.me/<bot>?start=…): the
# officer came from a link and is greeted like anyone else.
WITH_ARGUMENT = ("/lang", "/stats", "/import", "/start")
YES_WORDS = frozenset({"ใช่", "yes", "y", "ตกลง", "ok"})


def parse(text: str, payload: str | None) -> tuple[str, str] | None:
    """(command, argument) when the message is a command, else None."""
    if payload and payload.startswith("cmd:"):
        command = payload.removeprefix("cmd:")
        return (command, "") if command in COMMANDS else None  # a button we never made: stale
    if payload:
        return None
    word, _, argument = fold(text).partition(" ")
    if word in WORDS and (not argument or word in WITH_ARGUMENT):
        return WORDS[word], argument.strip()
    if word.startswith("/") and len(word) > 1:
        return "unknown", word
    return None


def cancellable(turn: Turn) -> bool:
    return turn.reg is not None and turn.reg.status in (DRAFT, LETTER_ISSUED)


async def run(turn: Turn, command: str, argument: str) -> None:
    await COMMANDS[command](turn, argument)


async def start(turn: Turn, argument: str = "") -> None:
    if turn.reg is not None and turn.conv.state not in AWAITING:
        turn.say("already_registering", ref=turn.reg.ref)
        await ask(turn)
        return
    if turn.reg is not None:  # confirmed: /start shows where things stand
        await status(turn)
        return
    turn.say("greeting")
    await go_to(turn, State.CONSENT)


async def letter(turn: Turn, argument: str = "") -> None:
    """"Send the signed letter" (the LINE menu, /letter): the letter step again, which asks for
    the photo (with the camera where the platform has one); or why there is nothing to send."""
    state = State(turn.conv.state)
    reg = turn.reg
    if reg is not None and state is State.SUBMITTED and reg.status == SUBMITTED:
        turn.say("letter_under_review", ref=reg.ref, choices=step_choices(turn, state))
        return
    if reg is None or state not in AWAITING:
        turn.say("letter_not_yet")
    await ask(turn)


async def new(turn: Turn, argument: str = "") -> None:
    if turn.reg is not None and turn.conv.state not in AWAITING:
        turn.say("new_needs_confirm", ref=turn.reg.ref)
        await ask(turn)
        return
    turn.reg, turn.conv.registration_id = None, None
    turn.conv.editing = False
    await go_to(turn, State.CONSENT)


async def back(turn: Turn, argument: str = "") -> None:
    state = State(turn.conv.state)
    if state is State.START:
        await start(turn)
        return
    if state is State.LETTER:  # reopen the details; confirming again issues a new letter
        await take_answer(turn, "", "letter:edit")
        return
    if state is State.SUBMITTED:  # nothing to go back to while the review is pending
        await status(turn)
        return
    if turn.conv.editing:  # leave the edit: the stored answer is untouched
        await drop_pending_code(turn)
        turn.conv.editing = False
        turn.say("edit_abandoned")
        await advance(turn)
        return
    previous = previous_state(turn, state)
    if previous is None:
        turn.say("back_at_first")
        await ask(turn)
        return
    await go_to(turn, previous)


async def cancel(turn: Turn, argument: str = "") -> None:
    if not cancellable(turn):
        turn.say("nothing_to_cancel")
        if turn.conv.state != State.START:
            await ask(turn)
        return
    assert turn.reg is not None
    turn.conv.confirm_cancel = True
    turn.say(
        "ask_cancel", ref=turn.reg.ref,
        choices=[turn.button("btn_cancel_yes", "cancel:yes"), turn.button("btn_cancel_no", "cancel:no")],
    )


async def answer_cancel(turn: Turn, text: str, payload: str | None) -> bool:
    """The reply to "really cancel?". True when it was that reply and nothing more is to be done."""
    turn.conv.confirm_cancel = False
    yes_labels = {fold(x) for x in turn.labels(turn.button("btn_cancel_yes", "cancel:yes"))}
    yes = payload == "cancel:yes" or (payload is None and fold(text) in yes_labels | YES_WORDS)
    if yes and cancellable(turn):
        assert turn.reg is not None
        ref = turn.reg.ref
        await discard(turn, "cancelled")
        turn.say("cancelled", ref=ref, choices=[turn.button("btn_start", "cmd:start")])
        return True
    no_labels = {fold(x) for x in turn.labels(turn.button("btn_cancel_no", "cancel:no"))}
    if payload == "cancel:no" or (payload is None and fold(text) in no_labels | {"ไม่", "no", "n"}):
        turn.say("cancel_aborted")
        if turn.conv.state != State.START:
            await ask(turn)
        return True
    return False  # something else: treat it as an ordinary message


async def status(turn: Turn, argument: str = "") -> None:
    """Where the current registration stands, then every registration of the officer (an
    officer may have several schools) with buttons for the ones not being followed."""
    state = State(turn.conv.state)
    reg = turn.reg
    here = step_choices(turn, state) if state in STEPS else [turn.button("btn_start", "cmd:start")]
    listing, acts, count = await registrations.overview(turn)
    if reg is None and count:  # none followed now (cancelled, or not started): the others are still there
        turn.replies.append(Outbound(listing, (*acts, *here)))
    elif reg is None:
        turn.say("status_none", choices=here)
    elif state in AWAITING and reg.status in (APPROVED, REJECTED, REVOKED):
        turn.replies.append(Outbound(decision_status(turn), tuple(here)))
    elif state in AWAITING:
        step = STEPS[state]
        turn.say(f"status_{state}", ref=reg.ref, school=reg.school_name, n=step.number, total=TOTAL_STEPS,
                 choices=here)
    else:
        step = STEPS[state]
        turn.say("status_in_progress", ref=reg.ref, n=step.number, total=TOTAL_STEPS, title=turn.t(step.title),
                 choices=here)
    if reg is not None and count > 1:  # more than the one above: the list, its buttons first
        turn.replies[-1] = replace(turn.replies[-1], choices=())
        turn.replies.append(Outbound(listing, (*acts, *here)))
    if (reg is None or reg.status in (DRAFT, LETTER_ISSUED, REJECTED)) and (note := await deadline_note(turn)):
        last = turn.replies[-1]
        turn.replies[-1] = replace(last, text=f"{last.text}\n{note}")


async def help_(turn: Turn, argument: str = "") -> None:
    state = State(turn.conv.state)
    choices = step_choices(turn, state) if state in STEPS else []
    turn.say(f"help_{state}")
    turn.say("help_general")
    turn.replies += await staff.role_help(turn)  # a reviewer's and an admin's own commands after the officer's
    turn.replies[-1] = Outbound(turn.replies[-1].text, tuple(choices))  # the step's buttons on the last message


async def lang(turn: Turn, argument: str = "") -> None:
    if argument not in LANGUAGES:
        turn.say("lang_unknown")
        return
    turn.conv.lang = argument
    turn.say("lang_switched")
    if State(turn.conv.state) in STEPS:
        await ask(turn)


async def unknown(turn: Turn, argument: str) -> None:
    state = State(turn.conv.state)
    turn.say("unknown_command", command=argument, choices=step_choices(turn, state) if state in STEPS else ())


COMMANDS = {
    "start": start, "new": new, "back": back, "cancel": cancel, "status": status, "help": help_,
    "lang": lang, "letter": letter, "stats": admin_stats.command, "import": directory_import.request,
    "unknown": unknown, "mydata": privacy.my_data, "delete_my_data": privacy.delete_my_data,
}
