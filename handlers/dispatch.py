"""The dispatcher: one inbound in, its answers into the outbox, with the rules for every turn.

For each inbound, under a lock for its sender (so one user's messages run one at a time, in
arrival order): inspect any attachment in a worker thread, then in one transaction skip the
event if its id was seen before, load the conversation, handle it, and save it, the event id,
and everything the turn wants sent (replies, notices, review cards, SMS) into the outbox, and
drop the event from the inbox. Nothing is sent from here: once the transaction is committed
the new outbox rows are handed to the delivery workers (bot/delivery.py), which send them,
and at the next start send whatever a crash left unsent. So every answer that is
acknowledged is on disk, and every answer on disk is sent.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from handlers import attachments, conversation, directory, directory_import, letter_check, otp
from handlers.locks import KeyedLocks
from handlers.messages import Address, Inbound, Kind, Outbound, Sms, encode, encode_sms
from handlers.normalize import well_formed
from handlers.photo_gate import PhotoGate
from handlers.provisioning import Account, Provisioner, hash_password
from handlers.sms_gateway import SmsError, SmsGateway
from handlers.steps import State
from handlers.turn import CoreSettings, Turn
from handlers.validation import Invalid, mask_phone
from storage import Conversation, Registration, Repository, UploadStore
from storage.models import ANSWER, APPROVED, NOTICE, OutboxRow, UsernameTaken
from templates import DEFAULT_LANGUAGE, LANGUAGES, text

log = logging.getLogger(__name__)


Busy = Callable[[], Awaitable[None]]
SMS = "sms"  # the outbox's channel for SMS
PROVISION_STALE = timedelta(minutes=10)  # an account "being made" this long ago was interrupted
EVENT_ID_RETENTION = timedelta(days=30)  # platforms redeliver within minutes; a month of ids is ample


def utc_now() -> datetime:
    return datetime.now(UTC)


def _well_formed(inbound: Inbound) -> Inbound:
    """The inbound with no lone surrogate in what the platform said (normalize.well_formed)."""
    fields = {"text": inbound.text, "payload": inbound.payload, "user_id": inbound.user_id,
              "event_id": inbound.event_id, "group_id": inbound.group_id, "language_hint": inbound.language_hint}
    fixed = {name: well_formed(value) for name, value in fields.items() if value and well_formed(value) != value}
    if inbound.contact is not None and well_formed(inbound.contact.phone) != inbound.contact.phone:
        fixed["contact"] = replace(inbound.contact, phone=well_formed(inbound.contact.phone))
    return replace(inbound, **fixed) if fixed else inbound


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
        # Called with the rows each commit added to the outbox (the delivery workers take them).
        self.on_commit: Callable[[list[OutboxRow]], None] | None = None
        self._background: set[asyncio.Task[None]] = set()
        self._in_flight = 0  # turns being handled
        self._quiet = asyncio.Event()  # set while none is
        self._quiet.set()
        self.photo_gate = PhotoGate()  # when and how often a photo is decoded

    async def handle(self, inbound: Inbound, busy: Busy | None = None) -> list[Outbound]:
        """Handle `inbound`; the messages it committed to the outbox (for the console and tests:
        the delivery workers send them). `busy` is awaited before decoding an attachment, for
        channels that can show the user a "working on it" sign."""
        inbound = _well_formed(inbound)
        self._in_flight += 1
        self._quiet.clear()
        try:
            async with self.locks.hold((inbound.channel, inbound.user_id)):
                if busy is not None and inbound.attachment is not None:
                    await busy()
                turn, rows, apology = await self._turn(inbound)
        finally:
            self._in_flight -= 1
            if not self._in_flight:
                self._quiet.set()
        self._committed(rows)
        if turn is None:
            return apology
        if turn.erased_files:  # after the commit: a rolled-back erasure must still find its files
            await self.remove_files(turn.erased_files)
        for registration_id in turn.provision:
            # After the commit (the approval is on disk first), and in the background: the
            # account service may take seconds, and nobody's turn waits for it.
            task = asyncio.create_task(self.provision(registration_id, inbound.chat, turn.conv.lang))
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        return turn.replies

    async def remove_files(self, paths: list[str]) -> int:
        """Unlink uploads whose rows were erased (and committed), unless a row refers to the same
        file again (the same photo sent for another registration). How many went."""
        if self.files is None:
            return 0
        removed = 0
        for path in paths:
            async with self.repo.transaction():
                if await self.repo.erasure.is_referenced(path):
                    continue
                removed += await asyncio.to_thread(self.files.remove, path)
        return removed

    async def settle(self) -> None:
        """Until the turns under way (a photo's checks take a second or two) and the work they left
        running (making accounts) are done: tests, a graceful stop."""
        while self._background or self._in_flight:
            if self._in_flight:
                await self._quiet.wait()
            else:
                await asyncio.wait(set(self._background))

    def _committed(self, rows: list[OutboxRow]) -> None:
        if rows and self.on_commit is not None:
            self.on_commit(rows)

    async def provision(
        self, registration_id: int, reviewer: Address | None = None, reviewer_lang: str = DEFAULT_LANGUAGE,
    ) -> None:
        """Make the account of an approved registration and tell the officer (chat and SMS), and
        the reviewer who approved it, if one is waiting. On failure the registration stays
        approved, marked failed, for `retry_provisioning`."""
        if self.provisioner is None:
            return
        now = self.clock()
        async with self.repo.transaction():  # claimed first: the retry loop and a turn never both make it
            if not await self.repo.claim_provisioning(registration_id, now, now - PROVISION_STALE):
                return
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
            # One key per attempt: a new attempt makes a new password, a different message.
            if not await self._send_sms(Sms(reg.phone, sms_text), key=f"password:{reg.ref}:{reg.provision_attempts}"):
                account, error = None, "the SMS with the initial password could not be sent"
        officer_address = Address(reg.channel, reg.user_id)
        out: list[Outbound] = []
        if account is None:
            if reg.provision_attempts == 0:  # the officer hears of the approval once, at once
                out.append(Outbound(text("officer_approved_pending", lang, ref=reg.ref), to=officer_address))
            if reviewer:
                out.append(Outbound(text("review_provision_failed", reviewer_lang, ref=reg.ref, error=error),
                                    to=reviewer))
        else:
            out.append(Outbound(text("officer_approved", lang, ref=reg.ref, school=reg.school_name,
                                     username=account.username, url=account.sign_in_url), to=officer_address))
            if reviewer:
                out.append(Outbound(text("review_provisioned", reviewer_lang, ref=reg.ref, username=account.username),
                                    to=reviewer))
        try:
            rows = await self._record_account(registration_id, account, error, out, now)
        except UsernameTaken:  # the service named an account another registration holds
            error = f"the account username {account and account.username} belongs to another registration"
            rows = await self._record_account(registration_id, None, error, [], now)
        self._committed(rows)
        if error:
            log.error("provisioning %s failed (attempt %d): %s", reg.ref, reg.provision_attempts + 1, error)

    async def _record_account(
        self, registration_id: int, account: Account | None, error: str | None, out: list[Outbound], now: datetime,
    ) -> list[OutboxRow]:
        """Write down how making the account went (and what to tell whom), in one transaction."""
        async with self.repo.transaction():
            reg = await self.repo.get_registration(registration_id)
            assert reg is not None
            reg.provision_attempts += 1
            if account is None:
                reg.provision_status, reg.provision_error = "failed", error
                await self.repo.add_audit(reg.id, now, "system", "provision_failed", error or "")
            elif reg.status != APPROVED:  # revoked while its account was being made: the username is not its
                reg.provision_status, reg.provision_error = "done", None
                await self.repo.add_audit(reg.id, now, "system", "provisioned", f"{account.username} (revoked)")
            else:
                reg.provision_status, reg.provision_error, reg.account_username = "done", None, account.username
                reg.account_password_hash = account.initial_password and hash_password(account.initial_password)
                await self.repo.add_audit(reg.id, now, "system", "provisioned", account.username)
            await self.repo.save_registration(reg, now)
            return await self._enqueue(out, [], None, now)

    async def forget_old_events(self) -> int:
        """Drop the event ids older than EVENT_ID_RETENTION (at start and then periodically: a
        bot that runs for months must not keep every id it ever saw). How many were dropped."""
        async with self.repo.transaction():
            return await self.repo.events.forget_before(self.clock() - EVENT_ID_RETENTION)

    async def retry_provisioning(self, max_attempts: int = 10) -> None:
        """Try again the accounts that could not be made."""
        async with self.repo.transaction():
            waiting = await self.repo.to_provision(max_attempts, self.clock() - PROVISION_STALE)
        for reg in waiting:
            await self.provision(reg.id)
            if reg.provision_attempts + 1 >= max_attempts:
                log.error("giving up making the account of %s after %d attempts; see /show %s",
                          reg.ref, max_attempts, reg.ref)

    async def _turn(self, inbound: Inbound) -> tuple[Turn | None, list[OutboxRow], list[Outbound]]:
        """Load, handle and save one inbound, and write what it sends, in one transaction.
        (turn, rows, []) normally; (None, [], []) for a redelivery, skipped; (None, rows, apology)
        after a failure (nothing of the turn was kept)."""
        lang = DEFAULT_LANGUAGE
        try:
            inspection: attachments.Inspection | Invalid | directory.DirectoryFile | None = None
            directory_file = await self._directory_file(inbound)
            if inbound.attachment is not None:
                inbound, inspection = await self._gated(inbound, directory_file)
            if inbound.attachment is not None:
                # Decoding and QR reading, or reading a directory: in a worker thread, and no
                # transaction held meanwhile.
                attachment = inbound.attachment
                if directory_file:
                    inspection = await asyncio.to_thread(directory.parse, attachment.data)
                else:
                    async with self.photo_gate.decoding:  # a few at once over all users: memory
                        inspection = await asyncio.to_thread(attachments.inspect, attachment.data,
                                                             attachment.declared_size)
                    if isinstance(inspection, attachments.Inspection) and inspection.qr_codes:
                        # Held against the letter its seal names: a short read, then a worker thread.
                        inspection = await letter_check.against_letter(self.repo, self.settings, inspection)
            async with self.repo.transaction():
                event_id = inbound.event_id
                if event_id and not await self.repo.events.claim(inbound.channel, event_id, self.clock()):
                    log.info("skipping redelivered %s event %s", inbound.channel, inbound.event_id)
                    if inbound.from_inbox:
                        await self.repo.events.done(inbound.channel, inbound.event_id)
                    return None, [], []
                turn = await self._load(inbound)
                turn.inspection = inspection
                loaded, lang = turn.reg, turn.conv.lang
                await conversation.handle(turn)
                await self._save(turn, loaded)
                rows = await self._enqueue(turn.replies, turn.sms, inbound, turn.now)
            return turn, rows, []
        except Exception:
            log.exception(
                "turn failed: %s:%s kind=%s event=%s", inbound.channel, inbound.user_id, inbound.kind, inbound.event_id
            )
        # Not retried: an event that breaks the turn would break it again. The officer is told,
        # and the event leaves the inbox in the transaction that writes the apology.
        apology = [Outbound(text("internal_error", lang))]
        async with self.repo.transaction():
            if inbound.event_id and inbound.from_inbox:
                await self.repo.events.done(inbound.channel, inbound.event_id)
            rows = await self._enqueue(apology, [], inbound, self.clock())
        return None, rows, apology

    async def _directory_file(self, inbound: Inbound) -> bool:
        """Whether the attachment is an admin's school directory (handlers/directory_import.py).
        Only an admin's file in a private chat costs a look at the database."""
        if inbound.attachment is None or inbound.kind is not Kind.FILE or inbound.group_id is not None:
            return False
        if inbound.sender not in self.settings.admins:
            return False
        async with self.repo.transaction():
            return await directory_import.wanted(self.repo, self.settings, inbound, self.clock())

    async def _gated(self, inbound: Inbound, directory_file: bool = False) -> tuple[Inbound, Invalid | None]:
        """The inbound with its file downloaded, if the file is worth a look (handlers/photo_gate.py):
        an admin's school directory, or a photo or file from an officer at the letter steps (a
        registration waiting for its signed letter), never in a group, and not too often. Otherwise
        the file is dropped undownloaded and undecoded (the step says what it expects instead),
        with the reason when it came too often."""
        assert inbound.attachment is not None
        wanted = directory_file
        if inbound.group_id is None and not wanted:
            async with self.repo.transaction():
                wanted = await self.repo.awaits_signed_letter(inbound.channel, inbound.user_id)
        if not wanted:
            return replace(inbound, attachment=None), None
        if not directory_file and (refused := self.photo_gate.admit((inbound.channel, inbound.user_id), self.clock())):
            log.info("photo from %s:%s not decoded: too many lately", inbound.channel, inbound.user_id)
            return replace(inbound, attachment=None), refused
        if inbound.attachment.fetch is None:  # delivered with the message (the console)
            return inbound, None
        data = await inbound.attachment.fetch()
        return replace(inbound, attachment=replace(inbound.attachment, data=data, fetch=None)), None

    async def _enqueue(
        self, outbounds: list[Outbound], sms: list[Sms], inbound: Inbound | None, now: datetime,
    ) -> list[OutboxRow]:
        """Write messages into the outbox, inside the caller's transaction. Answers to the
        inbound's chat may use its reply token; messages for users who blocked or unfollowed
        the bot are not written (review chats always are)."""
        rows: list[OutboxRow] = []
        batches: dict[Address, str] = {}  # one batch per chat: sent together where the platform can
        for message in outbounds:
            if message.to is None:
                assert inbound is not None, "a message with no recipient needs an inbound to answer"
                to = inbound.chat
            else:
                to = message.to
                conv = await self.repo.get_conversation(to.channel, to.id)
                if conv is not None and conv.blocked:
                    log.info("not sending to %s: unreachable", to)
                    continue
            answer = inbound is not None and to == inbound.chat
            rows.append(OutboxRow(
                to.channel, to.id, ANSWER if answer else NOTICE, batches.setdefault(to, uuid.uuid4().hex),
                encode(message), replace_key=message.replace_key,
                reply_token=inbound.reply_token if answer and inbound else None,
                event_at=inbound.received_at if answer and inbound else None,
            ))
        for message in sms:
            rows.append(OutboxRow(SMS, self.repo.phone_ref(message.phone),
                                  ANSWER if message.otp_challenge_id else NOTICE, uuid.uuid4().hex,
                                  encode_sms(message)))
        return await self.repo.outbox.add(rows, now) if rows else []

    async def mark_unreachable(self, channel: str, user_id: str, inbox_event: str | None = None) -> None:
        """The platform says this user blocked or left the bot: send them nothing more (broadcasts
        skip them) until they write again."""
        async with self.repo.transaction():
            if await self.repo.set_blocked(channel, user_id, self.clock()):
                log.info("%s:%s is unreachable (blocked or unfollowed)", channel, user_id)
            if inbox_event:
                await self.repo.events.done(channel, inbox_event)

    async def sms_text(self, sms: Sms) -> str | None:
        """The text of an SMS about to be sent; None when it is no longer worth sending (its
        one-time code expired, was used or was replaced in the meantime)."""
        if sms.otp_challenge_id is None:
            return sms.text
        async with self.repo.transaction():
            challenge = await self.repo.otp.get(sms.otp_challenge_id)
        return None if challenge is None else otp.sms_text(challenge, sms.lang, self.clock())

    async def sms_not_sent(self, sms: Sms) -> None:
        """The gateway gave up on an SMS. An undelivered code must not use up the officer's
        limits, and the officer is told to ask for a new one."""
        if sms.otp_challenge_id is None:
            return
        now = self.clock()
        async with self.repo.transaction():
            await self.repo.otp.send_failed(sms.otp_challenge_id, now)
            notices = [Outbound(text("sms_failed", sms.lang), to=sms.notify)] if sms.notify else []
            rows = await self._enqueue(notices, [], None, now)
        self._committed(rows)

    async def sms_unknown(self, sms: Sms) -> None:
        """The gateway may have sent this SMS. A code in it stays counted against every limit (so
        timeouts cannot be used to send codes for free) and stays valid; the officer is told it
        may still come, and when a new one may be asked for."""
        if sms.otp_challenge_id is None:
            return
        now = self.clock()
        async with self.repo.transaction():
            await self.repo.otp.send_unknown(sms.otp_challenge_id)
            wait = int(self.settings.otp.resend_after.total_seconds())
            notices = [Outbound(text("sms_unknown", sms.lang, seconds=wait), to=sms.notify)] if sms.notify else []
            rows = await self._enqueue(notices, [], None, now)
        self._committed(rows)

    async def _send_sms(self, sms: Sms, key: str | None = None) -> bool:
        """Straight to the gateway, for the one SMS that must not be written down: an initial
        password. (If it cannot be sent, the account is made again later.)"""
        try:
            await self.sms.send(sms.phone, sms.text, key=key)
            return True
        except SmsError as e:
            log.error("SMS to %s failed: %s", mask_phone(sms.phone), e)
        return False

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
        challenge = await repo.otp.get(conv.otp_challenge_id) if conv.otp_challenge_id else None
        return Turn(inbound, conv, reg, repo, now, self.settings, challenge=challenge, files=self.files)

    async def _save(self, turn: Turn, loaded: Registration | None) -> None:
        turn.conv.otp_challenge_id = turn.challenge.id if turn.challenge else None
        turn.conv.registration_id = turn.reg.id if turn.reg else None
        await self.repo.save_conversation(turn.conv, turn.now)
        # The turn may have let go of the registration it loaded (cancel, /new): save that one too.
        for reg in {id(r): r for r in (loaded, turn.reg) if r is not None}.values():
            await self.repo.save_registration(reg, turn.now)
        if turn.inbound.event_id and turn.inbound.from_inbox:
            await self.repo.events.done(turn.inbound.channel, turn.inbound.event_id)
