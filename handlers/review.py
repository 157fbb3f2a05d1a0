"""Step 13 of the registration: reviewers see each submission and approve it or reject it with a reason.

Commands (a private chat or a review group; /show, with its photo, in no other group):
/pending [page], /show REF, /approve REF, /reject REF REASON, /find TEXT; every /show and
/pending is in the audit log; admins: /reviewer list|add|remove (handlers/staff.py). Buttons carry
`review:<action>:<ref>[:<reason>]`. Only reviewers' words count; nobody decides their own
registration, from this account or another one (a registration that carries a national ID or
verified phone of the reviewer's, storage/reviewing.py); the first decision stands (turns are
serialised by the repository, so the second reviewer reads the first decision and is told who
made it and when). One approval stands per school: approving a second officer of a school is
refused unless the reviewer says it replaces the first (`/approve REF replace`), which revokes
the first approval and tells its officer.
"""

from __future__ import annotations

from dataclasses import replace

from handlers import find, staff
from handlers import validation as v
from handlers.history import history_lines
from handlers.letter import full_name
from handlers.messages import Address, Card, Choice, Document, Field, Outbound, Sms
from handlers.reg_buttons import rejection_choices
from handlers.turn import Turn
from storage.models import APPROVED, REJECTED, REVOKED, SUBMITTED, Registration, SignedLetter
from templates import has, text

COMMANDS = {"/pending": "pending", "/show": "show", "/approve": "approve", "/reject": "reject", "/find": "find",
            "/reviewer": "reviewer"}
REASONS = ("unsigned", "unreadable", "wrong_signatory", "data_mismatch")
REPLACE_WORDS = ("replace", "แทน")  # /approve REF replace: this approval takes the place of the standing one
PAGE = 8
HISTORY_PAGE = 20  # events on one page of /show


def parse(text_: str, payload: str | None) -> tuple[str, list[str]] | None:
    """(action, arguments) when the message is meant for the review, else None."""
    if payload and payload.startswith("review:"):
        parts = payload.split(":")
        return parts[1], parts[2:]
    word, _, rest = text_.strip().partition(" ")
    action = COMMANDS.get(word.split("@", 1)[0].lower())
    if action is None:
        return None
    if action == "reject":  # /reject REF the reason, in as many words as it takes
        ref, _, reason = rest.strip().partition(" ")
        return action, [a for a in (ref, reason.strip()) if a]
    return action, rest.split()


async def handle(turn: Turn, action: str, args: list[str]) -> None:
    if action == "reviewer":
        await staff.manage_reviewers(turn, args)  # admins: list|add|remove
        return
    if not await staff.is_reviewer(turn):  # being an admin is not enough (handlers/staff.py)
        turn.say("review_not_reviewer")
        return
    if action == "pending":
        await pending(turn, _page(args))
    elif action == "find":
        await find.find(turn, " ".join(args))
    elif not args:
        turn.say("review_usage")
    elif action == "show" and not _may_show_here(turn):
        turn.say("review_show_not_here")
    elif action == "show":
        await show(turn, args[0], _page(args[1:]))
    elif action == "approve" and len(args) > 1 and args[1].lower() in REPLACE_WORDS:  # /approve REF replace
        await decide(turn, args[0], approve=True, replace=True)
    elif action == "approve":  # review:approve:REF:LETTER (button) or /approve REF
        await decide(turn, args[0], approve=True, letter_id=_letter_id(args[1:]))
    elif action == "replace":  # review:replace:REF:LETTER: the button offered when the school has an approval
        await decide(turn, args[0], approve=True, letter_id=_letter_id(args[1:]), replace=True)
    elif action == "reject" and turn.inbound.payload:  # review:reject:REF:LETTER: ask for the reason
        await decide(turn, args[0], approve=False, letter_id=_letter_id(args[1:]))
    elif action == "reject":  # /reject REF [REASON]
        await decide(turn, args[0], approve=False, reason=args[1] if len(args) > 1 else None)
    elif action == "reason":  # review:reason:REF:LETTER:KEY
        await decide(turn, args[0], approve=False, reason=args[-1], letter_id=_letter_id(args[1:-1]))
    else:
        turn.say("review_usage")


# --- looking -------------------------------------------------------------------------------

def _may_show_here(turn: Turn) -> bool:
    """The card and the signed photo (full national ID, signature) only where reviewers are
    meant to see them: a review chat, or a reviewer's private chat with the bot."""
    return turn.inbound.group_id is None or turn.inbound.chat in turn.settings.review_chats


async def _viewed(turn: Turn, what: str, refs: list[str]) -> None:
    """Every look at registrations goes into the audit log: who, where, which."""
    await turn.repo.audit_log.add(turn.now, turn.actor, "data_viewed",
                                  {"what": what, "chat": str(turn.inbound.chat), "refs": refs})


async def pending(turn: Turn, page: int) -> None:
    regs, total = await turn.repo.submitted((page - 1) * PAGE, PAGE)
    if not regs:
        turn.say("review_queue_empty" if page == 1 else "review_queue_end")
        return
    lines = [turn.t("review_queue_line", n=(page - 1) * PAGE + i, ref=r.ref, school=r.school_name,
                    province=r.province, since=turn.when(r.submitted_at or r.created_at))
             for i, r in enumerate(regs, 1)]
    await _viewed(turn, "/pending", [r.ref for r in regs])
    choices = [Choice(r.ref, f"review:show:{r.ref}") for r in regs]
    if page * PAGE < total:
        choices.append(turn.button("btn_review_more", f"review:pending:{page + 1}"))
    turn.say("review_queue", total=total, lines="\n".join(lines), choices=choices)


async def show(turn: Turn, ref: str, page: int = 1) -> None:
    """The card, the photo and the history, newest events first, a page at a time: the first
    page with the card and the photo, the older events behind "next page"."""
    reg = await turn.repo.get_registration_by_ref(ref)
    if reg is None:
        turn.say("review_unknown", ref=ref.upper())
        return
    await _viewed(turn, "/show", [reg.ref])
    trail = list(reversed(await turn.repo.audit_trail(reg.id)))
    events = trail[(page - 1) * HISTORY_PAGE: page * HISTORY_PAGE]
    history = history_lines(turn, events) or "-"
    more = []
    if page * HISTORY_PAGE < len(trail):
        more.append(turn.button("btn_review_more", f"review:show:{reg.ref}:{page + 1}"))
    if page > 1:
        turn.say("review_history", lines=history, choices=more)
        return
    letters = await turn.repo.signed_letters_of(reg.id)
    latest = letters[-1] if letters else None
    card = await _card(turn, reg, latest)
    shown_history = turn.t("review_history", lines=history)
    assert card.card is not None
    turn.replies.append(Outbound(f"{card.text}\n\n{shown_history}", tuple(_decision_buttons(turn, reg, latest) + more),
                                 document=_photo(reg, latest) if latest else None,
                                 card=replace(card.card, note=shown_history)))


def card_key(reg: Registration) -> str:
    """One card per registration in each review chat: a newer version replaces it."""
    return f"card:{reg.id}"


async def announce(turn: Turn, reg: Registration, letter: SignedLetter) -> None:
    """A submission, to every review chat: the card, the signed photo, the buttons. A newer
    photo replaces the card (edited where the platform can) rather than adding one."""
    if not turn.settings.review_chats:
        return
    card = await _card(turn, reg, letter, lang="th")
    photo = _photo(reg, letter)
    buttons = tuple(_decision_buttons(turn, reg, letter, lang="th"))
    for chat in turn.settings.review_chats:
        turn.replies.append(replace(card, choices=buttons, to=chat, document=photo, replace_key=card_key(reg)))


async def _close_cards(turn: Turn, reg: Registration, letter: SignedLetter | None) -> None:
    """After a decision, the cards in the review chats say it and lose their buttons (where the
    platform can edit a message; elsewhere a late press is told who decided)."""
    if not turn.settings.review_chats:
        return
    card = await _card(turn, reg, letter, lang="th")
    outcome = text("review_card_decided", "th", decision=text(f"status_name_{reg.status}", "th"), who=turn.actor,
                   when=turn.when(turn.now), reason=reason_text(reg.reject_reason or "", "th") or "-")
    photo = _photo(reg, letter) if letter else None
    assert card.card is not None
    for chat in turn.settings.review_chats:
        turn.replies.append(Outbound(f"{card.text}\n{outcome}", to=chat, document=photo, replace_key=card_key(reg),
                                     edit_only=True, card=replace(card.card, note=outcome)))


async def _card(turn: Turn, reg: Registration, letter: SignedLetter | None, lang: str | None = None) -> Outbound:
    """The card as a message: its text for every channel, and its fields for channels that draw
    cards (no buttons or recipient yet)."""
    lang = lang or turn.conv.lang
    warnings = []
    for other in await turn.repo.others_for_school(reg):
        warnings.append(text("review_warning_school", lang, ref=other.ref, status=text(f"status_name_{other.status}",
                                                                                        lang)))
    for other, same_nid, same_phone in await turn.repo.same_person_matches(reg):
        what = "both" if same_nid and same_phone else "national_id" if same_nid else "phone"
        warnings.append(text(f"review_warning_person_{what}", lang, ref=other.ref, school=other.school_name or "-"))
    if letter is not None and letter.signature == "blank":
        warnings.append(text("review_warning_unsigned", lang, number=letter.number))
    none = text("value_none", lang)
    values = {
        "ref": reg.ref, "status": text(f"status_name_{reg.status}", lang),
        "affiliation": text(f"affiliation_{reg.affiliation}", lang), "school": reg.school_name or "-",
        "code": reg.school_code or "-", "province": reg.province or "-", "officer": full_name(reg),
        "national_id": v.mask_national_id(reg.national_id) if reg.national_id else "-",
        "phone": v.local_phone(reg.phone) if reg.phone else "-",
        "old_tsl": reg.old_tsl_username or none, "old_kiddiary": reg.old_kiddiary_username or none,
        "qr": text(f"review_qr_{letter.qr_status}" if letter else "review_qr_none", lang),
        "warnings": "\n".join(warnings) or text("review_no_warnings", lang),
    }
    shown = [("status", "status"), ("school_name", "school"), ("school_code", "code"), ("province", "province"),
             ("affiliation", "affiliation"), ("officer_name", "officer"), ("national_id", "national_id"),
             ("phone", "phone"), ("old_tsl", "old_tsl"), ("old_kiddiary", "old_kiddiary"), ("qr", "qr"),
             ("warnings", "warnings")]
    card = Card(text("card_review_title", lang, ref=reg.ref),
                tuple(Field(text(f"card_{label}", lang), values[name]) for label, name in shown))
    return Outbound(text("review_card", lang, **values), card=card)


def _photo(reg: Registration, letter: SignedLetter) -> Document:
    """The signed letter, by reference: its bytes are read when the message is sent."""
    extension = {"application/pdf": "pdf", "image/png": "png", "image/webp": "webp", "image/heic": "heic"}
    name = f"signed-{reg.ref}.{extension.get(letter.mime_type, 'jpg')}"
    return Document(name, mime_type=letter.mime_type or "image/jpeg", link=("signed", letter.id, content_check(letter)))


def content_check(letter: SignedLetter) -> int:
    """A link's check on the scan it names (part of its SHA-256): ids of erased scans can be
    given again to new ones, and a link to an erased scan must never open someone else's."""
    return int(letter.sha256[:12], 16)


def _decision_buttons(
    turn: Turn, reg: Registration, letter: SignedLetter | None, lang: str | None = None,
) -> list[Choice]:
    """Approve / Reject for this photo: the buttons name it, so a card left over from before a
    new photo came cannot approve what nobody has looked at."""
    if reg.status != SUBMITTED or letter is None:
        return []
    lang = lang or turn.conv.lang
    return [Choice(text("btn_approve", lang), f"review:approve:{reg.ref}:{letter.id}"),
            Choice(text("btn_reject", lang), f"review:reject:{reg.ref}:{letter.id}")]


# --- deciding ------------------------------------------------------------------------------

def _page(args: list[str]) -> int:
    """The page asked for: 1 unless a sensible number was given (a huge one is the last page's
    problem, not the database's)."""
    return min(int(args[0]), 100_000) if args and args[0].isdigit() and int(args[0]) > 0 else 1


def _letter_id(args: list[str]) -> int | None:
    return int(args[0]) if args and args[0].isdigit() else None


async def decide(
    turn: Turn, ref: str, approve: bool, reason: str | None = None, letter_id: int | None = None,
    replace: bool = False,
) -> None:
    reg = await turn.repo.get_registration_by_ref(ref)
    if reg is None:
        turn.say("review_unknown", ref=ref.upper())
        return
    if Address(reg.channel, reg.user_id) == turn.inbound.sender:
        turn.say("review_own", ref=reg.ref)
        return
    sender = turn.inbound.sender
    if turn.repo.reviewing.same_person(reg, await turn.repo.reviewing.identity(sender.channel, sender.id)):
        # Their own registration made from another account: refused, and on the record.
        await turn.repo.add_audit(reg.id, turn.now, turn.actor, "own_decision_refused",
                                  "the national ID or phone is the reviewer's own")
        turn.say("review_own_person", ref=reg.ref)
        return
    if reg.status in (APPROVED, REJECTED, REVOKED) and reg.decided_at is not None:
        turn.say("review_already_decided", ref=reg.ref, decision=turn.t(f"status_name_{reg.status}"),
                 who=reg.decided_by, when=turn.when(reg.decided_at))
        return
    if reg.status != SUBMITTED:
        turn.say("review_not_submitted", ref=reg.ref, status=turn.t(f"status_name_{reg.status}"))
        return
    letters = await turn.repo.signed_letters_of(reg.id)
    if letter_id is not None and (not letters or letters[-1].id != letter_id):
        turn.say("review_stale_card", ref=reg.ref)  # a newer photo came after this card
        return
    standing = await turn.repo.reviewing.standing_approval(reg) if approve else None
    if standing is not None and not replace:  # one approval per school, unless this one takes its place
        latest = letters[-1].id if letters else 0
        turn.say("review_school_approved", ref=reg.ref, other=standing.ref, school=standing.school_name,
                 who=standing.decided_by or "-", when=turn.when(standing.decided_at or standing.created_at),
                 choices=[turn.button("btn_review_replace", f"review:replace:{reg.ref}:{latest}")])
        return
    if not approve and not reason:  # a reason is required: offer the common ones
        latest = letters[-1].id if letters else 0
        choices = [turn.button(f"btn_reason_{key}", f"review:reason:{reg.ref}:{latest}:{key}") for key in REASONS]
        turn.say("review_ask_reason", ref=reg.ref, choices=choices)
        return

    reg.decided_at, reg.decided_by = turn.now, turn.actor
    officer = await turn.repo.get_conversation(reg.channel, reg.user_id)
    officer_lang = officer.lang if officer else "th"
    if approve:
        if standing is not None:
            await _revoke(turn, standing, reg)
        reg.status, reg.provision_status = APPROVED, "pending"
        await turn.repo.add_audit(reg.id, turn.now, turn.actor, "approved",
                                  f"replaces {standing.ref}" if standing else "")
        turn.provision.append(reg.id)  # the account is made once this turn is committed
    else:
        assert reason is not None
        reg.status, reg.reject_reason = REJECTED, reason
        if letters:
            await turn.repo.reject_signed_letter(letters[-1].id, turn.now, reason)
        await turn.repo.add_audit(reg.id, turn.now, turn.actor, "rejected", reason)
        shown = reason_text(reason, officer_lang)
        # The buttons name this registration: they work whatever the officer is doing meanwhile.
        choices = rejection_choices(reg, officer_lang)
        if officer is not None and officer.registration_id == reg.id:
            officer.state = "letter"  # their next photo, or an edit, goes to this registration
            await turn.repo.save_conversation(officer, turn.now)
            choices = (Choice(text("btn_camera", officer_lang), "camera", action="camera"), *choices)
        turn.replies.append(Outbound(text("officer_rejected", officer_lang, ref=reg.ref, reason=shown), choices,
                                     to=Address(reg.channel, reg.user_id)))
        if reg.phone:
            turn.sms.append(Sms(reg.phone, text("sms_rejected", officer_lang, ref=reg.ref, reason=shown)))
    await turn.repo.save_registration(reg, turn.now)
    await _close_cards(turn, reg, letters[-1] if letters else None)
    turn.say("review_approved" if approve else "review_rejected", ref=reg.ref, school=reg.school_name,
             reason=reason_text(reason or "", turn.conv.lang))


async def _revoke(turn: Turn, old: Registration, new: Registration) -> None:
    """The standing approval of a school gives way to `new`: revoked, on the record, its account
    username freed for the new officer's account, and its officer told."""
    username = old.account_username
    old.status, old.account_username = REVOKED, None
    await turn.repo.save_registration(old, turn.now)
    await turn.repo.add_audit(old.id, turn.now, turn.actor, "revoked",
                              f"replaced by {new.ref}" + (f"; account {username}" if username else ""))
    officer = await turn.repo.get_conversation(old.channel, old.user_id)
    lang = officer.lang if officer else "th"
    turn.replies.append(Outbound(text("officer_revoked", lang, ref=old.ref, school=old.school_name or "-"),
                                 to=Address(old.channel, old.user_id)))
    turn.say("review_revoked", ref=old.ref, new=new.ref)


def reason_text(reason: str, lang: str) -> str:
    return text(f"reason_{reason}", lang) if reason in REASONS and has(f"reason_{reason}") else reason

