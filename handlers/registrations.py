"""All of an officer's registrations, not only the one the conversation is on.

An officer may register several schools: one draft being filled in while an earlier one
waits for its signed letter, is reviewed, or comes back rejected. The conversation follows
one registration at a time; the buttons made here (`reg:<action>:<ref>`) name the
registration they act on, so they work whatever step the officer is at elsewhere: the one
being filled in is kept as it is, and /status offers to come back to it.
"""

from __future__ import annotations

from handlers import steps
from handlers.answers import drop_pending_code, reg_of
from handlers.messages import Choice
from handlers.reg_buttons import PREFIX
from handlers.states import State
from handlers.turn import Turn
from storage.models import APPROVED, CANCELLED, DRAFT, LETTER_ISSUED, REJECTED, SUBMITTED, Registration

# What each action can be done on: a button from before a decision or a cancellation is stale.
USABLE = {"photo": (LETTER_ISSUED, REJECTED), "edit": (LETTER_ISSUED, REJECTED),
          "resume": (DRAFT, LETTER_ISSUED, REJECTED)}


def _left_to_do(turn: Turn, reg: Registration, current: bool) -> str:
    """What the officer still has to do for `reg`, in a few words."""
    if reg.status == DRAFT:
        return turn.t("todo_draft_current" if current else "todo_draft")
    if reg.status in (LETTER_ISSUED, REJECTED) and reg.confirmed_at is None:
        return turn.t("todo_reopened")
    if reg.status == LETTER_ISSUED:
        return turn.t("todo_letter")
    if reg.status == SUBMITTED:
        return turn.t("todo_submitted")
    if reg.status == REJECTED:
        return turn.t("todo_rejected")
    if reg.status == APPROVED and reg.account_username:
        return turn.t("todo_approved", username=reg.account_username)
    return turn.t("todo_approved_pending")


def _choices_for(turn: Turn, reg: Registration, current: bool) -> list[Choice]:
    """The buttons that act on `reg` from anywhere (none for the current one: its step has them)."""
    if current:
        return []
    if reg.status == DRAFT or (reg.status in (LETTER_ISSUED, REJECTED) and reg.confirmed_at is None):
        return [Choice(turn.t("btn_reg_resume", ref=reg.ref), f"{PREFIX}resume:{reg.ref}")]
    if reg.status == LETTER_ISSUED:
        return [Choice(turn.t("btn_reg_letter", ref=reg.ref), f"{PREFIX}photo:{reg.ref}")]
    if reg.status == REJECTED:
        return [Choice(turn.t("btn_reg_letter", ref=reg.ref), f"{PREFIX}photo:{reg.ref}"),
                Choice(turn.t("btn_reg_edit_of", ref=reg.ref), f"{PREFIX}edit:{reg.ref}")]
    return []


async def overview(turn: Turn) -> tuple[str, list[Choice], int]:
    """Every registration of the officer that is not cancelled, one line each (reference,
    school, status, what is left to do), buttons to act on the ones not being followed, and
    how many there are. ("", [], 0) when there is none."""
    regs = [r for r in await turn.repo.registrations_of(turn.conv.channel, turn.conv.user_id)
            if r.status != CANCELLED]
    if not regs:
        return "", [], 0
    current = turn.reg.id if turn.reg else None
    lines, choices = [], []
    for reg in regs:
        lines.append(turn.t("status_line", ref=reg.ref, school=reg.school_name or turn.t("status_no_school"),
                            status=turn.t(f"status_name_{reg.status}"),
                            todo=_left_to_do(turn, reg, reg.id == current)))
        choices += _choices_for(turn, reg, reg.id == current)
    return turn.t("status_all", count=len(regs), lines="\n".join(lines)), choices, len(regs)


async def act(turn: Turn, payload: str) -> None:
    """A `reg:<action>:<ref>` button: move the conversation to that registration and do it."""
    action, _, ref = payload.removeprefix(PREFIX).partition(":")
    target = await turn.repo.get_registration_by_ref(ref) if action in USABLE else None
    if target is None or (target.channel, target.user_id) != (turn.conv.channel, turn.conv.user_id) \
            or target.status not in USABLE[action]:
        turn.say("reg_button_stale")
        if State(turn.conv.state) is not State.START:
            await steps.ask(turn)
        return
    await _follow(turn, target)
    if action == "edit" or (action == "photo" and target.confirmed_at is None):
        if target.confirmed_at is not None:  # the details reopen; confirming them again issues a new letter
            target.confirmed_at = None
            await turn.audit("reopened")
        await steps.go_to(turn, State.SUMMARY)
    elif action == "photo":
        await steps.go_to(turn, State.LETTER)
    elif target.status == DRAFT:
        await steps.advance(turn)
    else:  # a reopened letter: back to its summary
        await steps.go_to(turn, State.SUMMARY)


async def _follow(turn: Turn, target: Registration) -> None:
    """Make `target` the registration the conversation is on. The one it was on is kept as it
    is (its pending code, if any, is let go: a new one can be asked for when coming back)."""
    if turn.reg is not None and turn.reg.id == target.id:
        return
    if turn.reg is not None:
        left = reg_of(turn)
        await drop_pending_code(turn)
        if left.status == DRAFT or left.confirmed_at is None:
            turn.say("reg_kept", ref=left.ref)
    turn.conv.editing = turn.conv.confirm_cancel = False
    turn.reg, turn.conv.registration_id = target, target.id
