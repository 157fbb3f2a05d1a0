"""The Telegram channel: the real python-telegram-bot over HTTP against the fake Bot API."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot import web
from bot.app import App, open_app
from bot.config import load_config
from bot.telegram import TelegramChannel
from templates import letter
from templates import text as t
from tests.fakes.sms import RecordingSmsGateway
from tests.fakes.telegram_api import Call, FakeTelegram
from tests.phone_photos import signed_scan
from tests.test_signed_letter import phone_photo

TOKEN = "123456:TEST-token-for-the-fake-bot-api"
UNPACED = replace(TelegramChannel.policy, overall=None, private=None, group=None)
SECRET = "webhook-secret-0123456789"
_message_ids = itertools.count(1)


@dataclass
class Harness:
    fake: FakeTelegram
    channel: TelegramChannel
    app: App
    sms: RecordingSmsGateway
    mode: str
    web_url: str

    async def deliver(self, update: dict[str, Any], secret: str | None = SECRET) -> int:
        """Hand an update to the bot the way Telegram would in this mode; the HTTP status."""
        if self.mode == "polling":
            self.fake.push(update)
            return 200
        headers = {web.TELEGRAM_SECRET_HEADER: secret} if secret is not None else {}
        async with aiohttp.ClientSession() as session, session.post(
            f"{self.web_url}/telegram/webhook", json=update, headers=headers
        ) as response:
            return response.status

    async def settle(self, quiet: float = 0.25, timeout: float = 15) -> None:
        """Wait until the bot has stopped calling the API for a moment, with nothing left to send."""
        deadline = time.monotonic() + timeout
        seen = -1
        while seen != len(self.fake.calls):
            seen = len(self.fake.calls)
            await asyncio.sleep(quiet)
            await asyncio.wait_for(self.app.dispatcher.settle(), timeout)
            await asyncio.wait_for(self.app.delivery.idle(), timeout)
            if time.monotonic() > deadline:
                raise AssertionError("the bot kept calling the API")

    async def conversation(self, user_id: int):
        async with self.app.repo.transaction():
            return await self.app.repo.get_conversation("telegram", str(user_id))


@pytest.fixture(params=["polling", "webhook"])
async def telegram(request, tmp_path) -> AsyncIterator[Harness]:
    async with running(request.param, tmp_path) as harness:
        yield harness


@pytest.fixture
async def webhook_only(tmp_path) -> AsyncIterator[Harness]:
    async with running("webhook", tmp_path) as harness:
        yield harness


@asynccontextmanager
async def running(mode: str, tmp_path: Path, **settings: str) -> AsyncIterator[Harness]:
    """The bot as `kiddiary-bot run` starts it, with Telegram in `mode`, against the fake."""
    fake = FakeTelegram(TOKEN)
    url = await fake.start()
    env = {"KIDDIARY_DATA_DIR": str(tmp_path), "KIDDIARY_TELEGRAM_TOKEN": TOKEN, "KIDDIARY_TELEGRAM_API_URL": url,
           **settings}
    if mode == "webhook":
        env["KIDDIARY_TELEGRAM_WEBHOOK_SECRET"] = SECRET
    config = load_config(env, dotenv=None)
    sms = RecordingSmsGateway()
    async with open_app(config, sms) as app:
        await asyncio.to_thread(letter.prepare)  # as `kiddiary-bot run` does before serving
        channel = TelegramChannel(app.config, app.dispatcher, app.letters, poll_timeout=1)
        channel.policy = UNPACED  # pacing is tested on a controlled clock (test_delivery.py)
        runner = await web.serve(web.make_app(telegram=channel), "127.0.0.1", 0)
        port = runner.addresses[0][1]
        app.delivery.add_sender(channel)
        await channel.start()
        await app.delivery.start()
        try:
            yield Harness(fake, channel, app, sms, mode, f"http://127.0.0.1:{port}")
        finally:
            await app.delivery.stop()
            await channel.stop()
            await runner.cleanup()
            await fake.stop()


class User:
    """A Telegram user in a private chat with the bot."""

    def __init__(self, harness: Harness, user_id: int = 5550001, first_name: str = "สมศรี") -> None:
        self.h, self.id = harness, user_id
        self.user = {"id": user_id, "is_bot": False, "first_name": first_name, "language_code": "th"}
        self.chat = {"id": user_id, "type": "private", "first_name": first_name}
        self.seen = 0

    def update(self, **body: Any) -> dict[str, Any]:
        return {"update_id": self.h.fake.next_update_id(), **body}

    def message(self, **fields: Any) -> dict[str, Any]:
        return self.update(message={"message_id": next(_message_ids), "date": int(time.time()),
                                    "chat": self.chat, "from": self.user, **fields})

    async def send(self, update: dict[str, Any]) -> list[Call]:
        """Deliver an update and return what the bot sent this user in answer."""
        status = await self.h.deliver(update)
        assert status == 200
        await self.h.settle()
        return self.replies()

    def replies(self) -> list[Call]:
        mine = [c for c in self.h.fake.sent() if int(c.params["chat_id"]) == self.id]
        new, self.seen = mine[self.seen:], len(mine)
        return new

    async def say(self, text: str) -> list[Call]:
        return await self.send(self.message(text=text))

    async def press(self, payload: str) -> list[Call]:
        last = [c for c in self.h.fake.sent() if int(c.params["chat_id"]) == self.id][-1]
        message = {"message_id": 999, "date": int(time.time()), "chat": self.chat, "from": {"id": 1, "is_bot": True,
                   "first_name": "KidDiary"}, "text": last.params.get("text", "")}
        if "inline_keyboard" in (last.params.get("reply_markup") or {}):
            message["reply_markup"] = last.params["reply_markup"]  # the message whose button was pressed
        return await self.send(self.update(callback_query={
            "id": f"cq{next(_message_ids)}", "from": self.user, "chat_instance": "ci", "data": payload,
            "message": message}))

    async def photo(self, data: bytes, file_id: str = "photo-big") -> list[Call]:
        self.h.fake.add_file(file_id, data)
        sizes = [{"file_id": "thumb", "file_unique_id": "t", "width": 90, "height": 120, "file_size": 900},
                 {"file_id": file_id, "file_unique_id": "b", "width": 1200, "height": 1600, "file_size": len(data)}]
        return await self.send(self.message(photo=sizes))

    async def document(self, data: bytes, name: str, mime: str, size: int | None = None,
                       caption: str | None = None) -> list[Call]:
        self.h.fake.add_file(name, data)
        return await self.send(self.message(document={
            "file_id": name, "file_unique_id": f"u{name}", "file_name": name, "mime_type": mime,
            "file_size": size if size is not None else len(data)}, **({"caption": caption} if caption else {})))


def texts(calls: list[Call]) -> str:
    return "\n".join(str(c.params.get("text") or c.params.get("caption") or "") for c in calls)


def buttons(call: Call) -> list[str]:
    markup = call.params.get("reply_markup") or {}
    if "inline_keyboard" in markup:
        return [b["callback_data"] for row in markup["inline_keyboard"] for b in row]
    return [b["text"] for row in markup.get("keyboard", []) for b in row]


ANSWERS = ["1054530001", "โรงเรียนบ้านหนองบัว", "แพร่", "tsl1234", "ไม่มี", "นางสาวสมศรี ใจดี", "1-2345-45678-78-1"]


async def register_until_letter(user: User, share_contact: bool) -> Call:
    """A whole registration from /start to the letter; returns the sendDocument call."""
    replies = await user.say("/start")
    assert t("greeting", "th").splitlines()[0] in texts(replies)
    assert buttons(replies[-1]) == ["consent:accept", "consent:decline"]
    await user.press("consent:accept")
    await user.press("aff:obec")
    for answer in ANSWERS:
        replies = await user.say(answer)
    phone_prompt = replies[-1]
    keyboard = phone_prompt.params["reply_markup"]["keyboard"]
    assert keyboard[0][0].get("request_contact") is True  # the share-my-number button
    if share_contact:
        replies = await user.send(user.message(contact={
            "phone_number": "66812345678", "first_name": "สมศรี", "user_id": user.id}))
    else:
        replies = await user.say("081-234-5678")
    assert "08x-xxx-5678" in texts(replies)
    code = user.h.sms.last_code("+66812345678")
    replies = await user.say(code)
    assert "081-234-5678" in texts(replies) and "confirm" in buttons(replies[-1])
    replies = await user.press("confirm")
    documents = [c for c in replies if c.method == "sendDocument"]
    assert len(documents) == 1
    return documents[0]


async def test_a_whole_registration(telegram: Harness):
    user = User(telegram)
    letter = await register_until_letter(user, share_contact=telegram.mode == "polling")
    pdf = letter.files["document"]
    assert pdf.startswith(b"%PDF-") and letter.filenames["document"].endswith("-1.pdf")
    assert "KD-" in letter.params["caption"]
    replies = await user.photo(phone_photo(pdf))
    assert "คิวอาร์โค้ดตรงกับการลงทะเบียน" in texts(replies)
    async with telegram.app.repo.transaction():
        [reg] = await telegram.app.repo.registrations_of("telegram", str(user.id))
    assert reg.status == "submitted" and reg.phone == "+66812345678"


async def test_buttons_are_answered_and_removed_once_pressed(telegram: Harness):
    user = User(telegram)
    await user.say("/start")
    await user.press("consent:accept")
    assert telegram.fake.sent("answerCallbackQuery")
    assert telegram.fake.sent("editMessageReplyMarkup")  # no second press on an answered question


async def test_someone_elses_contact_is_not_taken(telegram: Harness):
    user = User(telegram)
    await user.say("/start")
    await user.press("consent:accept")
    await user.press("aff:obec")
    for answer in ANSWERS:
        await user.say(answer)
    replies = await user.send(user.message(contact={"phone_number": "+66899999999", "first_name": "เพื่อน",
                                                    "user_id": 424242}))
    assert t("err_contact_not_own", "th") in texts(replies)
    assert telegram.sms.sent == []


@pytest.mark.parametrize("update, key", [
    ({"sticker": {"file_id": "s", "file_unique_id": "s", "width": 512, "height": 512, "is_animated": False,
                  "is_video": False, "type": "regular"}}, "kind_sticker"),
    ({"voice": {"file_id": "v", "file_unique_id": "v", "duration": 3}}, "kind_audio"),
    ({"location": {"latitude": 18.14, "longitude": 100.14}}, "kind_location"),
])
async def test_stickers_voice_and_locations_get_a_clear_reply(telegram: Harness, update, key):
    user = User(telegram)
    await user.say("/start")
    await user.press("consent:accept")
    await user.press("aff:obec")
    replies = await user.send(user.message(**update))
    assert t("expect_text", "th", got=t(key, "th")) in texts(replies)


async def test_files_too_big_or_of_the_wrong_kind_at_the_letter_step(telegram: Harness):
    user = User(telegram)
    await register_until_letter(user, share_contact=False)
    before = len(telegram.fake.sent("getFile"))
    replies = await user.document(b"", "scan.pdf", "application/pdf", size=25 * 1024 * 1024)
    assert t("err_file_too_large", "th", max_mb=10) in texts(replies)
    assert len(telegram.fake.sent("getFile")) == before  # not even fetched
    replies = await user.document(b"MZ\x90\x00" + b"\x00" * 2000, "setup.exe", "application/x-msdownload")
    assert t("err_file_type", "th") in texts(replies)
    async with telegram.app.repo.transaction():
        [reg] = await telegram.app.repo.registrations_of("telegram", str(user.id))
    assert reg.status == "letter_issued"


async def test_the_same_update_twice_is_answered_once(webhook_only: Harness):
    # (By long polling Telegram never hands out an update below the confirmed offset again;
    # a webhook is redelivered whenever an answer is lost.)
    user = User(webhook_only)
    update = user.message(text="/start")
    await user.send(update)
    await user.send(update)
    assert len(webhook_only.fake.sent()) == 2  # greeting and consent, once


async def test_a_press_whose_callback_expired_still_counts(telegram: Harness):
    user = User(telegram)
    await user.say("/start")
    telegram.fake.fail("answerCallbackQuery", 400, description="Bad Request: query is too old")
    replies = await user.press("consent:accept")
    assert t("ask_affiliation", "th") in texts(replies)


async def test_a_pdf_scan_sent_as_a_document(telegram: Harness):
    user = User(telegram)
    letter = await register_until_letter(user, share_contact=False)
    replies = await user.document(signed_scan(letter.files["document"]), "scan.pdf", "application/pdf")
    assert "คิวอาร์โค้ดตรงกับการลงทะเบียน" in texts(replies)


async def test_flood_control_is_waited_out(telegram: Harness):
    user = User(telegram)
    telegram.fake.fail("sendMessage", 429, retry_after=1, description="Too Many Requests: retry after 1")
    await telegram.deliver(user.message(text="/start"))
    await telegram.fake.wait_for(lambda calls: len(telegram.fake.sent("sendMessage")) == 2)  # greeting, consent
    assert [c.refused for c in telegram.fake.calls if c.method == "sendMessage"] == [429, None, None]
    [refused] = telegram.fake.sent("sendMessage", refused=True)
    assert refused.params["text"] == telegram.fake.sent("sendMessage")[0].params["text"]  # the same message, again


async def test_a_server_error_is_tried_again(telegram: Harness):
    user = User(telegram)
    telegram.fake.fail("sendMessage", 500)
    await telegram.deliver(user.message(text="/start"))
    await telegram.fake.wait_for(lambda calls: len(telegram.fake.sent("sendMessage")) == 2)
    assert t("greeting", "th").splitlines()[0] in texts(telegram.fake.sent("sendMessage"))
    assert [c.refused for c in telegram.fake.calls if c.method == "sendMessage"] == [500, None, None]


async def test_a_user_who_blocked_the_bot_is_recorded_and_not_retried(telegram: Harness):
    user = User(telegram)
    await user.say("/start")
    telegram.fake.fail("sendMessage", 403, times=5, description="Forbidden: bot was blocked by the user")
    await user.press("consent:accept")
    assert len(telegram.fake.sent("sendMessage", refused=True)) == 1  # one try, no retries, nothing after
    assert (await telegram.conversation(user.id)).blocked
    telegram.fake.failures.clear()
    await user.press("aff:obec")  # they write again: they can be answered again
    assert not (await telegram.conversation(user.id)).blocked


async def test_blocking_the_bot_is_noticed_from_the_membership_update(telegram: Harness):
    user = User(telegram)
    await user.say("/start")
    await user.send(user.update(my_chat_member={
        "chat": user.chat, "from": user.user, "date": int(time.time()),
        "old_chat_member": {"user": {"id": 7000001, "is_bot": True, "first_name": "KidDiary"}, "status": "member"},
        "new_chat_member": {"user": {"id": 7000001, "is_bot": True, "first_name": "KidDiary"}, "status": "kicked",
                            "until_date": 0}}))
    assert (await telegram.conversation(user.id)).blocked


async def test_registration_is_not_done_in_groups(telegram: Harness):
    user = User(telegram)
    group = {"id": -100123, "type": "supergroup", "title": "ครูแพร่"}
    await telegram.deliver(user.update(message={"message_id": 1, "date": int(time.time()), "chat": group,
                                                "from": user.user, "text": "/start@kiddiary_test_bot"}))
    await telegram.settle()
    [reply] = [c for c in telegram.fake.sent() if int(c.params["chat_id"]) == -100123]
    assert reply.params["text"] == t("group_private", "th")


@pytest.mark.parametrize("secret", [None, "wrong"])
async def test_a_webhook_without_the_right_secret_is_refused(webhook_only: Harness, secret):
    telegram = webhook_only
    user = User(telegram)
    status = await telegram.deliver(user.message(text="/start"), secret=secret)
    assert status == 403
    await telegram.settle()
    assert telegram.fake.sent() == []
    assert await telegram.conversation(user.id) is None


async def test_the_webhook_is_registered_with_its_secret(webhook_only: Harness):
    telegram = webhook_only
    [call] = telegram.fake.sent("setWebhook")
    assert call.params["url"].endswith("/telegram/webhook") and call.params["secret_token"] == SECRET


async def test_a_photo_is_downloaded_only_at_a_step_that_takes_one(telegram: Harness):
    user = User(telegram)
    await user.say("/start")
    replies = await user.photo(b"\xff\xd8\xff" + b"\x00" * 5000)  # a photo where consent is asked
    assert t("expect_text", "th", got=t("kind_photo", "th")) in texts(replies)
    assert not [c for c in telegram.fake.calls if c.method == "getFile"]  # never fetched


async def test_an_update_telegram_sends_that_cannot_be_read_is_acknowledged(webhook_only: Harness):
    broken = {"update_id": webhook_only.fake.next_update_id(), "message": {"text": "no chat, no date, no id"}}
    assert await webhook_only.deliver(broken) == 200  # a 500 would make Telegram send it forever
    await webhook_only.settle()
    assert webhook_only.fake.sent() == []


async def test_an_admin_replaces_the_directory_with_a_captioned_file(tmp_path):
    schools = "code,name,province,affiliation\n1054530001,โรงเรียนบ้านหนองบัว,แพร่,สพฐ.\n".encode()
    async with running("polling", tmp_path, KIDDIARY_ADMINS="telegram:5550001") as harness:
        admin, other = User(harness), User(harness, 5550002, "สมชาย")
        replies = await other.document(schools, "schools.csv", "text/csv", caption="/import replace")
        assert texts(replies) == t("not_allowed", "th")
        assert not [c for c in harness.fake.calls if c.method == "getFile"]  # someone else's: never fetched
        replies = await admin.document(schools, "schools.csv", "text/csv", caption="/import@kiddiary_bot replace")
        assert texts(replies) == t("dir_replaced", "th", added=1, updated=0, removed=0, total=1)
        async with harness.app.repo.transaction():
            assert [s.code for s in await harness.app.repo.directory.all()] == ["1054530001"]
