"""Roles through the real core: /help per role, /reviewer list|add|remove, and admins not reviewing."""

from __future__ import annotations

from dataclasses import replace

import pytest

from handlers.dispatch import Dispatcher
from handlers.messages import Address
from handlers.staff import ID_SHAPES
from templates import catalogue
from templates import text as t
from tests.helpers import Officer
from tests.test_review import stored, submitted

REVIEWER = Address("test", "rev1")
ADMIN = Address("test", "boss")
BOTH = Address("test", "chief")  # an admin who is listed as a reviewer too


@pytest.fixture
def staffed(dispatcher: Dispatcher, settings) -> Dispatcher:
    dispatcher.settings = replace(settings, reviewers=frozenset({REVIEWER, BOTH}), admins=frozenset({ADMIN, BOTH}))
    return dispatcher


async def added(dispatcher: Dispatcher) -> list[tuple[str, str]]:
    async with dispatcher.repo.transaction():
        return await dispatcher.repo.reviewers()


# --- /help ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("user", "reviewer", "admin"), [
    ("officer-1", False, False), ("rev1", True, False), ("boss", False, True), ("chief", True, True),
])
async def test_help_shows_each_role_its_own_commands(staffed, sms, user, reviewer, admin):
    person = Officer(staffed, sms, user_id=user)
    await person.say("/start")
    await person.say("/help")
    assert person.said("help_consent") and person.said("help_general")  # the officer's help, as before
    assert person.said("help_reviewer") is reviewer
    assert person.said("help_admin") is admin
    assert person.payloads and person.replies[-1].choices  # the step's buttons stay, on the last message
    if admin:
        for command in ("/stats", "/stats chart", "/reviewer list", "/deadline", "/broadcast ", "/broadcasts",
                        "/broadcast_status", "/broadcast_cancel", "/import"):
            assert command in person.text, command
    if reviewer:
        for command in ("/pending", "/show", "/approve", "/reject", "/find"):
            assert command in person.text, command


async def test_a_reviewer_added_on_chat_gets_the_reviewer_help(staffed, sms):
    await Officer(staffed, sms, user_id="boss").say("/reviewer add console:newbie")
    newbie = Officer(staffed, sms, channel="test", user_id="newbie")
    await newbie.say("/help")
    assert not newbie.said("help_reviewer")  # console:newbie is not test:newbie
    staffed.settings = replace(staffed.settings, reviewers=staffed.settings.reviewers | {Address("test", "newbie")})
    await newbie.say("/help")
    assert newbie.said("help_reviewer") and not newbie.said("help_admin")


# --- /reviewer ------------------------------------------------------------------------------

async def test_reviewer_list_says_which_are_configured_and_which_added(staffed, sms):
    boss = Officer(staffed, sms, user_id="boss")
    await boss.say("/reviewer add telegram:123456789")
    await boss.say("/reviewer list")
    lines = [t("staff_reviewer_line_configured", "th", who=str(a)) for a in sorted((REVIEWER, BOTH), key=str)]
    lines.append(t("staff_reviewer_line_added", "th", who="telegram:123456789"))
    assert boss.said("staff_reviewers", count=len(lines), lines="\n".join(lines))


async def test_reviewer_list_when_there_are_none(dispatcher, settings, sms):
    dispatcher.settings = replace(settings, admins=frozenset({ADMIN}))
    boss = Officer(dispatcher, sms, user_id="boss")
    await boss.say("/reviewer list")
    assert boss.said("staff_reviewers_none")


async def test_adding_a_reviewer_twice_says_so_and_stores_one(staffed, sms):
    boss = Officer(staffed, sms, user_id="boss")
    await boss.say("/reviewer add line:U" + "a" * 32)
    assert boss.said("review_reviewer_added", who="line:U" + "a" * 32)
    before = await added(staffed)
    await boss.say("/reviewer add line:U" + "a" * 32)
    assert boss.said("staff_reviewer_already_added", who="line:U" + "a" * 32)
    await boss.say(f"/reviewer add {REVIEWER}")
    assert boss.said("staff_reviewer_already_configured", who=str(REVIEWER))
    assert await added(staffed) == before == [("line", "U" + "a" * 32)]


@pytest.mark.parametrize(("address", "key"), [
    ("telegram:abc", "staff_bad_id_telegram"),
    ("telegram:12.5", "staff_bad_id_telegram"),
    ("telegram:0123", "staff_bad_id_telegram"),
    ("line:u" + "a" * 32, "staff_bad_id_line"),  # the letter is upper case
    ("line:U" + "a" * 31, "staff_bad_id_line"),
    ("line:X" + "a" * 32, "staff_bad_id_line"),
    ("line:U" + "g" * 32, "staff_bad_id_line"),
    ("console:" + "x" * 65, "staff_bad_id_console"),
    ("whatsapp:123", "staff_bad_channel"),
])
async def test_a_misshapen_id_is_explained_with_an_example_and_nothing_is_stored(staffed, sms, address, key):
    boss = Officer(staffed, sms, user_id="boss")
    await boss.say(f"/reviewer add {address}")
    channel, _, ident = address.partition(":")
    assert boss.said(key, id=ident, channel=channel)
    assert ":" in boss.text and "เช่น" in boss.text  # an example to copy
    assert await added(staffed) == []


@pytest.mark.parametrize("address", [
    "telegram:123456789", "telegram:-1001234567890", "line:U" + "0123456789abcdef" * 2,
    "line:C" + "f" * 32, "line:R" + "0" * 32, "console:reviewer", "console:somchai",
])
async def test_well_shaped_ids_are_added(staffed, sms, address):
    boss = Officer(staffed, sms, user_id="boss")
    await boss.say(f"/reviewer add {address}")
    assert boss.said("review_reviewer_added", who=address)
    assert await added(staffed) == [tuple(address.split(":", 1))]


@pytest.mark.parametrize("words", ["/reviewer", "/reviewer add", "/reviewer add telegram", "/reviewer promote x:1",
                                   "/reviewer list extra", "/reviewer add telegram:1 telegram:2"])
async def test_reviewer_usage_is_explained_and_nothing_is_stored(staffed, sms, words):
    boss = Officer(staffed, sms, user_id="boss")
    await boss.say(words)
    assert boss.said("staff_reviewer_usage")
    assert await added(staffed) == []


async def test_only_admins_manage_reviewers(staffed, sms):
    reviewer = Officer(staffed, sms, user_id="rev1")
    for words in ("/reviewer list", "/reviewer add console:x", "/reviewer remove test:rev1"):
        await reviewer.say(words)
        assert reviewer.said("not_allowed")
    assert await added(staffed) == []


def test_every_channel_has_its_own_explanation():
    assert all(f"staff_bad_id_{channel}" in catalogue() for channel in ID_SHAPES)


# --- admins do not review unless listed as reviewers ----------------------------------------

async def test_an_admin_alone_does_not_review(staffed, sms):
    ref = await submitted(Officer(staffed, sms))
    boss = Officer(staffed, sms, user_id="boss")
    for words in ("/pending", f"/show {ref}", f"/approve {ref}", f"/reject {ref} unreadable", f"/find {ref}"):
        await boss.say(words)
        assert boss.said("review_not_reviewer"), words
    assert (await stored(staffed, ref)).status == "submitted"


async def test_an_admin_listed_as_reviewer_reviews(staffed, sms):
    ref = await submitted(Officer(staffed, sms))
    chief = Officer(staffed, sms, user_id="chief")
    await chief.say("/pending")
    assert ref in chief.text
    await chief.say(f"/approve {ref}")
    reg = await stored(staffed, ref)
    assert (reg.status, reg.decided_by) == ("approved", str(BOTH))
