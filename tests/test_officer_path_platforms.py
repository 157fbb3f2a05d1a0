"""The officer's dead ends where the platform is involved, over the real SDKs and the fakes: the
buttons of a rejection notice and the province suggestion arrive as LINE postbacks and Telegram
callback buttons, and pressing them works from the middle of another registration."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from templates import text as t
from tests import test_line, test_telegram
from tests.test_review_channels import LINE_REVIEWER, TELEGRAM_REVIEWER, Both, ref_of, running, submitted_on_line
from tests.test_signed_letter import phone_photo

SECOND_SCHOOL = ["1054530002", "โรงเรียนวัดใหม่", "น่าน", "tsl9999"]  # up to step 5 of another school


@pytest.fixture
async def both(tmp_path) -> AsyncIterator[Both]:
    async with running(tmp_path) as harness:
        yield harness


async def registrations(both: Both, channel: str, user_id: str):
    repo = both.line.app.repo
    async with repo.transaction():
        return await repo.registrations_of(channel, user_id)


async def test_a_rejection_on_line_has_postbacks_that_work_mid_draft(both: Both):
    officer, ref = await submitted_on_line(both)
    await officer.say("/new")
    await officer.press("consent:accept")
    await officer.press("aff:obec")
    for answer in SECOND_SCHOOL:
        messages = await officer.say(answer)
    assert t("ask_old_kiddiary", "th") in test_line.texts(messages)

    reviewer = test_line.User(both.line, user_id=LINE_REVIEWER)
    await reviewer.say(f"/reject {ref} unreadable")
    notice = [m for r in both.line.fake.sent("/v2/bot/message/push") if r.body["to"] == officer.id
              for m in r.body["messages"] if ref in m.get("text", "")][-1]
    data = [a["data"] for a in test_line.quick([notice]) if a["type"] == "postback"]
    assert data == [f"reg:photo:{ref}", f"reg:edit:{ref}"]
    officer.new_messages()  # read

    messages = await officer.press(f"reg:edit:{ref}")
    [card] = [m for m in messages if m["type"] == "flex"]  # the summary, as a card
    assert t("progress", "th", n=10, total=12, title=t("title_summary", "th")) in card["altText"]
    assert "confirm" in test_line.flex_buttons(card)
    first, second = await registrations(both, "line", officer.id)
    assert first.confirmed_at is None and second.old_tsl_username == "tsl9999"
    assert second.old_kiddiary_username is None  # nothing typed into the draft meanwhile


async def test_a_rejection_on_telegram_has_buttons_that_work_mid_draft(both: Both):
    officer = test_telegram.User(both.telegram)
    document = await test_telegram.register_until_letter(officer, share_contact=False)
    await officer.photo(phone_photo(document.files["document"]))
    ref = await ref_of(both)
    await officer.say("/new")
    await officer.press("consent:accept")
    await officer.press("aff:obec")
    for answer in SECOND_SCHOOL:
        await officer.say(answer)

    reviewer = test_telegram.User(both.telegram, user_id=TELEGRAM_REVIEWER)
    await reviewer.say(f"/reject {ref} unreadable")
    [notice] = [c for c in officer.replies() if ref in str(c.params.get("text", ""))]
    assert test_telegram.buttons(notice) == [f"reg:photo:{ref}", f"reg:edit:{ref}"]

    replies = await officer.press(f"reg:photo:{ref}")
    signatory = t("signatory_school", "th", position="ผู้อำนวยการโรงเรียนบ้านหนองบัว")
    assert t("ask_letter", "th", signatory=signatory)[:30] in test_telegram.texts(replies)
    replies = await officer.photo(phone_photo(document.files["document"], angle=-3))
    assert t("letter_received_matched", "th", ref=ref) in test_telegram.texts(replies)
    first, second = await registrations(both, "telegram", str(officer.id))
    assert first.status == "submitted" and second.status == "draft"


async def test_the_province_suggestion_is_a_button_on_both_platforms(both: Both):
    tg = test_telegram.User(both.telegram)
    await tg.say("/start")
    await tg.press("consent:accept")
    await tg.press("aff:obec")
    await tg.say("1054530001")
    await tg.say("โรงเรียนบ้านหนองบัว")
    [asked] = await tg.say("แพร")
    assert test_telegram.buttons(asked)[0] == "say:แพร่"
    replies = await tg.press("say:แพร่")
    assert t("ask_old_tsl", "th") in test_telegram.texts(replies)

    line = test_line.User(both.line)
    await line.say("/start")
    await line.press("consent:accept")
    await line.press("aff:obec")
    await line.say("1054530001")
    await line.say("โรงเรียนบ้านหนองบัว")
    messages = await line.say("แพร")
    [suggested] = [a for a in test_line.quick(messages) if a.get("data") == "say:แพร่"]
    assert suggested["label"] == "แพร่"
    messages = await line.press("say:แพร่")
    assert t("ask_old_tsl", "th") in test_line.texts(messages)
    for channel, user in (("telegram", str(tg.id)), ("line", line.id)):
        [reg] = await registrations(both, channel, user)
        assert reg.province == "แพร่"
