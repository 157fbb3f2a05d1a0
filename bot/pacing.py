"""Time and rates for the delivery workers: a timer that tests can drive, and token buckets.

Every wait of the delivery goes through a `Timer`, so pacing, "retry after" and backoff are
tested on a clock the test moves (tests/helpers.py `ManualTimer`), never by sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass
from typing import Protocol


class Timer(Protocol):
    def now(self) -> float:
        """Seconds since the epoch."""

    async def wait(self, event: asyncio.Event, timeout: float | None) -> None:
        """Until `event` is set or `timeout` seconds have passed (None: no time limit)."""


class RealTimer:
    def now(self) -> float:
        return time.time()

    async def wait(self, event: asyncio.Event, timeout: float | None) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(event.wait(), timeout)


@dataclass(frozen=True)
class Pace:
    """At most `rate` messages a second on average, and `burst` at once."""

    rate: float
    burst: float


class Bucket:
    """A token bucket: a message takes a token; tokens come back at the pace's rate."""

    def __init__(self, pace: Pace, now: float) -> None:
        self.pace = pace
        self.tokens = pace.burst
        self.at = now

    def _refill(self, now: float) -> None:
        if now > self.at:
            self.tokens = min(self.pace.burst, self.tokens + (now - self.at) * self.pace.rate)
            self.at = now

    def ready_at(self, now: float) -> float:
        """When a message may go (now, or later)."""
        self._refill(now)
        return now if self.tokens >= 1 else now + (1 - self.tokens) / self.pace.rate

    def take(self, now: float, cost: float = 1) -> None:
        self._refill(now)
        self.tokens -= cost  # may go below zero: a message of several parts is paid for after

    def drain(self, now: float) -> None:
        """The platform said "too many": start again from empty."""
        self._refill(now)
        self.tokens = min(self.tokens, 0)

    def full(self, now: float) -> bool:
        self._refill(now)
        return self.tokens >= self.pace.burst
