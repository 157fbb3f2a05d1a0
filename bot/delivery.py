"""Delivery: the outbox sent to each platform, in order per chat, paced, retried until done.

One `Worker` per channel holds that channel's unsent rows in memory (read from the outbox at
start-up, then handed the new ones after every commit), one queue per chat:

- A chat's messages go one at a time, in the order they were written (a broadcast waits behind
  the rest); chats go concurrently, so a slow review group delays only itself.
- Which chat goes next: the lowest priority first (an officer's answer, then notices and
  review cards, then broadcasts), oldest first among equals. Broadcasts never take the last
  sending slots, so an answer never waits for one.
- Pacing comes from the sender's `Policy`: per private chat, per group, overall.
- A platform's "retry after" pauses that chat for as long as it asks, however often: a message
  is never dropped for being throttled. Other failures back off, and are given up (logged,
  the sender's `on_refused` told) only after `give_up_after` seconds.
- Delivered rows are deleted from the outbox in batches; a crash before that sends them again
  (the senders use the platforms' idempotency keys where there are some).
- Broadcast rows are claimed just before they go (`_claim`): a cancelled broadcast's rows are
  gone from the outbox and skipped; where the platform has no idempotency key a row claimed
  before a crash is not sent again (its recipient counts as "unknown"): a broadcast reaches
  nobody twice. What became of each is recorded for the broadcast (storage/broadcasts.py).
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.pacing import Bucket, RealTimer, Timer
from bot.sender import Refused, Result, Retry, Sender, Sent, Unit, Unreachable, backoff
from storage import OutboxRow, Repository
from storage.models import BROADCAST

log = logging.getLogger(__name__)

RESERVED_SLOTS = 2  # sending slots a broadcast never takes
MULTICAST_CHAT = "multicast:"  # how the chat id of a row to many starts (bot/broadcaster.py)


@dataclass
class _Chat:
    id: str
    rows: list[OutboxRow] = field(default_factory=list)
    recovered: set[int] = field(default_factory=set)
    not_before: float = 0.0
    attempts: int = 0
    failing_since: float | None = None
    progress: int = 0
    notes: dict[str, Any] = field(default_factory=dict)
    busy: bool = False
    queued: bool = False  # in the ready or the waiting heap


def _order(row: OutboxRow) -> tuple[bool, int]:
    """A chat's rows go in the order they were written, except that a broadcast waits behind
    everything else for that chat: an officer's answer never queues behind one."""
    return row.priority >= BROADCAST, row.id


class Worker:
    def __init__(
        self, sender: Sender, repo: Repository, timer: Timer,
        on_refused: Callable[[OutboxRow], Awaitable[None]] | None = None,
    ) -> None:
        self.sender = sender
        self.channel = sender.channel
        self.policy = sender.policy
        self.repo = repo
        self.timer = timer
        self.on_refused = on_refused
        self._chats: dict[str, _Chat] = {}
        self._buckets: dict[str, Bucket] = {}
        self._overall = Bucket(self.policy.overall, timer.now()) if self.policy.overall else None
        self._ready: list[tuple[int, int, str]] = []  # (priority, first row id, chat)
        self._waiting: list[tuple[float, str]] = []  # (when, chat)
        self._busy = 0
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        # What delivery changed, written to the outbox in the next batch:
        self._done: list[int] = []
        self._refs: list[tuple[str, str, str | None, datetime]] = []
        self._unreachable: list[str] = []
        self._outcomes: list[tuple[int, str]] = []  # broadcast rows: (outbox id, what became of them)
        self._claims: list[tuple[Unit, asyncio.Future[bool]]] = []  # broadcast units about to go
        self.progress = asyncio.Event()  # set when broadcast rows are recorded (shared: Delivery.progress)
        self._flush = asyncio.Event()
        self._flushing = False
        self._runner: asyncio.Task[None] | None = None
        self._flusher: asyncio.Task[None] | None = None

    # --- lifecycle ---------------------------------------------------------------------

    async def start(self, left_before: int) -> None:
        """Read what is unsent, and start sending. Rows up to `left_before` were left by a
        previous process, which may have sent part of them; later ones are this process's own."""
        async with self.repo.transaction():
            rows = await self.repo.outbox.pending(self.channel)
        left = [r for r in rows if r.id <= left_before]
        if left:
            log.info("%s: %d messages from before the restart", self.channel, len(left))
        self._add(left, recovered=True)
        self._add([r for r in rows if r.id > left_before], recovered=False)
        self._runner = asyncio.create_task(self._run())
        self._flusher = asyncio.create_task(self._flush_loop())

    async def stop(self, timeout: float = 10) -> None:
        """Let the sends under way finish (for at most `timeout` seconds), record them, stop."""
        if self._runner is not None:
            self._runner.cancel()
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=timeout)
        while self._flushing:  # a batch being written is let finish
            await asyncio.sleep(0.001)
        if self._flusher is not None:
            self._flusher.cancel()
        await self._write()

    def add(self, rows: list[OutboxRow]) -> None:
        """Rows just committed (or, with a replace key, rewritten) for this channel."""
        self._add(rows, recovered=False)
        self._wake.set()

    # --- queues ------------------------------------------------------------------------

    def _add(self, rows: list[OutboxRow], recovered: bool) -> None:
        for row in rows:
            chat = self._chats.get(row.chat_id)
            if chat is None:
                chat = self._chats[row.chat_id] = _Chat(row.chat_id)
            same = next((i for i, r in enumerate(chat.rows) if r.id == row.id), None)
            if same is not None:  # a newer version of a waiting message
                if not (chat.busy and same == 0):  # the one being sent goes as it was; the next send has the rest
                    chat.rows[same] = row
            else:
                at = bisect.bisect_left([_order(r) for r in chat.rows], _order(row))
                at = max(at, 1) if chat.busy else at  # never before the one being sent
                chat.rows.insert(at, row)
                if at == 0 and chat.queued:  # a new head, more urgent than the one it was queued with
                    heapq.heappush(self._ready, (row.priority, row.id, chat.id))
            if recovered:
                chat.recovered.add(row.id)
            self._schedule(chat)

    def _schedule(self, chat: _Chat) -> None:
        if chat.busy or chat.queued or not chat.rows:
            return
        chat.queued = True
        if chat.not_before > self.timer.now():
            heapq.heappush(self._waiting, (chat.not_before, chat.id))
        else:
            heapq.heappush(self._ready, (chat.rows[0].priority, chat.rows[0].id, chat.id))

    def _unit(self, chat: _Chat) -> Unit:
        head = chat.rows[0]
        rows = [head]
        if self.policy.batch:
            for row in chat.rows[1:]:
                if row.batch != head.batch:
                    break
                rows.append(row)
        return Unit(chat.id, rows, chat.attempts, head.id in chat.recovered, chat.progress, chat.notes,
                    now=datetime.fromtimestamp(self.timer.now(), UTC))

    def _bucket(self, chat_id: str, now: float) -> Bucket | None:
        if chat_id.startswith(MULTICAST_CHAT) and self.policy.multicast_pace is not None:
            chat_id, pace = MULTICAST_CHAT, self.policy.multicast_pace  # one bucket for every multicast
        else:
            pace = self.policy.group if self.policy.is_group(chat_id) else self.policy.private
        if pace is None:
            return None
        bucket = self._buckets.get(chat_id)
        if bucket is None:
            bucket = self._buckets[chat_id] = Bucket(pace, now)
        return bucket

    # --- sending -----------------------------------------------------------------------

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            wait = self._dispatch()
            await self.timer.wait(self._wake, wait)

    def _dispatch(self) -> float | None:
        """Start every send that may start now; how long until the next one may (None: when
        something changes)."""
        now = self.timer.now()
        while self._waiting and self._waiting[0][0] <= now:
            _, chat_id = heapq.heappop(self._waiting)
            if chat := self._chats.get(chat_id):
                chat.queued = False
                self._schedule(chat)
        limit = self.policy.concurrency
        while self._ready:
            priority, _, chat_id = self._ready[0]
            reserved = min(RESERVED_SLOTS, limit - 1)  # a sender of one slot lets broadcasts use it
            if self._busy >= limit or (priority >= BROADCAST and self._busy >= limit - reserved):
                break  # a send finishing wakes us
            heapq.heappop(self._ready)
            chat = self._chats.get(chat_id)
            if chat is None:
                continue
            chat.queued = False
            if not chat.rows or chat.busy:
                continue
            bucket = self._bucket(chat_id, now)
            at = max(chat.not_before, bucket.ready_at(now) if bucket else now)
            if at > now:
                chat.queued = True
                heapq.heappush(self._waiting, (at, chat_id))
                continue
            if self._overall is not None and (at := self._overall.ready_at(now)) > now:
                chat.queued = True
                heapq.heappush(self._ready, (priority, chat.rows[0].id, chat_id))
                return min(at, self._waiting[0][0]) - now if self._waiting else at - now
            for b in (bucket, self._overall):
                if b is not None:
                    b.take(now)
            chat.busy = True
            self._busy += 1
            task = asyncio.create_task(self._deliver(chat, self._unit(chat)))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return self._waiting[0][0] - now if self._waiting else None

    async def _deliver(self, chat: _Chat, unit: Unit) -> None:
        try:
            if unit.rows[0].priority >= BROADCAST and (outcome := await self._claim(unit)) is not None:
                self._finish(chat, unit, Refused(outcome), self.timer.now(), outcome=outcome)
                self._settle(chat, self.timer.now())
                return
            keys = {r.replace_key for r in unit.rows if r.replace_key}
            if keys:
                async with self.repo.transaction():
                    for key in keys:
                        if (previous := await self.repo.outbox.sent_under(self.channel, chat.id, key)) is not None:
                            unit.previous[key] = previous
            result: Result = await self.sender.deliver(unit)
        except Exception:  # a bug in a sender, or an outage it did not expect: try again later
            log.exception("%s: sending to %s failed", self.channel, chat.id)
            result = Retry(backoff(unit.attempt), "unexpected error")
        now = self.timer.now()
        chat.progress = unit.progress
        if isinstance(result, Retry):
            result = self._retry(chat, result, now)
        if not isinstance(result, Retry):
            self._finish(chat, unit, result, now)
        self._settle(chat, now)

    async def _claim(self, unit: Unit) -> str | None:
        """Before a broadcast goes: None if it may, else what became of it. Its rows are marked
        attempted, durably, so that on a platform that cannot recognise a resend a crash now
        means "unknown", never twice; a row no longer in the outbox was cancelled."""
        if not self.policy.idempotent and unit.recovered and unit.rows[0].attempted:
            log.warning("%s: a broadcast to %s was in flight at the last stop; not sent again", self.channel,
                        unit.chat_id)
            return "unknown"
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._claims.append((unit, future))
        if len(self._claims) == 1:
            task = asyncio.create_task(self._claim_together())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return None if await future else "cancelled"

    async def _claim_together(self) -> None:
        """The claims of the units started together, in one transaction: a LINE broadcast starts
        a dozen multicasts at once, and a transaction each made them queue for the database."""
        await asyncio.sleep(0)  # the other units of this dispatch join
        claims, self._claims = self._claims, []
        try:
            async with self.repo.transaction():
                still = await self.repo.outbox.attempting([r.id for unit, _ in claims for r in unit.rows],
                                                          claims[0][0].now)
        except Exception as e:  # each sender sees the outage, and tries again later
            for _, future in claims:
                future.set_exception(e)
            return
        for unit, future in claims:
            future.set_result(any(r.id in still for r in unit.rows))

    def _settle(self, chat: _Chat, now: float) -> None:
        """A send is over: the chat's next row may go."""
        chat.busy = False
        self._busy -= 1
        self._schedule(chat)
        if not chat.rows and not chat.busy:
            del self._chats[chat.id]
            bucket = self._buckets.get(chat.id)
            if bucket is not None and bucket.full(now):
                del self._buckets[chat.id]
        self._wake.set()

    def _retry(self, chat: _Chat, result: Retry, now: float) -> Result:
        if result.throttled:
            if (bucket := self._bucket(chat.id, now)) is not None:
                bucket.drain(now)
            log.info("%s: %s asked us to wait %.0f s (%s)", self.channel, chat.id, result.after, result.reason)
        else:
            chat.attempts += 1
            chat.failing_since = chat.failing_since or now
            if now - chat.failing_since >= self.policy.give_up_after:
                return Refused(f"gave up after {chat.attempts} tries: {result.reason}")
            log.warning("%s: sending to %s failed (%s); again in %.0f s", self.channel, chat.id, result.reason,
                        result.after)
        chat.not_before = now + result.after
        return result

    def _finish(self, chat: _Chat, unit: Unit, result: Result, now: float, outcome: str | None = None) -> None:
        gone = chat.rows if isinstance(result, Unreachable) else unit.rows
        ids = {r.id for r in gone}
        outcome = outcome or ("sent" if isinstance(result, Sent) else
                              "blocked" if isinstance(result, Unreachable) else "failed")
        self._outcomes += [(r.id, outcome) for r in gone if r.priority >= BROADCAST]
        chat.rows = [r for r in chat.rows if r.id not in ids]
        chat.recovered -= ids
        chat.attempts, chat.failing_since, chat.progress, chat.notes = 0, None, 0, {}
        self._done += ids
        wall = datetime.fromtimestamp(now, UTC)
        if isinstance(result, Sent):
            self._refs += [(chat.id, key, ref, wall) for key, ref in result.refs.items()]
        elif isinstance(result, Unreachable):
            log.info("%s: %s is unreachable; %d messages dropped", self.channel, chat.id, len(gone))
            self._unreachable.append(chat.id)
        elif isinstance(result, Refused) and outcome in ("unknown", "cancelled"):
            pass  # said by _claim, or asked for
        elif isinstance(result, Refused):
            log.error("%s: a message to %s was refused: %s", self.channel, chat.id, result.reason)
            if self.on_refused is not None:
                for row in gone:
                    task = asyncio.create_task(self.on_refused(row))
                    self._tasks.add(task)
                    task.add_done_callback(self._tasks.discard)
        self._flush.set()

    # --- recording what was sent -------------------------------------------------------

    async def _flush_loop(self) -> None:
        while True:
            await self._flush.wait()
            self._flush.clear()
            try:
                await self._write()
            except Exception:  # kept for the next batch; at worst, sent again after a restart
                log.exception("%s: recording delivered messages failed", self.channel)
                await self.timer.wait(asyncio.Event(), 1.0)
                self._flush.set()

    async def _write(self) -> None:
        done, refs, unreachable, outcomes = self._done, self._refs, self._unreachable, self._outcomes
        if not (done or refs or unreachable):
            return
        self._done, self._refs, self._unreachable, self._outcomes = [], [], [], []
        self._flushing = True
        try:
            async with self.repo.transaction():
                if outcomes:
                    await self.repo.broadcasts.delivered(outcomes, datetime.fromtimestamp(self.timer.now(), UTC))
                await self.repo.outbox.done(done)
                for chat_id, key, ref, at in refs:
                    await self.repo.outbox.remember_sent(self.channel, chat_id, key, ref, at)
                for chat_id in unreachable:
                    await self.repo.set_blocked(self.channel, chat_id, datetime.now(UTC))
        except BaseException:
            self._done, self._refs = done + self._done, refs + self._refs
            self._unreachable, self._outcomes = unreachable + self._unreachable, outcomes + self._outcomes
            raise
        finally:
            self._flushing = False
        if outcomes:
            self.progress.set()

    def quiet(self) -> bool:
        """Nothing being sent or recorded, and nothing that may be sent before the clock moves."""
        if self._wake.is_set() or self._busy or self._flushing or self._done or self._refs or self._unreachable:
            return False
        if self._tasks:  # on_refused hooks
            return False
        now = self.timer.now()
        if self._waiting and self._waiting[0][0] <= now:
            return False
        blocked = self._overall is not None and self._overall.ready_at(now) > now
        return not self._ready or blocked


class Delivery:
    """The workers of every channel this process sends on; hands each its committed rows."""

    def __init__(self, repo: Repository, timer: Timer | None = None) -> None:
        self.repo = repo
        self.timer = timer or RealTimer()
        self.workers: dict[str, Worker] = {}
        self._started = False
        self._left_before: int | None = None
        self.progress = asyncio.Event()  # set when broadcast rows are done (bot/broadcaster.py feeds more)

    async def open(self) -> None:
        """Note where the outbox stood when this process opened it, before anything of this
        process is written: what is there was left by the previous one."""
        async with self.repo.transaction():
            self._left_before = await self.repo.outbox.last_id()

    def add_sender(self, sender: Sender, on_refused: Callable[[OutboxRow], Awaitable[None]] | None = None) -> None:
        worker = self.workers[sender.channel] = Worker(sender, self.repo, self.timer, on_refused)
        worker.progress = self.progress

    def take(self, rows: list[OutboxRow]) -> None:
        """New rows, just committed. Rows for a channel this process does not send on stay in
        the outbox for the process that does."""
        if not self._started:  # start() reads them from the outbox
            return
        by_channel: dict[str, list[OutboxRow]] = {}
        for row in rows:
            by_channel.setdefault(row.channel, []).append(row)
        for channel, channel_rows in by_channel.items():
            if (worker := self.workers.get(channel)) is not None:
                worker.add(channel_rows)

    async def start(self) -> None:
        if self._left_before is None:
            await self.open()
        assert self._left_before is not None
        self._started = True
        for worker in self.workers.values():
            await worker.start(self._left_before)

    async def stop(self) -> None:
        for worker in self.workers.values():
            await worker.stop()
        self._started = False

    async def idle(self) -> None:
        """Until no worker can send anything more now (one worker's refusal may give another
        a message: a code that could not be sent is told in chat)."""
        while not all(worker.quiet() for worker in self.workers.values()):
            await asyncio.sleep(0.001)
