"""The registration conversation through the real core and a real SQLite database."""

from __future__ import annotations

import pytest

from handlers.messages import Address, Kind
from handlers.steps import EDITABLE, STEPS, TOTAL_STEPS, State
from storage import School
from templates import text as t
from tests.helpers import ANSWERS, NATIONAL_ID, PHONE, Officer

SUMMARY_STEP = STEPS[State.SUMMARY].number


async def stored(officer: Officer):
    """(conversation, registration) as they are in the database now."""
    repo = officer.dispatcher.repo
    async with repo.transaction():
        conv = await repo.get_conversation(officer.channel, officer.user_id)
        reg = await repo.get_registration(conv.registration_id) if conv and conv.registration_id else None
    return conv, reg


async def test_whole_registration(officer: Officer, repo, sms):
    await officer.say("สวัสดีครับ")
    assert officer.said("greeting")
    assert f"ขั้นที่ 1/{TOTAL_STEPS}" in officer.text
    await officer.press("consent:accept")
    assert f"ขั้นที่ 2/{TOTAL_STEPS}" in officer.text
    await officer.press("aff:obec")
    steps = {"school_code": 3, "school_name": 3, "province": 3, "old_tsl": 4, "old_kiddiary": 5,
             "officer_name": 6, "national_id": 7, "phone": 8}
    for name, answer in ANSWERS.items():
        assert f"ขั้นที่ {steps[name]}/{TOTAL_STEPS}" in officer.text, name
        await officer.say(answer)
    assert f"ขั้นที่ 9/{TOTAL_STEPS}" in officer.text
    assert sms.sent[-1][0] == PHONE
    await officer.say(sms.last_code())
    assert officer.said("otp_verified", phone="081-234-5678")
    assert f"ขั้นที่ {SUMMARY_STEP}/{TOTAL_STEPS}" in officer.text
    for shown in ("โรงเรียนบ้านหนองบัว", "1054530001", "แพร่", "tsl1234", "nongbua.school",
                  "นางสาวสมศรี ใจดี", "1-2345-xxxxx-xx-1", "081-234-5678"):
        assert shown in officer.text
    assert NATIONAL_ID not in officer.text  # shown back masked only

    await officer.press("confirm")
    conv, reg = await stored(officer)
    assert officer.said("confirmed", ref=reg.ref)
    assert officer.said("ask_letter", signatory=t("signatory_school", "th", position="ผู้อำนวยการโรงเรียนบ้านหนองบัว"))
    document = officer.replies[-1].document
    assert document.data.startswith(b"%PDF-") and document.filename == f"KidDiary-{reg.ref}-1.pdf"
    assert conv.state == "letter"
    assert (reg.status, reg.affiliation, reg.school_code, reg.school_name, reg.province) == (
        "letter_issued", "obec", "1054530001", "โรงเรียนบ้านหนองบัว", "แพร่")
    assert (reg.old_tsl_username, reg.old_kiddiary_username) == ("tsl1234", "nongbua.school")
    assert (reg.officer_title, reg.officer_first_name, reg.officer_last_name) == ("นางสาว", "สมศรี", "ใจดี")
    assert (reg.national_id, reg.phone) == (NATIONAL_ID, PHONE)
    assert reg.phone_verified_at is not None and reg.confirmed_at is not None
    async with repo.transaction():
        trail = [e.kind for e in await repo.audit_trail(reg.id)]
    assert trail == ["created", "consent", "phone_verified", "confirmed", "letter_issued"]


async def test_lao_affiliation_names_the_right_signatory(officer: Officer):
    await officer.up_to("affiliation")
    await officer.press("aff:lao")
    assert officer.said("ask_school_code_lao")
    await officer.say("12345")  # 5 digits: a valid local-government code
    for answer in list(ANSWERS.values())[1:]:
        await officer.say(answer)
    await officer.say(officer.sms.last_code())
    await officer.press("confirm")
    # The name says it is a school: its director signs, and nobody asks.
    assert officer.said("ask_letter", signatory=t("signatory_school", "th", position="ผู้อำนวยการโรงเรียนบ้านหนองบัว"))


async def test_consent_declined_stores_nothing(officer: Officer, repo):
    await officer.say("/start")
    await officer.press("consent:decline")
    assert officer.said("consent_declined")
    conv, reg = await stored(officer)
    assert reg is None and conv.state == "start"
    async with repo.transaction():
        assert await repo.count_by_status() == {}


async def test_typed_labels_work_like_buttons_in_either_language(officer: Officer):
    await officer.say("/start")
    await officer.say("I agree")  # English label while the chat is in Thai
    assert "ขั้นที่ 2/" in officer.text
    await officer.say("สพฐ")  # without the dot
    _, reg = await stored(officer)
    assert reg.affiliation == "obec"


async def test_back_returns_to_the_previous_step_and_keeps_the_answer(officer: Officer):
    await officer.up_to("officer_name")
    await officer.say("ย้อนกลับ")
    assert officer.said("ask_old_kiddiary")
    assert officer.said("current_answer", value="nongbua.school")
    await officer.press("keep")
    assert officer.said("ask_officer_name")
    _, reg = await stored(officer)
    assert reg.old_kiddiary_username == "nongbua.school"


async def test_back_from_the_first_step(officer: Officer):
    await officer.say("/start")
    await officer.say("/back")
    assert officer.said("back_at_first")
    assert officer.said("ask_consent")


async def test_back_from_otp_offers_the_phone_again(officer: Officer):
    await officer.up_to("otp")
    await officer.press("cmd:back")
    assert officer.said("ask_phone")


async def test_cancel_asks_first_then_cancels(officer: Officer):
    await officer.up_to("national_id")
    await officer.say("ยกเลิก")
    _, reg = await stored(officer)
    assert officer.said("ask_cancel", ref=reg.ref)
    assert reg.status == "draft"  # nothing happens before the answer
    await officer.press("cancel:yes")
    assert officer.said("cancelled", ref=reg.ref)
    conv, current = await stored(officer)
    assert current is None and conv.state == "start"
    async with officer.dispatcher.repo.transaction():
        assert (await officer.dispatcher.repo.get_registration(reg.id)).status == "cancelled"


async def test_cancel_declined_continues_where_it_was(officer: Officer):
    await officer.up_to("national_id")
    await officer.say("/cancel")
    await officer.press("cancel:no")
    assert officer.said("cancel_aborted")
    assert officer.said("ask_national_id")
    _, reg = await stored(officer)
    assert reg.status == "draft"


async def test_an_answer_instead_of_yes_or_no_is_taken_as_the_answer(officer: Officer):
    await officer.up_to("national_id")
    await officer.say("/cancel")
    await officer.say(ANSWERS["national_id"])
    assert officer.said("ask_phone")
    _, reg = await stored(officer)
    assert reg.status == "draft" and reg.national_id == NATIONAL_ID


async def test_nothing_to_cancel(officer: Officer):
    await officer.say("/cancel")
    assert officer.said("nothing_to_cancel")


NEW_VALUES = {
    "school_code": ("1054530002", "school_code", "1054530002"),
    "school_name": ("โรงเรียนวัดใหม่", "school_name", "โรงเรียนวัดใหม่"),
    "province": ("น่าน", "province", "น่าน"),
    "old_tsl": ("ไม่มี", "old_tsl_username", ""),
    "old_kiddiary": ("kd2", "old_kiddiary_username", "kd2"),
    "officer_name": ("นายสมชาย ใจดี", "officer_first_name", "สมชาย"),
    "national_id": ("3100600445635", "national_id", "3100600445635"),
}


def test_every_editable_field_has_an_edit_test():
    assert set(NEW_VALUES) | {"affiliation", "phone"} == set(EDITABLE)  # those two have tests of their own


@pytest.mark.parametrize("field", list(NEW_VALUES))
async def test_edit_a_field_from_the_summary(officer: Officer, field: str):
    await officer.up_to("summary")
    _, before = await stored(officer)
    await officer.press(f"edit:{field}")
    answer, attribute, value = NEW_VALUES[field]
    await officer.say(answer)
    assert officer.said("progress", n=SUMMARY_STEP, total=TOTAL_STEPS, title=t("title_summary", "th"))
    _, after = await stored(officer)
    assert getattr(after, attribute) == value
    unchanged = {"ref", "phone", "affiliation", "national_id", "old_tsl_username"} - {attribute}
    assert all(getattr(after, name) == getattr(before, name) for name in unchanged)


async def test_edit_affiliation_to_one_whose_code_rule_fails_asks_the_code_again(officer: Officer):
    await officer.up_to("summary")
    await officer.press("edit:affiliation")
    await officer.press("aff:lao")  # a 10-digit code is valid for อปท. too: straight back to the summary
    assert officer.said("progress", n=SUMMARY_STEP, total=TOTAL_STEPS, title=t("title_summary", "th"))
    await officer.press("edit:school_code")
    await officer.say("123456")
    await officer.press("edit:affiliation")
    await officer.press("aff:obec")  # 6 digits is not an OBEC code
    assert officer.said("ask_school_code_obec")


async def test_edit_phone_needs_the_new_number_verified(officer: Officer, sms):
    await officer.up_to("summary")
    await officer.press("edit:phone")
    await officer.say("0991234567")
    assert sms.sent[-1][0] == "+66991234567"
    _, reg = await stored(officer)
    assert reg.phone == PHONE  # the verified number stays until the new one is verified
    await officer.say(sms.last_code("+66991234567"))
    assert "099-123-4567" in officer.text
    _, reg = await stored(officer)
    assert reg.phone == "+66991234567"


async def test_leaving_a_phone_edit_keeps_the_verified_number(officer: Officer, sms):
    await officer.up_to("summary")
    await officer.press("edit:phone")
    await officer.say("0991234567")
    await officer.press("cmd:back")
    assert officer.said("edit_abandoned")
    assert "081-234-5678" in officer.text
    _, reg = await stored(officer)
    assert reg.phone == PHONE


async def test_same_verified_phone_needs_no_new_code(officer: Officer, sms):
    await officer.up_to("summary")
    sent = len(sms.sent)
    await officer.press("edit:phone")
    await officer.say("+66 81 234 5678")
    assert officer.said("phone_already_verified", phone="081-234-5678")
    assert len(sms.sent) == sent


async def test_english_on_request(officer: Officer):
    await officer.up_to("national_id")
    await officer.say("/lang en")
    assert officer.said("lang_switched", "en")
    assert officer.said("ask_national_id", "en")
    assert "Step 7/" in officer.text
    await officer.say("12345")
    assert officer.said("err_nid_length", "en", count=5)
    await officer.say("/lang xx")
    assert officer.said("lang_unknown", "en")


async def test_language_hint_from_the_platform_picks_english_for_a_new_user(officer: Officer):
    await officer.send(Kind.FOLLOW, language_hint="en")
    assert officer.said("greeting", "en")


@pytest.mark.parametrize(
    "kind", [Kind.PHOTO, Kind.FILE, Kind.STICKER, Kind.LOCATION, Kind.AUDIO, Kind.VIDEO, Kind.CONTACT, Kind.OTHER]
)
async def test_a_non_text_message_where_text_is_expected(officer: Officer, kind: Kind):
    await officer.up_to("officer_name")
    _, before = await stored(officer)
    await officer.send(kind)
    names = {Kind.OTHER: "kind_other"}
    assert officer.said("expect_text", got=t(names.get(kind, f"kind_{kind}"), "th"))
    assert officer.payloads == ["cmd:back"]  # the question's own buttons come again
    conv, after = await stored(officer)
    assert conv.state == "officer_name" and after == before


async def test_a_photo_before_anything_greets(officer: Officer):
    await officer.photo()
    assert officer.said("greeting")


async def test_a_stale_button_is_refused(officer: Officer):
    await officer.up_to("officer_name")
    await officer.send(Kind.BUTTON, payload="aff:lao")
    assert officer.said("stale_button")
    _, reg = await stored(officer)
    assert reg.affiliation == "obec"


async def test_a_typed_answer_where_a_button_is_needed(officer: Officer):
    await officer.up_to("affiliation")
    await officer.say("โรงเรียนเอกชน")
    assert officer.said("expect_choice")
    _, reg = await stored(officer)
    assert reg.affiliation is None


async def test_a_very_long_message(officer: Officer):
    await officer.up_to("school_name")
    await officer.say("ก" * 10_000)
    assert officer.said("too_long", count=10_000)
    _, reg = await stored(officer)
    assert reg.school_name is None


async def test_zero_width_control_characters_and_thai_digits_are_cleaned(officer: Officer):
    await officer.up_to("national_id")
    await officer.say("\u200b๑-๒๓๔๕-๔๕๖๗๘-๗๘-๑\u200d\x07")
    _, reg = await stored(officer)
    assert reg.national_id == NATIONAL_ID


async def test_sql_looking_text_is_only_text(officer: Officer, repo):
    await officer.up_to("old_kiddiary")
    await officer.say("x');DROP_TABLE_registrations;--")
    _, reg = await stored(officer)
    assert reg.old_kiddiary_username == "x');DROP_TABLE_registrations;--"
    async with repo.transaction():
        assert await repo.count_by_status() == {"draft": 1}


async def test_empty_message(officer: Officer):
    await officer.up_to("school_name")
    await officer.say("\u200b \u200b")
    assert officer.said("empty_answer")


async def test_unknown_command(officer: Officer):
    await officer.up_to("school_name")
    await officer.say("/frobnicate")
    assert officer.said("unknown_command", command="/frobnicate")


async def test_status_and_help_at_a_step(officer: Officer):
    await officer.up_to("phone")
    await officer.say("สถานะ")
    _, reg = await stored(officer)
    assert officer.said("status_in_progress", ref=reg.ref, n=8, total=TOTAL_STEPS, title=t("title_phone", "th"))
    await officer.say("ช่วยเหลือ")
    assert officer.said("help_phone") and officer.said("help_general")
    conv, _ = await stored(officer)
    assert conv.state == "phone"


async def test_status_before_anything(officer: Officer):
    await officer.say("/status")
    assert officer.said("status_none")


async def test_new_registration_only_after_confirming_the_current_one(officer: Officer, repo):
    await officer.up_to("summary")
    await officer.say("/new")
    _, first = await stored(officer)
    assert officer.said("new_needs_confirm", ref=first.ref)
    await officer.press("confirm")
    await officer.say("/new")
    assert officer.said("ask_consent")
    await officer.press("consent:accept")
    await officer.press("aff:lao")
    _, second = await stored(officer)
    assert second.id != first.id and second.affiliation == "lao"
    async with repo.transaction():
        assert (await repo.get_registration(first.id)).confirmed_at is not None


async def test_back_after_confirming_reopens_the_summary(officer: Officer):
    await officer.up_to("summary")
    await officer.press("confirm")
    await officer.say("/back")
    assert "confirm" in officer.payloads
    _, reg = await stored(officer)
    assert reg.confirmed_at is None and reg.letter_version == 1


async def test_messages_in_a_group_are_not_registrations(officer: Officer):
    await officer.send(Kind.TEXT, text="/start", group_id="group-1")
    assert officer.said("group_private")
    conv, _ = await stored(officer)
    assert conv.state == "start"


async def test_school_directory_fills_in_the_name(officer: Officer, repo):
    async with repo.transaction():
        await repo.import_schools([
            School("1054530001", "โรงเรียนบ้านหนองบัว", "แพร่", "obec"),
            School("540001", "ศูนย์พัฒนาเด็กเล็กบ้านดอนมูล", "แพร่", "lao"),
        ])
    await officer.up_to("school_code")
    await officer.say("1054530099")
    assert officer.said("err_code_not_in_directory", code="1054530099")
    await officer.say("540001")  # in the directory, but not an OBEC code length
    assert officer.said("err_code_length_obec", count=6)
    await officer.say("1054530001")
    assert officer.said("school_found", name="โรงเรียนบ้านหนองบัว", province="แพร่")
    assert officer.said("ask_old_tsl")  # name and province skipped
    await officer.say("/back")
    assert officer.said("ask_school_code_obec")


async def test_school_directory_refuses_the_other_affiliation(officer: Officer, repo):
    async with repo.transaction():
        await repo.import_schools([School("12345678", "ศูนย์พัฒนาเด็กเล็กบ้านดอนมูล", "แพร่", "lao")])
    await officer.up_to("school_code")
    await officer.say("12345678")
    assert officer.said("err_code_other_affiliation", code="12345678", name="ศูนย์พัฒนาเด็กเล็กบ้านดอนมูล")


async def test_stats_are_for_admins_only(dispatcher, sms, settings):
    from dataclasses import replace

    officer = Officer(dispatcher, sms)
    await officer.up_to("affiliation")
    await officer.say("/stats")
    assert officer.said("not_allowed")
    dispatcher.settings = replace(settings, admins=frozenset({Address("test", "boss")}))
    admin = Officer(dispatcher, sms, user_id="boss")
    await admin.say("/stats")
    assert admin.said("stats", lines=f"• {t('status_name_draft', 'th')}: 1", total=1)


async def test_withdrawing_consent_after_going_back_erases_the_personal_data(officer: Officer, repo):
    await officer.up_to("phone")
    _, reg = await stored(officer)
    for _ in range(9):  # back, all the way to the privacy notice
        await officer.say("/back")
    assert officer.said("ask_consent")
    await officer.press("consent:decline")
    assert officer.said("consent_declined")
    conv, current = await stored(officer)
    assert current is None and conv.state == "start"
    async with repo.transaction():
        erased = await repo.get_registration(reg.id)
        trail = [e.kind for e in await repo.audit_trail(reg.id)]
    assert erased.status == "cancelled" and trail[-1] == "consent_withdrawn"
    assert (erased.national_id, erased.officer_first_name, erased.phone) == (None, None, None)
    for message in ("/status", "สวัสดี", "/back", "/help"):  # the chat still works afterwards
        await officer.say(message)
        assert not officer.said("internal_error"), message
    await officer.say("/start")
    assert officer.said("ask_consent")


async def test_cancelling_erases_the_personal_data(officer: Officer, repo):
    await officer.up_to("summary")
    _, reg = await stored(officer)
    await officer.say("/cancel")
    await officer.press("cancel:yes")
    async with repo.transaction():
        erased = await repo.get_registration(reg.id)
    assert erased.status == "cancelled"
    assert (erased.national_id, erased.officer_last_name, erased.phone) == (None, None, None)
    assert erased.school_code == "1054530001"  # what the school is, is not personal


async def test_changing_affiliation_re_checks_a_directory_school(officer: Officer, repo):
    async with repo.transaction():
        await repo.import_schools([School("1054530001", "โรงเรียนบ้านหนองบัว", "แพร่", "obec")])
    await officer.up_to("school_code")
    await officer.say("1054530001")
    for answer in list(ANSWERS.values())[3:]:
        await officer.say(answer)
    await officer.say(officer.sms.last_code())
    await officer.press("edit:affiliation")
    await officer.press("aff:lao")  # the directory has this code as an OBEC school
    assert officer.said("ask_school_code_lao")
    _, reg = await stored(officer)
    assert (reg.affiliation, reg.school_code, reg.school_name) == ("lao", None, None)


async def test_leaving_an_edit_after_a_bad_answer_keeps_the_stored_value(officer: Officer):
    await officer.up_to("summary")
    await officer.press("edit:school_code")
    await officer.say("12")  # a typo
    await officer.say("/back")
    assert officer.said("edit_abandoned")
    _, reg = await stored(officer)
    assert (reg.school_code, reg.school_name, reg.province) == ("1054530001", "โรงเรียนบ้านหนองบัว", "แพร่")


async def test_keep_at_the_phone_step_keeps_the_verified_number_not_a_pending_one(officer: Officer, sms):
    await officer.up_to("summary")
    await officer.say("/back")  # to the phone
    await officer.say("0991234567")  # a new number: a code is on its way
    await officer.say("/back")  # from the code, back to the phone
    await officer.press("keep")
    assert officer.said("progress", n=SUMMARY_STEP, total=TOTAL_STEPS, title=t("title_summary", "th"))
    assert "081-234-5678" in officer.text
    conv, reg = await stored(officer)
    assert reg.phone == PHONE and conv.otp_challenge_id is None


async def test_no_command_leaves_the_chat_stuck_at_the_letter_step(officer: Officer):
    await officer.up_to("summary")
    await officer.press("confirm")
    for message in ("/cancel", "ไม่", "/status", "/help", "/start", "/back"):
        await officer.say(message)
        assert not officer.said("internal_error"), message
