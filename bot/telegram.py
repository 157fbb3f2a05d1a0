"""The Telegram channel: python-telegram-bot as a thin adapter around the core.

Each update becomes one `Inbound` (the update id is its event id, so a repeated update is
handled once); each `Outbound` becomes Bot API calls. The conversation lives in our
database, not in PTB's ConversationHandler or persistence. Sending goes through PTB's
AIORateLimiter, which keeps to Telegram's flood limits and retries after RetryAfter.
Runs by long polling, or by webhook on our own aiohttp server (bot/web.py).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.constants import ChatMemberStatus, ChatType
from telegram.error import BadRequest, Forbidden, NetworkError, TelegramError
from telegram.ext import AIORateLimiter, Application, ContextTypes, TypeHandler

from bot.config import Config
from bot.router import Router
from handlers.dispatch import Dispatcher, KeyedLocks
from handlers.messages import Attachment, Choice, Inbound, Kind, Outbound, SharedContact

log = logging.getLogger(__name__)

CHANNEL = "telegram"
DOWNLOAD_LIMIT = 20 * 1024 * 1024  # the Bot API serves files up to 20 MB
CAPTION_LIMIT = 1024
SEND_ATTEMPTS = 3
PHOTO_TYPES = ("image/jpeg", "image/png", "image/webp")


class TelegramChannel:
    def __init__(self, config: Config, dispatcher: Dispatcher, *, poll_timeout: int = 10) -> None:
        assert config.telegram_token
        self.dispatcher = dispatcher
        self.webhook_secret = config.telegram_webhook_secret
        self.webhook_url = f"{config.public_url}/telegram/webhook"
        self.poll_timeout = poll_timeout
        builder = (
            Application.builder()
            .token(config.telegram_token)
            .base_url(f"{config.telegram_api_url}/bot")
            .base_file_url(f"{config.telegram_api_url}/file/bot")
            .rate_limiter(AIORateLimiter(max_retries=3))
            .concurrent_updates(64)  # the core keeps each user's messages in order itself
        )
        if self.webhook_secret:
            builder = builder.updater(None)  # updates arrive at our aiohttp server instead
        self.app = builder.build()
        self.app.add_handler(TypeHandler(Update, self._on_update))
        self._reply_keyboard_shown: set[int] = set()
        self.locks = KeyedLocks()
        self.router: Router | None = None  # for messages to other chats and channels

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        await self.app.initialize()
        await self.app.start()
        if self.webhook_secret:
            await self.app.bot.set_webhook(
                self.webhook_url, secret_token=self.webhook_secret, allowed_updates=Update.ALL_TYPES
            )
            log.info("Telegram: webhook at %s", self.webhook_url)
        else:
            assert self.app.updater is not None
            await self.app.updater.start_polling(
                poll_interval=0, timeout=self.poll_timeout, allowed_updates=Update.ALL_TYPES
            )
            log.info("Telegram: long polling")

    async def stop(self) -> None:
        if self.app.updater is not None and self.app.updater.running:
            await self.app.updater.stop()
        if self.app.running:
            await self.app.stop()
        await self.app.shutdown()

    async def feed(self, data: dict[str, Any]) -> None:
        """An update that came by webhook: handled before the webhook is answered, so that
        Telegram redelivers it if we fail on the way."""
        await self.app.process_update(Update.de_json(data, self.app.bot))

    # --- updates in --------------------------------------------------------------------

    async def _on_update(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        # Updates run concurrently; the sender's lock, taken before anything is awaited, keeps
        # one user's presses, downloads and messages in the order Telegram numbered them.
        user = update.effective_user
        async with self.locks.hold(user.id if user else update.update_id):
            await self._handle(update)

    async def _handle(self, update: Update) -> None:
        if update.my_chat_member is not None:
            await self._membership(update)
            return
        query = update.callback_query
        if query is not None:
            try:
                await query.answer()  # stops the button's spinner
            except TelegramError:  # too old (after a restart): the press still counts
                log.info("callback query %s could not be answered", query.id)
            pressed = query.message
            if isinstance(pressed, Message) and pressed.reply_markup and not (query.data or "").startswith("review:"):
                try:  # the question is answered: its buttons go, so they are not pressed twice
                    await pressed.edit_reply_markup(reply_markup=None)
                except TelegramError:
                    log.debug("could not remove the keyboard of a pressed message", exc_info=True)
        chat = update.effective_chat
        inbound = await self._inbound(update)
        if inbound is None or chat is None:
            return
        replies = await self.dispatcher.handle(inbound)
        await self.send(chat.id, replies)

    async def _membership(self, update: Update) -> None:
        member = update.my_chat_member
        assert member is not None
        if member.chat.type == ChatType.PRIVATE and member.new_chat_member.status in (
            ChatMemberStatus.BANNED, ChatMemberStatus.LEFT,
        ):
            await self.dispatcher.mark_unreachable(CHANNEL, str(member.from_user.id))

    async def _inbound(self, update: Update) -> Inbound | None:
        user = update.effective_user
        chat = update.effective_chat
        if user is None or chat is None or user.is_bot:
            return None
        common: dict[str, Any] = {
            "channel": CHANNEL,
            "user_id": str(user.id),
            "event_id": str(update.update_id),
            "group_id": None if chat.type == ChatType.PRIVATE else str(chat.id),
            "language_hint": (user.language_code or "")[:2] or None,
        }
        if update.callback_query is not None:
            return Inbound(kind=Kind.BUTTON, payload=update.callback_query.data or "", **common)
        message = update.message
        if message is None:  # edited messages, channel posts, polls…: nothing to answer
            return None
        if message.text is not None:
            return Inbound(kind=Kind.TEXT, text=_without_bot_name(message.text), **common)
        if message.contact is not None:
            contact = message.contact
            own = contact.user_id is not None and contact.user_id == user.id
            return Inbound(kind=Kind.CONTACT, contact=SharedContact(contact.phone_number, own), **common)
        if message.photo:
            largest = message.photo[-1]
            attachment = await self._download(largest.file_id, largest.file_size, "photo.jpg", "image/jpeg")
            return Inbound(kind=Kind.PHOTO, attachment=attachment, **common)
        if message.document is not None:
            doc = message.document
            attachment = await self._download(doc.file_id, doc.file_size, doc.file_name, doc.mime_type)
            return Inbound(kind=Kind.FILE, attachment=attachment, **common)
        kind = (
            Kind.STICKER if message.sticker else
            Kind.AUDIO if message.voice or message.audio else
            Kind.VIDEO if message.video or message.video_note or message.animation else
            Kind.LOCATION if message.location or message.venue else
            Kind.OTHER
        )
        return Inbound(kind=kind, **common)

    async def _download(self, file_id: str, size: int | None, name: str | None, mime: str | None) -> Attachment:
        if size is not None and size > DOWNLOAD_LIMIT:  # Telegram would refuse: say it is too big
            return Attachment(b"", name, mime, declared_size=size)
        try:
            tg_file = await self.app.bot.get_file(file_id)
            data = bytes(await tg_file.download_as_bytearray())
        except TelegramError:  # nothing came: the core asks the officer to send it again
            log.warning("could not download Telegram file %s", file_id, exc_info=True)
            data = b""
        return Attachment(data, name, mime, declared_size=size)

    # --- replies out -------------------------------------------------------------------

    async def push(self, chat_id: str, replies: list[Outbound]) -> None:
        """Messages to a Telegram chat that did not just write (an officer, a review group)."""
        await self.send(int(chat_id), replies)

    async def send(self, chat_id: int, replies: list[Outbound]) -> None:
        others = [r for r in replies if r.to is not None]
        if others and self.router is not None:
            await self.router.deliver(others)
        for reply in replies:
            if reply.to is not None:
                continue
            target = chat_id
            try:
                await self._send_with_retry(target, reply)
            except Forbidden:
                await self.dispatcher.mark_unreachable(CHANNEL, str(target))
                return
            except TelegramError:
                log.exception("sending to Telegram chat %s failed", target)
                return

    async def _send_with_retry(self, chat_id: int, reply: Outbound) -> None:
        """Flood limits are waited out by the rate limiter; a server error or a timeout is tried
        again a couple of times here. A refusal (BadRequest, Forbidden) is final."""
        for attempt in range(SEND_ATTEMPTS):
            try:
                await self._send_one(chat_id, reply)
                return
            except BadRequest:
                raise
            except NetworkError:
                if attempt == SEND_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.5 * 2**attempt)

    async def _send_one(self, chat_id: int, reply: Outbound) -> None:
        markup = self._markup(chat_id, reply.choices)
        bot = self.app.bot
        if reply.document is None:
            await bot.send_message(chat_id, reply.text, reply_markup=markup)
            return
        document = InputFile(reply.document.data, filename=reply.document.filename)
        # Photos show as photos (a reviewer sees the signed letter at once); anything else,
        # a PDF or a HEIC photo, as a file.
        send = bot.send_photo if reply.document.mime_type in PHOTO_TYPES else bot.send_document
        if len(reply.text) <= CAPTION_LIMIT:
            await send(chat_id, document, caption=reply.text, reply_markup=markup)
        else:
            await bot.send_message(chat_id, reply.text)
            await send(chat_id, document, reply_markup=markup)

    def _markup(self, chat_id: int, choices: tuple[Choice, ...]) -> Any:
        if any(c.action == "share_phone" for c in choices):
            # Telegram's contact button lives only on a reply keyboard; the other choices go
            # there too, as text the core recognises.
            rows = [[KeyboardButton(c.label, request_contact=True)] if c.action == "share_phone"
                    else [KeyboardButton(c.label)] for c in choices if c.action in ("reply", "share_phone")]
            self._reply_keyboard_shown.add(chat_id)
            return ReplyKeyboardMarkup(rows, resize_keyboard=True, one_time_keyboard=True)
        buttons = [InlineKeyboardButton(c.label, callback_data=c.payload) for c in choices if c.action == "reply"]
        if buttons:
            per_row = 2 if all(len(b.text) <= 18 for b in buttons) else 1
            return InlineKeyboardMarkup([buttons[i:i + per_row] for i in range(0, len(buttons), per_row)])
        if chat_id in self._reply_keyboard_shown:
            self._reply_keyboard_shown.discard(chat_id)
            return ReplyKeyboardRemove()
        return None


def _without_bot_name(text: str) -> str:
    """`/start@kiddiary_bot` (as sent in groups) → `/start`."""
    if text.startswith("/"):
        command, _, rest = text.partition(" ")
        return command.split("@", 1)[0] + (" " + rest if rest else "")
    return text
