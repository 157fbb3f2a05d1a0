"""The Telegram channel: python-telegram-bot as a thin adapter around the core.

Each update becomes one `Inbound` (the update id is its event id, so a repeated update is
handled once). What the core sends comes from the outbox (bot/delivery.py paces it to
Telegram's limits and waits out every RetryAfter); each row becomes Bot API calls here.
Telegram has no idempotency key: a crash between a send and its record repeats that message
after the restart (at least once, never lost). The conversation lives in our database, not
in PTB's ConversationHandler or persistence. Runs by long polling, or by webhook on our own
aiohttp server (bot/web.py).
"""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from telegram import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BotCommandScopeChat,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    InputMediaDocument,
    InputMediaPhoto,
    KeyboardButton,
    Message,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    Update,
)
from telegram.constants import ChatAction, ChatMemberStatus, ChatType
from telegram.error import BadRequest, Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import Application, ContextTypes, TypeHandler

from bot.config import Config
from bot.letter_files import LetterFiles
from bot.pacing import Pace
from bot.sender import Policy, Refused, Result, Retry, Sent, Unit, Unreachable, backoff
from handlers import command_menu
from handlers.dispatch import Dispatcher
from handlers.locks import KeyedLocks
from handlers.messages import Attachment, Choice, Inbound, Kind, Outbound, SharedContact, decode, split_text
from templates import DEFAULT_LANGUAGE, LANGUAGES

log = logging.getLogger(__name__)

CHANNEL = "telegram"
DOWNLOAD_LIMIT = 20 * 1024 * 1024  # the Bot API serves files up to 20 MB
CAPTION_LIMIT = 1024
TEXT_LIMIT = 4096
PHOTO_TYPES = ("image/jpeg", "image/png", "image/webp")


def _is_group(chat_id: str) -> bool:
    return chat_id.startswith("-")  # Telegram's group and channel ids are negative


class TelegramChannel:
    channel = CHANNEL
    # Telegram's limits: about 30 messages a second in all, one a second in a private chat
    # (short bursts are fine), twenty a minute in a group.
    policy = Policy(concurrency=16, overall=Pace(30, 30), private=Pace(1, 3), group=Pace(20 / 60, 3),
                    is_group=_is_group)

    def __init__(
        self, config: Config, dispatcher: Dispatcher, documents: LetterFiles, *, poll_timeout: int = 10,
    ) -> None:
        assert config.telegram_token
        self.dispatcher = dispatcher
        self.documents = documents
        self.webhook_secret = config.telegram_webhook_secret
        self.webhook_url = f"{config.public_url}/telegram/webhook"
        self.poll_timeout = poll_timeout
        self.review_chats = tuple(a for a in config.review_chats if a.channel == CHANNEL)
        self.reviewers = tuple(sorted((a for a in config.reviewers if a.channel == CHANNEL), key=str))
        builder = (
            Application.builder()
            .token(config.telegram_token)
            .base_url(f"{config.telegram_api_url}/bot")
            .base_file_url(f"{config.telegram_api_url}/file/bot")
            .concurrent_updates(64)  # the core keeps each user's messages in order itself
        )
        if self.webhook_secret:
            builder = builder.updater(None)  # updates arrive at our aiohttp server instead
        self.app = builder.build()
        self.app.add_handler(TypeHandler(Update, self._on_update))
        self._reply_keyboard_shown: set[int] = set()
        self.locks = KeyedLocks()

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self) -> None:
        await self.app.initialize()
        await self.app.start()
        await self.set_commands()
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

    async def set_commands(self) -> None:
        """The command menu Telegram shows when "/" is typed: the officers' commands in every
        private chat, the reviewers' in each review chat, both in a configured reviewer's own chat;
        Thai by default, English for users whose Telegram is in English. A refusal (a reviewer who
        never opened the bot has no chat yet) is logged: the commands work typed all the same."""
        scopes: list[tuple[Any, tuple[str, ...]]] = [(BotCommandScopeAllPrivateChats(), command_menu.OFFICER)]
        scopes += [(BotCommandScopeChat(int(a.id)), command_menu.REVIEWER) for a in self.review_chats]
        scopes += [(BotCommandScopeChat(int(a.id)), command_menu.OFFICER + command_menu.REVIEWER)
                   for a in self.reviewers if not _is_group(a.id)]
        for scope, names in scopes:
            for lang in LANGUAGES:
                commands = [BotCommand(name, about) for name, about in command_menu.menu(names, lang)]
                try:
                    await self.app.bot.set_my_commands(
                        commands, scope=scope, language_code=None if lang == DEFAULT_LANGUAGE else lang)
                except TelegramError as e:
                    log.warning("Telegram refused the command menu for %s (%s): %s", _scope_name(scope), lang, e)

    async def drain(self) -> None:
        """Take no more updates (the updates under way are handled by `stop`)."""
        if self.app.updater is not None and self.app.updater.running:
            await self.app.updater.stop()

    async def stop(self) -> None:
        await self.drain()
        if self.app.running:
            await self.app.stop()
        await self.app.shutdown()

    async def feed(self, data: dict[str, Any]) -> None:
        """An update that came by webhook: handled before the webhook is answered, so that
        Telegram redelivers it if we fail on the way. One that PTB cannot read is logged and
        acknowledged (Telegram would send it again forever)."""
        try:
            update = Update.de_json(data, self.app.bot)
        except Exception:
            log.exception("unreadable Telegram update %s acknowledged", data.get("update_id"))
            return
        await self.app.process_update(update)

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
        inbound = await self._inbound(update)
        if inbound is not None:
            await self.dispatcher.handle(inbound)

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
            attachment = self._attachment(largest.file_id, largest.file_size, "photo.jpg", "image/jpeg")
            return Inbound(kind=Kind.PHOTO, attachment=attachment, **common)
        if message.document is not None:
            doc = message.document
            attachment = self._attachment(doc.file_id, doc.file_size, doc.file_name, doc.mime_type)
            # The caption travels as text: an admin's "/import replace" on a directory file.
            return Inbound(kind=Kind.FILE, attachment=attachment, text=_without_bot_name(message.caption or ""),
                           **common)
        kind = (
            Kind.STICKER if message.sticker else
            Kind.AUDIO if message.voice or message.audio else
            Kind.VIDEO if message.video or message.video_note or message.animation else
            Kind.LOCATION if message.location or message.venue else
            Kind.OTHER
        )
        return Inbound(kind=kind, **common)

    def _attachment(self, file_id: str, size: int | None, name: str | None, mime: str | None) -> Attachment:
        if size is not None and size > DOWNLOAD_LIMIT:  # Telegram would refuse: say it is too big
            return Attachment(b"", name, mime, declared_size=size)
        return Attachment(b"", name, mime, declared_size=size, fetch=functools.partial(self._download, file_id))

    async def _download(self, file_id: str) -> bytes:
        try:
            tg_file = await self.app.bot.get_file(file_id)
            return bytes(await tg_file.download_as_bytearray())
        except TelegramError:  # nothing came: the core asks the officer to send it again
            log.warning("could not download Telegram file %s", file_id, exc_info=True)
            return b""

    # --- the outbox out -----------------------------------------------------------------

    async def deliver(self, unit: Unit) -> Result:
        """One outbox row: its text (split to Telegram's limits), its document, its buttons on
        the last part. A row with a replace key edits the message sent under it before."""
        row = unit.rows[0]
        message = decode(row.payload, row.replace_key)
        chat_id = int(unit.chat_id)
        try:
            if row.replace_key and (previous := unit.previous.get(row.replace_key)) and previous[0]:
                ref = await self._edit(chat_id, json.loads(previous[0]), message)
                if ref is not None:
                    return Sent({row.replace_key: ref})
            if message.edit_only:  # nothing to edit: the version it would change was never sent
                return Sent()
            parts = await self._parts(chat_id, message)
            sent: Message | None = None
            for index in range(unit.progress, len(parts)):
                sent = await parts[index]()
                unit.progress = index + 1
        except RetryAfter as e:
            after = e.retry_after.total_seconds() if isinstance(e.retry_after, timedelta) else float(e.retry_after)
            return Retry(after, "flood control", throttled=True)
        except Forbidden as e:
            return Refused(str(e)) if chat_id < 0 else Unreachable()
        except BadRequest as e:
            return Refused(str(e))
        except NetworkError as e:  # TimedOut included: it may or may not have arrived (at least once)
            return Retry(backoff(unit.attempt), f"{type(e).__name__}: {e}")
        if row.replace_key is None or sent is None:
            return Sent()
        return Sent({row.replace_key: _ref(sent, message)})

    async def _parts(self, chat_id: int, message: Outbound) -> list[Callable[[], Awaitable[Message]]]:
        """The Bot API calls that send `message`, in order; the buttons go on the last."""
        bot = self.app.bot
        markup = self._markup(chat_id, message.choices)
        if message.document is not None and not message.document.data:  # made or read now: say so
            await self._chat_action(chat_id, message.document.mime_type)
        document = message.document and await self.documents.document(message.document)
        texts = split_text(message.text, TEXT_LIMIT) if message.text else []
        if document is None:
            *first, last = texts or [""]
            return [*(functools.partial(bot.send_message, chat_id, t) for t in first),
                    functools.partial(bot.send_message, chat_id, last, reply_markup=markup)]
        # Photos show as photos (a reviewer sees the signed letter at once); anything else,
        # a PDF or a HEIC photo, as a file. A text too long for a caption goes before it.
        send = bot.send_photo if document.mime_type in PHOTO_TYPES else bot.send_document
        caption = texts.pop() if texts and len(texts[-1]) <= CAPTION_LIMIT else None
        file = InputFile(document.data, filename=document.filename)
        return [*(functools.partial(bot.send_message, chat_id, t) for t in texts),
                functools.partial(send, chat_id, file, caption=caption, reply_markup=markup)]

    async def _chat_action(self, chat_id: int, mime_type: str) -> None:
        """"Sending a file…" (or a photo) at the top of the chat while the letter is made: a sign,
        not a message, so a refusal changes nothing."""
        action = ChatAction.UPLOAD_PHOTO if mime_type in PHOTO_TYPES else ChatAction.UPLOAD_DOCUMENT
        try:
            await self.app.bot.send_chat_action(chat_id, action)
        except TelegramError:
            log.debug("chat action refused in %s", chat_id, exc_info=True)

    async def _edit(self, chat_id: int, previous: dict[str, Any], message: Outbound) -> str | None:
        """Edit the message sent before under the same key; its new ref, or None when it cannot be
        edited (too old, deleted: send a new one)."""
        bot, message_id = self.app.bot, previous["id"]
        markup = self._markup(chat_id, message.choices)  # None: the buttons go (Telegram drops them)
        if not isinstance(markup, InlineKeyboardMarkup):
            markup = None
        text = message.text[:CAPTION_LIMIT] if previous.get("media") else message.text[:TEXT_LIMIT]
        link = list(message.document.link or ()) if message.document else None
        try:
            if previous.get("media") and link and link != previous.get("link"):
                document = await self.documents.document(message.document)  # type: ignore[arg-type]
                if document is None:
                    return None
                media_type = InputMediaPhoto if document.mime_type in PHOTO_TYPES else InputMediaDocument
                media = media_type(InputFile(document.data, filename=document.filename), caption=text)
                await bot.edit_message_media(media, chat_id, message_id, reply_markup=markup)
            elif previous.get("media"):
                await bot.edit_message_caption(chat_id, message_id, caption=text, reply_markup=markup)
            else:
                await bot.edit_message_text(text, chat_id, message_id, reply_markup=markup)
        except BadRequest as e:
            if "not modified" in str(e).lower():
                return json.dumps(previous)
            log.info("could not edit message %s in %s (%s): sending a new one", message_id, chat_id, e)
            return None
        return json.dumps({**previous, "link": link or previous.get("link")})

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


def _scope_name(scope: Any) -> str:
    chat = getattr(scope, "chat_id", None)
    return f"{scope.type} {chat}" if chat is not None else str(scope.type)


def _ref(sent: Message, message: Outbound) -> str:
    """What editing a sent message needs later: its id, whether it is a caption, its file."""
    link = list(message.document.link or ()) if message.document else None
    return json.dumps({"id": sent.message_id, "media": message.document is not None, "link": link})


def _without_bot_name(text: str) -> str:
    """`/start@kiddiary_bot` (as sent in groups) → `/start`."""
    if text.startswith("/"):
        command, _, rest = text.partition(" ")
        return command.split("@", 1)[0] + (" " + rest if rest else "")
    return text
