"""The broadcaster: feeds confirmed broadcasts and due reminders into the outbox, a chunk at a time.

A broadcast to 50,000 people is not written to the outbox at once: that would hold the database
for seconds and put 50,000 rows in the delivery's memory. Each pass tops every channel's
broadcast backlog up to a few seconds' worth of sending (`BACKLOG`), records the batches and
moves the channel's cursor past them in the same transaction, and hands the rows to the
delivery, which sends them at the lowest priority (an officer's answer always goes first) and
records how each went. Where the platform sends one message to many (`Policy.multicast`, LINE:
500 ids a request), recipients who read the same text share one row, and its retry key makes a
resend after a crash harmless.

Passes happen when the delivery reports progress, and every few seconds (a broadcast started
from the shell, a reminder coming due). Nothing goes between 21:00 and 07:00 Bangkok time.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import UTC, date, datetime

from bot.delivery import MULTICAST_CHAT, Delivery
from bot.pacing import Timer
from handlers.broadcasts import reminder_text, render, same_for_everyone
from handlers.deadline import DEADLINE_KEY, quiet_until, reminder_due, reminder_key
from handlers.messages import Outbound, encode
from handlers.turn import CoreSettings
from storage import OutboxRow, Repository
from storage.broadcasts import Broadcast, Recipient, Segment
from storage.models import BROADCAST

log = logging.getLogger(__name__)

BACKLOG = 200  # broadcast rows waiting per channel (Telegram: about 7 s at 30/s)
MULTICAST_BACKLOG = 200  # rows of a multicast channel (each up to 500 people: 1 s at LINE's 200 requests/s)
POLL = 5.0  # seconds between passes when nothing reports progress
CHUNK = 5000  # recipients a transaction: about 30 ms of holding the database (10 multicasts)
MIN_PASS = 0.1  # seconds at least between passes: progress comes with every batch the delivery records
REMINDERS = Segment("not_submitted")


class Broadcaster:
    def __init__(self, repo: Repository, delivery: Delivery, settings: CoreSettings, timer: Timer) -> None:
        self.repo, self.delivery, self.settings, self.timer = repo, delivery, settings, timer
        self._task: asyncio.Task[None] | None = None

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.timer.now(), UTC)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            self.delivery.progress.clear()
            try:
                wait = await self.run_once()
            except Exception:  # an outage of the database: try again later
                log.exception("broadcaster pass failed")
                wait = POLL
            await self.timer.wait(asyncio.Event(), MIN_PASS)
            await self.timer.wait(self.delivery.progress, wait)

    async def run_once(self) -> float:
        """One pass: reminders made if due, backlogs topped up. Seconds until the next is needed."""
        now = self.now()
        if (morning := quiet_until(now)) is not None:
            return min((morning - now).total_seconds(), 3600.0)
        async with self.repo.transaction():
            value = await self.repo.broadcasts.setting(DEADLINE_KEY)
        deadline = date.fromisoformat(value) if value else None
        if deadline is not None:
            await self._remind(deadline, now)
        async with self.repo.transaction():
            sending = await self.repo.broadcasts.sending()
        for made in sending:
            await self._feed(made, deadline, now)
            await self._finish(made, now)
        return POLL

    async def _remind(self, deadline: date, now: datetime) -> None:
        days = reminder_due(deadline, now, self.settings.reminder_days)
        if days is None:
            return
        async with self.repo.transaction():
            made = await self.repo.broadcasts.create("reminder", REMINDERS, "", "bot", now,
                                                     key=reminder_key(deadline, days))
            staff = {(a.channel, a.id) for a in self.settings.admins | self.settings.reviewers}
            count = None if made is None else await self.repo.broadcasts.start(made.id, now, staff=staff)
        if made is not None:
            log.info("reminder %d days before %s: %s people", days, deadline, count)

    async def _feed(self, made: Broadcast, deadline: date | None, now: datetime) -> None:
        if made.kind == "reminder" and deadline is None:  # the deadline was removed meanwhile
            async with self.repo.transaction():
                await self.repo.broadcasts.cancel(made.id, now)
            return
        for channel, worker in self.delivery.workers.items():
            multicast = worker.policy.multicast
            async with self.repo.transaction():
                waiting = await self.repo.outbox.broadcast_backlog(channel)
            cap = MULTICAST_BACKLOG if multicast else BACKLOG
            if waiting > cap // 2:  # topped up in large steps, not after every message
                continue
            room = (cap - waiting) * max(multicast, 1)  # recipients
            while room > 0:
                fed = await self._feed_chunk(made, channel, min(room, CHUNK), multicast, deadline, now)
                if not fed:
                    break
                room -= fed

    async def _feed_chunk(
        self, made: Broadcast, channel: str, limit: int, multicast: int, deadline: date | None, now: datetime,
    ) -> int:
        """Up to `limit` recipients into the outbox, in one short transaction (officers' turns
        wait for it); how many."""
        async with self.repo.transaction():
            every = made.kind == "broadcast" and (body := same_for_everyone(made.text)) is not None
            if every:
                ids = await self.repo.broadcasts.next_user_ids(made.id, channel, limit)  # cheap: no join
                rows = self._same_rows(made, channel, ids, body, multicast)
            else:
                people = await self.repo.broadcasts.next_recipients(made.id, channel, limit)
                rows = self._rows(made, people, deadline, now, multicast)
            if not rows:
                return 0
            await self.repo.outbox.add([row for row, _ in rows], now)  # fills in each row's id
            await self.repo.broadcasts.queued(made.id, channel, [(row.id, ids) for row, ids in rows], every=every)
        self.delivery.take([row for row, _ in rows])
        return sum(len(ids) for _, ids in rows)

    async def _finish(self, made: Broadcast, now: datetime) -> None:
        async with self.repo.transaction():
            if await self.repo.broadcasts.finish_if_done(made.id, now):
                log.info("broadcast %d done", made.id)

    def _rows(
        self, made: Broadcast, people: list[Recipient], deadline: date | None, now: datetime, multicast: int,
    ) -> list[tuple[OutboxRow, list[str]]]:
        """The outbox rows that carry `people` the broadcast, each with the ids it carries:
        those who read the same text share rows where the platform multicasts."""
        texts: dict[str, list[str]] = {}
        for person in people:
            if made.kind == "reminder":
                assert deadline is not None
                body = reminder_text(person, deadline, now)
            else:
                body = render(made.text, person, deadline)
            texts.setdefault(body, []).append(person.user_id)
        channel = people[0].channel if people else ""
        return [row for body, ids in texts.items() for row in self._same_rows(made, channel, ids, body, multicast)]

    def _same_rows(
        self, made: Broadcast, channel: str, ids: list[str], body: str, multicast: int,
    ) -> list[tuple[OutboxRow, list[str]]]:
        """The rows that carry one text to `ids`."""
        payload = encode(Outbound(body))
        if not multicast:
            return [(self._row(made, channel, user_id, payload), [user_id]) for user_id in ids]
        parts = [ids[start:start + multicast] for start in range(0, len(ids), multicast)]
        return [(self._row(made, channel, f"{MULTICAST_CHAT}{made.id}:{part[0]}", {**payload, "multicast": part}), part)
                for part in parts]

    @staticmethod
    def _row(made: Broadcast, channel: str, chat_id: str, payload: dict[str, object]) -> OutboxRow:
        return OutboxRow(channel, chat_id, BROADCAST, f"broadcast:{made.id}:{uuid.uuid4().hex[:8]}", payload)
