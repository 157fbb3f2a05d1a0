"""Review and approval through the real core: the queue, decisions, notifications, accounts."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import replace

import pytest

from bot.provision_http import HttpProvisioner
from handlers.dispatch import Dispatcher
from handlers.messages import Address, Kind
from handlers.provisioning import SchoolCodeProvisioner
from templates import text as t
from tests.fakes.http_service import FakeService
from tests.helpers import Officer, delivered
from tests.test_signed_letter import at_letter_step, letter_pdf, phone_photo, send, without_qr

REVIEW_CHAT = Address("test", "review-group")
REVIEWERS = frozenset({Address("test", "rev1"), Address("test", "rev2")})
ADMIN = Address("test", "boss")


@pytest.fixture
def reviewing(dispatcher: Dispatcher, settings) -> Dispatcher:
    dispatcher.settings = replace(settings, reviewers=REVIEWERS, admins=frozenset({ADMIN}),
                                  review_chats=(REVIEW_CHAT,))
    dispatcher.provisioner = SchoolCodeProvisioner("https://kiddiary.example/login")
    return dispatcher


@pytest.fixture
async def accounts() -> AsyncIterator[FakeService]:
    service = FakeService({"username": "nongbua01", "initial_password": "Xy7pQ2mn",
                           "sign_in_url": "https://accounts.example/in"})
    await service.start()
    yield service
    await service.stop()


async def submitted(officer: Officer) -> str:
    """Register, confirm and send the signed letter; the reference."""
    await at_letter_step(officer)
    await send(officer, phone_photo(letter_pdf(officer)))
    repo = officer.dispatcher.repo
    async with repo.transaction():
        return (await repo.registrations_of(officer.channel, officer.user_id))[-1].ref


async def submitted_with_letter(officer: Officer) -> tuple[bytes, str]:
    """Like `submitted`, keeping the letter too (to photograph it again later)."""
    await at_letter_step(officer)
    pdf = letter_pdf(officer)
    await send(officer, phone_photo(pdf))
    async with officer.dispatcher.repo.transaction():
        return pdf, (await officer.dispatcher.repo.registrations_of(officer.channel, officer.user_id))[0].ref


async def stored(dispatcher: Dispatcher, ref: str):
    async with dispatcher.repo.transaction():
        return await dispatcher.repo.get_registration_by_ref(ref)


def to(officer: Officer, replies) -> list:
    """The replies addressed to the officer (they go through the router to their chat)."""
    return [r for r in replies if r.to == Address(officer.channel, officer.user_id)]


async def test_a_submission_reaches_the_review_chat_with_card_photo_and_buttons(reviewing, sms):
    officer = Officer(reviewing, sms)
    await at_letter_step(officer)
    photo = phone_photo(letter_pdf(officer))
    await send(officer, photo)
    [card] = [r for r in officer.replies if r.to == REVIEW_CHAT]
    ref = re.search(r"KD-\w{4}-\w{4}", card.text).group(0)
    for shown in (ref, "โรงเรียนบ้านหนองบัว", "1054530001", "แพร่", "นางสาวสมศรี ใจดี", "1-2345-xxxxx-xx-1",
                  "081-234-5678", "tsl1234", t("review_qr_matched", "th"), t("review_no_warnings", "th")):
        assert shown in card.text, shown
    assert "1234545678781" not in card.text
    assert card.document.data == photo and card.document.mime_type == "image/jpeg"
    assert [c.payload.rsplit(":", 1)[0] for c in card.choices] == [f"review:approve:{ref}", f"review:reject:{ref}"]
    assert officer.said("letter_received_matched", ref=ref)  # the officer's own reply is unchanged


async def test_approve_by_button_makes_the_account_and_tells_the_officer(reviewing, sms):
    officer = Officer(reviewing, sms)
    ref = await submitted(officer)
    reviewer = Officer(reviewing, sms, user_id="rev1")
    await reviewer.send(Kind.BUTTON, payload=f"review:approve:{ref}")
    assert reviewer.said("review_approved", ref=ref, school="โรงเรียนบ้านหนองบัว", reason="")
    assert reviewer.said("review_provisioned", ref=ref, username="sch1054530001")
    [told] = to(officer, reviewer.replies)
    assert told.text == t("officer_approved", "th", ref=ref, school="โรงเรียนบ้านหนองบัว",
                          username="sch1054530001", url="https://kiddiary.example/login")
    phone, message = sms.sent[-1]
    assert phone == "+66812345678" and "sch1054530001" in message
    password = re.search(r"รหัสผ่านเริ่มต้น (\S+)", message).group(1)
    assert len(password) == 10 and password not in told.text  # the password travels by SMS only
    reg = await stored(reviewing, ref)
    assert (reg.status, reg.provision_status, reg.account_username, reg.decided_by) == (
        "approved", "done", "sch1054530001", "test:rev1")
    async with reviewing.repo.transaction():
        kinds = [e.kind for e in await reviewing.repo.audit_trail(reg.id)]
    assert kinds[-2:] == ["approved", "provisioned"]


async def test_approve_by_command(reviewing, sms):
    ref = await submitted(Officer(reviewing, sms))
    reviewer = Officer(reviewing, sms, user_id="rev2")
    await reviewer.say(f"/approve {ref.lower()}")
    assert (await stored(reviewing, ref)).status == "approved"


async def test_reject_by_button_asks_a_reason_and_tells_the_officer(reviewing, sms):
    officer = Officer(reviewing, sms)
    ref = await submitted(officer)
    reviewer = Officer(reviewing, sms, user_id="rev1")
    await reviewer.say(f"/reject {ref}")
    assert reviewer.said("review_ask_reason", ref=ref)
    assert (await stored(reviewing, ref)).status == "submitted"  # nothing decided without a reason
    [unsigned] = [p for p in reviewer.payloads if p.endswith(":unsigned")]
    assert unsigned.startswith(f"review:reason:{ref}:")
    await reviewer.press(unsigned)
    [told] = to(officer, reviewer.replies)
    assert told.text == t("officer_rejected", "th", ref=ref, reason=t("reason_unsigned", "th"))
    assert f"reg:edit:{ref}" in [c.payload for c in told.choices]  # names the registration: works from any step
    assert "KidDiary" in sms.sent[-1][1] and t("reason_unsigned", "th") in sms.sent[-1][1]
    reg = await stored(reviewing, ref)
    assert (reg.status, reg.reject_reason) == ("rejected", "unsigned")


async def test_reject_by_command_with_a_reason_of_ones_own(reviewing, sms):
    officer = Officer(reviewing, sms)
    ref = await submitted(officer)
    reviewer = Officer(reviewing, sms, user_id="rev1")
    await reviewer.say(f"/reject {ref} ตราประทับไม่ชัด กรุณาถ่ายใหม่")
    [told] = to(officer, reviewer.replies)
    assert "ตราประทับไม่ชัด กรุณาถ่ายใหม่" in told.text


async def test_after_a_rejection_a_new_photo_submits_again(reviewing, sms):
    officer = Officer(reviewing, sms)
    await at_letter_step(officer)
    pdf = letter_pdf(officer)
    first = phone_photo(pdf)
    await send(officer, first)
    repo = reviewing.repo
    async with repo.transaction():
        ref = (await repo.registrations_of(officer.channel, officer.user_id))[0].ref
    await Officer(reviewing, sms, user_id="rev1").say(f"/reject {ref} unreadable")
    await send(officer, first)  # the very same photo again
    assert officer.said("err_letter_already_rejected")
    await send(officer, phone_photo(pdf, angle=-3))
    assert (await stored(reviewing, ref)).status == "submitted"
    assert any(r.to == REVIEW_CHAT for r in officer.replies)  # announced again


async def test_after_a_rejection_the_officer_may_fix_the_details_and_get_a_new_letter(reviewing, sms):
    officer = Officer(reviewing, sms)
    ref = await submitted(officer)
    await Officer(reviewing, sms, user_id="rev1").say(f"/reject {ref} data_mismatch")
    await officer.send(Kind.BUTTON, payload="letter:edit")  # the button on the rejection message
    await officer.press("edit:school_name")
    await officer.say("โรงเรียนบ้านหนองบัววิทยา")
    await officer.press("confirm")
    assert officer.replies[-1].document.filename.endswith("-2.pdf")
    await send(officer, phone_photo(letter_pdf(officer)))
    reg = await stored(reviewing, ref)
    assert (reg.status, reg.school_name, reg.letter_version) == ("submitted", "โรงเรียนบ้านหนองบัววิทยา", 2)


async def test_someone_who_is_not_a_reviewer_is_refused(reviewing, sms):
    ref = await submitted(Officer(reviewing, sms))
    stranger = Officer(reviewing, sms, user_id="someone")
    for message in (f"/approve {ref}", "/pending", f"/show {ref}"):
        await stranger.say(message)
        assert stranger.said("review_not_reviewer")
    await stranger.send(Kind.BUTTON, payload=f"review:approve:{ref}")
    assert stranger.said("review_not_reviewer")
    assert (await stored(reviewing, ref)).status == "submitted"


async def test_nobody_reviews_their_own_registration(reviewing, sms):
    reviewer_as_officer = Officer(reviewing, sms, user_id="rev1")
    ref = await submitted(reviewer_as_officer)
    await reviewer_as_officer.say(f"/approve {ref}")
    assert reviewer_as_officer.said("review_own", ref=ref)
    assert (await stored(reviewing, ref)).status == "submitted"


async def test_two_reviewers_racing_the_first_decision_stands(reviewing, sms):
    ref = await submitted(Officer(reviewing, sms))
    first, second = Officer(reviewing, sms, user_id="rev1"), Officer(reviewing, sms, user_id="rev2")
    await asyncio.gather(first.say(f"/approve {ref}"), second.say(f"/reject {ref} unsigned"))
    reg = await stored(reviewing, ref)
    assert reg.status == "approved" and reg.decided_by == "test:rev1"
    assert second.said("review_already_decided", ref=ref, decision=t("status_name_approved", "th"),
                       who="test:rev1", when="10:00 น.")  # the test clock: 03:00 UTC, 10:00 in Thailand


async def test_the_queue_oldest_first_paged_and_show_and_find(reviewing, sms, clock):
    refs = []
    for n in range(10):
        officer = Officer(reviewing, sms, user_id=f"officer-{n}", phone=f"0810000{n:03d}")
        refs.append(await submitted(officer))
        clock.advance(minutes=1)
    reviewer = Officer(reviewing, sms, user_id="rev1")
    await reviewer.say("/pending")
    assert reviewer.text.startswith(t("review_queue", "th", total=10, lines="")[:15])
    assert reviewer.payloads[:8] == [f"review:show:{ref}" for ref in refs[:8]]
    assert reviewer.payloads[-1] == "review:pending:2"
    await reviewer.press("review:pending:2")
    assert reviewer.payloads == [f"review:show:{ref}" for ref in refs[8:]]
    await reviewer.press(f"review:show:{refs[9]}")
    sent = t("history_submitted", "th", number="1", qr=t("review_qr_matched", "th"),
                  signature=t("history_signature_signed", "th"))
    assert sent in reviewer.text  # the history
    assert t("history_letter_issued", "th", version=1) in reviewer.text
    assert reviewer.replies[-1].document is not None  # with the photo
    await reviewer.say("/find 0810000003")
    assert refs[3] in reviewer.text and refs[4] not in reviewer.text
    await reviewer.say("/find หนองบัว")
    assert all(ref in reviewer.text for ref in refs)
    await reviewer.say("/find ไม่มีโรงเรียนนี้")
    assert reviewer.said("review_nothing_found", query="ไม่มีโรงเรียนนี้")


async def test_the_card_warns_of_another_registration_for_the_same_school(reviewing, sms):
    first = await submitted(Officer(reviewing, sms, user_id="a", phone="0811111111"))
    second = Officer(reviewing, sms, user_id="b", phone="0822222222")
    await submitted(second)
    [card] = [r for r in second.replies if r.to == REVIEW_CHAT]
    assert t("review_warning_school", "th", ref=first, status=t("status_name_submitted", "th")) in card.text


async def test_the_card_warns_when_the_person_registers_another_school(reviewing, sms, repo, clock):
    from storage import School

    async with repo.transaction():
        await repo.import_schools([School("1054530001", "โรงเรียนบ้านหนองบัว", "แพร่", "obec"),
                                   School("1054530002", "โรงเรียนวัดใหม่", "แพร่", "obec")])
    first = await submitted(Officer(reviewing, sms, user_id="a"))  # same officer, same phone…
    second = Officer(reviewing, sms, user_id="b")
    await second.up_to("school_code")
    await second.say("1054530002")  # …for another school
    for answer in ("tsl1234", "ไม่มี", "นางสาวสมศรี ใจดี", "1-2345-45678-78-1"):
        await second.say(answer)
    clock.advance(minutes=2)  # past the phone's resend wait
    await second.say("081-234-5678")
    await second.say(sms.last_code())
    await second.press("confirm")
    await send(second, phone_photo(letter_pdf(second)))
    [card] = [r for r in second.replies if r.to == REVIEW_CHAT]
    assert t("review_warning_person_both", "th", ref=first, school="โรงเรียนบ้านหนองบัว") in card.text


async def test_find_by_reference(reviewing, sms):
    ref = await submitted(Officer(reviewing, sms))
    reviewer = Officer(reviewing, sms, user_id="rev1")
    await reviewer.say(f"/find {ref.lower()}")
    assert reviewer.payloads == [f"review:show:{ref}"]


async def test_admins_add_and_remove_reviewers(reviewing, sms):
    ref = await submitted(Officer(reviewing, sms))
    # Ids are checked per channel: the newcomer is on the console (its answers are not recorded
    # here, so what it may do shows in what its commands change).
    newcomer = Officer(reviewing, sms, channel="console", user_id="rev3")
    await newcomer.say(f"/approve {ref}")
    assert (await stored(reviewing, ref)).status == "submitted"
    await Officer(reviewing, sms, user_id="rev1").say("/reviewer add console:rev3")
    boss = Officer(reviewing, sms, user_id="boss")
    await boss.say("/reviewer add console:rev3")
    assert boss.said("review_reviewer_added", who="console:rev3")
    await boss.say("/reviewer remove console:rev3")
    assert boss.said("review_reviewer_removed", who="console:rev3")
    await newcomer.say(f"/approve {ref}")
    assert (await stored(reviewing, ref)).status == "submitted"
    await boss.say("/reviewer add console:rev3")
    await newcomer.say(f"/approve {ref}")
    assert (await stored(reviewing, ref)).status == "approved"


async def test_an_unverified_letter_is_flagged_on_the_card(reviewing, sms):
    officer = Officer(reviewing, sms)
    await at_letter_step(officer)
    await send(officer, without_qr(letter_pdf(officer)))
    [card] = [r for r in officer.replies if r.to == REVIEW_CHAT]
    assert t("review_qr_unverified", "th") in card.text


async def test_the_account_service_over_http(reviewing, sms, accounts):
    reviewing.provisioner = HttpProvisioner(f"{accounts.url}/accounts", "prov-token", "https://fallback")
    officer = Officer(reviewing, sms)
    ref = await submitted(officer)
    reviewer = Officer(reviewing, sms, user_id="rev1")
    await reviewer.say(f"/approve {ref}")
    [call] = accounts.received
    assert call.headers["Authorization"] == "Bearer prov-token"
    assert call.json["ref"] == ref and call.json["officer"]["national_id"] == "1234545678781"
    assert reviewer.said("review_provisioned", ref=ref, username="nongbua01")
    assert "Xy7pQ2mn" in sms.sent[-1][1] and "https://accounts.example/in" in sms.sent[-1][1]
    assert all("Xy7pQ2mn" not in r.text for r in reviewer.replies)


async def test_a_provisioning_failure_stays_approved_visible_and_is_retried(reviewing, sms, accounts):
    reviewing.provisioner = HttpProvisioner(f"{accounts.url}/accounts", None, "https://fallback")
    accounts.fail(503)
    officer = Officer(reviewing, sms)
    ref = await submitted(officer)
    reviewer = Officer(reviewing, sms, user_id="rev1")
    await reviewer.say(f"/approve {ref}")
    assert reviewer.said("review_provision_failed", ref=ref, error="ProvisionError: HTTP 503")
    [told] = to(officer, reviewer.replies)
    assert told.text == t("officer_approved_pending", "th", ref=ref)
    reg = await stored(reviewing, ref)
    assert (reg.status, reg.provision_status, reg.account_username) == ("approved", "failed", None)
    await reviewer.say(f"/show {ref}")
    failed = t("history_provision_failed", "th", detail="ProvisionError: HTTP 503")
    assert failed in reviewer.text  # visible to the reviewers
    retried = await delivered(reviewing, reviewing.retry_provisioning())
    [told] = [r for r in retried if r.to == Address(officer.channel, officer.user_id)]
    assert "nongbua01" in told.text
    reg = await stored(reviewing, ref)
    assert (reg.provision_status, reg.account_username, reg.provision_attempts) == ("done", "nongbua01", 2)
    assert await delivered(reviewing, reviewing.retry_provisioning()) == []  # nothing left to do


async def test_an_undelivered_password_sms_means_the_account_is_made_again(reviewing, sms):
    ref = await submitted(Officer(reviewing, sms))
    sms.fail_next = 1
    await Officer(reviewing, sms, user_id="rev1").say(f"/approve {ref}")
    assert (await stored(reviewing, ref)).provision_status == "failed"
    await reviewing.retry_provisioning()
    assert (await stored(reviewing, ref)).provision_status == "done"
    assert "sch1054530001" in sms.sent[-1][1]


async def test_status_tells_the_officer_where_things_stand(reviewing, sms):
    officer = Officer(reviewing, sms)
    ref = await submitted(officer)
    await officer.say("/status")
    assert ref in officer.text and "12/12" in officer.text


async def test_status_after_the_decision(reviewing, sms):
    officer = Officer(reviewing, sms)
    pdf, ref = await submitted_with_letter(officer)
    await Officer(reviewing, sms, user_id="rev1").say(f"/reject {ref} unsigned")
    await officer.say("/status")
    assert officer.said("status_rejected", ref=ref, school="โรงเรียนบ้านหนองบัว", reason=t("reason_unsigned", "th"))
    await send(officer, phone_photo(pdf, angle=2))  # signed this time
    await Officer(reviewing, sms, user_id="rev2").say(f"/approve {ref}")
    await officer.say("/status")
    assert officer.said("status_approved", ref=ref, school="โรงเรียนบ้านหนองบัว", username="sch1054530001")


def card_buttons(replies) -> dict[str, str]:
    """The Approve / Reject payloads of the card sent to the review chat."""
    [card] = [r for r in replies if r.to == REVIEW_CHAT]
    return {c.payload.split(":")[1]: c.payload for c in card.choices}


async def test_a_card_left_over_from_before_a_new_photo_cannot_approve_it(reviewing, sms):
    officer = Officer(reviewing, sms)
    await at_letter_step(officer)
    pdf = letter_pdf(officer)
    await send(officer, without_qr(pdf))
    old_card = card_buttons(officer.replies)
    await send(officer, phone_photo(pdf))  # a clearer photo replaces the first
    new_card = card_buttons(officer.replies)
    reviewer = Officer(reviewing, sms, user_id="rev1")
    ref = old_card["approve"].split(":")[2]
    await reviewer.send(Kind.BUTTON, payload=old_card["approve"])
    assert reviewer.said("review_stale_card", ref=ref)
    assert (await stored(reviewing, ref)).status == "submitted"
    await reviewer.send(Kind.BUTTON, payload=new_card["approve"])
    assert (await stored(reviewing, ref)).status == "approved"


async def test_a_photo_after_the_decision_changes_nothing(reviewing, sms):
    officer = Officer(reviewing, sms)
    pdf, ref = await submitted_with_letter(officer)
    await Officer(reviewing, sms, user_id="rev1").say(f"/approve {ref}")
    sent = len(sms.sent)
    await send(officer, without_qr(pdf))  # no QR: it would go to the current registration
    # Nothing waits for a letter any more: the photo is not even read, the officer is told where
    # the registration stands (as on LINE and Telegram, where it is not downloaded either).
    assert officer.said("status_approved", ref=ref, school="โรงเรียนบ้านหนองบัว", username="sch1054530001")
    assert not any(r.to == REVIEW_CHAT for r in officer.replies)
    reg = await stored(reviewing, ref)
    assert (reg.status, reg.provision_status) == ("approved", "done") and len(sms.sent) == sent


async def test_the_account_is_made_once_when_a_retry_and_a_turn_meet(reviewing, sms, accounts):
    reviewing.provisioner = HttpProvisioner(f"{accounts.url}/accounts", None, "https://fallback")
    accounts.fail(503)
    ref = await submitted(Officer(reviewing, sms))
    await Officer(reviewing, sms, user_id="rev1").say(f"/approve {ref}")
    reg = await stored(reviewing, ref)
    await asyncio.gather(reviewing.retry_provisioning(), reviewing.provision(reg.id), reviewing.provision(reg.id))
    assert len(accounts.received) == 2  # the failed try, and one more
    assert sum("nongbua01" in message for _, message in sms.sent) == 1


async def test_only_a_hash_of_the_initial_password_is_kept(reviewing, sms, tmp_path, caplog):
    import logging

    from handlers.provisioning import check_password

    caplog.set_level(logging.DEBUG)
    ref = await submitted(Officer(reviewing, sms))
    await Officer(reviewing, sms, user_id="rev1").say(f"/approve {ref}")
    password = re.search(r"รหัสผ่านเริ่มต้น (\S+)", sms.sent[-1][1]).group(1)
    reg = await stored(reviewing, ref)
    assert reg.account_password_hash.startswith("scrypt$") and check_password(password, reg.account_password_hash)
    assert not check_password(password + "x", reg.account_password_hash)
    await reviewing.repo.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("kiddiary.sqlite3*"))
    assert password.encode() not in raw
    assert all(password not in r.getMessage() for r in caplog.records)


async def test_nothing_is_sent_to_an_officer_who_left(reviewing, sms):
    officer = Officer(reviewing, sms)
    ref = await submitted(officer)
    await reviewing.mark_unreachable(officer.channel, officer.user_id)
    reviewer = Officer(reviewing, sms, user_id="rev1")
    await reviewer.say(f"/approve {ref}")
    assert to(officer, reviewer.replies) == []
    assert reviewer.said("review_provisioned", ref=ref, username="sch1054530001")  # the SMS still goes


async def test_accounts_not_made_show_in_the_statistics(reviewing, sms, accounts):
    reviewing.provisioner = HttpProvisioner(f"{accounts.url}/accounts", None, "https://fallback")
    accounts.fail(503)
    ref = await submitted(Officer(reviewing, sms))
    await Officer(reviewing, sms, user_id="rev1").say(f"/approve {ref}")
    boss = Officer(reviewing, sms, user_id="boss")
    await boss.say("/stats")
    assert t("stats_accounts_not_made", "th", count=1) in boss.text


async def test_the_same_photo_twice_makes_no_new_card_and_no_new_history(reviewing, sms):
    officer = Officer(reviewing, sms)
    pdf, ref = await submitted_with_letter(officer)  # submitted with phone_photo(pdf)
    reg = await stored(reviewing, ref)
    async with reviewing.repo.transaction():
        trail = await reviewing.repo.audit_trail(reg.id)
    for _ in range(3):  # a phone that sends the photo again, and again
        await send(officer, phone_photo(pdf))
        assert officer.said("err_letter_same_photo", ref=ref)
        assert not any(r.to == REVIEW_CHAT for r in officer.replies)
    async with reviewing.repo.transaction():
        assert await reviewing.repo.audit_trail(reg.id) == trail
        assert len(await reviewing.repo.signed_letters_of(reg.id)) == 1
    await send(officer, phone_photo(pdf, angle=-3))  # a new photo: the card is replaced (same key)
    [card] = [r for r in officer.replies if r.to == REVIEW_CHAT]
    assert card.replace_key == f"card:{reg.id}"


async def test_cards_carry_one_key_per_registration_and_a_decision_closes_them(reviewing, sms):
    officer = Officer(reviewing, sms)
    ref = await submitted(officer)
    [card] = [r for r in officer.replies if r.to == REVIEW_CHAT]
    reg = await stored(reviewing, ref)
    assert card.replace_key == f"card:{reg.id}" and not card.edit_only and card.choices
    reviewer = Officer(reviewing, sms, user_id="rev1")
    await reviewer.say(f"/approve {ref}")
    [closed] = [r for r in reviewer.replies if r.to == REVIEW_CHAT]
    assert closed.replace_key == card.replace_key and closed.edit_only and closed.choices == ()
    assert "rev1" in closed.text and t("status_name_approved", "th") in closed.text


async def test_button_data_the_bot_never_made_and_huge_page_numbers_get_an_answer(reviewing, sms):
    officer = Officer(reviewing, sms)
    await officer.say("/start")
    await officer.send(Kind.BUTTON, payload="cmd:nonexistent")
    assert officer.said("stale_button") and not officer.said("internal_error")
    reviewer = Officer(reviewing, sms, user_id="rev1")
    await reviewer.say("/pending 99999999999999999999")
    assert reviewer.said("review_queue_end") and not reviewer.said("internal_error")
    await reviewer.send(Kind.BUTTON, payload="review:pending:99999999999999999999999")
    assert not reviewer.said("internal_error")


async def test_show_pages_a_long_history(reviewing, sms):
    officer = Officer(reviewing, sms)
    ref = await submitted(officer)
    reg = await stored(reviewing, ref)
    async with reviewing.repo.transaction():
        for n in range(45):  # a registration that went back and forth for weeks
            await reviewing.repo.add_audit(reg.id, reviewing.clock(), "test:officer-1", "note", f"เหตุการณ์ {n:02d}")
        total = len(await reviewing.repo.audit_trail(reg.id))
    reviewer = Officer(reviewing, sms, user_id="rev1")
    await reviewer.say(f"/show {ref}")
    [first] = reviewer.replies
    assert "เหตุการณ์ 44" in first.text and "เหตุการณ์ 25" in first.text and "เหตุการณ์ 24" not in first.text
    assert first.document is not None and f"review:show:{ref}:2" in reviewer.payloads
    seen = set()
    for page in range(2, 10):
        if f"review:show:{ref}:{page}" not in reviewer.payloads:
            break
        await reviewer.press(f"review:show:{ref}:{page}")
        assert reviewer.replies[0].document is None  # the photo comes once, with the card
        seen |= {line for line in reviewer.text.splitlines() if " · " in line}
    assert page == 4 and len(seen) == total - 20  # every older event, on pages 2 and 3
