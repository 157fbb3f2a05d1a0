"""The LINE channel: line-bot-sdk v3 (async) as a thin adapter around the core.

A webhook is verified with `WebhookParser` (X-Line-Signature), its events are written to the
inbox and LINE gets its 200 at once; each event is then handled in a task, one user's events
in order. The `webhookEventId` is the Inbound's event id, so a redelivered event is handled
once. Replies go with the reply token while it is fresh, else by push with an X-Line-Retry-Key
so that a retried push is not delivered twice; at most 5 messages a request. LINE cannot send
a PDF: the letter goes as an image of its first page and a button to a signed link.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from linebot.v3 import WebhookParser
from linebot.v3.exceptions import InvalidSignatureError
from linebot.v3.messaging import (
    AsyncApiClient,
    AsyncMessagingApi,
    AsyncMessagingApiBlob,
    ButtonsTemplate,
    CameraAction,
    CameraRollAction,
    Configuration,
    ImageMessage,
    PostbackAction,
    PushMessageRequest,
    QuickReply,
    QuickReplyItem,
    ReplyMessageRequest,
    ShowLoadingAnimationRequest,
    TemplateMessage,
    TextMessage,
    URIAction,
)
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
from bot.links import LetterLink, LetterLinks
from bot.router import Router
from handlers.attachments import MAX_BYTES
from handlers.dispatch import Dispatcher, KeyedLocks, utc_now
from handlers.messages import Attachment, Choice, Inbound, Kind, Outbound
from storage import Repository

log = logging.getLogger(__name__)

CHANNEL = "line"
MAX_MESSAGES = 5  # per reply or push request
MAX_QUICK_REPLIES = 13
MAX_LABEL = 20
REPLY_TOKEN_LIFETIME = timedelta(seconds=50)  # LINE's is about a minute; leave a margin
PUSH_ATTEMPTS = 3


class LineChannel:
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
        self.parser = WebhookParser(config.line_channel_secret)
        self.locks = KeyedLocks()
        self.tasks: set[asyncio.Task[None]] = set()
        self.languages: dict[str, str | None] = {}
        self.api: AsyncMessagingApi | None = None
        self.blob: AsyncMessagingApiBlob | None = None
        self._clients: list[AsyncApiClient] = []
        self.router: Router | None = None  # for messages to other chats and channels

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        """Open the API clients (inside the running loop, as aiohttp wants) and handle whatever
        the inbox still holds from before a restart."""
        token = self.config.line_access_token
        api = AsyncApiClient(Configuration(host=self.config.line_api_url, access_token=token))
        blob = AsyncApiClient(Configuration(host=self.config.line_data_api_url, access_token=token))
        self._clients = [api, blob]
        self.api, self.blob = AsyncMessagingApi(api), AsyncMessagingApiBlob(blob)
        async with self.repo.transaction():
            pending = await self.repo.inbox_pending(CHANNEL)
        if pending:
            log.info("LINE: %d events from before the restart", len(pending))
        for event_id, payload in pending:
            self._schedule(event_id, json.loads(payload))

    async def stop(self) -> None:
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=30)
        for client in self._clients:
            await client.close()

    async def idle(self) -> None:
        """Wait until every received event has been handled (tests, and a graceful stop)."""
        while self.tasks:
            await asyncio.wait(set(self.tasks))

    # --- webhook in ----------------------------------------------------------------------

    async def receive(self, body: str, signature: str | None) -> int:
        """Verify and keep a webhook's events; the HTTP status to answer LINE with."""
        if not signature:
            return 401
        try:
            self.parser.parse(body, signature)
        except InvalidSignatureError:
            log.warning("LINE webhook with a bad signature")
            return 401
        except (ValueError, KeyError, TypeError):
            return 400
        events = json.loads(body).get("events")
        if not isinstance(events, list):
            return 400
        fresh = []
        async with self.repo.transaction():
            for raw in events:
                event_id = raw.get("webhookEventId") if isinstance(raw, dict) else None
                if not event_id:
                    continue
                if await self.repo.inbox_add(CHANNEL, event_id, json.dumps(raw), self.clock()):
                    fresh.append((event_id, raw))
        for event_id, raw in fresh:
            self._schedule(event_id, raw)
        return 200

    def _schedule(self, event_id: str, raw: dict[str, Any]) -> None:
        # Tasks start in the order they are made and take their user's lock before anything
        # else, so one user's events are handled in the order LINE sent them.
        task = asyncio.create_task(self._process(event_id, raw))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _process(self, event_id: str, raw: dict[str, Any]) -> None:
        source = raw.get("source") or {}
        key = source.get("userId") or source.get("groupId") or source.get("roomId") or event_id
        async with self.locks.hold(key):
            try:
                await self._handle(raw)
            except Exception:
                log.exception("LINE event %s (%s) failed", event_id, raw.get("type"))
            async with self.repo.transaction():
                await self.repo.inbox_done(CHANNEL, event_id)

    async def _handle(self, raw: dict[str, Any]) -> None:
        try:
            event = Event.from_dict(raw)
        except ValueError:
            event = None
        if event is None or not isinstance(event, MessageEvent | PostbackEvent | FollowEvent | UnfollowEvent):
            log.info("LINE event of type %s acknowledged, nothing to do", raw.get("type"))
            return
        source = raw.get("source") or {}
        user_id = source.get("userId")
        if not user_id:
            return
        if isinstance(event, UnfollowEvent):
            await self.dispatcher.mark_unreachable(CHANNEL, user_id)
            return
        group_id = source.get("groupId") or source.get("roomId")
        inbound = await self._inbound(event, raw, user_id, group_id)
        if inbound is None:
            return
        busy = None if group_id else (lambda: self._loading(user_id))
        replies = await self.dispatcher.handle(inbound, busy=busy)
        sent_at = datetime.fromtimestamp(raw.get("timestamp", 0) / 1000, UTC)
        await self.send(group_id or user_id, replies, raw.get("replyToken"), sent_at)

    async def _inbound(self, event: Event, raw: dict[str, Any], user_id: str, group_id: str | None) -> Inbound | None:
        common: dict[str, Any] = {
            "channel": CHANNEL, "user_id": user_id, "event_id": raw["webhookEventId"], "group_id": group_id,
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
            return Inbound(kind=Kind.PHOTO, attachment=await self._image(message), **common)
        if isinstance(message, FileMessageContent):
            if message.file_size > MAX_BYTES:  # not worth fetching: the core says it is too big
                attachment = Attachment(b"", message.file_name, declared_size=message.file_size)
            else:
                attachment = Attachment(await self._content(message.id), message.file_name)
            return Inbound(kind=Kind.FILE, attachment=attachment, **common)
        kind = {
            StickerMessageContent: Kind.STICKER, LocationMessageContent: Kind.LOCATION,
            AudioMessageContent: Kind.AUDIO, VideoMessageContent: Kind.VIDEO,
        }.get(type(message), Kind.OTHER)
        return Inbound(kind=kind, **common)

    async def _image(self, message: ImageMessageContent) -> Attachment:
        provider = message.content_provider
        if provider is not None and provider.type == "external" and provider.original_content_url:
            try:
                return Attachment(await _fetch(provider.original_content_url), "photo.jpg")
            except (aiohttp.ClientError, TimeoutError):
                log.warning("could not fetch an external image", exc_info=True)
                return Attachment(b"", "photo.jpg")  # the core asks the officer to send it again
        return Attachment(await self._content(message.id), "photo.jpg")

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

    # --- replies out -----------------------------------------------------------------------

    async def push(self, to: str, replies: list[Outbound]) -> None:
        """Messages to a LINE chat that did not just write (an officer, a review group)."""
        messages = [m for r in replies for m in self._messages(r)]
        for i in range(0, len(messages), MAX_MESSAGES):
            if not await self._push(to, messages[i:i + MAX_MESSAGES]):
                return

    async def send(self, to: str, replies: list[Outbound], reply_token: str | None, sent_at: datetime) -> None:
        mine = [m for r in replies if r.to is None for m in self._messages(r)]
        others = [r for r in replies if r.to is not None]
        if others and self.router is not None:
            await self.router.deliver(others)
        chunks = [mine[i:i + MAX_MESSAGES] for i in range(0, len(mine), MAX_MESSAGES)]
        if chunks and reply_token and self.clock() - sent_at < REPLY_TOKEN_LIFETIME:
            try:
                assert self.api is not None
                await self.api.reply_message(ReplyMessageRequest(reply_token=reply_token, messages=chunks[0]))
                chunks = chunks[1:]
            except ApiException as e:
                log.info("LINE reply token not accepted (%s); pushing instead", e.status)
        for chunk in chunks:
            if not await self._push(to, chunk):
                return

    async def _push(self, to: str, messages: list[Any]) -> bool:
        """Push with a retry key: LINE delivers a request with the same key once, whatever we retry."""
        assert self.api is not None
        key = str(uuid.uuid4())
        for attempt in range(PUSH_ATTEMPTS):
            try:
                await self.api.push_message(PushMessageRequest(to=to, messages=messages), x_line_retry_key=key)
                return True
            except ApiException as e:
                if e.status == 409:  # accepted before, under this key: already delivered
                    return True
                if e.status == 403:
                    await self.dispatcher.mark_unreachable(CHANNEL, to)
                    return False
                if e.status not in (429, 500, 502, 503, 504) or attempt == PUSH_ATTEMPTS - 1:
                    log.error("LINE push to %s failed: %s %s", to, e.status, e.reason)
                    return False
            except (aiohttp.ClientError, TimeoutError) as e:  # the case the retry key exists for
                if attempt == PUSH_ATTEMPTS - 1:
                    log.error("LINE push to %s failed: %s", to, type(e).__name__)
                    return False
            await asyncio.sleep(0.5 * 2**attempt)
        return False

    def _messages(self, reply: Outbound) -> list[Any]:
        quick = _quick_reply(reply.choices)
        document = reply.document
        if document is None or document.link is None:
            return [TextMessage(text=reply.text[:5000], quick_reply=quick)]
        kind = document.link[0]
        path = {"letter": "letters", "signed": "signed"}[kind]  # the routes of bot/web.py
        base = f"{self.public_url}/{path}/{self.links.token(LetterLink(*document.link), self.clock())}"
        if kind == "signed":  # a photo for reviewers: the picture, then the card with its buttons
            return [
                ImageMessage(original_content_url=f"{base}/page.jpg", preview_image_url=f"{base}/preview.jpg"),
                TextMessage(text=reply.text[:5000], quick_reply=quick),
            ]
        return [
            ImageMessage(original_content_url=f"{base}/page.jpg", preview_image_url=f"{base}/preview.jpg"),
            TemplateMessage(
                alt_text=reply.text[:400],
                template=ButtonsTemplate(text=reply.text[:160], actions=[
                    URIAction(label=_label(document.link_label or "PDF"), uri=base),
                ]),
                quick_reply=quick,
            ),
        ]


def _label(text: str) -> str:
    return text if len(text) <= MAX_LABEL else text[: MAX_LABEL - 1] + "…"


def _quick_reply(choices: tuple[Choice, ...]) -> QuickReply | None:
    items = []
    for choice in choices:
        if choice.action == "reply":
            action: Any = PostbackAction(label=_label(choice.label), data=choice.payload,
                                         display_text=choice.label)
        elif choice.action == "camera":
            action = CameraAction(label=_label(choice.label))
        elif choice.action == "camera_roll":
            action = CameraRollAction(label=_label(choice.label))
        else:  # share_phone: LINE has none
            continue
        items.append(QuickReplyItem(action=action))
    return QuickReply(items=items[:MAX_QUICK_REPLIES]) if items else None


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
