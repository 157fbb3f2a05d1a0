"""The HTTP server (aiohttp): platform webhooks, signed letter and chart links, and a health check.

Every webhook is authenticated before anything is read into the core: Telegram by its
secret-token header (403 otherwise), LINE by X-Line-Signature (401 otherwise, 400 for a
body that is not a webhook). A refused request changes nothing.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from bot.letter_files import LetterFiles
from bot.line import LineChannel
from bot.telegram import TelegramChannel

log = logging.getLogger(__name__)

TELEGRAM_SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
TELEGRAM = web.AppKey("telegram", TelegramChannel)
LINE = web.AppKey("line", LineChannel)
LETTERS = web.AppKey("letters", LetterFiles)
Health = Callable[[], Awaitable[None]]
HEALTH = web.AppKey("health", Health)
HEALTH_TIMEOUT = 5  # seconds: a database that takes longer to take one small write is not healthy


def make_app(
    telegram: TelegramChannel | None = None, line: LineChannel | None = None, letters: LetterFiles | None = None,
    health: Health | None = None,
) -> web.Application:
    app = web.Application(client_max_size=1024 * 1024)  # webhooks carry JSON, not files
    app.router.add_get("/healthz", healthz)
    if health is not None:
        app[HEALTH] = health
    if telegram is not None and telegram.webhook_secret:
        app[TELEGRAM] = telegram
        app.router.add_post("/telegram/webhook", telegram_webhook)
    if line is not None:
        app[LINE] = line
        app.router.add_post("/line/webhook", line_webhook)
    if letters is not None:
        app[LETTERS] = letters
        app.router.add_get("/letters/{token}", letter_pdf)
        app.router.add_get("/letters/{token}/page.jpg", letter_page)
        app.router.add_get("/letters/{token}/preview.jpg", letter_page)
        app.router.add_get("/signed/{token}/page.jpg", letter_page)
        app.router.add_get("/signed/{token}/preview.jpg", letter_page)
        app.router.add_get("/charts/{token}/page.png", chart_page)
        app.router.add_get("/charts/{token}/preview.png", chart_page)
    return app


async def healthz(request: web.Request) -> web.Response:
    """200 when the process serves and its database answers and takes a write (committed);
    503 otherwise, so a monitor or load balancer sees a full disk or a broken database."""
    check = request.app.get(HEALTH)
    if check is not None:
        try:
            await asyncio.wait_for(check(), HEALTH_TIMEOUT)
        except Exception as e:  # whatever the database's failure, it is the answer
            log.error("health check failed: %s: %s", type(e).__name__, e)
            return web.json_response({"status": "database unavailable"}, status=503)
    return web.json_response({"status": "ok"})


async def telegram_webhook(request: web.Request) -> web.Response:
    telegram = request.app[TELEGRAM]
    given = request.headers.get(TELEGRAM_SECRET_HEADER, "")
    assert telegram.webhook_secret
    if not hmac.compare_digest(given.encode(), telegram.webhook_secret.encode()):
        log.warning("Telegram webhook with a missing or wrong secret from %s", request.remote)
        return web.Response(status=403, text="forbidden")
    try:
        update = json.loads(await request.read())
    except ValueError:
        update = None
    if not isinstance(update, dict) or "update_id" not in update:
        # Telegram sends an update again for as long as it gets an error: one we cannot read
        # would come back forever. It is logged and acknowledged.
        log.error("unreadable Telegram update acknowledged: %.200r", await request.read())
        return web.Response(text="ok")
    await telegram.feed(update)
    return web.Response(text="ok")


async def line_webhook(request: web.Request) -> web.Response:
    status = await request.app[LINE].receive(await request.read(), request.headers.get("X-Line-Signature"))
    return web.Response(status=status, text="ok" if status == 200 else "refused")


PRIVATE = {"Cache-Control": "private, no-store", "X-Robots-Tag": "noindex"}


async def letter_pdf(request: web.Request) -> web.StreamResponse:
    pdf = await request.app[LETTERS].pdf(request.match_info["token"])
    if pdf is None:
        return web.Response(status=404, text="not found")
    headers = {**PRIVATE, "Content-Disposition": 'inline; filename="KidDiary-letter.pdf"'}
    return web.Response(body=pdf, content_type="application/pdf", headers=headers)


async def letter_page(request: web.Request) -> web.StreamResponse:
    """The first page of a letter, or a signed photo, as JPEG (full size, or the preview)."""
    files, token = request.app[LETTERS], request.match_info["token"]
    preview = request.path.endswith("/preview.jpg")
    if request.path.startswith("/signed/"):
        image = await files.signed(token, preview)
    else:
        image = await files.image(token, preview)
    if image is None:
        return web.Response(status=404, text="not found")
    return web.Response(body=image, content_type="image/jpeg", headers=PRIVATE)


async def chart_page(request: web.Request) -> web.StreamResponse:
    """The admins' progress chart as PNG (full size, or the preview), drawn now."""
    image = await request.app[LETTERS].chart_image(request.match_info["token"], request.path.endswith("/preview.png"))
    if image is None:
        return web.Response(status=404, text="not found")
    return web.Response(body=image, content_type="image/png", headers=PRIVATE)


async def serve(app: web.Application, host: str, port: int) -> web.AppRunner:
    """Start serving `app`; the caller stops it with `await runner.cleanup()`."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    log.info("HTTP server on http://%s:%d", host, port)
    return runner
