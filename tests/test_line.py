"""The LINE channel: the real line-bot-sdk over HTTP, signed webhooks in, the fake platform out."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from linebot.v3.messaging import AsyncMessagingApi

from bot import web
from bot.app import App, open_app
from bot.config import load_config
from bot.line import LineChannel
from bot.line_api import api_client, proxy_for
from handlers.messages import Choice, Outbound, encode
from storage import OutboxRow
from storage.models import ANSWER
from templates import letter
from templates import text as t
from tests.fakes.line_api import ACCESS_TOKEN, CHANNEL_SECRET, FakeLine, webhook_body
from tests.fakes.sms import RecordingSmsGateway
from tests.helpers import Clock, ManualTimer
from tests.phone_photos import signed_scan
from tests.test_signed_letter import phone_photo

_ids = itertools.count(1)


@dataclass
class Harness:
    fake: FakeLine
    channel: LineChannel
    app: App
    sms: RecordingSmsGateway
    url: str
    clock: Clock
    timer: ManualTimer  # the delivery's: retries and backoff wait for the test to move it

    async def post(self, body: str, signature: str | None) -> int:
        return await self.post_bytes(body.encode(), signature)

    async def post_bytes(self, body: bytes, signature: str | None) -> int:
        headers = {"Content-Type": "application/json"}
        if signature is not None:
            headers["X-Line-Signature"] = signature
        async with aiohttp.ClientSession() as session, session.post(
            f"{self.url}/line/webhook", data=body, headers=headers
        ) as response:
            return response.status

    async def deliver(self, *events: dict[str, Any]) -> int:
        body = webhook_body(*events)
        status = await self.post(body, FakeLine.sign(body))
        await self.settle()
        return status

    async def settle(self) -> None:
        """Until every event taken in is handled and every answer due is sent."""
        await self.channel.idle()
        await self.app.dispatcher.settle()
        await self.app.delivery.idle()

    async def later(self, seconds: float) -> None:
        """Move the delivery's clock on, and let what is due by then go."""
        self.timer.advance(seconds)
        await self.settle()

    async def answer(self, to: str, replies: list[Outbound], reply_token: str | None) -> None:
        """`replies` written to the outbox as the answer to a message just received, and sent."""
        rows = [OutboxRow("line", to, ANSWER, "batch-1", encode(r), reply_token=reply_token, event_at=self.clock())
                for r in replies]
        async with self.app.repo.transaction():
            rows = await self.app.repo.outbox.add(rows, self.clock())
        self.app.delivery.take(rows)
        await self.settle()

    async def get(self, path: str) -> tuple[int, bytes, str]:
        async with aiohttp.ClientSession() as session, session.get(path) as response:
            return response.status, await response.read(), response.content_type


@asynccontextmanager
async def running(tmp_path: Path) -> AsyncIterator[Harness]:
    """The bot as `kiddiary-bot run` starts it with LINE, against the fake platform."""
    fake = FakeLine()
    url = await fake.start()
    config = load_config({
        "KIDDIARY_DATA_DIR": str(tmp_path), "KIDDIARY_LINE_CHANNEL_SECRET": CHANNEL_SECRET,
        "KIDDIARY_LINE_CHANNEL_ACCESS_TOKEN": ACCESS_TOKEN, "KIDDIARY_LINE_API_URL": url,
        "KIDDIARY_LINE_DATA_API_URL": url,
    }, dotenv=None)
    sms, clock = RecordingSmsGateway(), Clock()
    clock.now = clock.now.fromtimestamp(time.time(), clock.now.tzinfo)  # reply tokens are judged by real time
    timer = ManualTimer(time.time())
    async with open_app(config, sms, timer=timer) as app:
        await asyncio.to_thread(letter.prepare)
        channel = LineChannel(app.config, app.dispatcher, app.repo, app.links, clock=clock)
        app.letters.clock = clock
        runner = await web.serve(web.make_app(line=channel, letters=app.letters), "127.0.0.1", 0)
        port = runner.addresses[0][1]
        channel.public_url = f"http://127.0.0.1:{port}"  # the port is known only now
        app.delivery.add_sender(channel)
        await channel.start()
        await app.delivery.start()
        try:
            yield Harness(fake, channel, app, sms, f"http://127.0.0.1:{port}", clock, timer)
        finally:
            await app.delivery.stop()
            await channel.stop()
            await runner.cleanup()
            await fake.stop()


@pytest.fixture
async def line(tmp_path) -> AsyncIterator[Harness]:
    async with running(tmp_path) as harness:
        yield harness


class User:
    def __init__(self, h: Harness, user_id: str = "U1111111111", language: str = "th") -> None:
        self.h, self.id = h, user_id
        h.fake.profiles[user_id] = {"language": language}
        self.seen = 0

    def event(self, kind: str, source: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
        return {
            "type": kind, "mode": "active", "timestamp": int(time.time() * 1000),
            "source": source or {"type": "user", "userId": self.id},
            "webhookEventId": f"01HEVENT{next(_ids):010d}", "deliveryContext": {"isRedelivery": False},
            "replyToken": self.h.fake.reply_token(), **fields,
        }

    def text_event(self, text: str) -> dict[str, Any]:
        return self.event("message", message={"type": "text", "id": str(next(_ids)), "text": text,
                                               "quoteToken": "q"})

    async def send(self, event: dict[str, Any]) -> list[dict[str, Any]]:
        assert await self.h.deliver(event) == 200
        return self.new_messages()

    def new_messages(self) -> list[dict[str, Any]]:
        messages = self.h.fake.messages()
        new, self.seen = messages[self.seen:], len(messages)
        return new

    async def say(self, text: str) -> list[dict[str, Any]]:
        return await self.send(self.text_event(text))

    async def press(self, data: str) -> list[dict[str, Any]]:
        return await self.send(self.event("postback", postback={"data": data}))

    async def image(self, data: bytes, external: bool = False) -> list[dict[str, Any]]:
        message_id = str(next(_ids))
        if external:
            self.h.fake.contents["external:" + message_id] = data
            provider = {"type": "external", "originalContentUrl": f"{self.h.fake.url}/external/{message_id}",
                        "previewImageUrl": f"{self.h.fake.url}/external/{message_id}"}
        else:
            self.h.fake.contents[message_id] = data
            provider = {"type": "line"}
        return await self.send(self.event("message", message={
            "type": "image", "id": message_id, "contentProvider": provider, "quoteToken": "q"}))


def texts(messages: list[dict[str, Any]]) -> str:
    return "\n".join(m.get("text") or m.get("altText") or "" for m in messages)


def flex_nodes(node: Any) -> list[dict[str, Any]]:
    """Every component of a Flex Message's JSON, depth first."""
    if isinstance(node, dict):
        return [node, *(n for value in node.values() for n in flex_nodes(value))]
    if isinstance(node, list):
        return [n for item in node for n in flex_nodes(item)]
    return []


def flex_texts(message: dict[str, Any]) -> list[str]:
    return [n["text"] for n in flex_nodes(message["contents"]) if n.get("type") == "text"]


def flex_buttons(message: dict[str, Any]) -> list[str]:
    """The postback data of a Flex Message's buttons, in the order they are shown."""
    return [n["action"]["data"] for n in flex_nodes(message["contents"]) if n.get("type") == "button"]


def quick(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    items = (messages[-1].get("quickReply") or {}).get("items", [])
    return [item["action"] for item in items]


ANSWERS = ["1054530001", "โรงเรียนบ้านหนองบัว", "แพร่", "tsl1234", "ไม่มี", "นางสาวสมศรี ใจดี", "1-2345-45678-78-1",
           "081-234-5678"]


async def register_until_letter(user: User) -> list[dict[str, Any]]:
    messages = await user.send(user.event("follow", follow={"isUnblocked": False}))
    assert t("greeting", "th").splitlines()[0] in texts(messages)
    assert [a["data"] for a in quick(messages)] == ["consent:accept", "consent:decline"]
    await user.press("consent:accept")
    await user.press("aff:obec")
    for answer in ANSWERS:
        messages = await user.say(answer)
    assert "08x-xxx-5678" in texts(messages)
    await user.say(user.h.sms.last_code("+66812345678"))
    return await user.press("confirm")


async def test_a_whole_registration_from_follow_to_the_signed_photo(line: Harness):
    user = User(line)
    messages = await register_until_letter(user)
    image = next(m for m in messages if m["type"] == "image")
    template = next(m for m in messages if m["type"] == "template")
    [button] = template["template"]["actions"]
    assert button["type"] == "uri" and button["label"] == t("btn_open_pdf", "th")
    assert [a["type"] for a in quick([template])][:2] == ["camera", "cameraRoll"]

    status, pdf, kind = await line.get(button["uri"])
    assert (status, kind) == (200, "application/pdf") and pdf.startswith(b"%PDF-")
    for url, limit in ((image["originalContentUrl"], 10_000_000), (image["previewImageUrl"], 1_000_000)):
        status, jpeg, kind = await line.get(url)
        assert (status, kind) == (200, "image/jpeg") and jpeg[:3] == b"\xff\xd8\xff" and len(jpeg) < limit

    messages = await user.image(phone_photo(pdf))
    assert line.fake.sent("/v2/bot/chat/loading/start")  # reading the photo shows the loading animation
    assert "คิวอาร์โค้ดตรงกับการลงทะเบียน" in texts(messages)
    async with line.app.repo.transaction():
        [reg] = await line.app.repo.registrations_of("line", user.id)
    assert reg.status == "submitted"


async def test_a_photo_kept_by_an_external_content_provider(line: Harness):
    user = User(line)
    messages = await register_until_letter(user)
    template = next(m for m in messages if m["type"] == "template")
    _, pdf, _ = await line.get(template["template"]["actions"][0]["uri"])
    messages = await user.image(phone_photo(pdf), external=True)
    assert "คิวอาร์โค้ดตรงกับการลงทะเบียน" in texts(messages)


@pytest.mark.parametrize("signature, status", [(None, 401), ("bm90IHRoZSByaWdodCBvbmU=", 401)])
async def test_a_webhook_without_a_valid_signature_is_refused(line: Harness, signature, status):
    user = User(line)
    body = webhook_body(user.text_event("/start"))
    assert await line.post(body, signature) == status
    await line.channel.idle()
    assert line.fake.requests == []
    async with line.app.repo.transaction():
        assert await line.app.repo.get_conversation("line", user.id) is None
        assert await line.app.repo.events.waiting("line") == []


async def test_a_malformed_body_is_refused_even_when_signed(line: Harness):
    for body in ("not json at all", '{"destination": "U"}', "[]"):
        assert await line.post(body, FakeLine.sign(body)) == 400
    assert line.fake.requests == []


async def test_a_redelivered_event_is_handled_once(line: Harness):
    user = User(line)
    event = user.text_event("/start")
    await user.send(event)
    redelivery = {**event, "deliveryContext": {"isRedelivery": True}, "replyToken": line.fake.reply_token()}
    assert await line.deliver(redelivery) == 200
    assert user.new_messages() == []


async def test_an_expired_reply_token_means_a_push_with_a_retry_key(line: Harness):
    user = User(line)
    event = user.text_event("/start")
    line.fake.expire_reply_tokens()
    await user.send(event)
    [push] = line.fake.sent("/v2/bot/message/push")
    assert push.body["to"] == user.id and push.headers.get("X-Line-Retry-Key")
    assert line.fake.sent("/v2/bot/message/reply") == []


async def test_an_old_event_is_answered_by_push_without_trying_its_token(line: Harness):
    user = User(line)
    event = user.text_event("/start")
    event["timestamp"] -= 120_000  # handled two minutes late (after a restart, say)
    await user.send(event)
    assert [r.path for r in line.fake.requests if "message" in r.path] == ["/v2/bot/message/push"]


async def test_a_failed_push_is_retried_with_the_same_key(line: Harness):
    user = User(line)
    event = user.text_event("/start")
    line.fake.expire_reply_tokens()
    line.fake.fail("/v2/bot/message/push", 500)
    await user.send(event)
    await line.later(2)  # the backoff
    pushes = [r for r in line.fake.requests if r.path == "/v2/bot/message/push"]
    assert [p.status for p in pushes] == [500, 200]
    assert pushes[0].headers["X-Line-Retry-Key"] == pushes[1].headers["X-Line-Retry-Key"]


async def test_flood_limits_on_push_are_retried_with_the_same_key(line: Harness):
    user = User(line)
    event = user.text_event("/start")
    line.fake.expire_reply_tokens()
    line.fake.fail("/v2/bot/message/push", 429)
    await user.send(event)
    await line.later(2)  # the backoff
    pushes = [r for r in line.fake.requests if r.path == "/v2/bot/message/push"]
    assert [p.status for p in pushes] == [429, 200]
    assert len({p.headers["X-Line-Retry-Key"] for p in pushes}) == 1


async def test_a_push_already_accepted_under_its_key_is_not_sent_again(line: Harness):
    user = User(line)
    event = user.text_event("/start")
    line.fake.expire_reply_tokens()
    line.fake.lost_answers.append(504)  # the push went through, but the answer was lost
    await user.send(event)
    await line.later(2)  # the backoff
    statuses = [r.status for r in line.fake.requests if r.path == "/v2/bot/message/push"]
    assert statuses == [504, 409]  # the retry is refused as a repeat: delivered once, and not retried again


async def test_a_pdf_scan_sent_as_a_file_message(line: Harness):
    user = User(line)
    messages = await register_until_letter(user)
    template = next(m for m in messages if m["type"] == "template")
    _, pdf, _ = await line.get(template["template"]["actions"][0]["uri"])
    line.fake.contents["file-0"] = pdf  # the letter itself, unsigned, sent back: refused
    messages = await user.send(user.event("message", message={
        "type": "file", "id": "file-0", "fileName": "letter.pdf", "fileSize": len(pdf)}))
    assert t("err_letter_unsigned_copy", "th") in texts(messages)
    scan = signed_scan(pdf)
    line.fake.contents["file-1"] = scan
    messages = await user.send(user.event("message", message={
        "type": "file", "id": "file-1", "fileName": "scan.pdf", "fileSize": len(scan)}))
    assert "คิวอาร์โค้ดตรงกับการลงทะเบียน" in texts(messages)


async def test_a_photo_line_would_not_hand_over_gets_a_request_to_resend(line: Harness):
    user = User(line)
    await register_until_letter(user)
    messages = await user.send(user.event("message", message={
        "type": "image", "id": "gone-1", "contentProvider": {"type": "line"}, "quoteToken": "q"}))
    assert t("err_file_unreadable", "th") in texts(messages)


async def test_health(line: Harness):
    status, body, kind = await line.get(f"{line.url}/healthz")
    assert (status, kind) == (200, "application/json") and b"ok" in body


async def test_more_than_five_messages_go_in_several_requests(line: Harness):
    user = User(line)
    replies = [Outbound(f"ข้อความ {n}") for n in range(7)]
    await line.answer(user.id, replies, line.fake.reply_token())
    sizes = [(r.path.rsplit("/", 1)[-1], len(r.body["messages"])) for r in line.fake.sent()]
    assert sizes == [("reply", 5), ("push", 2)]


async def test_quick_replies_fit_lines_limits(line: Harness):
    user = User(line)
    choices = tuple(Choice(f"ตัวเลือกที่ยาวมากเกินยี่สิบตัวอักษร {n}", f"p{n}") for n in range(15))
    await line.answer(user.id, [Outbound("เลือก", choices)], line.fake.reply_token())
    actions = quick(line.fake.messages())
    assert len(actions) == 13 and all(len(a["label"]) <= 20 for a in actions)
    assert actions[0]["data"] == "p0" and actions[0]["displayText"] == choices[0].label


async def test_postbacks_and_typed_labels_both_answer(line: Harness):
    user = User(line)
    await user.say("/start")
    await user.press("consent:accept")
    messages = await user.say("สพฐ.")
    assert t("ask_school_code_obec", "th") in texts(messages)


@pytest.mark.parametrize("message, key", [
    ({"type": "sticker", "id": "1", "packageId": "446", "stickerId": "1988", "stickerResourceType": "STATIC",
      "quoteToken": "q"}, "kind_sticker"),
    ({"type": "location", "id": "2", "latitude": 18.14, "longitude": 100.14, "address": "แพร่"}, "kind_location"),
    ({"type": "audio", "id": "3", "duration": 3000, "contentProvider": {"type": "line"}}, "kind_audio"),
    ({"type": "video", "id": "4", "duration": 3000, "contentProvider": {"type": "line"}, "quoteToken": "q"},
     "kind_video"),
])
async def test_stickers_locations_voice_and_video_get_a_clear_reply(line: Harness, message, key):
    user = User(line)
    await user.say("/start")
    await user.press("consent:accept")
    await user.press("aff:obec")
    messages = await user.send(user.event("message", message=message))
    assert t("expect_text", "th", got=t(key, "th")) in texts(messages)


async def test_a_file_too_big_is_refused_without_fetching_it(line: Harness):
    user = User(line)
    await register_until_letter(user)
    messages = await user.send(user.event("message", message={
        "type": "file", "id": "99", "fileName": "scan.pdf", "fileSize": 25 * 1024 * 1024}))
    assert t("err_file_too_large", "th", max_mb=10) in texts(messages)
    assert not any(r.path.endswith("/99/content") for r in line.fake.requests)


async def test_unknown_event_types_are_acknowledged_and_ignored(line: Harness):
    user = User(line)
    assert await line.deliver(user.event("somethingNew", payload={"x": 1}),
                              user.event("unsend", unsend={"messageId": "1"})) == 200
    assert line.fake.requests == []


async def test_unfollow_marks_the_user_and_a_new_message_clears_it(line: Harness):
    user = User(line)
    await user.say("/start")
    await line.deliver({**user.event("unfollow"), "replyToken": None})
    async with line.app.repo.transaction():
        assert (await line.app.repo.get_conversation("line", user.id)).blocked
    await user.say("/status")
    async with line.app.repo.transaction():
        assert not (await line.app.repo.get_conversation("line", user.id)).blocked


async def test_the_profile_language_picks_english_for_a_new_user(line: Harness):
    user = User(line, user_id="U2222222222", language="en")
    messages = await user.send(user.event("follow", follow={"isUnblocked": False}))
    assert t("greeting", "en").splitlines()[0] in texts(messages)


async def test_groups_get_no_registration(line: Harness):
    user = User(line)
    group = {"type": "group", "groupId": "C123", "userId": user.id}
    messages = await user.send(user.event("message", source=group, message={
        "type": "text", "id": "5", "text": "/start", "quoteToken": "q"}))
    assert texts(messages) == t("group_private", "th")
    messages = await user.send(user.event("message", source=group, message={
        "type": "text", "id": "6", "text": "สวัสดีครับทุกคน", "quoteToken": "q"}))
    assert messages == []  # group chatter is not for the bot


async def test_letter_links_valid_tampered_expired_and_outdated(line: Harness):
    user = User(line)
    messages = await register_until_letter(user)
    uri = next(m for m in messages if m["type"] == "template")["template"]["actions"][0]["uri"]
    token = uri.rsplit("/", 1)[-1]
    assert (await line.get(uri))[0] == 200
    payload, mac = token.split(".")
    for bad in (f"{payload}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}", f"{payload[:-2]}xx.{mac}", "nonsense"):
        status, body, _ = await line.get(uri.replace(token, bad))
        assert status == 404 and b"PDF" not in body
    line.clock.advance(days=8)
    assert (await line.get(uri))[0] == 404
    line.clock.advance(days=-8)
    await user.press("letter:edit")
    assert (await line.get(uri))[0] == 404  # reopened for editing: the letter is not the letter any more
    await user.press("confirm")  # version 2: the old link is outdated for good
    assert (await line.get(uri))[0] == 404


async def test_an_event_acknowledged_before_a_crash_is_handled_at_the_next_start(tmp_path):
    async with running(tmp_path) as first:
        user = User(first)
        event = user.text_event("/start")
        async with first.app.repo.transaction():  # acknowledged and kept, then the process died
            await first.app.repo.events.keep("line", event["webhookEventId"], json.dumps(event), first.clock())
    async with running(tmp_path) as second:
        await second.settle()
        assert t("greeting", "th").splitlines()[0] in texts(second.fake.messages())
        async with second.app.repo.transaction():
            assert await second.app.repo.events.waiting("line") == []


async def test_a_long_text_goes_whole_in_several_messages(line: Harness):
    user = User(line)
    lines = [f"{n:04d} " + "ข" * 95 for n in range(120)]  # about 12,000 characters
    await line.answer(user.id, [Outbound("\n".join(lines), (Choice("ตกลง", "ok"),))], line.fake.reply_token())
    [reply] = line.fake.sent()
    texts = [m["text"] for m in reply.body["messages"]]
    assert len(texts) == 3 and all(len(x) <= 5000 for x in texts)
    assert "\n".join(texts).split("\n") == lines
    assert "quickReply" in reply.body["messages"][-1] and "quickReply" not in reply.body["messages"][0]


async def test_a_non_utf8_body_is_judged_by_its_signature_first(line: Harness):
    body = b'{"destination": "U", "events": [\xff\xfe]}'
    signature = base64.b64encode(hmac.new(CHANNEL_SECRET.encode(), body, hashlib.sha256).digest()).decode()
    assert await line.post_bytes(body, "bm90IHRoZSBzaWduYXR1cmU=") == 401
    assert await line.post_bytes(body, signature) == 400


async def test_photos_in_groups_are_never_downloaded(line: Harness):
    user = User(line)
    message_id = "group-photo-1"
    line.fake.contents[message_id] = b"\xff\xd8\xff" + b"\x00" * 5000
    group = {"type": "group", "groupId": "Cgroup1", "userId": user.id}
    await user.send(user.event("message", source=group, message={
        "type": "image", "id": message_id, "contentProvider": {"type": "line"}, "quoteToken": "q"}))
    assert not [r for r in line.fake.requests if r.path.endswith("/content")]


async def test_the_proxy_is_taken_from_the_environment_once_at_start(monkeypatch):
    """line-bot-sdk's session would read the proxy variables and ~/.netrc for every request;
    ours reads them when the client is made. The fake plays the proxy for a host that does not
    exist, then the variable changes: the client keeps going the way it started."""
    proxy = FakeLine()
    proxy_url = await proxy.start()
    for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "http_proxy"):
        monkeypatch.delenv(name, raising=False)
    try:
        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        assert proxy_for("http://line-api.invalid") == (proxy_url, None)
        monkeypatch.setenv("NO_PROXY", "line-api.invalid")
        assert proxy_for("http://line-api.invalid") == (None, None)
        monkeypatch.delenv("NO_PROXY")
        monkeypatch.setenv("HTTP_PROXY", proxy_url.replace("http://", "http://ops:secret@"))
        assert proxy_for("http://line-api.invalid")[1] == {
            "Proxy-Authorization": "Basic " + base64.b64encode(b"ops:secret").decode()}

        monkeypatch.setenv("HTTP_PROXY", proxy_url)
        client = await api_client("http://line-api.invalid", ACCESS_TOKEN)
        try:
            monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # read per request, this would fail
            proxy.profiles["U42"] = {"language": "en"}
            profile = await AsyncMessagingApi(client).get_profile("U42")
            assert profile.language == "en"  # from the fake: line-api.invalid has no address
        finally:
            await client.close()
    finally:
        await proxy.stop()
