"""What the privacy notice promises, through the real core: erasure that leaves nothing behind,
/mydata and /delete_my_data, admins' /data_show and /data_erase, the retention job on a
controlled clock, and where reviewers may look."""

from __future__ import annotations

import asyncio
import os
from dataclasses import replace
from datetime import timedelta

import pytest

from bot.config import ConfigError, load_config
from bot.letter_files import LetterFiles
from bot.links import LetterLink, LetterLinks
from bot.retention import RetentionJob
from handlers.dispatch import Dispatcher
from handlers.messages import Address, Kind
from handlers.privacy import ACCOUNT_RETENTION
from handlers.provisioning import SchoolCodeProvisioner
from handlers.turn import BANGKOK
from templates import text as t
from tests.helpers import ManualTimer, Officer
from tests.test_signed_letter import at_letter_step, letter_pdf, phone_photo, send

REVIEW_CHAT = Address("test", "review-group")
REVIEWER = Address("test", "rev1")
ADMIN = Address("test", "boss")


@pytest.fixture
def staffed(dispatcher: Dispatcher, settings) -> Dispatcher:
    dispatcher.settings = replace(settings, reviewers=frozenset({REVIEWER}), admins=frozenset({ADMIN}),
                                  review_chats=(REVIEW_CHAT,))
    dispatcher.provisioner = SchoolCodeProvisioner("https://kiddiary.example/login")
    return dispatcher


async def submitted(officer: Officer) -> str:
    await at_letter_step(officer)
    await send(officer, phone_photo(letter_pdf(officer)))
    return (await stored(officer))[0][-1].ref


async def stored(officer: Officer):
    """(registrations, signed-letter rows, one-time-code rows, phone guards, conversation) as on disk."""
    repo = officer.dispatcher.repo
    async with repo.transaction():
        regs = await repo.registrations_of(officer.channel, officer.user_id)
        letters = [x for r in regs for x in await repo.signed_letters_of(r.id)]
        codes = await repo._all("SELECT * FROM otp_challenges")
        guards = await repo._all("SELECT * FROM otp_phone_guards")
        conv = await repo.get_conversation(officer.channel, officer.user_id)
    return regs, letters, codes, guards, conv


def upload_files(files) -> list[str]:
    return sorted(p.name for p in files.root.glob("*/*")) if files.root.exists() else []


async def trail(dispatcher: Dispatcher, ref: str) -> list:
    async with dispatcher.repo.transaction():
        reg = await dispatcher.repo.get_registration_by_ref(ref)
        return await dispatcher.repo.audit_trail(reg.id)


# --- erasure on cancel --------------------------------------------------------------------


async def test_cancel_erases_the_codes_and_guard_of_the_phone_and_says_so(officer: Officer, clock):
    await officer.up_to("otp")
    await officer.say("000000")  # a wrong code: the phone gets a wrong-code count
    regs, _, codes, guards, _ = await stored(officer)
    assert codes and guards
    clock.advance(days=2)  # the codes are past every sending limit: they go entirely
    await officer.say("/cancel")
    await officer.press("cancel:yes")
    regs, _, codes, guards, conv = await stored(officer)
    assert guards == []
    # Past every limit: gone, except the newest row of all, kept stripped (its id is never given again).
    assert len(codes) <= 1 and all(c["phone_index"].startswith("erased:") for c in codes)
    assert (regs[0].status, regs[0].national_id, regs[0].officer_first_name, conv.otp_challenge_id) == (
        "cancelled", None, None, None)
    [event] = [e for e in await trail(officer.dispatcher, regs[0].ref) if e.kind == "cancelled"]
    assert event.detail.startswith("personal data erased: national ID, phone, name;")
    assert "1 one-time code(s), 1 phone lock(s)" in event.detail


async def test_codes_younger_than_a_day_stay_stripped_so_limits_still_hold(officer: Officer, crypto):
    await officer.up_to("otp")
    await officer.say("/cancel")
    await officer.press("cancel:yes")
    _, _, codes, _, _ = await stored(officer)
    [code] = codes  # still counts against the chat user's and the global daily limits…
    assert code["phone_index"].startswith("erased:") and code["closed_at"] is not None
    assert crypto.decrypt(code["phone_enc"]) == "" and crypto.decrypt(code["secret_enc"]) == ""  # …naming nobody
    assert code["phone_index"] != crypto.index("phone", "+66812345678")


async def test_a_running_lockout_is_not_lifted_by_erasing(officer: Officer):
    await officer.up_to("otp")
    for _ in range(5):
        await officer.say("000000")
    _, _, _, [guard], _ = await stored(officer)
    assert guard["locked_until"] is not None
    await officer.say("/cancel")
    await officer.press("cancel:yes")
    _, _, _, guards, _ = await stored(officer)
    assert len(guards) == 1  # erasing must not be a way round the lock; the retention job removes it later


# --- /mydata ----------------------------------------------------------------------------


async def test_mydata_shows_everything_stored_with_the_national_id_masked(staffed, sms):
    officer = Officer(staffed, sms)
    ref = await submitted(officer)
    replies = await officer.say("/mydata")
    shown = officer.text
    for expected in (ref, "โรงเรียนบ้านหนองบัว", "1054530001", "แพร่", "tsl1234", "nongbua.school", t("kind_photo", "th"),
                     "นางสาวสมศรี ใจดี", "1-2345-xxxxx-xx-1", "081-234-5678", t("review_qr_matched", "th"),
                     t("audit_consent", "th"), t("audit_submitted", "th"), t("privacy_actor_you", "th"),
                     t("status_name_submitted", "th")):
        assert expected in shown, expected
    assert "1234545678781" not in shown  # the full number never goes into a chat message
    assert len(replies) == 3  # the summary, one registration, how to erase
    async with staffed.repo.transaction():
        [entry] = await staffed.repo.audit_log.entries("data_viewed")
    assert (entry.actor, entry.detail["refs"]) == ("test:officer-1", [ref])


async def test_mydata_says_who_looked_and_names_no_reviewer(staffed, sms, clock):
    officer = Officer(staffed, sms)
    ref = await submitted(officer)
    await officer.say("/mydata")
    assert officer.said("privacy_views_none")
    reviewer = Officer(staffed, sms, user_id="rev1")
    await reviewer.say("/pending")  # a list of schools: not a look at the officer's data
    await reviewer.say(f"/show {ref}")
    await reviewer.say(f"/reject {ref} unreadable")
    await officer.say("/mydata")
    assert t("audit_rejected", "th") in officer.text and t("privacy_actor_staff", "th") in officer.text
    when = t("time_today", "th", time=clock().astimezone(BANGKOK).strftime("%H:%M"))
    assert officer.said("privacy_views", count=1, when=when)
    assert "rev1" not in officer.text


async def test_mydata_with_nothing_stored(officer: Officer):
    await officer.say("/mydata")
    assert officer.said("privacy_mydata", count=0, language="th", codes=0, consent="-")


# --- /delete_my_data --------------------------------------------------------------------


async def test_delete_my_data_asks_then_erases_everything_of_a_submission(staffed, sms, files, clock):
    officer = Officer(staffed, sms)
    ref = await submitted(officer)
    assert upload_files(files)
    await officer.say("/delete_my_data")
    assert officer.payloads == ["privacy:erase", "privacy:keep"]
    assert ref in officer.text and upload_files(files)  # nothing gone before the confirmation
    await officer.press("privacy:erase")
    assert officer.said("privacy_deleted", count=1, letters=1, kept=t("privacy_nothing_kept", "th"))
    regs, letters, codes, _, conv = await stored(officer)
    assert letters == [] and upload_files(files) == []
    assert all(c["phone_index"].startswith("erased:") for c in codes)
    reg = regs[0]
    assert (reg.status, reg.officer_first_name, reg.national_id, reg.phone) == ("cancelled", None, None, None)
    assert (conv.state, conv.registration_id, conv.consent_at) == ("start", None, None)
    assert [e.kind for e in await trail(staffed, ref)][-1] == "data_erased"
    await officer.say("/mydata")
    when = t("time_today", "th", time=clock().astimezone(BANGKOK).strftime("%H:%M"))
    assert f"{ref} · {t('status_name_cancelled', 'th')} · {t('privacy_erased_at', 'th', when=when)}" in officer.text
    assert "สมศรี" not in officer.text and t("kind_photo", "th") not in officer.text  # no name, no scan listed


async def test_the_typed_word_confirms_and_keep_keeps(officer: Officer, files):
    await officer.up_to("national_id")
    await officer.say("/delete_my_data")
    await officer.press("privacy:keep")
    assert officer.said("privacy_delete_kept")
    regs, *_ = await stored(officer)
    assert regs[0].officer_first_name == "สมศรี"
    await officer.say("ลบข้อมูล")  # the request was answered: the word is an ordinary answer now
    assert not officer.said("privacy_deleted", count=1, letters=0, kept=t("privacy_nothing_kept", "th"))
    await officer.say("/delete_my_data")
    await officer.say("DELETE")
    regs, *_ = await stored(officer)
    assert (regs[0].status, regs[0].officer_first_name) == ("cancelled", None)


async def test_an_old_request_or_a_stale_button_erases_nothing(officer: Officer, clock):
    await officer.up_to("national_id")
    await officer.say("/delete_my_data")
    clock.advance(minutes=11)
    await officer.press("privacy:erase")
    assert officer.said("privacy_delete_expired")
    regs, *_ = await stored(officer)
    assert (regs[0].status, regs[0].officer_first_name) == ("draft", "สมศรี")


async def test_an_approved_registration_keeps_the_appointment_record(staffed, sms, files):
    officer = Officer(staffed, sms)
    ref = await submitted(officer)
    await Officer(staffed, sms, user_id="rev1").say(f"/approve {ref}")
    await officer.say("/delete_my_data")
    assert t("privacy_plan_approved", "th", ref=ref, school="โรงเรียนบ้านหนองบัว", until="")[:40] in officer.text
    await officer.say("ลบข้อมูล")
    regs, letters, _, _, _ = await stored(officer)
    reg = regs[0]
    assert (reg.status, reg.account_username, reg.national_id, reg.phone) == ("approved", "sch1054530001", None, None)
    assert reg.officer_first_name == "สมศรี" and len(letters) == 1 and upload_files(files)
    [event] = [e for e in await trail(staffed, ref) if e.kind == "data_erased"]
    assert event.detail.endswith("kept: name, signed letter")


async def test_a_button_never_made_erases_nothing(officer: Officer):
    await officer.up_to("national_id")
    await officer.say("/delete_my_data")
    await officer.send(Kind.BUTTON, payload="privacy:erase_everything_now")
    assert officer.said("stale_button")
    regs, *_ = await stored(officer)
    assert (regs[0].status, regs[0].officer_first_name) == ("draft", "สมศรี")


async def test_delete_with_nothing_stored(officer: Officer):
    await officer.say("/delete_my_data")
    assert officer.said("privacy_delete_nothing") and officer.payloads == []


# --- admins ------------------------------------------------------------------------------


async def test_admin_shows_and_erases_by_reference_audited(staffed, sms, files):
    officer = Officer(staffed, sms)
    ref = await submitted(officer)
    admin = Officer(staffed, sms, user_id="boss")
    await admin.say(f"/data_show {ref.lower()}")
    assert "นางสาวสมศรี ใจดี" in admin.text and "1-2345-xxxxx-xx-1" in admin.text and "test:officer-1" in admin.text
    await admin.say(f"/data_erase {ref}")
    assert admin.payloads == ["privacy:erase", "privacy:keep"] and upload_files(files)
    await admin.press("privacy:erase")
    assert admin.said("privacy_admin_erased", ref=ref, letters=1)
    regs, letters, _, _, conv = await stored(officer)
    assert (regs[0].status, regs[0].officer_first_name, letters, upload_files(files)) == ("cancelled", None, [], [])
    assert (conv.state, conv.registration_id) == ("start", None)  # the officer starts afresh
    events = [(e.kind, e.actor) for e in await trail(staffed, ref)]
    assert ("data_shown", "test:boss") in events and ("data_erased_by_admin", "test:boss") in events


@pytest.mark.parametrize("who, where, command, key", [
    ("rev1", None, "/data_erase {ref}", "not_allowed"),
    ("boss", "admins-group", "/data_erase {ref}", "privacy_admin_private"),
    ("boss", "admins-group", "/data_show {ref}", "privacy_admin_private"),
    ("boss", None, "/data_show", "privacy_admin_usage"),
    ("boss", None, "/data_erase {ref} {ref}", "privacy_admin_usage"),
    ("boss", None, "/data_erase " + "K" * 4000, "privacy_admin_usage"),  # (over 5,000: refused on length)
    ("boss", None, "/data_erase KD-0000-0000", "review_unknown"),
])
async def test_admin_commands_refused_and_nothing_changed(staffed, sms, who, where, command, key):
    officer = Officer(staffed, sms)
    await officer.up_to("national_id")
    ref = (await stored(officer))[0][0].ref
    other = Officer(staffed, sms, user_id=who)
    await other.send(Kind.TEXT, text=command.format(ref=ref), group_id=where)
    assert other.said(key, ref="KD-0000-0000") and other.payloads == []
    assert len(other.text) < 300 and ref not in other.text
    regs, *_ = await stored(officer)
    assert (regs[0].status, regs[0].officer_first_name) == ("draft", "สมศรี")


# --- review chats ------------------------------------------------------------------------


async def test_show_only_in_review_chats_and_private_chats_and_every_view_audited(staffed, sms):
    ref = await submitted(Officer(staffed, sms))
    reviewer = Officer(staffed, sms, user_id="rev1")
    await reviewer.send(Kind.TEXT, text=f"/show {ref}", group_id="chit-chat-group")
    assert reviewer.said("review_show_not_here") and all(r.document is None for r in reviewer.replies)
    await reviewer.send(Kind.TEXT, text=f"/show {ref}", group_id="review-group")
    assert any(r.document is not None for r in reviewer.replies)
    await reviewer.say(f"/show {ref}")
    assert any(r.document is not None for r in reviewer.replies)
    await reviewer.say("/pending")
    async with staffed.repo.transaction():
        views = await staffed.repo.audit_log.entries("data_viewed")
    assert [(v.detail["what"], v.detail["chat"]) for v in reversed(views)] == [
        ("/show", "test:review-group"), ("/show", "test:rev1"), ("/pending", "test:rev1")]
    assert all(v.actor == "test:rev1" and v.detail["refs"] == [ref] for v in views)


# --- retention -----------------------------------------------------------------------------


async def test_retention_on_a_controlled_clock(staffed, sms, files, clock):
    draft, approved = Officer(staffed, sms), Officer(staffed, sms, user_id="officer-2", phone="0898765432")
    await draft.up_to("phone")
    ref = await submitted(approved)
    await Officer(staffed, sms, user_id="rev1").say(f"/approve {ref}")
    timer = ManualTimer(clock().timestamp())
    job = RetentionJob(staffed, timer, draft_days=30)

    timer.advance(timedelta(days=29).total_seconds())
    assert await job.run_once() == (0, 0)
    timer.advance(timedelta(days=2).total_seconds())  # the draft is 31 days untouched
    assert (await job.run_once())[0] == 1
    regs, _, _, _, conv = await stored(draft)
    assert (regs[0].status, regs[0].officer_first_name, conv.registration_id) == ("cancelled", None, None)
    assert [e.kind for e in await trail(staffed, regs[0].ref)][-1] == "expired"
    regs, letters, _, _, _ = await stored(approved)
    assert regs[0].officer_first_name == "สมศรี" and letters and upload_files(files)
    codes = (await stored(approved))[2]
    assert [c["phone_index"][:7] for c in codes] == ["erased:"]  # past every limit: only the newest, stripped

    timer.advance((ACCOUNT_RETENTION - timedelta(days=31)).total_seconds() + 60)  # a year after approval
    assert await job.run_once() == (1, 1)
    regs, letters, _, _, _ = await stored(approved)
    reg = regs[0]
    assert (reg.status, reg.account_username, reg.officer_first_name, reg.national_id, reg.phone,
            reg.account_password_hash) == ("approved", "sch1054530001", None, None, None, None)
    assert letters == [] and upload_files(files) == []
    assert [e.kind for e in await trail(staffed, ref)][-1] == "retention_erased"
    assert await job.run_once() == (0, 0)  # nothing done twice


async def test_retention_sweeps_files_no_row_refers_to(dispatcher, files, clock):
    young, old = files.put(b"waiting for its row's commit"), files.put(b"left by a crash after an erasure")
    os.utime(files.root / old, (0, 0))
    job = RetentionJob(dispatcher, ManualTimer(clock().timestamp()), draft_days=90)
    assert await job.run_once() == (0, 1)
    assert upload_files(files) == [young.split("/")[1]]


async def test_the_job_runs_by_itself_on_the_timer(officer: Officer, clock):
    await officer.up_to("phone")
    timer = ManualTimer(clock().timestamp())
    job = RetentionJob(officer.dispatcher, timer, draft_days=1, every=3600)
    await job.start()
    try:
        for _ in range(50):  # the first pass, at start: nothing is due yet
            await asyncio.sleep(0.01)
        assert (await stored(officer))[0][0].status == "draft"
        timer.advance(timedelta(days=1, hours=1).total_seconds())  # the next pass comes due, the draft too
        for _ in range(500):
            if (await stored(officer))[0][0].status == "cancelled":
                break
            await asyncio.sleep(0.01)
        assert (await stored(officer))[0][0].status == "cancelled"
    finally:
        await job.stop()


@pytest.mark.parametrize("value", ["0", "366", "ninety", "-5", "3.5"])
def test_the_draft_retention_setting_is_validated(value):
    with pytest.raises(ConfigError) as error:
        load_config({"KIDDIARY_DRAFT_RETENTION_DAYS": value}, dotenv=None)
    assert error.value.variable == "KIDDIARY_DRAFT_RETENTION_DAYS"


def test_the_draft_retention_setting_default_and_value():
    assert load_config({}, dotenv=None).draft_retention_days == 90
    assert load_config({"KIDDIARY_DRAFT_RETENTION_DAYS": "30"}, dotenv=None).draft_retention_days == 30


async def test_a_code_id_is_never_given_again_after_old_codes_are_forgotten(officer: Officer, clock):
    await officer.up_to("otp")
    _, _, [first], _, _ = await stored(officer)
    timer = ManualTimer(clock().timestamp())
    timer.advance(timedelta(days=2).total_seconds())
    await RetentionJob(officer.dispatcher, timer, draft_days=90).run_once()
    clock.advance(days=2)
    await officer.say("/cancel")
    await officer.press("cancel:yes")
    other = Officer(officer.dispatcher, officer.sms, user_id="officer-2", phone="0898765432")
    await other.up_to("otp")
    *_, conv = await stored(other)
    assert conv.otp_challenge_id > first["id"]


async def test_a_link_to_an_erased_scan_never_opens_the_scan_that_takes_its_id(staffed, sms, files, clock):
    first = Officer(staffed, sms)
    await submitted(first)
    [card] = [r for r in first.replies if r.to == REVIEW_CHAT]
    links = LetterLinks(staffed.settings.seal_key, timedelta(days=7))
    letter_files = LetterFiles(staffed.repo, staffed.settings.seal_key, links, clock, files)
    old_link = links.token(LetterLink(*card.document.link), clock())
    assert await letter_files.signed(old_link, preview=True) is not None
    await first.say("/delete_my_data")
    await first.press("privacy:erase")
    assert await letter_files.signed(old_link, preview=True) is None

    second = Officer(staffed, sms, user_id="officer-2", phone="0898765432")
    await submitted(second)
    [new_card] = [r for r in second.replies if r.to == REVIEW_CHAT]
    assert new_card.document.link[1] == card.document.link[1]  # SQLite gave the erased scan's id again…
    assert await letter_files.signed(old_link, preview=True) is None  # …the old link still opens nothing
    new_link = links.token(LetterLink(*new_card.document.link), clock())
    assert await letter_files.signed(new_link, preview=True) is not None
