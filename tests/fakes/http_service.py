"""A recording HTTP service for the gateways the bot calls: an SMS gateway (webhook or
Twilio's Messages API) and an account service for provisioning. It answers each request with
the next status the test queued (200 by default) and the JSON body it was given; a queued
HANG keeps the request waiting, unanswered, like a gateway that stopped answering."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.server import LocalServer

HANG = 0  # queued like a status: the request is recorded and never answered


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)


class FakeService(LocalServer):
    def __init__(self, answer: dict[str, Any] | None = None) -> None:
        self.received: list[Received] = []
        self.statuses: list[int] = []
        self.answer = answer or {}
        self.app = web.Application()
        self.app.router.add_post("/{path:.*}", self._handle)
        self._released = asyncio.Event()  # set at stop: requests kept hanging are let go

    async def stop(self) -> None:
        self._released.set()
        await super().stop()

    def fail(self, *statuses: int) -> None:
        self.statuses.extend(statuses)

    async def _handle(self, request: web.Request) -> web.Response:
        received = Received(request.path, dict(request.headers))
        if request.content_type == "application/json":
            received.json = await request.json()
        else:
            received.form = {k: str(v) for k, v in (await request.post()).items()}
        self.received.append(received)
        status = self.statuses.pop(0) if self.statuses else 200
        if status == HANG:
            await self._released.wait()
        return web.json_response(self.answer if status == 200 else {"error": "injected"}, status=status)
