"""Steps 11 and 12 of the registration: issuing the appointment letter, and taking the signed one back.

The letter is made on demand from the stored registration (never kept on disk), after the
turn is committed and off the event loop (the dispatcher renders `Document.render`). Each
issue bumps the letter's version, which its QR seal carries, so a photo of an outdated
letter is recognised. A signed letter coming back is matched to its registration by that
seal; one without a readable seal is accepted and flagged for the reviewer. The letter file
itself sent back unsigned is refused; a photo whose signature boxes look empty is taken (the
check can be wrong) but the officer is asked for a new one and the reviewer is warned
(handlers/letter_check.py).
"""

from __future__ import annotations

import asyncio
import functools

from handlers.attachments import Inspection
from handlers.letter_seal import Seal, seal, unseal
from handlers.messages import Document
from handlers.turn import BANGKOK, Turn
from handlers.validation import Invalid, OfficerName
from storage.models import LETTER_ISSUED, REJECTED, SUBMITTED, Registration, SignedLetter
from templates.letter import SCHOOL, LetterData, named_kind, render_letter

# A signed letter is taken for a registration in these statuses (a new photo while waiting
# for review replaces the one sent before).
AWAITING_LETTER = (LETTER_ISSUED, REJECTED, SUBMITTED)


def full_name(reg: Registration) -> str:
    """The officer's name as printed and shown: นางสาวสมศรี ใจดี, Mr. John Smith."""
    return str(OfficerName(reg.officer_title or "", reg.officer_first_name or "", reg.officer_last_name or ""))


def institution(reg: Registration) -> str | None:
    """Who signs: SCHOOL (its director) or CENTRE (its head). OBEC runs schools only; a
    local-government institution is what its name says, None when the name does not say."""
    if reg.affiliation == "obec":
        return SCHOOL
    return named_kind(reg.school_name or "")


def letter_data(reg: Registration, key: bytes) -> LetterData:
    assert reg.letter_issued_at is not None and reg.national_id and reg.phone and reg.affiliation
    return LetterData(
        ref=reg.ref,
        version=reg.letter_version,
        affiliation=reg.affiliation,
        school_code=reg.school_code or "",
        school_name=reg.school_name or "",
        province=reg.province or "",
        officer_name=full_name(reg),
        national_id=reg.national_id,
        phone=reg.phone,
        old_tsl_username=reg.old_tsl_username or "",
        old_kiddiary_username=reg.old_kiddiary_username or "",
        issued_on=reg.letter_issued_at.astimezone(BANGKOK).date(),
        seal=seal(key, reg.ref, reg.letter_version),
        institution=institution(reg) or SCHOOL,
    )


def letter_document(reg: Registration, key: bytes, link_label: str = "") -> Document:
    """The letter as a document to send; its bytes are rendered after the turn is committed."""
    data = letter_data(reg, key)
    return Document(
        filename=f"KidDiary-{reg.ref}-{reg.letter_version}.pdf",
        render=functools.partial(render_letter, data),
        link=("letter", reg.id, reg.letter_version),
        link_label=link_label,
    )


async def issue(turn: Turn, reg: Registration) -> Document:
    """A new version of the letter for the confirmed details."""
    reg.letter_version += 1
    reg.letter_issued_at = turn.now
    if reg.status != SUBMITTED:
        reg.status = LETTER_ISSUED
    await turn.repo.add_audit(reg.id, turn.now, turn.actor, "letter_issued", f"version {reg.letter_version}")
    return letter_document(reg, turn.settings.seal_key, turn.t("btn_open_pdf"))


async def sealed_for(turn: Turn, inspection: Inspection) -> tuple[Registration, Seal] | Invalid | None:
    """The registration a returned letter's QR seal names, if it is one of this officer's
    awaiting a signed letter; Invalid for an altered seal or someone else's; None: no seal."""
    seals = [unseal(turn.settings.seal_key, text, turn.settings.old_seal_keys) for text in inspection.qr_texts]
    valid = [s for s in seals if isinstance(s, Seal)]
    if not valid:
        return next((s for s in seals if isinstance(s, Invalid)), None)
    found = valid[0]
    reg = turn.reg if turn.reg is not None and turn.reg.ref == found.ref else (
        await turn.repo.get_registration_by_ref(found.ref)
    )
    owner = (turn.conv.channel, turn.conv.user_id)
    if reg is None or (reg.channel, reg.user_id) != owner or reg.status not in AWAITING_LETTER:
        return Invalid("letter_other_registration", {"ref": found.ref})
    return reg, found


async def receive(
    turn: Turn, reg: Registration, found: Seal | None, inspection: Inspection, data: bytes
) -> SignedLetter | Invalid:
    """Store a returned letter for `reg` and mark the registration submitted.

    The review (step 13) starts from the SignedLetter returned here."""
    if reg.status not in AWAITING_LETTER:  # decided: a photo now changes nothing
        return Invalid("letter_not_expected", {"ref": reg.ref})
    if reg.confirmed_at is None:  # details reopened for editing: the letter they had is no longer it
        return Invalid("letter_details_open", {"ref": reg.ref})
    if found is not None and found.version != reg.letter_version:
        return Invalid("letter_outdated", {"version": reg.letter_version})
    if inspection.same_as_issued:
        return Invalid("letter_unsigned_copy")
    if await turn.repo.was_rejected(inspection.sha256):
        return Invalid("letter_already_rejected")
    letters = await turn.repo.signed_letters_of(reg.id)
    if reg.status == SUBMITTED and letters and letters[-1].sha256 == inspection.sha256:
        return Invalid("letter_same_photo", {"ref": reg.ref})  # sent twice: nothing new to review
    assert turn.files is not None
    path = await asyncio.to_thread(turn.files.put, data)
    qr_status = "matched" if found else "unverified"
    letter = await turn.repo.add_signed_letter(
        reg.id, inspection.sha256, inspection.kind, inspection.mime_type, inspection.size, qr_status, path, turn.now,
        inspection.signature,
    )
    reg.status, reg.submitted_at = SUBMITTED, turn.now
    await turn.repo.add_audit(reg.id, turn.now, turn.actor, "submitted",
                              f"signed letter {letter.number}, QR {qr_status}, signature {letter.signature}")
    if reg is not turn.reg:
        await turn.repo.save_registration(reg, turn.now)
    return letter
