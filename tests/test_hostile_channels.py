"""The hostile-input corpus (tests/hostile_corpus.py) through each channel's webhook: LINE
events signed with the real HMAC, Telegram updates with the webhook secret, the real SDKs
talking HTTP to the fake platforms. Every input, from a user of its own, gets an answer a user
can act on, and what is stored stays valid; overlong bodies are refused at the HTTP layer."""

from __future__ import annotations

import json
from itertools import count
from typing import Any

import aiohttp

from bot import web
from storage.models import DRAFT
from templates import text as t
from tests.fakes.line_api import FakeLine
from tests.hostile_corpus import PAYLOADS, TEXTS
from tests.test_line import Harness as LineHarness
from tests.test_line import User as LineUser
from tests.test_line import line  # noqa: F401 - the fixture
from tests.test_line import texts as line_texts
from tests.test_telegram import SECRET, webhook_only  # noqa: F401 - the fixture
from tests.test_telegram import Harness as TelegramHarness
from tests.test_telegram import User as TelegramUser
from tests.test_telegram import texts as telegram_texts
from tests.validity import INTERNAL_ERROR, leaks, problems

_users = count(1)
INPUTS = [("text", value) for value in TEXTS] + [("button", value) for value in PAYLOADS]
BATCH = 25  # LINE events in one webhook


def line_body(*events: dict[str, Any]) -> str:
    """A webhook body as LINE sends it, every character that is not ASCII escaped (so that a
    lone surrogate can travel, as JSON allows)."""
    return json.dumps({"destination": "Ubot0000000000", "events": list(events)})


def answer_checked(answer: str, typed: str, where: str) -> None:
    assert answer.strip(), f"no answer to {typed!r} on {where}"
    assert not any(apology in answer for apology in INTERNAL_ERROR), f"{typed!r} broke the turn on {where}"
    assert not leaks(answer, typed), f"{typed!r} on {where}: {leaks(answer, typed)} in {answer!r}"


async def stored_valid(repo, channel: str, user_ids: list[str]) -> None:
    async with repo.transaction():
        for user_id in user_ids:
            conv = await repo.get_conversation(channel, user_id)
            reg = await repo.get_registration(conv.registration_id) if conv and conv.registration_id else None
            assert not problems(conv, reg), (user_id, problems(conv, reg))


async def test_every_hostile_input_through_the_line_webhook(line: LineHarness):  # noqa: F811
    users: list[tuple[LineUser, str, str]] = []  # (user, what they sent, its reply token)
    for start in range(0, len(INPUTS), BATCH):
        events = []
        for kind, value in INPUTS[start:start + BATCH]:
            user = LineUser(line, f"Uhostile{next(_users):08d}")
            event = user.text_event(value) if kind == "text" else user.event("postback", postback={"data": value})
            events.append(event)
            users.append((user, value, event["replyToken"]))
        body = line_body(*events)
        assert await line.post(body, FakeLine.sign(body)) == 200
    await line.settle()
    replies: dict[str, list[dict[str, Any]]] = {}
    for request in line.fake.sent():
        key = request.body.get("replyToken") or request.body.get("to")
        replies.setdefault(key, []).extend(request.body["messages"])
    for user, value, token in users:
        answer_checked(line_texts(replies.get(token, []) + replies.get(user.id, [])), value, "LINE")
    await stored_valid(line.app.repo, "line", [user.id for user, _, _ in users])


async def test_hostile_answers_mid_registration_on_line(line: LineHarness):  # noqa: F811
    """One officer at the name step, sent every text of the corpus in one webhook: they are
    handled in order, each answered, and the registration stays valid throughout."""
    user = LineUser(line, "Uhostileofficer")
    await user.say("/start")
    await user.press("consent:accept")
    await user.press("aff:obec")
    for answer in ("1054530001", "โรงเรียนบ้านหนองบัว", "แพร่", "tsl1234", "ไม่มี"):
        messages = await user.say(answer)
    assert t("ask_officer_name", "th") in line_texts(messages)
    sample = [value for value in TEXTS if not value.startswith("/") and value not in ("ยกเลิก", "ยกเลิก ยกเลิก")]
    events = [user.text_event(value) for value in sample[:60]]
    body = line_body(*events)
    assert await line.post(body, FakeLine.sign(body)) == 200
    await line.settle()
    answered = {r.body.get("replyToken") for r in line.fake.sent("/v2/bot/message/reply")}
    assert {e["replyToken"] for e in events} <= answered
    async with line.app.repo.transaction():
        [reg] = await line.app.repo.registrations_of("line", user.id)
    assert reg.status == DRAFT
    await stored_valid(line.app.repo, "line", [user.id])


async def test_an_overlong_line_body_is_refused_before_it_is_read(line: LineHarness):  # noqa: F811
    user = LineUser(line, "Uhostilebig")
    body = line_body(user.text_event("a" * (web.LINE_MAX_BODY + 1)))
    assert await line.post(body, FakeLine.sign(body)) == 413
    await line.settle()
    assert line.fake.sent() == []
    async with line.app.repo.transaction():
        assert await line.app.repo.get_conversation("line", user.id) is None


async def test_every_hostile_input_through_the_telegram_webhook(webhook_only: TelegramHarness):  # noqa: F811
    h = webhook_only
    users: list[tuple[TelegramUser, str]] = []
    for kind, value in INPUTS:
        user = TelegramUser(h, user_id=7_700_000 + next(_users))
        if kind == "text":
            update = user.message(text=value)
        else:
            # A button of a message too old to be shown (date 0: "inaccessible"), as after a restart.
            update = user.update(callback_query={
                "id": f"cq-hostile-{user.id}", "from": user.user, "chat_instance": "ci", "data": value,
                "message": {"message_id": 1, "date": 0, "chat": user.chat}})
        assert await h.deliver(update) == 200, value
        users.append((user, value))
    await h.settle()
    for user, value in users:
        answer_checked(telegram_texts(user.replies()), value, "Telegram")
    await stored_valid(h.app.repo, "telegram", [str(user.id) for user, _ in users])


async def test_an_overlong_telegram_body_is_refused_before_it_is_read(webhook_only: TelegramHarness):  # noqa: F811
    h = webhook_only
    user = TelegramUser(h, user_id=7_799_999)
    update = user.message(text="a" * (web.TELEGRAM_MAX_BODY + 1))
    async with aiohttp.ClientSession() as session, session.post(
        f"{h.web_url}/telegram/webhook", json=update, headers={web.TELEGRAM_SECRET_HEADER: SECRET}
    ) as response:
        assert response.status == 413
    # without the secret it is refused for that, whatever its size
    assert await h.deliver(update, secret="wrong") == 403
    await h.settle(quiet=0.05)
    assert user.replies() == []
    assert await h.conversation(user.id) is None
