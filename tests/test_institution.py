"""Who signs the letter of a local-government institution: the name says it, or the officer is asked."""

from __future__ import annotations

import pypdfium2
import pytest

from templates import text as t
from tests.helpers import ANSWERS, Officer


async def stored_registration(officer: Officer):
    repo = officer.dispatcher.repo
    async with repo.transaction():
        conv = await repo.get_conversation(officer.channel, officer.user_id)
        return conv, await repo.get_registration(conv.registration_id)


def letter_text(pdf: bytes) -> str:
    document = pypdfium2.PdfDocument(pdf)
    try:
        return " ".join(document[0].get_textpage().get_text_range().split())  # lines joined
    finally:
        document.close()


async def register_lao(officer: Officer, name: str) -> None:
    await officer.up_to("affiliation")
    await officer.press("aff:lao")
    await officer.say("12345")
    await officer.say(name)
    await officer.say(ANSWERS["province"])


async def finish(officer: Officer) -> None:
    for key in ("old_tsl", "old_kiddiary", "officer_name", "national_id", "phone"):
        await officer.say(ANSWERS[key])
    await officer.say(officer.sms.last_code())
    await officer.press("confirm")


@pytest.mark.parametrize("answer, stored, position", [
    ("kind:centre", "ศูนย์พัฒนาเด็กเล็กบ้านดอนมูล", "หัวหน้าศูนย์พัฒนาเด็กเล็กบ้านดอนมูล"),
    ("kind:school", "โรงเรียนบ้านดอนมูล", "ผู้อำนวยการโรงเรียนบ้านดอนมูล"),
])
async def test_a_name_that_does_not_say_is_asked_about(officer: Officer, answer, stored, position):
    await register_lao(officer, "บ้านดอนมูล")
    assert officer.said("ask_institution", name="บ้านดอนมูล")
    assert set(officer.payloads) >= {"kind:school", "kind:centre", "cmd:back"}
    # A typed answer is not one of the two: asked again, nothing stored.
    await officer.say("ไม่รู้")
    assert officer.said("expect_choice")
    _, reg = await stored_registration(officer)
    assert reg.school_name == "บ้านดอนมูล"
    await officer.press(answer)
    assert officer.said("ask_old_tsl")
    _, reg = await stored_registration(officer)
    assert reg.school_name == stored
    await finish(officer)
    assert officer.said("ask_letter", signatory=t(f"signatory_{answer[5:]}", "th", position=position))
    text = letter_text(officer.replies[-1].document.data)
    assert position in text and "ผู้มีอำนาจลงนาม" in text
    assert "หัวหน้าศูนย์พัฒนาเด็กเล็ก /" not in text


async def test_a_name_that_says_it_is_not_asked_and_editing_it_asks_again(officer: Officer):
    await register_lao(officer, "ศูนย์พัฒนาเด็กเล็กบ้านดอนมูล")
    assert officer.said("ask_old_tsl")  # the name said it: straight on
    await finish(officer)
    assert officer.said("ask_letter", signatory=t("signatory_centre", "th", position="หัวหน้าศูนย์พัฒนาเด็กเล็กบ้านดอนมูล"))
    await officer.press("letter:edit")
    await officer.press("edit:school_name")
    await officer.say("Sunshine Kids")
    assert officer.said("ask_institution", name="Sunshine Kids")
    await officer.press("kind:centre")
    _, reg = await stored_registration(officer)
    assert reg.school_name == "Sunshine Kids Child Development Centre"
    await officer.press("confirm")
    position = "หัวหน้า Sunshine Kids Child Development Centre"
    assert position in letter_text(officer.replies[-1].document.data)


async def test_obec_schools_are_never_asked(officer: Officer):
    await officer.up_to("school_name")
    await officer.say("Bangkok Pattana")
    await officer.say(ANSWERS["province"])
    assert officer.said("ask_old_tsl")
    await finish(officer)
    assert officer.said("ask_letter", signatory=t("signatory_school", "th", position="ผู้อำนวยการ Bangkok Pattana"))
