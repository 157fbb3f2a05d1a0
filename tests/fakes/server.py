"""Serving a fake on a free loopback port."""

from __future__ import annotations

from aiohttp import web


class LocalServer:
    """Mixed into the fakes: `self.app` served on 127.0.0.1 and a free port, at `self.url`."""

    app: web.Application
    url: str = ""
    _runner: web.AppRunner | None = None

    async def start(self) -> str:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
