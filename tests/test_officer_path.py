"""The places where an officer used to get stuck or misled, each walked through the real core."""

from __future__ import annotations

from dataclasses import replace

import pytest

from handlers.dispatch import Dispatcher
from handlers.messages import Address, Kind
from handlers.validation import thai_mobile
from templates import text as t
from tests.helpers import ANSWERS, NATIONAL_ID, PHONE, Officer
from tests.test_cli import Chat, walk_to_otp
from tests.test_signed_letter import at_letter_step, letter_pdf, phone_photo, send, without_qr

REVIEW_CHAT = Address("test", "review-group")
REVIEWER = Address("test", "rev1")


@pytest.fixture
def reviewing(dispatcher: Dispatcher, settings) -> Dispatcher:
    dispatcher.settings = replace(settings, reviewers=frozenset({REVIEWER}), review_chats=(REVIEW_CHAT,))
    return dispatcher


async def registrations(officer: Officer):
    repo = officer.dispatcher.repo
    async with repo.transaction():
        return await repo.registrations_of(officer.channel, officer.user_id)


async def submitted_first_school(officer: Officer) -> tuple[str, bytes]:
    """The first school registered and its signed letter sent: its reference and letter."""
    await at_letter_step(officer)
    pdf = letter_pdf(officer)
    await send(officer, phone_photo(pdf))
    return (await registrations(officer))[0].ref, pdf


async def second_school_up_to_old_kiddiary(officer: Officer) -> str:
    """/new, and the second school's answers up to step 5 (old KidDiary username)."""
    await officer.say("/new")
    await officer.press("consent:accept")
    await officer.press("aff:obec")
    for answer in ("1054530002", "โรงเรียนวัดใหม่", "น่าน", "tsl9999"):
        await officer.say(answer)
    assert officer.said("ask_old_kiddiary")
    return (await registrations(officer))[-1].ref


async def reject(dispatcher: Dispatcher, sms, ref: str, officer: Officer):
    reviewer = Officer(dispatcher, sms, user_id=REVIEWER.id)
    await reviewer.say(f"/reject {ref} unreadable")
    [notice] = [r for r in reviewer.replies if r.to == Address(officer.channel, officer.user_id)]
    return notice


# --- a rejection while registering another school ----------------------------------------

async def test_a_rejection_arriving_mid_draft_has_buttons_that_work_from_there(reviewing, sms):
    officer = Officer(reviewing, sms)
    first, _ = await submitted_first_school(officer)
    second = await second_school_up_to_old_kiddiary(officer)
    notice = await reject(reviewing, sms, first, officer)
    payloads = [c.payload for c in notice.choices]
    assert f"reg:photo:{first}" in payloads and f"reg:edit:{first}" in payloads

    await officer.say(t("btn_letter_edit", "th"))  # typed, not pressed: never the old KidDiary username
    assert officer.said("err_button_typed", label=t("btn_letter_edit", "th"))
    assert f"reg:edit:{first}" in officer.payloads  # the button meant, offered right there
    draft = (await registrations(officer))[-1]
    assert draft.old_kiddiary_username is None and draft.old_tsl_username == "tsl9999"

    await officer.send(Kind.BUTTON, payload=f"reg:edit:{first}")  # pressed on the notice, at step 5 of the second
    assert officer.said("reg_kept", ref=second)
    assert officer.replies[-1].text.startswith(t("progress", "th", n=10, total=12, title=t("title_summary", "th")))
    rejected, draft = await registrations(officer)
    assert rejected.confirmed_at is None and rejected.status == "rejected"
    assert (draft.status, draft.school_code, draft.old_tsl_username) == ("draft", "1054530002", "tsl9999")

    await officer.press("confirm")  # a new letter for the first school
    assert (await registrations(officer))[0].letter_version == 2
    await officer.say("/status")  # both, and a button back to the second
    assert first in officer.text and second in officer.text and t("todo_draft", "th") in officer.text
    await officer.press(f"reg:resume:{second}")
    assert officer.said("ask_old_kiddiary")
    await officer.say("nongbua.kd")
    assert (await registrations(officer))[-1].old_kiddiary_username == "nongbua.kd"


async def test_send_a_new_photo_from_the_middle_of_another_draft(reviewing, sms):
    officer = Officer(reviewing, sms)
    first, pdf = await submitted_first_school(officer)
    await second_school_up_to_old_kiddiary(officer)
    await reject(reviewing, sms, first, officer)
    await officer.photo(without_qr(pdf))  # no readable seal, mid-questions: not taken for anything
    assert (await registrations(officer))[0].status == "rejected"

    await officer.send(Kind.BUTTON, payload=f"reg:photo:{first}")
    assert officer.said("ask_letter", signatory=t("signatory_school", "th", position="ผู้อำนวยการโรงเรียนบ้านหนองบัว"))
    await send(officer, without_qr(pdf))
    assert officer.said("letter_received_unverified", ref=first)
    regs = await registrations(officer)
    assert regs[0].status == "submitted" and regs[1].status == "draft"


async def test_a_registration_button_of_someone_else_or_from_before_is_stale(reviewing, sms):
    officer = Officer(reviewing, sms)
    first, pdf = await submitted_first_school(officer)
    await reject(reviewing, sms, first, officer)
    stranger = Officer(reviewing, sms, user_id="someone-else")
    await stranger.send(Kind.BUTTON, payload=f"reg:edit:{first}")  # not theirs: nothing happens to it
    assert stranger.said("reg_button_stale")
    assert (await registrations(officer))[0].confirmed_at is not None

    await officer.send(Kind.BUTTON, payload=f"reg:photo:{first}")
    await send(officer, phone_photo(pdf, angle=3))  # submitted again
    await officer.send(Kind.BUTTON, payload=f"reg:edit:{first}")  # the old notice's button: the review is on
    assert officer.said("reg_button_stale")
    assert (await registrations(officer))[0].status == "submitted"


# --- /status --------------------------------------------------------------------------------

async def test_status_lists_every_registration_even_after_a_draft_is_cancelled(reviewing, sms):
    officer = Officer(reviewing, sms)
    first, _ = await submitted_first_school(officer)
    second = await second_school_up_to_old_kiddiary(officer)
    await officer.say("/status")
    lines = officer.replies[-1].text
    assert t("status_all", "th", count=2, lines="").strip() in lines
    assert first in lines and second in lines
    assert t("todo_submitted", "th") in lines and t("todo_draft_current", "th") in lines

    await officer.say("/cancel")
    await officer.press("cancel:yes")
    await officer.say("/status")
    assert not officer.said("status_none")
    assert first in officer.text and second not in officer.text
    assert t("status_name_submitted", "th") in officer.text


# --- consent -------------------------------------------------------------------------------

@pytest.mark.parametrize("word", ["ยินยอม", "ตกลง", "ok", "OK"])
async def test_the_words_of_the_question_accept_the_notice(officer: Officer, word):
    await officer.say("/start")
    await officer.say(word)
    assert officer.said("ask_affiliation")
    assert len(await registrations(officer)) == 1


async def test_declining_does_not_claim_nothing_is_kept_from_an_officer_with_registrations(reviewing, sms):
    officer = Officer(reviewing, sms)
    first, _ = await submitted_first_school(officer)
    await officer.say("/new")
    await officer.say("ไม่ยินยอม")
    assert officer.said("consent_declined_others", refs=first)
    assert not officer.said("consent_declined")
    [kept] = await registrations(officer)
    assert kept.national_id == NATIONAL_ID and kept.status == "submitted"  # untouched


# --- the same phone again, and an overtaken code ----------------------------------------------

async def test_changing_to_the_same_number_keeps_the_code(officer: Officer, sms, repo):
    await officer.up_to("otp")
    code = sms.last_code(PHONE)
    await officer.press("otp:change")
    await officer.say(ANSWERS["phone"])  # the same number, seconds later: no "wait 49 s"
    assert not officer.said("err_otp_cooldown", seconds=60)
    assert "otp:resend" in officer.payloads  # at the code step again
    assert t("otp_code_kept", "th", phone="08x-xxx-5678", until="")[:20] in officer.text
    await officer.say(code)
    assert officer.said("otp_verified", phone="081-234-5678")
    assert len(sms.sent) == 1  # one SMS in all


async def test_the_code_typed_at_the_phone_step_is_taken(officer: Officer, sms):
    await officer.up_to("otp")
    code = sms.last_code(PHONE)
    await officer.press("otp:change")
    await officer.say(code)  # the still-valid code, typed where the number is asked
    assert officer.said("otp_verified", phone="081-234-5678")
    assert (await registrations(officer))[0].phone == PHONE


async def test_a_replaced_code_is_told_so_and_not_counted(officer: Officer, sms, clock, repo):
    await officer.up_to("otp")
    old = sms.last_code(PHONE)
    clock.advance(seconds=61)
    await officer.press("otp:resend")
    new = sms.last_code(PHONE)
    assert new != old or pytest.skip("the two random codes happen to be equal")
    await officer.say(old)
    assert officer.said("err_otp_replaced", phone="08x-xxx-5678")
    async with repo.transaction():
        assert (await repo.otp.guard(PHONE)).failures == 0  # not a wrong try
    await officer.say(new)
    assert officer.said("otp_verified", phone="081-234-5678")


# --- typed labels are not answers -------------------------------------------------------------

LABELS = [t("btn_letter_edit", "th"), t("btn_letter_edit", "en"), t("btn_confirm", "th"), t("btn_resend", "th")]


@pytest.mark.parametrize("step", ["old_tsl", "old_kiddiary", "school_name", "officer_name"])
async def test_a_button_label_typed_at_a_free_text_step_is_not_an_answer(officer: Officer, step):
    await officer.up_to(step)
    before = (await registrations(officer))[0]
    for label in LABELS:
        await officer.say(label)
        assert officer.said("err_button_typed", label=label)
        assert (await registrations(officer))[0] == before


async def test_none_is_still_an_answer_to_the_optional_steps(officer: Officer):
    await officer.up_to("old_tsl")
    await officer.say(t("btn_none", "th"))
    assert officer.said("ask_old_kiddiary")
    assert (await registrations(officer))[0].old_tsl_username == ""


# --- the province near miss -------------------------------------------------------------------

async def test_the_province_suggestion_is_a_button(officer: Officer):
    await officer.up_to("province")
    await officer.say("แพร")
    assert officer.said("err_province_suggest", suggestion="แพร่")
    assert officer.payloads[0] == "say:แพร่"
    assert (await registrations(officer))[0].province is None
    await officer.press("say:แพร่")
    assert officer.said("ask_old_tsl")
    assert (await registrations(officer))[0].province == "แพร่"


async def test_a_suggestion_payload_is_validated_like_typed_text(officer: Officer):
    await officer.up_to("province")
    await officer.send(Kind.BUTTON, payload="say:ไม่ใช่จังหวัด")
    assert officer.said("err_province_unknown")
    assert (await registrations(officer))[0].province is None


# --- the school already registered ------------------------------------------------------------

async def test_the_officer_is_told_the_school_is_already_registered(reviewing, sms):
    first = Officer(reviewing, sms, user_id="first")
    await submitted_first_school(first)
    second = Officer(reviewing, sms, user_id="second", phone="0822222222")
    await second.up_to("school_code")
    await second.say(ANSWERS["school_code"])
    assert second.said("school_registered_pending", code=ANSWERS["school_code"])
    assert second.said("ask_school_name")  # told, not stopped

    reviewer = Officer(reviewing, sms, user_id=REVIEWER.id)
    await reviewer.say(f"/approve {(await registrations(first))[0].ref}")
    third = Officer(reviewing, sms, user_id="third", phone="0833333333")
    await third.up_to("school_code")
    await third.say(ANSWERS["school_code"])
    assert third.said("school_registered_approved", code=ANSWERS["school_code"])


async def test_a_fresh_school_says_nothing_of_the_kind(officer: Officer):
    await officer.up_to("school_code")
    await officer.say(ANSWERS["school_code"])
    assert not officer.said("school_registered_pending", code=ANSWERS["school_code"])


@pytest.mark.parametrize(("phone", "national_id", "which"), [
    ("0822222222", ANSWERS["national_id"], "national_id"),
    (ANSWERS["phone"], "3-1012-00345-67-7", "phone"),
])
async def test_the_reviewers_warning_says_what_matched(reviewing, sms, clock, phone, national_id, which):
    first = Officer(reviewing, sms, user_id="a")
    first_ref, _ = await submitted_first_school(first)
    second = Officer(reviewing, sms, user_id="b", phone=phone)
    await second.up_to("school_code")
    for answer in ("1054530002", "โรงเรียนวัดใหม่", "น่าน", "ไม่มี", "ไม่มี", "นางสาวสมศรี ใจดี", national_id):
        await second.say(answer)
    clock.advance(minutes=2)  # past the resend wait of a shared phone
    await second.say(phone)
    await second.say(sms.last_code(thai_mobile(phone)))
    await second.press("confirm")
    await send(second, phone_photo(letter_pdf(second)))
    [card] = [r for r in second.replies if r.to == REVIEW_CHAT]
    assert t(f"review_warning_person_{which}", "th", ref=first_ref, school="โรงเรียนบ้านหนองบัว") in card.text


# --- the history as reviewers read it -----------------------------------------------------------

async def test_the_history_is_in_the_reviewers_language(reviewing, sms):
    officer = Officer(reviewing, sms)
    first, _ = await submitted_first_school(officer)
    await reject(reviewing, sms, first, officer)
    await officer.send(Kind.BUTTON, payload=f"reg:edit:{first}")
    reviewer = Officer(reviewing, sms, user_id=REVIEWER.id)
    await reviewer.say(f"/show {first}")
    for machine_word in ("created", "phone_verified", "reopened", "letter_issued", "consent", "rejected", "version"):
        assert machine_word not in reviewer.text
    for key in ("history_created", "history_phone_verified", "history_reopened", "history_confirmed"):
        assert t(key, "th") in reviewer.text
    assert t("history_rejected", "th", reason=t("reason_unreadable", "th")) in reviewer.text
    await reviewer.say("/lang en")
    await reviewer.say(f"/show {first}")
    assert t("history_reopened", "en") in reviewer.text and t("history_phone_verified", "en") in reviewer.text


# --- the console ----------------------------------------------------------------------------

def test_in_the_console_a_six_digit_code_is_a_code_not_a_button(tmp_path):
    chat = Chat(tmp_path)
    code = walk_to_otp(chat)
    wrong = "000002" if code != "000002" else "000003"  # "2" would be the change-number button
    chat.send(wrong)
    said = chat.wait_for(t("err_otp_wrong", "th", left=4))
    assert t("ask_phone", "th") not in said
    chat.send(code)
    chat.wait_for(t("otp_verified", "th", phone="081-234-5678"))
    chat.send("/quit")
    assert chat.proc.wait(timeout=20) == 0
