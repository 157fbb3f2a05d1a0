"""The LINE channel: line-bot-sdk v3 (async) as a thin adapter around the core.

A webhook is verified (X-Line-Signature, an HMAC of the raw body), its events are written to
the inbox and LINE gets its 200 at once; each event is then handled in a task, one user's
events in order, and leaves the inbox in the transaction of its turn. The `webhookEventId` is
the Inbound's event id, so a redelivered event is handled once. What the core sends comes
from the outbox (bot/delivery.py) to `deliver` (bot/line_delivery.py): exactly once, by reply
token or by push with a retry key. LINE cannot send a PDF: the letter goes as an image of its
first page and a button to a signed link (bot/line_messages.py).
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import hmac
import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
from linebot.v3.messaging import AsyncApiClient, AsyncMessagingApi, AsyncMessagingApiBlob, ShowLoadingAnimationRequest
from linebot.v3.messaging.exceptions import ApiException
from linebot.v3.webhooks import (
    AudioMessageContent,
    Event,
    FileMessageContent,
    FollowEvent,
    ImageMessageContent,
    LocationMessageContent,
    MessageEvent,
    PostbackEvent,
    StickerMessageContent,
    TextMessageContent,
    UnfollowEvent,
    VideoMessageContent,
)

from bot.config import Config
from bot.line_api import api_client
from bot.line_delivery import LineSending
from bot.links import LetterLinks
from bot.pacing import Pace
from bot.sender import Policy
from handlers.attachments import MAX_BYTES
from handlers.dispatch import Dispatcher, utc_now
from handlers.locks import KeyedLocks
from handlers.messages import Attachment, Inbound, Kind
from storage import Repository

log = logging.getLogger(__name__)

CHANNEL = "line"


class LineChannel(LineSending):
    channel = CHANNEL
    # LINE publishes no per-chat pace (back off on 429); its retry key makes a resend harmless
    # LINE allows 200 multicast requests a second (of 500 users each); pushes and replies have their own limit.
    policy = Policy(concurrency=32, batch=True, idempotent=True, multicast=500, multicast_pace=Pace(200, 10))

    def __init__(
        self, config: Config, dispatcher: Dispatcher, repo: Repository, links: LetterLinks,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        assert config.line_channel_secret and config.line_access_token
        self.config = config
        self.public_url = config.public_url  # where LINE's servers fetch the letter images from
        self.dispatcher = dispatcher
        self.repo = repo
        self.links = links
        self.clock = clock
        self.secret = config.line_channel_secret.encode()
        self.locks = KeyedLocks()
        self.tasks: set[asyncio.Task[None]] = set()
        self.languages: dict[str, str | None] = {}
        self.api: AsyncMessagingApi | None = None
        self.blob: AsyncMessagingApiBlob | None = None
        self._clients: list[AsyncApiClient] = []

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Open the API clients (inside the running loop, as aiohttp wants) and handle whatever
        the inbox still holds from before a restart."""
        token = self.config.line_access_token
        api = await api_client(self.config.line_api_url, token)
        blob = await api_client(self.config.line_data_api_url, token)
        self._clients = [api, blob]
        self.api, self.blob = AsyncMessagingApi(api), AsyncMessagingApiBlob(blob)
        async with self.repo.transaction():
            pending = await self.repo.events.waiting(CHANNEL)
        if pending:
            log.info("LINE: %d events from before the restart", len(pending))
        for event_id, payload in pending:
            self._schedule(event_id, json.loads(payload), inboxed=True)

    async def drain(self) -> None:
        """Let the events taken in be handled (for at most 30 s; the rest wait in the inbox)."""
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=30)

    async def stop(self) -> None:
        await self.drain()
        for client in self._clients:
            await client.close()

    async def idle(self) -> None:
        """Wait until every received event has been handled (tests, and a graceful stop)."""
        while self.tasks:
            await asyncio.wait(set(self.tasks))

    # --- webhook in ----------------------------------------------------------------------

    async def receive(self, body: bytes, signature: str | None) -> int:
        """Verify and keep a webhook's events; the HTTP status to answer LINE with. The
        signature is checked on the bytes as they came, before anything is decoded."""
        expected = base64.b64encode(hmac.new(self.secret, body, hashlib.sha256).digest()).decode()
        if not signature or not hmac.compare_digest(signature, expected):
            log.warning("LINE webhook with a missing or bad signature")
            return 401
        try:
            events = json.loads(body.decode("utf-8")).get("events")
        except (ValueError, AttributeError):
            return 400
        if not isinstance(events, list):
            return 400
        events = [raw for raw in events if isinstance(raw, dict) and raw.get("webhookEventId")]
        if all(_quick(raw) for raw in events):
            # Handled before LINE gets its 200, which then means "answered": one commit for the
            # turn, its answers and its event id, no inbox row. A failure answers 500, and LINE
            # sends the event again (what was committed is not done twice).
            tasks = [self._schedule(raw["webhookEventId"], raw, inboxed=False) for raw in events]
            results = await asyncio.gather(*tasks)
            return 200 if all(results) else 500
        # Slow events (a photo or file to download) are kept and acknowledged at once.
        fresh = []
        async with self.repo.transaction():
            for raw in events:
                event_id = raw["webhookEventId"]
                if await self.repo.events.keep(CHANNEL, event_id, json.dumps(raw), self.clock()):
                    fresh.append((event_id, raw))
        for event_id, raw in fresh:
            self._schedule(event_id, raw, inboxed=True)
        return 200

    def _schedule(self, event_id: str, raw: dict[str, Any], inboxed: bool) -> asyncio.Task[bool]:
        # Tasks start in the order they are made and take their user's lock before anything
        # else, so one user's events are handled in the order LINE sent them.
        task = asyncio.create_task(self._process(event_id, raw, inboxed))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def _process(self, event_id: str, raw: dict[str, Any], inboxed: bool) -> bool:
        """Handle one event; False when it failed in a way worth LINE's sending it again."""
        source = raw.get("source") or {}
        key = source.get("userId") or source.get("groupId") or source.get("roomId") or event_id
        async with self.locks.hold(key):
            try:
                handled = await self._handle(event_id, raw, inboxed)
            except Exception:
                log.exception("LINE event %s (%s) failed", event_id, raw.get("type"))
                if not inboxed:
                    return False
                handled = False
            if not handled and inboxed:  # the dispatcher drops an event it handles from the inbox itself
                async with self.repo.transaction():
                    await self.repo.events.done(CHANNEL, event_id)
            return True

    async def _handle(self, event_id: str, raw: dict[str, Any], inboxed: bool) -> bool:
        """Hand the event to the core; False when it had nothing for the core."""
        try:
            event = Event.from_dict(raw)
        except ValueError:
            event = None
        if event is None or not isinstance(event, MessageEvent | PostbackEvent | FollowEvent | UnfollowEvent):
            log.info("LINE event of type %s acknowledged, nothing to do", raw.get("type"))
            return False
        source = raw.get("source") or {}
        user_id = source.get("userId")
        if not user_id:
            return False
        if isinstance(event, UnfollowEvent):
            await self.dispatcher.mark_unreachable(CHANNEL, user_id, inbox_event=event_id if inboxed else None)
            return True
        group_id = source.get("groupId") or source.get("roomId")
        inbound = await self._inbound(event, raw, user_id, group_id, inboxed)
        if inbound is None:
            return False
        busy = None if group_id else (lambda: self._loading(user_id))
        await self.dispatcher.handle(inbound, busy=busy)
        return True

    async def _inbound(
        self, event: Event, raw: dict[str, Any], user_id: str, group_id: str | None, inboxed: bool,
    ) -> Inbound | None:
        common: dict[str, Any] = {
            "from_inbox": inboxed,
            "channel": CHANNEL, "user_id": user_id, "event_id": raw["webhookEventId"], "group_id": group_id,
            "reply_token": raw.get("replyToken"),
            "received_at": datetime.fromtimestamp(raw.get("timestamp", 0) / 1000, UTC),
        }
        if isinstance(event, FollowEvent):
            return Inbound(kind=Kind.FOLLOW, language_hint=await self._language(user_id), **common)
        if isinstance(event, PostbackEvent):
            return Inbound(kind=Kind.BUTTON, payload=event.postback.data, **common)
        assert isinstance(event, MessageEvent)
        message = event.message
        if isinstance(message, TextMessageContent):
            return Inbound(kind=Kind.TEXT, text=message.text, language_hint=await self._language(user_id), **common)
        if isinstance(message, ImageMessageContent):
            attachment = Attachment(b"", "photo.jpg", fetch=functools.partial(self._image, message))
            return Inbound(kind=Kind.PHOTO, attachment=attachment, **common)
        if isinstance(message, FileMessageContent):
            if message.file_size > MAX_BYTES:  # not worth fetching: the core says it is too big
                attachment = Attachment(b"", message.file_name, declared_size=message.file_size)
            else:
                attachment = Attachment(b"", message.file_name, fetch=functools.partial(self._content, message.id))
            return Inbound(kind=Kind.FILE, attachment=attachment, **common)
        kind = {
            StickerMessageContent: Kind.STICKER, LocationMessageContent: Kind.LOCATION,
            AudioMessageContent: Kind.AUDIO, VideoMessageContent: Kind.VIDEO,
        }.get(type(message), Kind.OTHER)
        return Inbound(kind=kind, **common)

    async def _image(self, message: ImageMessageContent) -> bytes:
        provider = message.content_provider
        if provider is not None and provider.type == "external" and provider.original_content_url:
            try:
                return await _fetch(provider.original_content_url)
            except (aiohttp.ClientError, TimeoutError):
                log.warning("could not fetch an external image", exc_info=True)
                return b""  # the core asks the officer to send it again
        return await self._content(message.id)

    async def _content(self, message_id: str) -> bytes:
        """The bytes of a photo or file; empty when LINE would not give them (the core then asks
        the officer to send it again)."""
        assert self.blob is not None
        try:
            return bytes(await self.blob.get_message_content(message_id))
        except (ApiException, aiohttp.ClientError, TimeoutError):
            log.warning("could not fetch the content of LINE message %s", message_id, exc_info=True)
            return b""

    async def _language(self, user_id: str) -> str | None:
        """The language of the user's LINE app, for a new user; asked once per process."""
        if user_id not in self.languages:
            assert self.api is not None
            try:
                profile = await self.api.get_profile(user_id)
                self.languages[user_id] = (profile.language or "")[:2] or None
            except ApiException:
                self.languages[user_id] = None
            if len(self.languages) > 50_000:
                self.languages.pop(next(iter(self.languages)))
        return self.languages[user_id]

    async def _loading(self, user_id: str) -> None:
        assert self.api is not None
        try:
            await self.api.show_loading_animation(ShowLoadingAnimationRequest(chat_id=user_id, loading_seconds=20))
        except ApiException:
            log.debug("loading animation refused", exc_info=True)


SLOW_MESSAGES = {"image", "video", "audio", "file"}  # what has content to download


def _quick(raw: dict[str, Any]) -> bool:
    """An event the bot can answer in the time LINE waits for its 200: no file to download."""
    return raw.get("type") != "message" or (raw.get("message") or {}).get("type") not in SLOW_MESSAGES


async def _fetch(url: str) -> bytes:
    """An image the user's LINE content provider keeps elsewhere; at most MAX_BYTES + 1 read."""
    timeout = aiohttp.ClientTimeout(total=30)
    data = bytearray()
    async with aiohttp.ClientSession(timeout=timeout) as session, session.get(url) as response:
        response.raise_for_status()
        async for chunk in response.content.iter_chunked(64 * 1024):
            data += chunk
            if len(data) > MAX_BYTES:  # enough to know it is too big; the core says so
                break
    return bytes(data)
