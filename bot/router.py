"""Messages addressed to someone else (`Outbound.to`): an officer on another channel, a
review chat. Each channel registers how it pushes a message to one of its chats."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace

from handlers.messages import Outbound

log = logging.getLogger(__name__)

Push = Callable[[str, list[Outbound]], Awaitable[None]]


class Router:
    def __init__(self) -> None:
        self._channels: dict[str, Push] = {}

    def register(self, channel: str, push: Push) -> None:
        self._channels[channel] = push

    async def deliver(self, outbounds: list[Outbound]) -> None:
        for message in outbounds:
            if message.to is None:
                continue
            push = self._channels.get(message.to.channel)
            if push is None:
                log.warning("no channel %r to deliver a message to %s", message.to.channel, message.to)
                continue
            try:
                await push(message.to.id, [replace(message, to=None)])
            except Exception:  # one unreachable chat must not stop the others
                log.exception("delivering to %s failed", message.to)
