"""The HTTP server (aiohttp): platform webhooks, signed letter links, and a health check.

Every webhook is authenticated before anything is read into the core: Telegram by its
secret-token header. A request that fails gets 403 and changes nothing.
"""

from __future__ import annotations

import hmac
import json
import logging

from aiohttp import web

from bot.telegram import TelegramChannel

log = logging.getLogger(__name__)

TELEGRAM_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
TELEGRAM = web.AppKey("telegram", TelegramChannel)


def make_app(telegram: TelegramChannel | None = None) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)  # webhooks carry JSON, not files
    app.router.add_get("/healthz", healthz)
    if telegram is not None and telegram.webhook_secret:
        app[TELEGRAM] = telegram
        app.router.add_post("/telegram/webhook", telegram_webhook)
    return app


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def telegram_webhook(request: web.Request) -> web.Response:
    telegram = request.app[TELEGRAM]
    given = request.headers.get(TELEGRAM_SECRET_HEADER, "")
    assert telegram.webhook_secret
    if not hmac.compare_digest(given.encode(), telegram.webhook_secret.encode()):
        log.warning("Telegram webhook with a missing or wrong secret from %s", request.remote)
        return web.Response(status=403, text="forbidden")
    try:
        update = json.loads(await request.text())
    except ValueError:
        return web.Response(status=400, text="bad request")
    if not isinstance(update, dict) or "update_id" not in update:
        return web.Response(status=400, text="bad request")
    await telegram.feed(update)
    return web.Response(text="ok")


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start serving `app`; the caller stops it with `await runner.cleanup()`."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("HTTP server on http://%s:%d", host, port)
    return runner
