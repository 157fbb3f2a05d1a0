"""A small fake of the Telegram Bot API, for python-telegram-bot to talk to over real HTTP.

It answers getMe, serves getUpdates from a queue the test fills, records every call with its
parameters and uploaded files, serves getFile and file downloads, and fails on request
(500, 429 with retry_after, 403 blocked) for given methods. setMyCommands and sendChatAction
are held to the Bot API's rules (command names, description lengths, scopes, actions).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.server import LocalServer

BOT_ID = 7000001
BOT = {"id": BOT_ID, "is_bot": True, "first_name": "KidDiary", "username": "kiddiary_test_bot",
       "can_join_groups": True, "can_read_all_group_messages": False, "supports_inline_queries": False}


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    filenames: dict[str, str] = field(default_factory=dict)
    refused: int | None = None  # the error status the fake answered with, if it failed the call
    result: Any = None  # what the fake answered (the message sent, for a send)


@dataclass
class Failure:
    status: int
    times: int
    retry_after: int | None = None
    description: str = "Internal Server Error"


class FakeTelegram(LocalServer):
    def __init__(self, token: str) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.updates: list[dict[str, Any]] = []
        self.new_update = asyncio.Event()
        self.files: dict[str, bytes] = {}
        self.failures: dict[str, list[Failure]] = {}
        self.blocked: set[str] = set()  # chats of users who blocked the bot: sending to them is forbidden
        self._message_ids = itertools.count(1000)
        self._update_ids = itertools.count(1)
        self.app = web.Application(client_max_size=64 * 1024 * 1024)
        self.app.router.add_route("*", "/bot{token}/{method}", self._method)
        self.app.router.add_get("/file/bot{token}/{path:.*}", self._download)

    # --- what a test does ----------------------------------------------------------------

    def next_update_id(self) -> int:
        return next(self._update_ids)

    def push(self, update: dict[str, Any]) -> None:
        """Queue an update for the bot's next getUpdates."""
        self.updates.append(update)
        self.new_update.set()

    def add_file(self, file_id: str, data: bytes) -> None:
        self.files[file_id] = data

    def fail(self, method: str, status: int, times: int = 1, retry_after: int | None = None,
             description: str = "Internal Server Error") -> None:
        self.failures.setdefault(method, []).append(Failure(status, times, retry_after, description))

    def sent(self, method: str | None = None, *, refused: bool = False) -> list[Call]:
        """The calls made (of `method`, or every message sent), that succeeded (or were refused)."""
        outgoing = ("sendMessage", "sendDocument", "sendPhoto", "editMessageCaption", "editMessageText",
                    "editMessageMedia")
        return [c for c in self.calls if (c.method == method if method else c.method in outgoing)
                and (c.refused is not None) == refused]

    async def wait_for(self, predicate: Callable[[list[Call]], bool], timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while not predicate(self.calls):
            if time.monotonic() > deadline:
                raise AssertionError(f"the bot did not do what was expected; calls: {[c.method for c in self.calls]}")
            await asyncio.sleep(0.01)

    # --- the API -----------------------------------------------------------------------

    async def _params(self, request: web.Request) -> Call:
        method = request.match_info["method"]
        params: dict[str, Any] = {}
        files: dict[str, bytes] = {}
        filenames: dict[str, str] = {}
        if request.content_type == "application/json":
            params = await request.json()
        elif request.can_read_body:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, web.FileField):
                    files[key] = value.file.read()
                    filenames[key] = value.filename
                else:
                    params[key] = _decoded(str(value))
        params.update({k: _decoded(v) for k, v in request.query.items()})
        return Call(method, params, files, filenames)

    async def _method(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        call = await self._params(request)
        if call.method != "getUpdates":
            self.calls.append(call)
        if call.method.startswith("send") and str(call.params.get("chat_id")) in self.blocked:
            call.refused = 403
            return web.json_response({"ok": False, "error_code": 403,
                                      "description": "Forbidden: bot was blocked by the user"}, status=403)
        failures = self.failures.get(call.method, [])
        if failures:
            failure = failures[0]
            failure.times -= 1
            if failure.times <= 0:
                failures.pop(0)
            call.refused = failure.status
            body: dict[str, Any] = {"ok": False, "error_code": failure.status, "description": failure.description}
            if failure.retry_after is not None:
                body["parameters"] = {"retry_after": failure.retry_after}
            return web.json_response(body, status=failure.status)
        problem = _problem(call)
        if problem:
            call.refused = 400
            return web.json_response({"ok": False, "error_code": 400, "description": f"Bad Request: {problem}"},
                                     status=400)
        handler = getattr(self, f"_api_{call.method}", None)
        result = await handler(call) if handler else True
        call.result = result
        return web.json_response({"ok": True, "result": result})

    async def _api_getMe(self, call: Call) -> dict[str, Any]:
        return BOT

    async def _api_getUpdates(self, call: Call) -> list[dict[str, Any]]:
        offset = int(call.params.get("offset") or 0)
        self.updates = [u for u in self.updates if u["update_id"] >= offset]
        if not self.updates:
            self.new_update.clear()
            try:
                await asyncio.wait_for(self.new_update.wait(), timeout=float(call.params.get("timeout") or 0))
            except TimeoutError:
                return []
        return list(self.updates)

    def _message(self, call: Call, **extra: Any) -> dict[str, Any]:
        chat_id = int(call.params["chat_id"])
        return {"message_id": next(self._message_ids), "date": int(time.time()),
                "chat": {"id": chat_id, "type": "private" if chat_id > 0 else "group"},
                "from": BOT, **extra}

    async def _api_sendMessage(self, call: Call) -> dict[str, Any]:
        return self._message(call, text=call.params.get("text", ""))

    async def _api_sendDocument(self, call: Call) -> dict[str, Any]:
        data = call.files.get("document", b"")
        return self._message(call, caption=call.params.get("caption"), document={
            "file_id": f"doc{len(self.calls)}", "file_unique_id": f"u{len(self.calls)}",
            "file_name": call.filenames.get("document"), "file_size": len(data)})

    async def _api_sendPhoto(self, call: Call) -> dict[str, Any]:
        size = len(call.files.get("photo", b""))
        return self._message(call, caption=call.params.get("caption"), photo=[
            {"file_id": f"photo{len(self.calls)}", "file_unique_id": f"p{len(self.calls)}", "width": 1240,
             "height": 1754, "file_size": size}])

    async def _api_editMessageCaption(self, call: Call) -> dict[str, Any]:
        return self._edited(call, caption=call.params.get("caption"))

    async def _api_editMessageText(self, call: Call) -> dict[str, Any]:
        return self._edited(call, text=call.params.get("text"))

    async def _api_editMessageMedia(self, call: Call) -> dict[str, Any]:
        return self._edited(call)

    def _edited(self, call: Call, **extra: Any) -> dict[str, Any]:
        message = self._message(call, **extra)
        return {**message, "message_id": int(call.params["message_id"]), "edit_date": int(time.time())}

    async def _api_getFile(self, call: Call) -> dict[str, Any]:
        file_id = call.params["file_id"]
        data = self.files[file_id]
        return {"file_id": file_id, "file_unique_id": f"u-{file_id}", "file_size": len(data),
                "file_path": f"files/{file_id}"}

    async def _api_editMessageReplyMarkup(self, call: Call) -> bool:
        return True

    async def _download(self, request: web.Request) -> web.Response:
        file_id = request.match_info["path"].rsplit("/", 1)[-1]
        if request.match_info["token"] != self.token or file_id not in self.files:
            return web.Response(status=404)
        return web.Response(body=self.files[file_id])


SCOPES = {"default", "all_private_chats", "all_group_chats", "all_chat_administrators", "chat",
          "chat_administrators", "chat_member"}
CHAT_ACTIONS = {"typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice",
                "upload_document", "choose_sticker", "find_location", "record_video_note", "upload_video_note"}


def _problem(call: Call) -> str | None:
    """What the Bot API would refuse in a setMyCommands or sendChatAction call, or None."""
    if call.method == "setMyCommands":
        commands = call.params.get("commands")
        if not isinstance(commands, list) or len(commands) > 100:
            return "commands must be a list of at most 100"
        for c in commands:
            if not re.fullmatch(r"[a-z0-9_]{1,32}", c.get("command", "")):
                return "BOT_COMMAND_INVALID"
            if not 1 <= len(c.get("description", "")) <= 256:
                return "command description must be 1-256 characters"
        scope = call.params.get("scope") or {"type": "default"}
        if scope.get("type") not in SCOPES or (scope["type"].startswith("chat") and "chat_id" not in scope):
            return "invalid scope"
        language = call.params.get("language_code")
        if language is not None and not re.fullmatch(r"[a-z]{2}", language):
            return "invalid language_code"
    if call.method == "sendChatAction" and call.params.get("action") not in CHAT_ACTIONS:
        return "wrong parameter action in request"
    return None


def _decoded(value: str) -> Any:
    """Form fields carry nested objects (reply_markup…) as JSON text."""
    if value[:1] in "{[":
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value
