"""The core's side of the platforms' idioms: the summary and the review card carry their fields
(drawn as cards where a channel can), "send the signed letter" from any step, and /start with a
deep link's payload; through the real core and the outbox."""

from __future__ import annotations

from dataclasses import replace

from handlers.messages import Address, Card, Field, Kind, Outbound, decode, encode
from storage import School
from templates import text as t
from tests.helpers import ANSWERS, Officer, delivered
from tests.test_signed_letter import at_letter_step, letter_pdf, phone_photo, send

REVIEW_CHAT = Address("test", "review-group")


def summary(officer: Officer) -> Outbound:
    [reply] = [r for r in officer.replies if r.card is not None]
    return reply


async def test_the_summary_carries_its_fields_with_their_edit_buttons(officer: Officer):
    await officer.up_to("summary")
    reply = summary(officer)  # as it came out of the outbox
    card = reply.card
    assert card is not None and card.title in reply.text and card.edit_label == t("card_edit", "th")
    values = {f.label: f.value for f in card.fields}
    assert values[t("card_school_name", "th")] == ANSWERS["school_name"]
    assert values[t("card_national_id", "th")] == "1-2345-xxxxx-xx-1"  # masked, as in the text
    assert all(f.value in reply.text for f in card.fields)  # the text says everything the card shows
    edits = {f.edit for f in card.fields if f.edit}
    assert edits == {c.payload for c in reply.choices if c.payload.startswith("edit:")}
    await officer.press("edit:officer_name")
    assert officer.said("ask_officer_name")


async def test_a_school_from_the_directory_has_no_name_or_province_to_edit(officer: Officer, repo):
    async with repo.transaction():
        await repo.import_schools([School("1054530001", "โรงเรียนบ้านหนองบัว", "แพร่", "obec")])
    await officer.up_to("school_code")
    await officer.say("1054530001")
    for answer in list(ANSWERS.values())[3:]:
        await officer.say(answer)
    await officer.say(officer.sms.last_code())
    card = summary(officer).card
    assert card is not None
    editable = {f.label for f in card.fields if f.edit}
    assert t("card_school_name", "th") not in editable and t("card_province", "th") not in editable
    assert t("card_school_code", "th") in editable


def test_a_card_survives_the_outbox():
    card = Card("ขั้นที่ 10/12", (Field("สถานศึกษา", "โรงเรียนบ้านหนองบัว", "edit:school_name"), Field("สถานะ", "-")),
                "กด «ยืนยัน»", "แก้ไข")
    message = Outbound("ข้อความ", card=card)
    assert decode(encode(message)) == message
    assert decode(encode(replace(message, card=None))).card is None  # and rows written before cards read as before


async def test_the_review_card_carries_its_fields(officer: Officer, dispatcher, settings):
    dispatcher.settings = replace(settings, review_chats=(REVIEW_CHAT,))
    await at_letter_step(officer)
    replies = await delivered(dispatcher, send(officer, phone_photo(letter_pdf(officer))))
    [card] = [r for r in replies if r.to == REVIEW_CHAT]
    assert card.card is not None and card.replace_key and card.document is not None
    values = {f.label: f.value for f in card.card.fields}
    assert values[t("card_national_id", "th")] == "1-2345-xxxxx-xx-1"
    assert values[t("card_qr", "th")] == t("review_qr_matched", "th")
    assert not any(f.edit for f in card.card.fields)  # reviewers decide; they do not edit
    assert [c.payload.rsplit(":", 2)[0] for c in card.choices] == ["review:approve", "review:reject"]


# --- "send the signed letter" (the LINE menu, /letter) -------------------------------------------

async def menu(officer: Officer, payload: str) -> list[Outbound]:
    """A tap on a menu tile: a postback no message of the bot carried."""
    return await officer.send(Kind.BUTTON, payload=payload)


async def test_letter_before_there_is_one_says_when_it_comes(officer: Officer, repo):
    await menu(officer, "cmd:letter")
    assert officer.said("letter_not_yet") and officer.payloads == ["cmd:start"]

    await officer.up_to("national_id")
    await menu(officer, "cmd:letter")
    assert officer.said("letter_not_yet") and officer.said("ask_national_id")  # and the question again
    await officer.say(ANSWERS["national_id"])  # the answer still goes where it belongs
    async with repo.transaction():
        [reg] = await repo.registrations_of(officer.channel, officer.user_id)
    assert reg.national_id is not None


async def test_letter_at_the_letter_step_asks_for_the_photo(officer: Officer, repo):
    await at_letter_step(officer)
    pdf = letter_pdf(officer)
    await officer.say("/letter")
    assert officer.said("ask_letter", signatory=t("signatory_school", "th", position="ผู้อำนวยการโรงเรียนบ้านหนองบัว"))
    assert [c.action for c in officer.replies[-1].choices][:2] == ["camera", "camera_roll"]
    await send(officer, phone_photo(pdf))
    await menu(officer, "cmd:letter")  # in, waiting for the reviewers
    async with repo.transaction():
        [reg] = await repo.registrations_of(officer.channel, officer.user_id)
    assert reg.status == "submitted" and officer.said("letter_under_review", ref=reg.ref)


async def test_start_with_a_deep_link_payload_is_a_greeting(officer: Officer):
    await officer.say("/start school-1054530001")
    assert officer.said("greeting") and officer.payloads == ["consent:accept", "consent:decline"]
    assert not officer.said("unknown_command", command="/start")
