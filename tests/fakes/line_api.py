"""A small fake of the LINE Messaging API (both hosts), for line-bot-sdk to talk to over HTTP.

It records reply, push and multicast requests with their headers and bodies, issues reply
tokens and expires them on demand, serves message content and profiles, enforces 5 messages
a request and once-per-retry-key pushes, and fails on request for a given path.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.server import LocalServer

ACCESS_TOKEN = "test-channel-access-token"
CHANNEL_SECRET = "test-channel-secret-0123456789abcdef"


@dataclass
class Request:
    path: str
    body: dict[str, Any]
    headers: dict[str, str]
    status: int = 200


@dataclass
class FakeLine(LocalServer):
    requests: list[Request] = field(default_factory=list)
    contents: dict[str, bytes] = field(default_factory=dict)
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    reply_tokens: dict[str, bool] = field(default_factory=dict)  # token → still usable
    retry_keys: set[str] = field(default_factory=set)
    failures: dict[str, list[int]] = field(default_factory=dict)  # path → statuses to answer next
    lost_answers: list[int] = field(default_factory=list)  # push accepted, but this status answered

    def __post_init__(self) -> None:
        self._tokens = itertools.count(1)
        self.app = web.Application(client_max_size=32 * 1024 * 1024)
        self.app.router.add_post("/v2/bot/message/reply", self._reply)
        self.app.router.add_post("/v2/bot/message/push", self._push)
        self.app.router.add_post("/v2/bot/message/multicast", self._multicast)
        self.app.router.add_post("/v2/bot/chat/loading/start", self._record)
        self.app.router.add_get("/v2/bot/profile/{user_id}", self._profile)
        self.app.router.add_get("/v2/bot/message/{message_id}/content", self._content)
        self.app.router.add_get("/external/{name}", self._external)

    # --- what a test does ----------------------------------------------------------------

    def reply_token(self) -> str:
        token = f"rt-{next(self._tokens)}"
        self.reply_tokens[token] = True
        return token

    def expire_reply_tokens(self) -> None:
        self.reply_tokens = dict.fromkeys(self.reply_tokens, False)

    def fail(self, path: str, *statuses: int) -> None:
        self.failures.setdefault(path, []).extend(statuses)

    def sent(self, path: str | None = None) -> list[Request]:
        """Successful requests (to `path`, or every reply and push)."""
        paths = (path,) if path else ("/v2/bot/message/reply", "/v2/bot/message/push")
        return [r for r in self.requests if r.path in paths and r.status == 200]

    def multicast_deliveries(self) -> dict[str, int]:
        """user id → how many multicast messages LINE delivered to them (409s excluded)."""
        counts: dict[str, int] = {}
        accepted = [r for r in self.requests if r.path == "/v2/bot/message/multicast" and r.status in (200, 504)]
        for r in accepted:  # a 504 from `lost_answers` was delivered all the same
            for user_id in r.body["to"]:
                counts[user_id] = counts.get(user_id, 0) + len(r.body["messages"])
        return counts

    def messages(self) -> list[dict[str, Any]]:
        return [m for r in self.sent() for m in r.body["messages"]]

    @staticmethod
    def sign(body: str, secret: str = CHANNEL_SECRET) -> str:
        return base64.b64encode(hmac.new(secret.encode(), body.encode(), hashlib.sha256).digest()).decode()

    # --- the API -----------------------------------------------------------------------

    async def _start(self, request: web.Request) -> tuple[Request, web.Response | None]:
        body = await request.json() if request.can_read_body else {}
        record = Request(request.path, body, dict(request.headers))
        self.requests.append(record)
        if request.headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
            record.status = 401
            return record, web.json_response({"message": "Authentication failed"}, status=401)
        if self.failures.get(request.path):
            record.status = self.failures[request.path].pop(0)
            return record, web.json_response({"message": "injected failure"}, status=record.status)
        if len(body.get("messages", [])) > 5:
            record.status = 400
            return record, web.json_response({"message": "Size must be between 1 and 5"}, status=400)
        return record, None

    async def _record(self, request: web.Request) -> web.Response:
        _, refused = await self._start(request)
        return refused or web.json_response({})

    async def _multicast(self, request: web.Request) -> web.Response:
        record, refused = await self._start(request)
        if refused:
            return refused
        if not 1 <= len(record.body.get("to", [])) <= 500:  # LINE's limit of recipients
            record.status = 400
            return web.json_response({"message": "The number of recipients must be 1 to 500"}, status=400)
        key = request.headers.get("X-Line-Retry-Key")
        if key and key in self.retry_keys:
            record.status = 409
            return web.json_response({"message": "The retry key is already accepted"}, status=409)
        if key:
            self.retry_keys.add(key)
        if self.lost_answers:  # delivered, yet the bot hears an error
            record.status = self.lost_answers.pop(0)
            return web.json_response({"message": "gateway timeout"}, status=record.status)
        return web.json_response({})

    async def _reply(self, request: web.Request) -> web.Response:
        record, refused = await self._start(request)
        if refused:
            return refused
        token = record.body.get("replyToken")
        if not self.reply_tokens.get(token):
            record.status = 400
            return web.json_response({"message": "Invalid reply token"}, status=400)
        self.reply_tokens[token] = False  # a reply token is good once
        return web.json_response({"sentMessages": [{"id": str(time.time_ns())}]})

    async def _push(self, request: web.Request) -> web.Response:
        record, refused = await self._start(request)
        if refused:
            return refused
        key = request.headers.get("X-Line-Retry-Key")
        if key and key in self.retry_keys:
            record.status = 409  # LINE: this retry key was accepted before; not sent again
            return web.json_response({"message": "The retry key is already accepted"}, status=409)
        if key:
            self.retry_keys.add(key)
        if self.lost_answers:  # delivered, yet the bot hears an error (a timeout on the way back)
            record.status = self.lost_answers.pop(0)
            return web.json_response({"message": "gateway timeout"}, status=record.status)
        return web.json_response({"sentMessages": [{"id": str(time.time_ns())}]})

    async def _profile(self, request: web.Request) -> web.Response:
        user_id = request.match_info["user_id"]
        profile = self.profiles.get(user_id, {"language": "th"})
        return web.json_response({"userId": user_id, "displayName": "ครู", **profile})

    async def _content(self, request: web.Request) -> web.Response:
        self.requests.append(Request(request.path, {}, dict(request.headers)))
        data = self.contents.get(request.match_info["message_id"])
        if data is None:
            return web.json_response({"message": "Not found"}, status=404)
        return web.Response(body=data, content_type="application/octet-stream")

    async def _external(self, request: web.Request) -> web.Response:
        data = self.contents.get("external:" + request.match_info["name"])
        return web.Response(body=data, content_type="image/jpeg") if data else web.Response(status=404)


def webhook_body(*events: dict[str, Any]) -> str:
    return json.dumps({"destination": "Ubot0000000000", "events": list(events)}, ensure_ascii=False)

