"""The retention job: personal data kept no longer than the privacy notice says, checked hourly.

What is due is decided in handlers/privacy.py (`retention_pass`): approvals a year old,
drafts untouched for KIDDIARY_DRAFT_RETENTION_DAYS, one-time codes past every limit. This
loop runs it in small transactions (a running bot is never held up), unlinks the files of the
scans it erased once their rows are gone, and sweeps files no row refers to (left by a crash
between an erasure's commit and its unlinking). Its waits go through the project's `Timer`,
so tests move time by hand.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from bot.pacing import Timer
from handlers.dispatch import Dispatcher
from handlers.privacy import retention_pass

log = logging.getLogger(__name__)

EVERY = 3600.0  # seconds between passes
ORPHAN_AGE = 3600.0  # a file younger than this may still be waiting for its row's commit


class RetentionJob:
    def __init__(self, dispatcher: Dispatcher, timer: Timer, draft_days: int, every: float = EVERY) -> None:
        self.dispatcher, self.timer, self.draft_days, self.every = dispatcher, timer, draft_days, every
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _run(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception:  # the database is down, a file is unreadable: try again next time
                log.exception("retention pass failed")
            await self.timer.wait(asyncio.Event(), self.every)

    async def run_once(self) -> tuple[int, int]:
        """One whole pass: (registrations erased, files removed)."""
        repo, now = self.dispatcher.repo, datetime.fromtimestamp(self.timer.now(), UTC)
        registrations, files = 0, 0
        while True:
            async with repo.transaction():
                count, erased = await retention_pass(repo, now, self.draft_days)
            files += await self.dispatcher.remove_files(erased.files)
            registrations += count
            if count == 0:
                break
        store = self.dispatcher.files
        if store is not None:
            async with repo.transaction():
                referenced = await repo.erasure.referenced_files()
            orphans = await asyncio.to_thread(store.unreferenced, referenced, ORPHAN_AGE)
            files += await self.dispatcher.remove_files(orphans)
        if registrations or files:
            log.info("retention: %d registration(s) erased, %d file(s) removed", registrations, files)
        return registrations, files
