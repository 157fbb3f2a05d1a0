"""Telegram's own idioms: the command menu per scope (setMyCommands), a /start deep link, and
"sending a file…" while the letter is made; over python-telegram-bot and the fake Bot API."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from handlers import command_menu
from templates import text as t
from tests.test_telegram import Harness, User, buttons, register_until_letter, running, texts

REVIEW_GROUP, REVIEWER = -1001234567890, 4242001


@pytest.fixture
async def telegram(tmp_path) -> AsyncIterator[Harness]:
    async with running("webhook", tmp_path, KIDDIARY_REVIEW_CHATS=f"telegram:{REVIEW_GROUP},line:C{'0' * 32}",
                       KIDDIARY_REVIEWERS=f"telegram:{REVIEWER}") as harness:
        yield harness


def menus(h: Harness) -> dict[tuple[str, int | None, str | None], list[tuple[str, str]]]:
    """(scope type, chat id, language) → the commands set for it."""
    found = {}
    for call in h.fake.sent("setMyCommands"):
        scope = call.params.get("scope") or {"type": "default"}
        key = (scope["type"], scope.get("chat_id"), call.params.get("language_code"))
        found[key] = [(c["command"], c["description"]) for c in call.params["commands"]]
    return found


async def test_the_command_menu_is_set_for_officers_and_for_reviewers_at_start(telegram: Harness):
    def expected(names: tuple[str, ...], lang: str) -> list[tuple[str, str]]:
        return [(name, t(f"command_{name}", lang)) for name in dict.fromkeys(names)]

    officer, reviewer = command_menu.OFFICER, command_menu.REVIEWER
    assert menus(telegram) == {
        ("all_private_chats", None, None): expected(officer, "th"),  # Thai unless Telegram is in English
        ("all_private_chats", None, "en"): expected(officer, "en"),
        ("chat", REVIEW_GROUP, None): expected(reviewer, "th"),  # the LINE review group is not Telegram's
        ("chat", REVIEW_GROUP, "en"): expected(reviewer, "en"),
        ("chat", REVIEWER, None): expected(officer + reviewer, "th"),  # a reviewer's own chat: both
        ("chat", REVIEWER, "en"): expected(officer + reviewer, "en"),
    }
    assert ("start", t("command_start", "th")) in menus(telegram)[("all_private_chats", None, None)]
    assert all(not call.refused for call in telegram.fake.calls if call.method == "setMyCommands")


async def test_a_refused_command_menu_does_not_stop_the_bot(tmp_path):
    """A reviewer who never opened the bot has no chat: Telegram refuses that scope, the rest is set."""
    async with running("webhook", tmp_path, KIDDIARY_REVIEWERS="telegram:4242002") as h:
        h.fake.fail("setMyCommands", 400, description="Bad Request: chat not found")
        await h.channel.set_commands()  # as at start, now with Telegram refusing the first
        assert [c.refused for c in h.fake.calls if c.method == "setMyCommands"][-4:] == [400, None, None, None]
        replies = await User(h).say("/start")
        assert t("greeting", "th").splitlines()[0] in texts(replies)


@pytest.mark.parametrize("text", ["/start school-1054530001", "/start@kiddiary_test_bot campaign"])
async def test_a_deep_link_start_is_greeted(telegram: Harness, text):
    user = User(telegram)
    replies = await user.say(text)  # t.me/<bot>?start=school-1054530001 sends this
    assert t("greeting", "th").splitlines()[0] in texts(replies)
    assert buttons(replies[-1]) == ["consent:accept", "consent:decline"]
    assert t("unknown_command", "th", command="/start").split()[0] not in texts(replies)
    conversation = await telegram.conversation(user.id)
    assert conversation is not None and conversation.state == "consent"


async def test_sending_a_file_shows_while_the_letter_is_made(telegram: Harness):
    user = User(telegram)
    await register_until_letter(user, share_contact=False)
    mine = [c for c in telegram.fake.calls if str(c.params.get("chat_id")) == str(user.id)]
    kinds = [(c.method, c.params.get("action")) for c in mine if c.method in ("sendChatAction", "sendDocument")]
    assert kinds == [("sendChatAction", "upload_document"), ("sendDocument", None)]  # only for the file
