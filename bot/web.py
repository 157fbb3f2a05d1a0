"""The HTTP server (aiohttp): platform webhooks, signed letter and chart links, and a health check.

Every webhook is authenticated before anything is read into the core: Telegram by its
secret-token header (403 otherwise), LINE by X-Line-Signature (401 otherwise, 400 for a
body that is not a webhook). A body longer than the platform ever sends is refused (413)
before it is read whole. A refused request changes nothing.
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
# Bytes of one webhook body. One Telegram update carries one message (at most 4,096 characters,
# about 25 KB as JSON even with every character escaped, twice that with the message it replies
# to); a LINE webhook carries a few events of at most 5,000 characters (15 KB in UTF-8) each.
# Parsing and checking cost time in proportion to the body: anything far beyond these is not
# from the platform and is refused before it is read whole.
TELEGRAM_MAX_BODY = 256 * 1024
LINE_MAX_BODY = 512 * 1024


def make_app(
    telegram: TelegramChannel | None = None, line: LineChannel | None = None, letters: LetterFiles | None = None,
    health: Health | None = None,
) -> web.Application:
    app = web.Application(client_max_size=LINE_MAX_BODY)  # webhooks carry JSON, not files
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
    body = await _body(request, TELEGRAM_MAX_BODY)
    if body is None:
        log.warning("Telegram webhook body over %d bytes refused", TELEGRAM_MAX_BODY)
        return web.Response(status=413, text="too large")
    try:
        update = json.loads(body)
    except ValueError:
        update = None
    if not isinstance(update, dict) or "update_id" not in update:
        # Telegram sends an update again for as long as it gets an error: one we cannot read
        # would come back forever. It is logged and acknowledged.
        log.error("unreadable Telegram update acknowledged: %.200r", body)
        return web.Response(text="ok")
    await telegram.feed(update)
    return web.Response(text="ok")


async def line_webhook(request: web.Request) -> web.Response:
    body = await _body(request, LINE_MAX_BODY)
    if body is None:
        log.warning("LINE webhook body over %d bytes refused", LINE_MAX_BODY)
        return web.Response(status=413, text="too large")
    status = await request.app[LINE].receive(body, request.headers.get("X-Line-Signature"))
    return web.Response(status=status, text="ok" if status == 200 else "refused")


async def _body(request: web.Request, limit: int) -> bytes | None:
    """The request's body, or None as soon as it is known to be longer than `limit` bytes (by
    its Content-Length, or while it is read when it has none): never more than that in memory."""
    if request.content_length is not None and request.content_length > limit:
        return None
    chunks, size = [], 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


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
