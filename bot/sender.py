"""What a channel implements to send the outbox (`Sender`), and what it answers (`Result`).

A sender gets a `Unit` (a chat's next rows), sends it, and says how it went: `Sent`, `Retry`
after so many seconds (throttled by the platform, or failed), `Unreachable` (the user blocked
the bot), or `Refused` for good. Its `Policy` tells the worker how to pace it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from bot.pacing import Pace
from storage import OutboxRow

MAX_BACKOFF = 300.0  # seconds


def backoff(attempt: int) -> float:
    """1, 2, 4 … seconds, at most five minutes."""
    return min(MAX_BACKOFF, 2.0**attempt)


@dataclass
class Unit:
    """What one send covers: the first waiting row of a chat or, where the platform takes
    several messages in one request, the rows written together with it."""

    chat_id: str
    rows: list[OutboxRow]
    attempt: int = 0  # failed tries so far
    recovered: bool = False  # read at start-up: a process before this one may have sent part of it
    progress: int = 0  # parts already accepted by the platform; a retry goes on after them
    notes: dict[str, Any] = field(default_factory=dict)  # the sender's own, kept from try to try
    previous: dict[str, tuple[str | None, datetime]] = field(default_factory=dict)  # replace key → last sent
    now: datetime = field(default_factory=lambda: datetime.now(UTC))  # by the delivery's clock


@dataclass(frozen=True)
class Sent:
    refs: dict[str, str | None] = field(default_factory=dict)  # replace key → the platform's id for it


@dataclass(frozen=True)
class Retry:
    after: float
    reason: str
    throttled: bool = False  # the platform asked to wait: not a failure, never given up


@dataclass(frozen=True)
class Unreachable:
    """The user blocked or unfollowed the bot: nothing more goes to this chat."""


@dataclass(frozen=True)
class Refused:
    reason: str


Result = Sent | Retry | Unreachable | Refused


def _never_a_group(chat_id: str) -> bool:
    return False


@dataclass(frozen=True)
class Policy:
    concurrency: int = 8  # sends in flight at once
    overall: Pace | None = None
    private: Pace | None = None
    group: Pace | None = None
    batch: bool = False  # several rows of one chat in one send (those written together)
    is_group: Callable[[str], bool] = _never_a_group
    multicast: int = 0  # recipients one request may carry (LINE multicast: 500); 0: one chat a request
    multicast_pace: Pace | None = None  # the platform's limit on multicast requests, all together
    idempotent: bool = False  # the platform recognises a resend (an idempotency key): else broadcasts go at most once
    give_up_after: float = 24 * 3600.0  # seconds of failures (not throttling) before a message is dropped


class Sender(Protocol):
    channel: str
    policy: Policy

    async def deliver(self, unit: Unit) -> Result:
        """Send `unit` to the platform; advance `unit.progress` as its parts are accepted."""
