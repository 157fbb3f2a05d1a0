"""The registration as a state machine: one function per step, one table that orders them.

Reading guide: `State` names where a conversation can be; `STEPS` is the transition table
(step number, what to ask, how to take the answer, when the step counts as done, when it
is needed at all). Moving forward always goes to the first step in table order that is
needed and not done, which gives the plain sequence on a first pass, skips what the school
directory filled in, and brings an edit from the summary straight back to the summary.

`handlers/states.py` defines the states and what a step is made of; `handlers/answers.py`
holds the answers and questions that do not move the conversation themselves. The answers
that do (the code, the summary, the letter, an attachment) are here, beside the moving around.
"""

from __future__ import annotations

from functools import lru_cache

from handlers import letter, otp, review
from handlers import validation as v
from handlers.answers import (
    answer_affiliation,
    answer_consent,
    answer_institution,
    answer_officer_name,
    answer_phone,
    answer_province,
    answer_school_code,
    decision_status,
    discard,
    drop_pending_code,
    institution_question,
    letter_question,
    officer_name,
    otp_question,
    reg_of,
    shown_optional,
    stored_as,
    submitted_question,
    summary_card,
    summary_choices,
    summary_question,
)
from handlers.deadline import deadline_note
from handlers.messages import Choice, Outbound
from handlers.normalize import fold
from handlers.states import EDITABLE, HANDLED, Outcome, State, Step
from handlers.turn import Turn
from handlers.validation import Invalid
from templates import LANGUAGES, catalogue

__all__ = ["AWAITING", "EDITABLE", "STEPS", "SUGGESTION", "TOTAL_STEPS", "State", "advance", "ask",
           "decision_status", "discard", "drop_pending_code", "go_to", "is_button_label", "match_choice",
           "previous_state", "step_choices", "take_answer", "take_attachment"]

# --- answers that move the conversation ----------------------------------------------

async def answer_otp(turn: Turn, text: str, payload: str | None) -> Outcome:
    if payload == "otp:change":  # the code stays valid until another number gets one
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


async def answer_letter(turn: Turn, text: str, payload: str | None) -> Outcome:
    reg = reg_of(turn)
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
    target, found = sealed if sealed else (reg_of(turn), None)
    assert turn.inbound.attachment is not None
    received = await letter.receive(turn, target, found, inspection, turn.inbound.attachment.data)
    if isinstance(received, Invalid):
        turn.say(f"err_{received.reason}", choices=_choices_or_none(turn), **received.params)
        return True
    if received.signature == "blank":  # taken, but a signed one is wanted: the reviewer is warned too
        turn.say("letter_received_blank", ref=target.ref)
    else:
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

def _school_code_done(turn: Turn) -> bool:
    reg = reg_of(turn)
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
        done=lambda t: reg_of(t).affiliation is not None,
        choices=lambda t: [t.button("btn_obec", "aff:obec"), t.button("btn_lao", "aff:lao")],
        current=lambda t: reg_of(t).affiliation and t.t(f"affiliation_{reg_of(t).affiliation}"),
        free_text=False,
    ),
    State.SCHOOL_CODE: Step(
        3, "title_school", lambda t: t.t(f"ask_school_code_{reg_of(t).affiliation}"), answer_school_code,
        done=_school_code_done,
        current=lambda t: reg_of(t).school_code,
    ),
    State.SCHOOL_NAME: Step(
        3, "title_school", lambda t: t.t("ask_school_name"), stored_as(v.school_name, "school_name"),
        done=lambda t: reg_of(t).school_name is not None,
        needed=lambda t: not reg_of(t).school_from_directory,
        current=lambda t: reg_of(t).school_name,
    ),
    State.PROVINCE: Step(
        3, "title_school", lambda t: t.t("ask_province"), answer_province,
        done=lambda t: reg_of(t).province is not None,
        needed=lambda t: not reg_of(t).school_from_directory,
        current=lambda t: reg_of(t).province,
    ),
    State.INSTITUTION: Step(
        3, "title_school", institution_question, answer_institution,
        done=lambda t: letter.institution(reg_of(t)) is not None,
        needed=lambda t: reg_of(t).school_name is not None and letter.institution(reg_of(t)) is None,
        choices=lambda t: [t.button("btn_kind_school", "kind:school"), t.button("btn_kind_centre", "kind:centre")],
        free_text=False,
    ),
    State.OLD_TSL: Step(
        4, "title_old_tsl", lambda t: t.t("ask_old_tsl"), stored_as(v.tsl_username, "old_tsl_username", optional=True),
        done=lambda t: reg_of(t).old_tsl_username is not None,
        choices=lambda t: [t.button("btn_none", "none")],
        current=lambda t: shown_optional(t, reg_of(t).old_tsl_username),
    ),
    State.OLD_KIDDIARY: Step(
        5, "title_old_kiddiary", lambda t: t.t("ask_old_kiddiary"),
        stored_as(v.kiddiary_username, "old_kiddiary_username", optional=True),
        done=lambda t: reg_of(t).old_kiddiary_username is not None,
        choices=lambda t: [t.button("btn_none", "none")],
        current=lambda t: shown_optional(t, reg_of(t).old_kiddiary_username),
    ),
    State.OFFICER_NAME: Step(
        6, "title_officer_name", lambda t: t.t("ask_officer_name"), answer_officer_name,
        done=lambda t: reg_of(t).officer_first_name is not None,
        current=officer_name,
    ),
    State.NATIONAL_ID: Step(
        7, "title_national_id", lambda t: t.t("ask_national_id"), stored_as(v.national_id, "national_id"),
        done=lambda t: reg_of(t).national_id is not None,
        current=lambda t: reg_of(t).national_id and v.mask_national_id(reg_of(t).national_id or ""),
    ),
    State.PHONE: Step(
        8, "title_phone", lambda t: t.t("ask_phone"), answer_phone,
        done=lambda t: reg_of(t).phone is not None or t.challenge is not None,
        choices=lambda t: [Choice(t.t("btn_share_phone"), "share:phone", action="share_phone")],
        current=lambda t: reg_of(t).phone and v.local_phone(reg_of(t).phone or ""),
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
    note = await deadline_note(turn) if state in (State.SUMMARY, State.LETTER) else None
    if note:
        parts.append(note)
    card = None
    if state is State.SUMMARY:  # drawn as a card with an edit button a field where the channel can
        card = summary_card(turn, header, "\n\n".join(filter(None, [turn.t("card_summary_note"), note])))
    turn.replies.append(Outbound("\n\n".join(parts), tuple(step_choices(turn, state)), card=card))


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


# Typed words that mean a button beside its labels: the words the question itself uses.
SYNONYMS: dict[str, frozenset[str]] = {
    "consent:accept": frozenset({"ยินยอม", "ตกลง", "ok", "okay", "yes", "ใช่", "agree", "i agree", "accept"}),
    "consent:decline": frozenset({"ไม่ยินยอม", "ไม่ตกลง", "ไม่", "no", "decline"}),
}
SUGGESTION = "say:"  # a button that answers with its text, as if typed (a suggested spelling)


def match_choice(turn: Turn, text: str, choices: list[Choice]) -> str | None:
    """The payload of the choice whose label, in either language, is what the officer typed."""
    typed = fold(text)
    for choice in choices:
        aliases = {fold(label) for label in turn.labels(choice)} | {choice.payload.rpartition(":")[2]}
        if typed in aliases or typed in SYNONYMS.get(choice.payload, ()):
            return choice.payload
    return None


@lru_cache(maxsize=1)
def _button_labels() -> frozenset[str]:
    return frozenset(fold(entry[lang]) for key, entry in catalogue().items() if key.startswith("btn_")
                     for lang in LANGUAGES)


def is_button_label(text: str) -> bool:
    """Whether the text is the label of a button of any step (in either language): typed where
    a free answer is expected it was meant as the button, never as the answer."""
    return fold(text) in _button_labels()


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
        choices = step_choices(turn, state)
        if suggestion := outcome.params.get("suggestion"):  # "did you mean …?": one press to say yes
            choices.insert(0, Choice(str(suggestion), f"{SUGGESTION}{suggestion}"))
        turn.say(key, choices=choices, **outcome.params)
    elif outcome is None:
        await advance(turn)
