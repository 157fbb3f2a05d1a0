"""The dispatcher: one inbound in, its replies out, with the rules that hold for every turn.

For each inbound, under a lock for its sender (so one user's messages run one at a time,
in arrival order): inspect any attachment in a worker thread, open a transaction, skip the
event if its id was seen before, load the conversation, handle it, save it and the event id,
commit. Only then are SMS sent, documents rendered (in a worker thread) and the replies handed
back to the adapter, so every answer that is acknowledged is on disk.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

from handlers import attachments, conversation
from handlers.messages import Address, Inbound, Outbound, Sms
from handlers.provisioning import Provisioner, hash_password
from handlers.steps import State
from handlers.turn import CoreSettings, Turn
from handlers.validation import mask_phone
from storage import Conversation, Registration, Repository, UploadStore
from templates import DEFAULT_LANGUAGE, LANGUAGES, text

log = logging.getLogger(__name__)


class SmsError(Exception):
    """The gateway could not deliver a message (after its own retries)."""


class SmsGateway(Protocol):
    async def send(self, phone: str, text: str) -> None:
        """Send `text` to `phone` (E.164); raise SmsError when it cannot be done."""


class KeyedLocks:
    """One asyncio.Lock per key, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    @asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        lock = lock or asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


Busy = Callable[[], Awaitable[None]]
PROVISION_STALE = timedelta(minutes=10)  # an account "being made" this long ago was interrupted


def utc_now() -> datetime:
    return datetime.now(UTC)


class Dispatcher:
    def __init__(
        self,
        repo: Repository,
        settings: CoreSettings,
        sms: SmsGateway,
        files: UploadStore | None = None,
        clock: Callable[[], datetime] = utc_now,
        provisioner: Provisioner | None = None,
    ) -> None:
        self.repo = repo
        self.settings = settings
        self.sms = sms
        self.files = files
        self.provisioner = provisioner
        self.clock = clock
        self.locks = KeyedLocks()

    async def handle(self, inbound: Inbound, busy: Busy | None = None) -> list[Outbound]:
        """The replies to `inbound`. `busy` is awaited before slow work (decoding a photo,
        making a letter), for channels that can show the user a "working on it" sign."""
        # Everything for one user happens under their lock, sending included, so that replies
        # to two quick messages cannot overtake each other.
        async with self.locks.hold((inbound.channel, inbound.user_id)):
            if busy is not None and inbound.attachment is not None:
                await busy()
            turn = await self._turn(inbound)
            if turn is None:
                return []
            if isinstance(turn, Outbound):
                return [turn]
            if busy is not None and inbound.attachment is None and any(
                r.document and r.document.render for r in turn.replies
            ):
                await busy()
            replies = [await self._rendered(reply, turn.conv.lang) for reply in await self.reachable(turn.replies)]
            for sms in turn.sms:
                if not await self._send_sms(sms, turn.now) and sms.otp_challenge_id is not None:
                    replies.append(Outbound(text("sms_failed", turn.conv.lang)))
            for registration_id in turn.provision:
                replies += await self.provision(registration_id, reviewer_lang=turn.conv.lang)
            return replies

    async def provision(self, registration_id: int, reviewer_lang: str | None = None) -> list[Outbound]:
        """Make the account of an approved registration and tell the officer (chat and SMS).
        On failure the registration stays approved, marked failed, for `retry_provisioning`.
        Returns the messages to deliver (to the officer; and to the reviewer, if one asked)."""
        if self.provisioner is None:
            return []
        now = self.clock()
        async with self.repo.transaction():  # claimed first: the retry loop and a turn never both make it
            if not await self.repo.claim_provisioning(registration_id, now, now - PROVISION_STALE):
                return []
            reg = await self.repo.get_registration(registration_id)
            officer = reg and await self.repo.get_conversation(reg.channel, reg.user_id)
        assert reg is not None
        lang = officer.lang if officer else DEFAULT_LANGUAGE
        try:
            account = await self.provisioner.provision(reg)
            error = None
        except Exception as e:  # a provisioner's failure, whatever its kind, is retried later
            account, error = None, f"{type(e).__name__}: {e}"[:300]
        if account is not None and reg.phone:
            # The initial password travels only by SMS: if it cannot be sent, the account is
            # made again later (with a new password) rather than left unusable.
            sms_text = text("sms_approved", lang, school=reg.school_name, username=account.username,
                            password=account.initial_password or "-", url=account.sign_in_url)
            if not await self._send_sms(Sms(reg.phone, sms_text), now):
                account, error = None, "the SMS with the initial password could not be sent"
        async with self.repo.transaction():
            reg = await self.repo.get_registration(registration_id)
            assert reg is not None
            reg.provision_attempts += 1
            if account is None:
                reg.provision_status, reg.provision_error = "failed", error
                await self.repo.add_audit(reg.id, now, "system", "provision_failed", error or "")
            else:
                reg.provision_status, reg.provision_error, reg.account_username = "done", None, account.username
                reg.account_password_hash = account.initial_password and hash_password(account.initial_password)
                await self.repo.add_audit(reg.id, now, "system", "provisioned", account.username)
            await self.repo.save_registration(reg, now)
        if error:
            log.error("provisioning %s failed (attempt %d): %s", reg.ref, reg.provision_attempts, error)
        officer_address = Address(reg.channel, reg.user_id)
        out: list[Outbound] = []
        if account is None:
            if reg.provision_attempts == 1:  # the officer hears of the approval once, at once
                out.append(Outbound(text("officer_approved_pending", lang, ref=reg.ref), to=officer_address))
            if reviewer_lang:
                out.append(Outbound(text("review_provision_failed", reviewer_lang, ref=reg.ref, error=error)))
            return await self.reachable(out)
        out.append(Outbound(text("officer_approved", lang, ref=reg.ref, school=reg.school_name,
                                 username=account.username, url=account.sign_in_url), to=officer_address))
        if reviewer_lang:
            out.append(Outbound(text("review_provisioned", reviewer_lang, ref=reg.ref, username=account.username)))
        return await self.reachable(out)

    async def reachable(self, outbounds: list[Outbound]) -> list[Outbound]:
        """Without the messages to users who blocked or unfollowed the bot (review chats stay)."""
        kept = []
        for message in outbounds:
            if message.to is not None:
                async with self.repo.transaction():
                    conv = await self.repo.get_conversation(message.to.channel, message.to.id)
                if conv is not None and conv.blocked:
                    log.info("not sending to %s: unreachable", message.to)
                    continue
            kept.append(message)
        return kept

    async def retry_provisioning(self, max_attempts: int = 10) -> list[Outbound]:
        """Try again the accounts that could not be made; the messages to deliver."""
        async with self.repo.transaction():
            waiting = await self.repo.to_provision(max_attempts, self.clock() - PROVISION_STALE)
        out: list[Outbound] = []
        for reg in waiting:
            out += await self.provision(reg.id)
            if reg.provision_attempts + 1 >= max_attempts:
                log.error("giving up making the account of %s after %d attempts; see /show %s",
                          reg.ref, max_attempts, reg.ref)
        return out

    async def _turn(self, inbound: Inbound) -> Turn | Outbound | None:
        """Load, handle and save one inbound in one transaction. None: a redelivery, skipped;
        an Outbound: the apology after a failure (nothing of the turn was kept)."""
        lang = DEFAULT_LANGUAGE
        try:
            inspection = None
            if inbound.attachment is not None:  # decoding and QR reading: off the loop, no lock held
                attachment = inbound.attachment
                inspection = await asyncio.to_thread(attachments.inspect, attachment.data, attachment.declared_size)
            async with self.repo.transaction():
                if inbound.event_id and await self.repo.event_seen(inbound.channel, inbound.event_id):
                    log.info("skipping redelivered %s event %s", inbound.channel, inbound.event_id)
                    return None
                turn = await self._load(inbound)
                turn.inspection = inspection
                loaded, lang = turn.reg, turn.conv.lang
                await conversation.handle(turn)
                await self._save(turn, loaded)
            return turn
        except Exception:
            log.exception(
                "turn failed: %s:%s kind=%s event=%s", inbound.channel, inbound.user_id, inbound.kind, inbound.event_id
            )
            return Outbound(text("internal_error", lang))

    async def mark_unreachable(self, channel: str, user_id: str) -> None:
        """The platform says this user blocked or left the bot: send them nothing more (broadcasts
        skip them) until they write again."""
        async with self.repo.transaction():
            conv = await self.repo.get_conversation(channel, user_id)
            if conv is not None and not conv.blocked:
                conv.blocked = True
                await self.repo.save_conversation(conv, self.clock())
                log.info("%s:%s is unreachable (blocked or unfollowed)", channel, user_id)

    async def _send_sms(self, sms: Sms, now: datetime) -> bool:
        try:
            await self.sms.send(sms.phone, sms.text)
            return True
        except SmsError as e:
            log.error("SMS to %s failed: %s", mask_phone(sms.phone), e)
        if sms.otp_challenge_id is not None:  # an undelivered code must not use up the officer's limits
            async with self.repo.transaction():
                await self.repo.otp_send_failed(sms.otp_challenge_id, now)
        return False

    async def _rendered(self, reply: Outbound, lang: str) -> Outbound:
        document = reply.document
        if document is None or document.render is None:
            return reply
        try:
            data = await asyncio.to_thread(document.render)
        except Exception:
            log.exception("rendering %s failed", document.filename)
            return Outbound(text("letter_failed", lang), reply.choices, reply.to)
        return replace(reply, document=replace(document, data=data, render=None))

    async def _load(self, inbound: Inbound) -> Turn:
        repo, now = self.repo, self.clock()
        conv = await repo.get_conversation(inbound.channel, inbound.user_id)
        if conv is None:
            hint = inbound.language_hint
            conv = Conversation(
                inbound.channel, inbound.user_id, State.START,
                lang=hint if hint in LANGUAGES else DEFAULT_LANGUAGE,
            )
        conv.blocked = False  # they wrote: they can be answered
        reg = await repo.get_registration(conv.registration_id) if conv.registration_id else None
        challenge = await repo.get_otp(conv.otp_challenge_id) if conv.otp_challenge_id else None
        return Turn(inbound, conv, reg, repo, now, self.settings, challenge=challenge, files=self.files)

    async def _save(self, turn: Turn, loaded: Registration | None) -> None:
        turn.conv.otp_challenge_id = turn.challenge.id if turn.challenge else None
        turn.conv.registration_id = turn.reg.id if turn.reg else None
        await self.repo.save_conversation(turn.conv, turn.now)
        # The turn may have let go of the registration it loaded (cancel, /new): save that one too.
        for reg in {id(r): r for r in (loaded, turn.reg) if r is not None}.values():
            await self.repo.save_registration(reg, turn.now)
        if turn.inbound.event_id:
            await self.repo.record_event(turn.inbound.channel, turn.inbound.event_id, turn.now)
