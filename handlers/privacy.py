"""What the privacy notice promises: seeing and erasing one's data, and keeping it no longer than said.

Officers: `/mydata` shows everything stored about them; `/delete_my_data` says what will go and
what stays, and erases after a button press or the typed word (ลบข้อมูล / DELETE) within
`CONFIRM_WITHIN`. Admins, in a private chat: `/data_show REF` and `/data_erase REF` (the same
erasure, confirmed the same way). Every look and every erasure is audited.

What an erasure removes: the officer's name, national ID and phone, the signed-letter scans
(rows here, files after the commit), the one-time-code rows and wrong-code counts of the phone.
The school details, old usernames and the audit trail stay: they say what happened and name
no person. An *approved* registration on request keeps the officer's name and the signed
appointment letter (and the phone while the account is still being made): they are the record
of whom the school appointed to hold its account, which the platform keeps for at most a year
after the account is issued (the notice); the retention job erases them then.

The retention job (`retention_pass`, run by bot/retention.py) erases approvals a year old,
drafts untouched for the configured number of days, and one-time-code rows past every limit.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from handlers import validation as v
from handlers.letter import full_name
from handlers.messages import Address, Choice
from handlers.normalize import fold
from handlers.turn import Turn
from storage import Registration, Repository
from storage.erasure import Erased
from storage.models import APPROVED, CANCELLED
from templates import has

CONFIRM_WITHIN = timedelta(minutes=10)  # a request to erase holds this long
ACCOUNT_RETENTION = timedelta(days=365)  # the notice: at most one year after the account is issued
CODE_WINDOW = timedelta(days=1)  # the longest sending limit on one-time codes (per day)
CONFIRM_WORDS = frozenset({"ลบข้อมูล", "delete"})
REQUESTED, DONE, KEPT = "erase_requested", "erase_done", "erase_kept"
VIEWED = "data_viewed"  # every look at someone's data: /show, /pending, /data_show, /mydata
COMMANDS = {"/data_show": "show", "/data_erase": "erase"}
STAFF_KINDS = ("approved", "rejected", "data_erased_by_admin")


# --- erasing -------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """What an erasure of one registration keeps (nothing, or the appointment record)."""

    keep_record: bool  # the name and the signed letter: an approved registration's appointment
    keep_phone: bool  # the account is still being made: its password goes by SMS to this phone


def plan(reg: Registration) -> Plan:
    if reg.status != APPROVED:
        return Plan(False, False)
    return Plan(True, reg.provision_status != "done")


async def erase(repo: Repository, reg: Registration, now: datetime, actor: str, kind: str,
                keep: Plan | None = None) -> Erased:
    """Erase the personal data of `reg` (mutated and saved), inside the caller's transaction.
    `keep` None: everything personal goes. The files to unlink after the commit are returned."""
    keep = keep or Plan(False, False)
    phone = reg.phone
    reg.national_id = None
    if not keep.keep_phone:
        reg.phone, reg.phone_verified_at = None, None
    if not keep.keep_record:
        reg.officer_title = reg.officer_first_name = reg.officer_last_name = None
        reg.account_password_hash = None
        if reg.status != APPROVED:
            reg.status = CANCELLED
    await repo.save_registration(reg, now)
    erased = Erased()
    if not keep.keep_record:
        erased.add(await repo.erasure.erase_letters(reg.id))
    if not keep.keep_phone:
        erased.add(await repo.erasure.erase_codes([phone] if phone else [], reg.channel, reg.user_id, now,
                                                  now - CODE_WINDOW))
    if not keep.keep_record:
        await repo.erasure.mark_erased(reg.id, now)
    await repo.add_audit(reg.id, now, actor, kind, describe(erased, keep))
    return erased


def describe(erased: Erased, keep: Plan) -> str:
    """The audit trail's account of an erasure (plain English, like every audit detail)."""
    gone = ["national ID"] + ([] if keep.keep_phone else ["phone"]) + ([] if keep.keep_record else ["name"])
    kept = (["name", "signed letter"] if keep.keep_record else []) + (["phone"] if keep.keep_phone else [])
    return (f"personal data erased: {', '.join(gone)}; {erased.letters} signed letter(s), "
            f"{len(erased.files)} file(s), {erased.otp_rows} one-time code(s), {erased.phone_guards} phone lock(s)"
            + (f"; kept: {', '.join(kept)}" if kept else ""))


async def retention_pass(
    repo: Repository, now: datetime, draft_days: int, batch: int = 200,
) -> tuple[int, Erased]:
    """One batch of the retention job, in the caller's transaction: approvals older than a year
    anonymised, drafts untouched for `draft_days` cancelled and erased, cancelled ones left
    with data erased, old one-time codes forgotten. (registrations erased, what went): call
    again while the first is not zero."""
    erased = Erased()
    ids = await repo.erasure.due(now - timedelta(days=draft_days), now - ACCOUNT_RETENTION, batch)
    for registration_id in ids:
        reg = await repo.get_registration(registration_id)
        assert reg is not None
        kind = {APPROVED: "retention_erased", CANCELLED: "erased"}.get(reg.status, "expired")
        erased.add(await erase(repo, reg, now, "system", kind))
    erased.otp_rows += await repo.erasure.forget_codes(now - CODE_WINDOW, now)
    return len(ids), erased


# --- the officer: /mydata, /delete_my_data -------------------------------------------


async def my_data(turn: Turn, argument: str = "") -> None:
    regs = await turn.repo.registrations_of(turn.conv.channel, turn.conv.user_id)
    await turn.repo.audit_log.add(turn.now, turn.actor, VIEWED, {"what": "own data", "refs": [r.ref for r in regs]})
    codes = await turn.repo.erasure.codes_of(turn.conv.channel, turn.conv.user_id)
    turn.say("privacy_mydata", count=len(regs), language=turn.conv.lang, codes=codes,
             consent=turn.when(turn.conv.consent_at) if turn.conv.consent_at else "-")
    for reg in regs:
        turn.say("privacy_mydata_item", text=await render(turn, reg, staff=False))
    if regs:
        turn.say("privacy_mydata_end")


async def render(turn: Turn, reg: Registration, staff: bool) -> str:
    """Everything stored about one registration. The national ID is masked: a chat message stays
    on the phone and on the platform's servers (the summary masks it for the same reason); the
    full number is kept encrypted and goes only into the letter and the export."""
    none = turn.t("value_none")
    letters = await turn.repo.signed_letters_of(reg.id)
    letter_lines = [turn.t("privacy_letter_line", when=turn.when(x.received_at), kb=max(1, x.size // 1024),
                           kind=turn.t("kind_file" if x.kind == "pdf" else "kind_photo"),
                           qr=turn.t(f"review_qr_{x.qr_status}"),
                           rejected=turn.t("privacy_letter_rejected") if x.rejected_at else "") for x in letters]
    trail = await turn.repo.audit_trail(reg.id)
    consent = [e.at for e in trail if e.kind == "consent"]
    events = [turn.t("privacy_event_line", when=turn.when(e.at), what=_event_name(turn, e.kind),
                     who=e.actor if staff else _who(turn, reg, e.actor)) for e in trail]
    erased_at = await turn.repo.erasure.erased_at(reg.id)
    views, last_view = await turn.repo.audit_log.views(reg.ref, VIEWED, ("/show", "/data_show"),
                                                           str(Address(reg.channel, reg.user_id)))
    return turn.t(
        "privacy_registration", ref=reg.ref,
        status=" · ".join([turn.t(f"status_name_{reg.status}")]
                          + ([turn.t("privacy_erased_at", when=turn.when(erased_at))] if erased_at else [])),
        school=reg.school_name or "-", code=reg.school_code or "-", province=reg.province or "-",
        affiliation=turn.t(f"affiliation_{reg.affiliation}") if reg.affiliation else "-",
        old_tsl=reg.old_tsl_username or none, old_kiddiary=reg.old_kiddiary_username or none,
        officer=full_name(reg) if reg.officer_first_name else "-",
        national_id=v.mask_national_id(reg.national_id) if reg.national_id else "-",
        phone=v.local_phone(reg.phone) if reg.phone else "-",
        verified=turn.when(reg.phone_verified_at) if reg.phone_verified_at else "-",
        consent=turn.when(consent[-1]) if consent else "-",
        account=reg.account_username or "-",
        letters="\n".join(letter_lines) or "-",
        events="\n".join(events) or "-",
        views=turn.t("privacy_views", count=views, when=turn.when(last_view)) if last_view else
        turn.t("privacy_views_none"),
    )


def _event_name(turn: Turn, kind: str) -> str:
    return turn.t(f"audit_{kind}") if has(f"audit_{kind}") else kind


def _who(turn: Turn, reg: Registration, actor: str) -> str:
    """Who did it, as the officer is told: the officer, a member of staff, or the system. A
    reviewer's own identity is theirs, not the officer's data."""
    if actor == str(Address(reg.channel, reg.user_id)):
        return turn.t("privacy_actor_you")
    return turn.t("privacy_actor_system" if actor == "system" else "privacy_actor_staff")


async def delete_my_data(turn: Turn, argument: str = "") -> None:
    regs = await turn.repo.registrations_of(turn.conv.channel, turn.conv.user_id)
    live = [r for r in regs if r.status != CANCELLED or r.officer_first_name or r.phone]
    live += [r for r in regs if r not in live and await turn.repo.signed_letters_of(r.id)]
    if not live:
        turn.say("privacy_delete_nothing")
        return
    await turn.repo.audit_log.add(turn.now, turn.actor, REQUESTED, {"ref": None})
    turn.say("privacy_delete_ask", lines="\n".join(_plan_line(turn, r) for r in live), choices=_confirm_buttons(turn))


def _confirm_buttons(turn: Turn) -> list[Choice]:
    return [turn.button("btn_privacy_erase", "privacy:erase"), turn.button("btn_privacy_keep", "privacy:keep")]


def _plan_line(turn: Turn, reg: Registration) -> str:
    keep = plan(reg)
    if not keep.keep_record:
        return turn.t("privacy_plan_all", ref=reg.ref, school=reg.school_name or "-")
    until = turn.when((reg.decided_at or turn.now) + ACCOUNT_RETENTION)
    key = "privacy_plan_approved_phone" if keep.keep_phone else "privacy_plan_approved"
    return turn.t(key, ref=reg.ref, school=reg.school_name or "-", until=until)


async def answer(turn: Turn, text: str, payload: str | None) -> bool:
    """A reply to "really erase?": the button, the typed word, or «keep». True when handled."""
    if payload is not None and not payload.startswith("privacy:"):
        return False
    if payload is None and fold(text) not in CONFIRM_WORDS:
        return False
    entry = await turn.repo.audit_log.latest(turn.actor, (REQUESTED, DONE, KEPT), turn.now - CONFIRM_WITHIN)
    pending = entry is not None and entry.kind == REQUESTED
    if payload is not None and payload not in ("privacy:erase", "privacy:keep"):
        turn.say("stale_button")  # a button we never made
        return True
    if payload == "privacy:keep":
        if pending:
            await turn.repo.audit_log.add(turn.now, turn.actor, KEPT, {})
        turn.say("privacy_delete_kept")
        return True
    if not pending:
        if payload is None:
            return False  # the word typed for another reason: an ordinary answer
        turn.say("privacy_delete_expired")
        return True
    assert entry is not None
    ref = entry.detail.get("ref")
    if ref is None:
        await _erase_own(turn)
    else:
        await _erase_ref(turn, ref)
    return True


async def _erase_own(turn: Turn) -> None:
    regs = await turn.repo.registrations_of(turn.conv.channel, turn.conv.user_id)
    total = Erased()
    for reg in regs:
        if turn.reg is not None and reg.id == turn.reg.id:
            reg = turn.reg  # the turn saves this object last: erase it, not a copy
        total.add(await erase(turn.repo, reg, turn.now, turn.actor, "data_erased", plan(reg)))
    turn.erased_files += total.files
    turn.reg = turn.challenge = None
    turn.conv.state, turn.conv.registration_id, turn.conv.consent_at = "start", None, None
    turn.conv.editing = turn.conv.confirm_cancel = False
    await turn.repo.audit_log.add(turn.now, turn.actor, DONE, {"refs": [r.ref for r in regs]})
    kept = [r for r in regs if plan(r).keep_record]
    turn.say("privacy_deleted", count=len(regs), letters=total.letters,
             kept="\n".join(_plan_line(turn, r) for r in kept) if kept else turn.t("privacy_nothing_kept"),
             choices=[turn.button("btn_start", "cmd:start")])


# --- admins: /data_show REF, /data_erase REF -----------------------------------------


def parse(text_: str) -> tuple[str, str] | None:
    word, _, rest = text_.strip().partition(" ")
    action = COMMANDS.get(word.split("@", 1)[0].lower())
    return None if action is None else (action, rest.strip())


async def handle(turn: Turn, action: str, ref: str) -> None:
    if turn.inbound.sender not in turn.settings.admins:
        turn.say("not_allowed")
        return
    if turn.inbound.group_id is not None:  # personal data is not for a group
        turn.say("privacy_admin_private")
        return
    if not ref or len(ref) > 20 or " " in ref:  # a reference is KD-XXXX-XXXX
        turn.say("privacy_admin_usage")
        return
    reg = await turn.repo.get_registration_by_ref(ref)
    if reg is None:
        turn.say("review_unknown", ref=ref.upper())
        return
    if action == "show":
        await turn.repo.audit_log.add(turn.now, turn.actor, VIEWED, {"what": "/data_show", "refs": [reg.ref]})
        await turn.repo.add_audit(reg.id, turn.now, turn.actor, "data_shown")
        turn.say("privacy_mydata_item", text=await render(turn, reg, staff=True))
        return
    await turn.repo.audit_log.add(turn.now, turn.actor, REQUESTED, {"ref": reg.ref})
    turn.say("privacy_admin_ask", line=_plan_line(turn, reg), choices=_confirm_buttons(turn))


async def _erase_ref(turn: Turn, ref: str) -> None:
    reg = await turn.repo.get_registration_by_ref(ref)
    if reg is None:
        turn.say("review_unknown", ref=ref)
        return
    if turn.reg is not None and reg.id == turn.reg.id:
        reg = turn.reg
    erased = await erase(turn.repo, reg, turn.now, turn.actor, "data_erased_by_admin", plan(reg))
    turn.erased_files += erased.files
    await turn.repo.audit_log.add(turn.now, turn.actor, DONE, {"refs": [reg.ref]})
    turn.say("privacy_admin_erased", ref=reg.ref, letters=erased.letters)
