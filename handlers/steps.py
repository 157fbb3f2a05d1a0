"""The registration as a state machine: one function per step, one table that orders them.

Reading guide: `State` names where a conversation can be; `STEPS` is the transition table
(step number, what to ask, how to take the answer, when the step counts as done, when it
is needed at all). Moving forward always goes to the first step in table order that is
needed and not done, which gives the plain sequence on a first pass, skips what the school
directory filled in, and brings an edit from the summary straight back to the summary.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from enum import StrEnum

from handlers import letter, otp, review
from handlers import validation as v
from handlers.deadline import deadline_note
from handlers.messages import Choice, Outbound
from handlers.normalize import fold
from handlers.turn import Turn
from handlers.validation import Invalid
from storage.models import APPROVED, CANCELLED, DRAFT, Registration


class State(StrEnum):
    START = "start"  # no registration under way; any message greets and asks for consent
    CONSENT = "consent"
    AFFILIATION = "affiliation"
    SCHOOL_CODE = "school_code"
    SCHOOL_NAME = "school_name"
    PROVINCE = "province"
    OLD_TSL = "old_tsl"
    OLD_KIDDIARY = "old_kiddiary"
    OFFICER_NAME = "officer_name"
    NATIONAL_ID = "national_id"
    PHONE = "phone"
    OTP = "otp"
    SUMMARY = "summary"
    LETTER = "letter"  # details confirmed, letter sent: waiting for the signed letter
    SUBMITTED = "submitted"  # signed letter received: waiting for the review


class Handled:
    """An answer function's way of saying: I replied and moved the conversation myself."""


HANDLED = Handled()
Outcome = Invalid | Handled | None  # None: the answer was taken; move forward


@dataclass(frozen=True)
class Step:
    number: int  # shown to the officer as ขั้นที่ n/N
    title: str  # template key
    question: Callable[[Turn], str]
    answer: Callable[[Turn, str, str | None], Awaitable[Outcome]]  # (turn, text, button payload)
    done: Callable[[Turn], bool]
    needed: Callable[[Turn], bool] = lambda turn: True
    choices: Callable[[Turn], list[Choice]] = lambda turn: []
    current: Callable[[Turn], str | None] = lambda turn: None  # the stored answer, shown when re-asked
    free_text: bool = True  # False: only one of `choices` is an answer


# --- consent ---------------------------------------------------------------------------

async def answer_consent(turn: Turn, text: str, payload: str | None) -> Outcome:
    if payload != "consent:accept":
        if turn.reg is not None:  # came back to the notice and withdrew: nothing personal may stay
            await discard(turn, "consent_withdrawn")
        turn.conv.state = State.START
        turn.say("consent_declined", choices=[turn.button("btn_start", "cmd:start")])
        return HANDLED
    turn.conv.consent_at = turn.now
    if turn.reg is None:
        turn.reg = await turn.repo.create_registration(turn.conv.channel, turn.conv.user_id, DRAFT, turn.now)
        turn.conv.registration_id = turn.reg.id
        await turn.audit("created")
    await turn.audit("consent", "privacy notice accepted")
    return None


async def discard(turn: Turn, kind: str) -> None:
    """Cancel the current registration and erase its personal data (PDPA: no longer needed).
    The school details and the audit trail stay, so staff can see what happened."""
    reg = turn.reg
    assert reg is not None
    reg.status = CANCELLED
    reg.officer_first_name = reg.officer_last_name = reg.national_id = reg.phone = None
    reg.phone_verified_at = None
    await drop_pending_code(turn)
    await turn.audit(kind, "personal data erased")
    turn.reg = None
    turn.conv.state, turn.conv.editing, turn.conv.confirm_cancel = State.START, False, False


# --- school ----------------------------------------------------------------------------

async def answer_affiliation(turn: Turn, text: str, payload: str | None) -> Outcome:
    assert turn.reg is not None and payload
    reg = turn.reg
    affiliation = payload.removeprefix("aff:")
    if reg.affiliation and affiliation != reg.affiliation and reg.school_from_directory:
        # The directory knows this code under the other affiliation: the code must be given again.
        reg.school_code = reg.school_name = reg.province = None
        reg.school_from_directory = False
    reg.affiliation = affiliation
    return None


async def answer_school_code(turn: Turn, text: str, payload: str | None) -> Outcome:
    reg = turn.reg
    assert reg is not None and reg.affiliation
    code = v.school_code(text, reg.affiliation)
    if isinstance(code, Invalid):
        return code
    directory_entry = await turn.repo.find_school(code)
    if directory_entry is None and await turn.repo.has_school_directory():
        return Invalid("code_not_in_directory", {"code": code})
    if directory_entry is not None and directory_entry.affiliation != reg.affiliation:
        return Invalid("code_other_affiliation", {"code": code, "name": directory_entry.name})
    if directory_entry is not None:
        reg.school_name, reg.province = directory_entry.name, directory_entry.province
        reg.school_from_directory = True
        turn.say("school_found", name=directory_entry.name, province=directory_entry.province)
    elif reg.school_from_directory:  # the name and province came with the old code: ask them
        reg.school_name = reg.province = None
        reg.school_from_directory = False
    reg.school_code = code
    return None


def _stored_as(
    validate: Callable[[str], str | Invalid], field: str, optional: bool = False,
) -> Callable[..., Awaitable[Outcome]]:
    """An answer function for a field that needs only its validator: valid text is stored.
    For an optional one (the old usernames), "none" stores ""."""

    async def answer(turn: Turn, text: str, payload: str | None) -> Outcome:
        if optional and (payload == "none" or v.is_none_answer(text)):
            value: str | Invalid = ""
        else:
            value = validate(text)
        if isinstance(value, Invalid):
            return value
        setattr(turn.reg, field, value)
        return None

    return answer


async def answer_province(turn: Turn, text: str, payload: str | None) -> Outcome:
    assert turn.reg is not None
    province = v.province(text)
    if isinstance(province, Invalid):
        return Invalid("province_suggest", province.params) if province.params["suggestion"] else province
    turn.reg.province = province
    return None


# --- old usernames ---------------------------------------------------------------------

def _shown_optional(turn: Turn, value: str | None) -> str | None:
    if value is None:
        return None
    return value or turn.t("value_none")


# --- officer ---------------------------------------------------------------------------

async def answer_officer_name(turn: Turn, text: str, payload: str | None) -> Outcome:
    reg = turn.reg
    assert reg is not None
    name = v.officer_name(text)
    if isinstance(name, Invalid):
        return name
    reg.officer_title, reg.officer_first_name, reg.officer_last_name = name.title, name.first_name, name.last_name
    return None


def officer_name(turn: Turn) -> str | None:
    reg = turn.reg
    if reg is None or not reg.officer_first_name:
        return None
    return letter.full_name(reg)


# --- phone and OTP ---------------------------------------------------------------------

async def answer_phone(turn: Turn, text: str, payload: str | None) -> Outcome:
    reg = turn.reg
    assert reg is not None
    phone = v.thai_mobile(text)
    if isinstance(phone, Invalid):
        return phone
    if phone == reg.phone:  # already verified: a code would prove nothing new
        await drop_pending_code(turn)
        turn.say("phone_already_verified", phone=v.local_phone(phone))
        return None
    # The verified phone (if any) stays until the new one is verified too.
    return await otp.request_code(turn, phone)


async def drop_pending_code(turn: Turn) -> None:
    if turn.challenge is not None:
        await turn.repo.otp.close(turn.challenge.id, turn.now)
        turn.challenge = None


async def answer_otp(turn: Turn, text: str, payload: str | None) -> Outcome:
    if payload == "otp:change":
        await drop_pending_code(turn)
        await go_to(turn, State.PHONE)
        return HANDLED
    if payload == "otp:resend":
        phone = turn.challenge.phone if turn.challenge else None
        problem = await otp.request_code(turn, phone) if phone else Invalid("otp_no_code")
        if problem:
            return problem
        await ask(turn)
        return HANDLED
    problem = await otp.check_code(turn, text)
    if problem:
        return problem
    assert turn.reg is not None and turn.reg.phone
    turn.say("otp_verified", phone=v.local_phone(turn.reg.phone))
    return None


def otp_question(turn: Turn) -> str:
    phone = v.mask_phone(turn.challenge.phone) if turn.challenge else "-"
    return turn.t("ask_otp", phone=phone, minutes=_minutes(turn))


def _minutes(turn: Turn) -> int:
    return int(turn.settings.otp.ttl.total_seconds() // 60)


# --- summary ---------------------------------------------------------------------------

EDITABLE = (
    State.AFFILIATION, State.SCHOOL_CODE, State.SCHOOL_NAME, State.PROVINCE, State.OLD_TSL,
    State.OLD_KIDDIARY, State.OFFICER_NAME, State.NATIONAL_ID, State.PHONE,
)


def summary_question(turn: Turn) -> str:
    reg = turn.reg
    assert reg is not None
    return turn.t(
        "ask_summary",
        affiliation=turn.t(f"affiliation_{reg.affiliation}"),
        school_name=reg.school_name,
        school_code=reg.school_code,
        province=reg.province,
        old_tsl=_shown_optional(turn, reg.old_tsl_username),
        old_kiddiary=_shown_optional(turn, reg.old_kiddiary_username),
        officer_name=officer_name(turn),
        national_id=v.mask_national_id(reg.national_id or "0" * 13),
        phone=v.local_phone(reg.phone or ""),
    )


def summary_choices(turn: Turn) -> list[Choice]:
    edits = [turn.button(f"btn_edit_{state}", f"edit:{state}") for state in EDITABLE]
    if turn.reg and turn.reg.school_from_directory:  # name and province come with the code
        edits = [c for c in edits if c.payload not in ("edit:school_name", "edit:province")]
    return [turn.button("btn_confirm", "confirm"), *edits]


async def answer_summary(turn: Turn, text: str, payload: str | None) -> Outcome:
    reg = turn.reg
    assert reg is not None and payload
    if payload.startswith("edit:"):
        turn.conv.editing = True
        await go_to(turn, State(payload.removeprefix("edit:")))
        return HANDLED
    missing = [s for s in ORDER[:-1] if STEPS[s].needed(turn) and not STEPS[s].done(turn)]
    if missing:  # cannot happen through the buttons; guards against a stale confirm
        await go_to(turn, missing[0])
        return HANDLED
    reg.confirmed_at = turn.now
    await turn.audit("confirmed")
    turn.conv.editing = False
    document = await letter.issue(turn, reg)
    turn.say("confirmed", ref=reg.ref)
    await go_to(turn, State.LETTER)
    turn.replies.append(Outbound(turn.t("letter_caption", ref=reg.ref, version=reg.letter_version),
                                 tuple(step_choices(turn, State.LETTER)), document=document))
    return HANDLED


# --- the letter and the signed letter --------------------------------------------------

def letter_question(turn: Turn) -> str:
    reg = _reg(turn)
    return turn.t("ask_letter", signatory=turn.t(f"signatory_{reg.affiliation}"))


async def answer_letter(turn: Turn, text: str, payload: str | None) -> Outcome:
    reg = _reg(turn)
    if payload == "letter:again":
        document = letter.letter_document(reg, turn.settings.seal_key, turn.t("btn_open_pdf"))
        turn.replies.append(Outbound(turn.t("letter_caption", ref=reg.ref, version=reg.letter_version),
                                     tuple(step_choices(turn, State.LETTER)), document=document))
        return HANDLED
    if payload == "letter:edit":  # the details reopen; confirming them again issues a new letter
        reg.confirmed_at = None
        await turn.audit("reopened")
        await go_to(turn, State.SUMMARY)
        return HANDLED
    return Invalid("expect_photo")


def submitted_question(turn: Turn) -> str:
    reg = _reg(turn)
    if reg.status == APPROVED:  # the review is over: say how it ended
        return decision_status(turn)
    return turn.t("ask_submitted", ref=reg.ref, phone=v.local_phone(reg.phone or ""))


def decision_status(turn: Turn) -> str:
    """Where an approved or rejected registration stands, for /status and the last step."""
    reg = _reg(turn)
    if reg.status == APPROVED and reg.account_username:
        return turn.t("status_approved", ref=reg.ref, school=reg.school_name, username=reg.account_username)
    if reg.status == APPROVED:
        return turn.t("officer_approved_pending", ref=reg.ref)
    return turn.t("status_rejected", ref=reg.ref, school=reg.school_name,
                  reason=review.reason_text(reg.reject_reason or "", turn.conv.lang))


async def answer_submitted(turn: Turn, text: str, payload: str | None) -> Outcome:
    await ask(turn)
    return HANDLED


async def take_attachment(turn: Turn) -> bool:
    """A photo or file: the signed letter of one of this officer's registrations, if it is one.
    False when it is nothing the conversation can use here (the caller says what is expected)."""
    state, inspection = State(turn.conv.state), turn.inspection
    expecting = state in (State.LETTER, State.SUBMITTED)
    if inspection is None or isinstance(inspection, Invalid):
        if expecting and isinstance(inspection, Invalid):
            turn.say(f"err_{inspection.reason}", choices=step_choices(turn, state), **inspection.params)
            return True
        return False
    sealed = await letter.sealed_for(turn, inspection)
    if isinstance(sealed, Invalid):
        turn.say(f"err_{sealed.reason}", choices=_choices_or_none(turn), **sealed.params)
        return True
    if sealed is None and not expecting:
        return False
    target, found = sealed if sealed else (_reg(turn), None)
    assert turn.inbound.attachment is not None
    received = await letter.receive(turn, target, found, inspection, turn.inbound.attachment.data)
    if isinstance(received, Invalid):
        turn.say(f"err_{received.reason}", choices=_choices_or_none(turn), **received.params)
        return True
    turn.say(f"letter_received_{received.qr_status}", ref=target.ref)
    await review.announce(turn, target, received)
    if target is turn.reg:
        await go_to(turn, State.SUBMITTED)
    elif state in STEPS:  # a letter for another school, sent in the middle of this one
        await ask(turn)
    return True


def _choices_or_none(turn: Turn) -> list[Choice]:
    state = State(turn.conv.state)
    return step_choices(turn, state) if state in STEPS else []


# --- the transition table --------------------------------------------------------------

def _reg(turn: Turn) -> Registration:
    assert turn.reg is not None
    return turn.reg


def _school_code_done(turn: Turn) -> bool:
    reg = _reg(turn)
    return bool(reg.school_code and reg.affiliation) and not isinstance(
        v.school_code(reg.school_code or "", reg.affiliation or "obec"), Invalid
    )


STEPS: dict[State, Step] = {
    State.CONSENT: Step(
        1, "title_consent", lambda t: t.t("ask_consent"), answer_consent,
        done=lambda t: t.reg is not None and t.conv.consent_at is not None,
        choices=lambda t: [t.button("btn_accept", "consent:accept"), t.button("btn_decline", "consent:decline")],
        free_text=False,
    ),
    State.AFFILIATION: Step(
        2, "title_affiliation", lambda t: t.t("ask_affiliation"), answer_affiliation,
        done=lambda t: _reg(t).affiliation is not None,
        choices=lambda t: [t.button("btn_obec", "aff:obec"), t.button("btn_lao", "aff:lao")],
        current=lambda t: _reg(t).affiliation and t.t(f"affiliation_{_reg(t).affiliation}"),
        free_text=False,
    ),
    State.SCHOOL_CODE: Step(
        3, "title_school", lambda t: t.t(f"ask_school_code_{_reg(t).affiliation}"), answer_school_code,
        done=_school_code_done,
        current=lambda t: _reg(t).school_code,
    ),
    State.SCHOOL_NAME: Step(
        3, "title_school", lambda t: t.t("ask_school_name"), _stored_as(v.school_name, "school_name"),
        done=lambda t: _reg(t).school_name is not None,
        needed=lambda t: not _reg(t).school_from_directory,
        current=lambda t: _reg(t).school_name,
    ),
    State.PROVINCE: Step(
        3, "title_school", lambda t: t.t("ask_province"), answer_province,
        done=lambda t: _reg(t).province is not None,
        needed=lambda t: not _reg(t).school_from_directory,
        current=lambda t: _reg(t).province,
    ),
    State.OLD_TSL: Step(
        4, "title_old_tsl", lambda t: t.t("ask_old_tsl"), _stored_as(v.tsl_username, "old_tsl_username", optional=True),
        done=lambda t: _reg(t).old_tsl_username is not None,
        choices=lambda t: [t.button("btn_none", "none")],
        current=lambda t: _shown_optional(t, _reg(t).old_tsl_username),
    ),
    State.OLD_KIDDIARY: Step(
        5, "title_old_kiddiary", lambda t: t.t("ask_old_kiddiary"),
        _stored_as(v.kiddiary_username, "old_kiddiary_username", optional=True),
        done=lambda t: _reg(t).old_kiddiary_username is not None,
        choices=lambda t: [t.button("btn_none", "none")],
        current=lambda t: _shown_optional(t, _reg(t).old_kiddiary_username),
    ),
    State.OFFICER_NAME: Step(
        6, "title_officer_name", lambda t: t.t("ask_officer_name"), answer_officer_name,
        done=lambda t: _reg(t).officer_first_name is not None,
        current=officer_name,
    ),
    State.NATIONAL_ID: Step(
        7, "title_national_id", lambda t: t.t("ask_national_id"), _stored_as(v.national_id, "national_id"),
        done=lambda t: _reg(t).national_id is not None,
        current=lambda t: _reg(t).national_id and v.mask_national_id(_reg(t).national_id or ""),
    ),
    State.PHONE: Step(
        8, "title_phone", lambda t: t.t("ask_phone"), answer_phone,
        done=lambda t: _reg(t).phone is not None or t.challenge is not None,
        choices=lambda t: [Choice(t.t("btn_share_phone"), "share:phone", action="share_phone")],
        current=lambda t: _reg(t).phone and v.local_phone(_reg(t).phone or ""),
    ),
    State.OTP: Step(
        9, "title_otp", otp_question, answer_otp,
        done=lambda t: t.challenge is None,
        needed=lambda t: t.challenge is not None,
        choices=lambda t: [t.button("btn_resend", "otp:resend"), t.button("btn_change_phone", "otp:change")],
    ),
    State.SUMMARY: Step(
        10, "title_summary", summary_question, answer_summary,
        done=lambda t: False,
        choices=summary_choices,
        free_text=False,
    ),
    # After "confirm": not questions to move through, but where the registration waits.
    State.LETTER: Step(
        11, "title_letter", letter_question, answer_letter,
        done=lambda t: False,
        choices=lambda t: [
            Choice(t.t("btn_camera"), "camera", action="camera"),
            Choice(t.t("btn_camera_roll"), "camera_roll", action="camera_roll"),
            t.button("btn_letter_again", "letter:again"), t.button("btn_letter_edit", "letter:edit"),
        ],
    ),
    State.SUBMITTED: Step(
        12, "title_submitted", submitted_question, answer_submitted,
        done=lambda t: False,
        choices=lambda t: [
            Choice(t.t("btn_camera"), "camera", action="camera"), t.button("btn_new", "cmd:new"),
        ],
    ),
}
# The questions, in the order they are asked; moving forward walks this list.
ORDER: list[State] = list(STEPS)[: list(STEPS).index(State.SUMMARY) + 1]
AWAITING = (State.LETTER, State.SUBMITTED)
TOTAL_STEPS = max(step.number for step in STEPS.values())


# --- moving around ---------------------------------------------------------------------

def step_choices(turn: Turn, state: State) -> list[Choice]:
    """The buttons of a question: its own, "keep" when it has an answer, and "back"."""
    step = STEPS[state]
    choices = list(step.choices(turn))
    if turn.reg is not None and step.current(turn) and step.done(turn):
        choices.append(turn.button("btn_keep", "keep"))
    if state not in (State.CONSENT, State.LETTER, State.SUBMITTED):  # the letter has its own "edit"
        choices.append(turn.button("btn_back", "cmd:back"))
    return choices


async def ask(turn: Turn) -> None:
    """Ask the question of the current state, with where the officer is and what they said before."""
    state = State(turn.conv.state)
    if state is State.START:  # no question: offer to begin
        turn.say("help_start", choices=[turn.button("btn_start", "cmd:start")])
        return
    step = STEPS[state]
    header = turn.t("progress", n=step.number, total=TOTAL_STEPS, title=turn.t(step.title))
    parts = [header, step.question(turn)]
    current = step.current(turn) if turn.reg is not None and step.done(turn) else None
    if current and state is not State.SUMMARY:
        parts.append(turn.t("current_answer", value=current))
    if state in (State.SUMMARY, State.LETTER) and (note := await deadline_note(turn)):
        parts.append(note)
    turn.replies.append(Outbound("\n\n".join(parts), tuple(step_choices(turn, state))))


async def go_to(turn: Turn, state: State) -> None:
    turn.conv.state = state
    await ask(turn)


def next_state(turn: Turn) -> State:
    """The first step, in table order, that is needed and not done yet."""
    for state in ORDER:
        step = STEPS[state]
        if step.needed(turn) and not step.done(turn):
            return state
    return State.SUMMARY


async def advance(turn: Turn) -> None:
    state = next_state(turn)
    if state is State.SUMMARY:
        turn.conv.editing = False
    await go_to(turn, state)


def previous_state(turn: Turn, state: State) -> State | None:
    earlier = ORDER[: ORDER.index(state)]
    needed = [s for s in earlier if STEPS[s].needed(turn)]
    return needed[-1] if needed else None


def match_choice(turn: Turn, text: str, choices: list[Choice]) -> str | None:
    """The payload of the choice whose label, in either language, is what the officer typed."""
    typed = fold(text)
    for choice in choices:
        aliases = {fold(label) for label in turn.labels(choice)} | {choice.payload.rpartition(":")[2]}
        if typed in aliases:
            return choice.payload
    return None


async def take_answer(turn: Turn, text: str, payload: str | None) -> None:
    """Give the answer to the current step: move on, or say what was wrong and ask again."""
    state = State(turn.conv.state)
    step = STEPS[state]
    if payload == "keep" and step.done(turn):
        if state is State.PHONE and turn.reg and turn.reg.phone:  # keep the verified number, not a pending one
            await drop_pending_code(turn)
        await advance(turn)
        return
    if payload is None and not step.free_text:
        turn.say("expect_choice", choices=step_choices(turn, state))
        return
    before = len(turn.replies)
    outcome = await step.answer(turn, text, payload)
    if isinstance(outcome, Invalid):
        del turn.replies[before:]  # nothing half-said
        key = f"err_{outcome.reason}"
        turn.say(key, choices=step_choices(turn, state), **outcome.params)
    elif outcome is None:
        await advance(turn)
