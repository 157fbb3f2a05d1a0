"""How each step takes its answer and words its question, where the answer does not move the
conversation itself (handlers/steps.py has the table, the moving around, and the answers that
move: the code, the summary, the letter).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from handlers import letter, otp, privacy, review
from handlers import validation as v
from handlers.messages import Card, Choice, Field
from handlers.states import EDITABLE, HANDLED, Outcome, State
from handlers.turn import Turn
from handlers.validation import Invalid
from storage.models import APPROVED, CANCELLED, DRAFT, REVOKED, Registration
from templates.letter import SCHOOL, signatory, with_kind

# --- consent -------------------------------------------------------------------------

async def answer_consent(turn: Turn, text: str, payload: str | None) -> Outcome:
    if payload != "consent:accept":
        withdrawn = turn.reg.id if turn.reg is not None else None
        if turn.reg is not None:  # came back to the notice and withdrew: nothing personal may stay
            await discard(turn, "consent_withdrawn")
        turn.conv.state = State.START
        kept = [r.ref for r in await turn.repo.registrations_of(turn.conv.channel, turn.conv.user_id)
                if r.status != CANCELLED and r.id != withdrawn]
        if kept:  # their other registrations keep their data: saying "nothing is kept" would be false
            turn.say("consent_declined_others", refs=", ".join(kept),
                     choices=[turn.button("btn_start", "cmd:start")])
        else:
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
    """Cancel the current registration and erase its personal data (PDPA: no longer needed):
    the fields, the signed-letter scans (files unlinked once the turn is committed), the codes
    of its phone. The school details and the audit trail stay, so staff can see what happened."""
    reg = turn.reg
    assert reg is not None
    reg.status = CANCELLED
    await drop_pending_code(turn)
    erased = await privacy.erase(turn.repo, reg, turn.now, turn.actor, kind)
    turn.erased_files += erased.files
    turn.reg = None
    turn.conv.state, turn.conv.editing, turn.conv.confirm_cancel = State.START, False, False


# --- school --------------------------------------------------------------------------

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
    if taken := await turn.repo.school_registrations(code, reg.id):  # the reviewers will see both
        approved = any(r.status == APPROVED for r in taken)
        turn.say("school_registered_approved" if approved else "school_registered_pending", code=code)
    if directory_entry is not None:
        reg.school_name, reg.province = directory_entry.name, directory_entry.province
        reg.school_from_directory = True
        turn.say("school_found", name=directory_entry.name, province=directory_entry.province)
    elif reg.school_from_directory:  # the name and province came with the old code: ask them
        reg.school_name = reg.province = None
        reg.school_from_directory = False
    reg.school_code = code
    return None


def stored_as(
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


async def answer_institution(turn: Turn, text: str, payload: str | None) -> Outcome:
    """School or child development centre: the name gets the word that says it (โรงเรียน…,
    ศูนย์พัฒนาเด็กเล็ก…), so that the letter names the right signatory and the summary shows it."""
    reg = reg_of(turn)
    assert reg.school_name and payload
    kind = payload.removeprefix("kind:")
    reg.school_name = with_kind(reg.school_name, kind)
    await turn.audit("institution", kind)
    return None


def institution_question(turn: Turn) -> str:
    return turn.t("ask_institution", name=reg_of(turn).school_name)


# --- old usernames -------------------------------------------------------------------

def shown_optional(turn: Turn, value: str | None) -> str | None:
    if value is None:
        return None
    return value or turn.t("value_none")


# --- officer -------------------------------------------------------------------------

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


# --- phone and OTP -------------------------------------------------------------------

async def answer_phone(turn: Turn, text: str, payload: str | None) -> Outcome:
    reg = turn.reg
    assert reg is not None
    pending = turn.challenge if turn.challenge and otp.still_valid(turn.challenge, turn.now) else None
    if pending and otp.looks_like_code(text):  # the code of the number just given, typed here
        problem = await otp.check_code(turn, text)
        if problem:
            return problem
        turn.say("otp_verified", phone=v.local_phone(reg.phone or ""))
        return None
    phone = v.thai_mobile(text)
    if isinstance(phone, Invalid):
        return phone
    if pending and phone == pending.phone:  # the same number again: its code still works
        turn.say("otp_code_kept", phone=v.mask_phone(phone), until=turn.when(pending.expires_at))
        return None
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


def otp_question(turn: Turn) -> str:
    phone = v.mask_phone(turn.challenge.phone) if turn.challenge else "-"
    return turn.t("ask_otp", phone=phone, minutes=_minutes(turn))


def _minutes(turn: Turn) -> int:
    return int(turn.settings.otp.ttl.total_seconds() // 60)


# --- summary -------------------------------------------------------------------------

def summary_question(turn: Turn) -> str:
    reg = turn.reg
    assert reg is not None
    return turn.t(
        "ask_summary",
        affiliation=turn.t(f"affiliation_{reg.affiliation}"),
        school_name=reg.school_name,
        school_code=reg.school_code,
        province=reg.province,
        old_tsl=shown_optional(turn, reg.old_tsl_username),
        old_kiddiary=shown_optional(turn, reg.old_kiddiary_username),
        officer_name=officer_name(turn),
        national_id=v.mask_national_id(reg.national_id or "0" * 13),
        phone=v.local_phone(reg.phone or ""),
    )


def summary_card(turn: Turn, title: str, note: str) -> Card:
    """The summary's fields, each with the payload of its edit button (when the summary offers
    one), for channels that draw it as a card."""
    reg = reg_of(turn)
    editable = {c.payload for c in summary_choices(turn)}
    values = {
        "affiliation": turn.t(f"affiliation_{reg.affiliation}"),
        "school_name": reg.school_name or "-",
        "school_code": reg.school_code or "-",
        "province": reg.province or "-",
        "old_tsl": shown_optional(turn, reg.old_tsl_username) or "-",
        "old_kiddiary": shown_optional(turn, reg.old_kiddiary_username) or "-",
        "officer_name": officer_name(turn) or "-",
        "national_id": v.mask_national_id(reg.national_id or "0" * 13),
        "phone": v.local_phone(reg.phone or ""),
    }
    fields = tuple(Field(turn.t(f"card_{name}"), value, f"edit:{name}" if f"edit:{name}" in editable else None)
                   for name, value in values.items())
    return Card(title, fields, note, edit_label=turn.t("card_edit"))


def summary_choices(turn: Turn) -> list[Choice]:
    edits = [turn.button(f"btn_edit_{state}", f"edit:{state}") for state in EDITABLE]
    if turn.reg and turn.reg.school_from_directory:  # name and province come with the code
        edits = [c for c in edits if c.payload not in ("edit:school_name", "edit:province")]
    return [turn.button("btn_confirm", "confirm"), *edits]


# --- the letter and the review -------------------------------------------------------

def letter_question(turn: Turn) -> str:
    reg = reg_of(turn)
    kind = letter.institution(reg) or SCHOOL
    position = signatory(kind, reg.school_name or "")
    return turn.t("ask_letter", signatory=turn.t(f"signatory_{kind}", position=position))


def submitted_question(turn: Turn) -> str:
    reg = reg_of(turn)
    if reg.status in (APPROVED, REVOKED):  # the review is over: say how it ended
        return decision_status(turn)
    return turn.t("ask_submitted", ref=reg.ref, phone=v.local_phone(reg.phone or ""))


def decision_status(turn: Turn) -> str:
    """Where an approved or rejected registration stands, for /status and the last step."""
    reg = reg_of(turn)
    if reg.status == APPROVED and reg.account_username:
        return turn.t("status_approved", ref=reg.ref, school=reg.school_name, username=reg.account_username)
    if reg.status == APPROVED:
        return turn.t("officer_approved_pending", ref=reg.ref)
    if reg.status == REVOKED:
        return turn.t("status_revoked", ref=reg.ref, school=reg.school_name)
    return turn.t("status_rejected", ref=reg.ref, school=reg.school_name,
                  reason=review.reason_text(reg.reject_reason or "", turn.conv.lang))


def reg_of(turn: Turn) -> Registration:
    assert turn.reg is not None
    return turn.reg
