"""A small fake of the LINE Messaging API (both hosts), for line-bot-sdk to talk to over HTTP.

It records reply, push and multicast requests with their headers and bodies, issues reply
tokens and expires them on demand, serves message content and profiles, enforces 5 messages
a request and once-per-retry-key pushes, and fails on request for a given path. Flex Messages
are held to LINE's limits (altText 1 to 400 characters, a bubble or carousel of at most 30 KB). Rich menus are
made, given an image, set as the default, listed and deleted, checked as LINE checks them: the
size, the tap areas inside it, labels, and an image of exactly that size, JPEG or PNG, at most
1 MB, uploaded once, before the menu can be the default.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from PIL import Image

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
    rich_menus: dict[str, dict[str, Any]] = field(default_factory=dict)  # id → the menu as created
    rich_menu_images: dict[str, bytes] = field(default_factory=dict)
    default_rich_menu: str | None = None

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
        self.app.router.add_post("/v2/bot/richmenu", self._create_menu)
        self.app.router.add_get("/v2/bot/richmenu/list", self._list_menus)
        self.app.router.add_delete("/v2/bot/richmenu/{menu_id}", self._delete_menu)
        self.app.router.add_post("/v2/bot/richmenu/{menu_id}/content", self._menu_image)
        self.app.router.add_post("/v2/bot/user/all/richmenu/{menu_id}", self._set_default_menu)
        self.app.router.add_get("/v2/bot/user/all/richmenu", self._default_menu)
        self._menu_ids = itertools.count(1)

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
        for message in body.get("messages", []):
            if message.get("type") == "flex" and (
                not 1 <= len(message.get("altText") or "") <= 400
                or (message.get("contents") or {}).get("type") not in ("bubble", "carousel")
                or len(json.dumps(message["contents"], ensure_ascii=False).encode()) > 30_000
            ):
                record.status = 400
                return record, web.json_response({"message": "A message (messages[0]) in the request body is invalid",
                                                  "details": [{"property": "altText"}]}, status=400)
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


    # --- rich menus ----------------------------------------------------------------------

    def _refused(self, record: Request, status: int, message: str) -> web.Response:
        record.status = status
        return web.json_response({"message": message}, status=status)

    async def _create_menu(self, request: web.Request) -> web.Response:
        record, refused = await self._start(request)
        if refused:
            return refused
        menu = record.body
        problem = _menu_problem(menu)
        if problem:
            return self._refused(record, 400, problem)
        menu_id = f"richmenu-{next(self._menu_ids):032x}"
        self.rich_menus[menu_id] = menu
        return web.json_response({"richMenuId": menu_id})

    async def _list_menus(self, request: web.Request) -> web.Response:
        _, refused = await self._start(request)
        return refused or web.json_response(
            {"richmenus": [{"richMenuId": menu_id, **menu} for menu_id, menu in self.rich_menus.items()]})

    async def _delete_menu(self, request: web.Request) -> web.Response:
        record, refused = await self._start(request)
        if refused:
            return refused
        menu_id = request.match_info["menu_id"]
        if self.rich_menus.pop(menu_id, None) is None:
            return self._refused(record, 404, "Not found")
        self.rich_menu_images.pop(menu_id, None)
        if self.default_rich_menu == menu_id:
            self.default_rich_menu = None
        return web.json_response({})

    async def _menu_image(self, request: web.Request) -> web.Response:
        data = await request.read()
        record = Request(request.path, {"content_type": request.content_type, "size": len(data)},
                         dict(request.headers))
        self.requests.append(record)
        if request.headers.get("Authorization") != f"Bearer {ACCESS_TOKEN}":
            return self._refused(record, 401, "Authentication failed")
        if self.failures.get("richmenu-image"):  # fail("richmenu-image", status): the next upload
            return self._refused(record, self.failures["richmenu-image"].pop(0), "injected failure")
        menu_id = request.match_info["menu_id"]
        menu = self.rich_menus.get(menu_id)
        if menu is None:
            return self._refused(record, 404, "Not found")
        if menu_id in self.rich_menu_images:
            return self._refused(record, 400, "An image has already been uploaded to the richmenu")
        if request.content_type not in ("image/jpeg", "image/png") or len(data) > 1024 * 1024:
            return self._refused(record, 400, "Invalid image: JPEG or PNG, at most 1 MB")
        try:
            image = Image.open(io.BytesIO(data))
            size, kind = image.size, image.format
        except OSError:
            return self._refused(record, 400, "Invalid image")
        if kind not in ("JPEG", "PNG") or size != (menu["size"]["width"], menu["size"]["height"]):
            return self._refused(record, 400, f"Image size {size} does not match the rich menu's size")
        self.rich_menu_images[menu_id] = data
        return web.json_response({})

    async def _set_default_menu(self, request: web.Request) -> web.Response:
        record, refused = await self._start(request)
        if refused:
            return refused
        menu_id = request.match_info["menu_id"]
        if menu_id not in self.rich_menus:
            return self._refused(record, 404, "Not found")
        if menu_id not in self.rich_menu_images:
            return self._refused(record, 400, "must upload richmenu image before applying it to user")
        self.default_rich_menu = menu_id
        return web.json_response({})

    async def _default_menu(self, request: web.Request) -> web.Response:
        record, refused = await self._start(request)
        if refused:
            return refused
        if self.default_rich_menu is None:
            return self._refused(record, 404, "no default richmenu")
        return web.json_response({"richMenuId": self.default_rich_menu})


def _menu_problem(menu: dict[str, Any]) -> str | None:
    """What LINE would refuse in a rich menu object, or None."""
    size = menu.get("size") or {}
    width, height = size.get("width"), size.get("height")
    if not isinstance(width, int) or not isinstance(height, int) or not 800 <= width <= 2500 or height < 250 \
            or width / height < 1.45:
        return "size: width 800 to 2500, height at least 250, width/height at least 1.45"
    if not isinstance(menu.get("selected"), bool) or not 1 <= len(menu.get("name") or "") <= 300:
        return "selected and name are required"
    if not 1 <= len(menu.get("chatBarText") or "") <= 14:
        return "chatBarText: 1 to 14 characters"
    areas = menu.get("areas") or []
    if not 1 <= len(areas) <= 20:
        return "areas: 1 to 20"
    for index, area in enumerate(areas):
        b = area.get("bounds") or {}
        if not all(isinstance(b.get(k), int) and b[k] >= 0 for k in ("x", "y", "width", "height")) \
                or b["x"] + b["width"] > width or b["y"] + b["height"] > height:
            return f"areas[{index}].bounds: outside the rich menu"
        action = area.get("action") or {}
        if action.get("type") not in ("postback", "message", "uri", "datetimepicker", "richmenuswitch"):
            return f"areas[{index}].action: unknown type"
        if len(action.get("label") or "") > 20 or len(action.get("displayText") or "") > 300 \
                or (action["type"] == "postback" and not 1 <= len(action.get("data") or "") <= 300):
            return f"areas[{index}].action: label at most 20, displayText 300, data 1 to 300 characters"
    return None


def webhook_body(*events: dict[str, Any]) -> str:
    return json.dumps({"destination": "Ubot0000000000", "events": list(events)}, ensure_ascii=False)

