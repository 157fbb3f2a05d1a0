"""What the core needs of an SMS gateway (bot/sms.py has the real ones, tests/fakes/sms.py the
fakes), and how a send can fail: surely not sent, or not known."""

from __future__ import annotations

from typing import Protocol


class SmsError(Exception):
    """The gateway could not deliver a message (after its own retries)."""


class SmsOutcomeUnknown(SmsError):
    """The gateway may or may not have sent the message (a timeout, a dropped connection, a 5xx
    that is not "try later"). Not sent again; a code in it counts against the limits."""


class SmsGateway(Protocol):
    async def send(self, phone: str, text: str, key: str | None = None) -> None:
        """Send `text` to `phone` (E.164); raise SmsError when it cannot be done. `key` is the
        same for every try of one message, for gateways that drop repeats."""
