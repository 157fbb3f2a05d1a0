"""LINE's own idioms: the rich menu (`kiddiary-bot line-setup`) and the summary and review card as
Flex Messages, over the real line-bot-sdk and the fake LINE API."""

from __future__ import annotations

import io
import os
from argparse import Namespace
from collections.abc import AsyncIterator
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import replace
from pathlib import Path

import pytest
from linebot.v3.messaging import FlexContainer, FlexMessage, RichMenuRequest
from PIL import Image

from bot import cli
from bot.config import load_config
from bot.line_menu import MENU_NAME
from handlers.messages import Card, Choice, Field, Outbound
from templates import text as t
from templates.rich_menu import HEIGHT, WIDTH
from tests import test_line
from tests.fakes.line_api import ACCESS_TOKEN, CHANNEL_SECRET, FakeLine
from tests.test_line import ANSWERS, User, flex_buttons, flex_texts, quick, texts

line = test_line.line  # the fixture: the bot as `run` starts it with LINE, against the fake

EDITS = {"edit:affiliation", "edit:school_code", "edit:school_name", "edit:province", "edit:old_tsl",
         "edit:old_kiddiary", "edit:officer_name", "edit:national_id", "edit:phone"}


@pytest.fixture
async def fake() -> AsyncIterator[FakeLine]:
    server = FakeLine()
    await server.start()
    yield server
    await server.stop()


def line_env(fake: FakeLine) -> dict[str, str]:
    return {"KIDDIARY_LINE_CHANNEL_SECRET": CHANNEL_SECRET, "KIDDIARY_LINE_CHANNEL_ACCESS_TOKEN": ACCESS_TOKEN,
            "KIDDIARY_LINE_API_URL": fake.url, "KIDDIARY_LINE_DATA_API_URL": fake.url}


async def line_setup(fake: FakeLine, tmp_path: Path) -> tuple[int, str]:
    """What `kiddiary-bot line-setup` runs, in this process (a process start costs seconds on a
    busy machine; the command line's own wiring is tested below); its exit status and what it
    printed."""
    config = load_config({"KIDDIARY_DATA_DIR": str(tmp_path), **line_env(fake)}, dotenv=None)
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        status = await cli.line_setup(config, Namespace(image=None))
    return status, out.getvalue() + err.getvalue()


def ours(fake: FakeLine) -> list[str]:
    return [menu_id for menu_id, menu in fake.rich_menus.items() if menu["name"] == MENU_NAME]


# --- the rich menu --------------------------------------------------------------------------

async def test_line_setup_makes_the_menu_and_a_second_run_replaces_it(fake: FakeLine, tmp_path):
    fake.rich_menus["richmenu-someone-elses"] = {  # made by hand in LINE's console, say
        "name": "campaign", "size": {"width": 2500, "height": 843}, "selected": False, "chatBarText": "ข่าว",
        "areas": [{"bounds": {"x": 0, "y": 0, "width": 2500, "height": 843},
                   "action": {"type": "uri", "uri": "https://example.go.th"}}]}

    status, printed = await line_setup(fake, tmp_path)
    assert status == 0, printed
    [first] = ours(fake)
    assert fake.default_rich_menu == first and first in printed
    menu = fake.rich_menus[first]
    RichMenuRequest.from_dict(menu)  # line-bot-sdk's model takes it as LINE's API does
    assert menu["size"] == {"width": WIDTH, "height": HEIGHT} and (WIDTH, HEIGHT) in ((2500, 843), (2500, 1686))
    actions = [area["action"] for area in menu["areas"]]
    assert [a["data"] for a in actions] == ["cmd:start", "cmd:status", "cmd:letter", "cmd:help"]
    assert [a["displayText"] for a in actions] == [t(f"menu_{k}", "th") for k in ("start", "status", "letter", "help")]
    image = Image.open(io.BytesIO(fake.rich_menu_images[first]))
    assert (image.format, image.size) == ("PNG", (WIDTH, HEIGHT))

    status, printed = await line_setup(fake, tmp_path)  # again: the old menu goes, not piles up
    assert status == 0, printed
    [second] = ours(fake)
    assert second != first and fake.default_rich_menu == second and f"replacing {first}" in printed
    assert "richmenu-someone-elses" in fake.rich_menus  # a menu the bot did not make is left alone


async def test_a_refused_image_leaves_the_menu_officers_have(fake: FakeLine, tmp_path):
    assert (await line_setup(fake, tmp_path))[0] == 0
    before = dict(fake.rich_menus), fake.default_rich_menu
    fake.fail("richmenu-image", 400)
    status, printed = await line_setup(fake, tmp_path)
    assert status == 1 and "LINE refused the rich menu: HTTP 400" in printed
    assert (dict(fake.rich_menus), fake.default_rich_menu) == before  # the half-made one was deleted


def test_line_setup_without_line_configured_says_what_to_set(tmp_path, monkeypatch, capsys):
    for name in [n for n in os.environ if n.startswith("KIDDIARY_")]:
        monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["line-setup"]) == 2
    assert "KIDDIARY_LINE_CHANNEL_ACCESS_TOKEN" in capsys.readouterr().err

    assert cli.main(["line-setup", "--image", str(tmp_path / "menu.png")]) == 0  # the image alone needs no LINE
    assert Image.open(tmp_path / "menu.png").size == (WIDTH, HEIGHT)


async def test_the_menu_letter_button_asks_for_the_photo_or_says_why_not(line: test_line.Harness):
    user = User(line)
    messages = await user.press("cmd:letter")  # nothing to send yet
    assert t("letter_not_yet", "th") in texts(messages)
    assert [a["data"] for a in quick(messages)] == ["cmd:start"]

    await test_line.register_until_letter(user)
    messages = await user.press("cmd:letter")
    signatory = t("signatory_school", "th", position="ผู้อำนวยการโรงเรียนบ้านหนองบัว")
    assert t("ask_letter", "th", signatory=signatory) in texts(messages)
    assert [a["type"] for a in quick(messages)][:2] == ["camera", "cameraRoll"]


# --- Flex Messages ----------------------------------------------------------------------------

async def to_summary(user: User, answers: list[str] = ANSWERS) -> list[dict]:
    await user.send(user.event("follow", follow={"isUnblocked": False}))
    await user.press("consent:accept")
    await user.press("aff:obec")
    for answer in answers:
        await user.say(answer)
    return await user.say(user.h.sms.last_code("+66812345678"))


async def test_the_summary_is_a_flex_card_with_an_edit_button_a_field(line: test_line.Harness):
    user = User(line)
    messages = await to_summary(user)
    card = messages[-1]
    assert card["type"] == "flex"
    FlexMessage.from_dict(card)  # what LINE takes, by line-bot-sdk's models
    assert isinstance(FlexContainer.from_dict(card["contents"]), FlexContainer)
    assert card["altText"].startswith(t("progress", "th", n=10, total=12, title=t("title_summary", "th")))
    assert len(card["altText"]) <= 400
    shown = flex_texts(card)
    for label, value in (("card_school_name", "โรงเรียนบ้านหนองบัว"), ("card_national_id", "1-2345-xxxxx-xx-1"),
                         ("card_phone", "081-234-5678")):
        assert t(label, "th") in shown and value in shown
    buttons = flex_buttons(card)
    assert set(buttons) >= EDITS and buttons[-2:] == ["confirm", "cmd:back"]  # confirm under the card
    assert "quickReply" not in card  # every button is in the card

    messages = await user.press("edit:phone")  # an edit button of the card
    assert t("ask_phone", "th") in texts(messages)
    messages = await user.press("keep")
    assert messages[-1]["type"] == "flex"  # back at the summary
    messages = await user.press("confirm")
    assert any(m["type"] == "image" for m in messages)  # the letter


async def test_a_long_summary_keeps_altText_within_lines_400_characters(line: test_line.Harness):
    user = User(line)
    long_name = "โรงเรียน" + "บ้านหนองบัวแดงน้อยใหญ่" * 6  # near the 150 characters a name may have
    answers = [ANSWERS[0], long_name[:150], *ANSWERS[2:5], "นางสาว" + "สมศรี" * 10 + " " + "ใจดี" * 12, *ANSWERS[6:]]
    messages = await to_summary(user, answers)
    card = messages[-1]
    assert card["type"] == "flex"  # accepted: the fake refuses an altText over 400, as LINE does
    assert len(card["altText"]) <= 400 and card["altText"].endswith("…")
    assert long_name[:150] in flex_texts(card)  # the card itself shows it whole


async def test_a_card_too_big_for_one_bubble_goes_as_text(line: test_line.Harness):
    user = User(line)
    history = "\n".join(f"{n:03d} · เปิดการลงทะเบียนใหม่ · telegram:12345 · " + "ข" * 150 for n in range(80))
    card = Card("การลงทะเบียน KD-TEST", (Field("สถานะ", "รอตรวจ"),), note=history)
    buttons = (Choice("อนุมัติ", "review:approve:KD-TEST:1"),)
    whole = f"การลงทะเบียน KD-TEST\n{history}"
    await line.answer(user.id, [Outbound(whole, buttons, card=card)], line.fake.reply_token())
    messages = line.fake.messages()
    assert {m["type"] for m in messages} == {"text"} and len(messages) > 1
    assert "\n".join(m["text"] for m in messages) == whole  # whole, in parts
    assert [a["data"] for a in quick(messages)] == ["review:approve:KD-TEST:1"]

    small = Outbound("การลงทะเบียน KD-TEST", buttons, card=replace(card, note=history[:2000]))
    await line.answer(user.id, [small], line.fake.reply_token())
    assert line.fake.messages()[-1]["type"] == "flex"
