"""`kiddiary-bot`: run the bot, chat with it locally, and the admin tasks.

The command names are a contract: operators' scripts and service files use them."""

from __future__ import annotations

import argparse
import asyncio
import errno
import getpass
import logging
import os
import signal
import sys
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from bot import console, keys
from bot import export as export_
from bot.app import open_app
from bot.config import Config, ConfigError, load_config
from bot.sms import make_gateway
from handlers import broadcasts, directory, validation
from handlers import stats as admin_stats
from handlers.broadcasts import set_deadline
from handlers.deadline import DEADLINE_KEY, days_left, parse_date
from handlers.dispatch import Dispatcher
from storage.database import DatabaseUnavailable
from storage.models import STATUSES
from templates import letter, text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kiddiary-bot", description="KidDiary registration assistant")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("run", help="run the configured channels (or the console chat when none is)")
    commands.add_parser("chat", help="the whole registration in this terminal")
    commands.add_parser("stats", help="registration statistics (as /stats shows admins)")
    imp = commands.add_parser("import-schools", help="load the school directory from a CSV file")
    imp.add_argument("csv", type=Path, help="columns: code,name,province,affiliation (obec/lao or สพฐ./อปท.); "
                     "Thai headers (รหัสสถานศึกษา, ชื่อสถานศึกษา, จังหวัด, สังกัด) and Excel's encodings accepted")
    imp.add_argument("--replace", action="store_true",
                     help="the file becomes the whole directory (default: its schools are added or updated)")
    exp = commands.add_parser("export", help="registrations as CSV or Excel, personal data included")
    exp.add_argument("--status", choices=STATUSES, help="only registrations with this status (default: all)")
    exp.add_argument("--format", choices=export_.FORMATS,
                     help="csv (UTF-8 with a byte-order mark, for Excel) or xlsx (default: from the --output name)")
    exp.add_argument("--output", default=export_.STDOUT,
                     help="file to create, mode 600 (default, or -: standard output)")
    exp.add_argument("--include-national-id", action="store_true",
                     help="add the national ID column (left out otherwise)")
    dl = commands.add_parser("deadline", help="show or set the registration deadline (Asia/Bangkok)")
    dl.add_argument("date", nargs="?", help="YYYY-MM-DD, or 'clear' to remove it")
    bc = commands.add_parser("broadcast", help="send a message to a segment of users (asks to confirm)")
    bc.add_argument("segment", help="all, not_started, in_progress, awaiting_letter, submitted, rejected, approved, "
                                    "obec, lao, or a province")
    source = bc.add_mutually_exclusive_group(required=True)
    source.add_argument("--text", help="the message; may carry {school} {ref} {deadline}")
    source.add_argument("--file", type=Path, help="a UTF-8 file holding the message")
    bc.add_argument("--yes", action="store_true", help="do not ask to confirm (scripts)")
    ls = commands.add_parser("line-setup", help="make the LINE rich menu and set it for every user (replaces ours)")
    ls.add_argument("--image", type=Path, metavar="FILE.png",
                    help="only write the menu's image to FILE.png (nothing is sent to LINE)")
    commands.add_parser("rotate-key", help="encrypt all stored data and uploads under a new key (the bot stopped; "
                        "resumes if interrupted)")
    args = parser.parse_args(argv)

    os.umask(0o077)  # whatever the bot writes (database, uploads, exports) is its owner's alone
    try:
        config = load_config()
        return asyncio.run(COMMANDS[args.command](config, args))
    except ConfigError as e:
        print(f"configuration error: {e}", file=sys.stderr)
        return 2
    except DatabaseUnavailable as e:
        print(e, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


async def run(config: Config, args: argparse.Namespace) -> int:
    if not (config.telegram_enabled or config.line_enabled):
        print("No chat channel is configured (KIDDIARY_TELEGRAM_TOKEN, KIDDIARY_LINE_*): "
              "starting the local console chat.")
        return await chat(config, args)
    # The channel libraries take a second to import: only `run` with a channel pays for them.
    from bot import web
    from bot.line import LineChannel
    from bot.telegram import TelegramChannel

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # it logs every Bot API URL, token included
    async with open_app(config, make_gateway(config, serving=True)) as app:
        await asyncio.to_thread(letter.prepare)
        telegram = TelegramChannel(app.config, app.dispatcher, app.letters) if config.telegram_enabled else None
        line = LineChannel(app.config, app.dispatcher, app.repo, app.links) if config.line_enabled else None
        http = web.make_app(telegram, line, app.letters, health=lambda: app.repo.health_check(app.dispatcher.clock()))
        try:
            runner = await web.serve(http, config.http_host, config.http_port)
        except OSError as e:
            raise _listen_error(config, e) from None
        channels = [c for c in (line, telegram) if c is not None]
        for channel in channels:
            app.delivery.add_sender(channel)
            await channel.start()
        await app.delivery.start()  # after the channels: sending needs their API clients
        await app.broadcaster.start()
        await app.retention.start()
        retries = asyncio.create_task(maintenance(app.dispatcher))
        try:
            await _until_stopped()
        finally:
            retries.cancel()
            await runner.cleanup()  # no new webhooks
            for channel in channels:
                await channel.drain()  # events taken in are handled (their answers into the outbox)
            await app.dispatcher.settle()
            await app.retention.stop()
            await app.broadcaster.stop()
            await app.delivery.stop()  # sends under way finish; the rest waits in the outbox
            for channel in channels:
                await channel.stop()
    return 0


def _listen_error(config: Config, error: OSError) -> ConfigError:
    where = f"{config.http_host}:{config.http_port}"
    if error.errno == errno.EADDRINUSE:
        return ConfigError("KIDDIARY_HTTP_PORT", f"{where} is in use by another program (is the bot running already?)")
    return ConfigError("KIDDIARY_HTTP_HOST", f"cannot listen on {where}: {error.strerror or error}")


async def maintenance(dispatcher: Dispatcher, every: float = 300) -> None:
    """Every few minutes: accounts that could not be made are tried again, and event ids past
    their retention are dropped. A failure of one round is logged; the next round comes."""
    while True:
        await asyncio.sleep(every)
        for job in (dispatcher.retry_provisioning, dispatcher.forget_old_events):
            try:
                await job()
            except Exception:
                logging.getLogger(__name__).exception("maintenance: %s failed", job.__name__)


async def _until_stopped() -> None:
    """Wait for SIGINT or SIGTERM (an operator's Ctrl-C, or the service manager)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def chat(config: Config, args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    # In the console, the local reviewer and admin identities have their roles, and new
    # submissions are announced to a local review chat (printed) unless chats are configured.
    config = replace(config, reviewers=config.reviewers | {console.REVIEWER}, admins=config.admins | {console.ADMIN},
                     review_chats=config.review_chats or (console.REVIEW_CHAT,))
    async with open_app(config, make_gateway(config)) as app:
        await asyncio.to_thread(letter.prepare)
        chat = console.ConsoleChat(app.dispatcher, app.letters, outbox=app.config.data_dir / "outbox")
        app.delivery.add_sender(chat)
        await app.delivery.start()
        await app.broadcaster.start()
        await app.retention.start()
        await chat.run(app.delivery)
    return 0


async def stats(config: Config, args: argparse.Namespace) -> int:
    """The figures of `/stats`, in English plain text (the status codes as `export --status` takes them)."""
    now = datetime.now(UTC)
    async with open_app(config, make_gateway(config)) as app, app.repo.transaction():
        figures = await app.repo.stats.figures(*admin_stats.today_bounds(now))
        provinces = await app.repo.stats.provinces() if figures.directory_schools else []
    for status in STATUSES:
        print(f"{status:15} {figures.by_status.get(status, 0):>8}")
    print(f"{'total':15} {figures.total:>8}")
    for section in admin_stats.sections(figures, provinces, "en"):
        print()
        print(section.replace("• ", "  "))
    return 0


async def import_schools(config: Config, args: argparse.Namespace) -> int:
    """All or nothing: one bad row and nothing is imported, every bad row is listed (the first
    20). Reading and checking the file is handlers/directory.py's, shared with the chat's /import."""
    try:
        data = args.csv.read_bytes()
    except OSError as e:
        print(f"cannot read {args.csv}: {e.strerror or e}", file=sys.stderr)
        return 1
    parsed = directory.parse(data)
    if parsed.problems:
        print(directory.report(parsed.problems, "en"), file=sys.stderr)
        print(f"nothing imported: {len(parsed.problems)} lines with problems", file=sys.stderr)
        return 1
    async with open_app(config, make_gateway(config)) as app, app.repo.transaction():
        change = await app.repo.directory.load(parsed.schools, replace=args.replace)
        await app.repo.audit_log.add(datetime.now(UTC), export_.os_user(), "directory_imported", {
            "file": args.csv.name, "replace": args.replace, "added": change.added, "updated": change.updated,
            "removed": change.removed, "total": change.total,
        })
    removed = f", {change.removed} taken out" if args.replace else ""
    print(f"{'replaced the directory with' if args.replace else 'imported'} {len(parsed.schools)} schools: "
          f"{change.added} added, {change.updated} updated{removed}; {change.total} in the directory")
    return 0


async def export(config: Config, args: argparse.Namespace) -> int:
    """A thin caller: the rules (columns, neutralised cells, file mode, audit) are in bot/export.py."""
    fmt = args.format or ("xlsx" if args.output.lower().endswith(".xlsx") else "csv")
    if fmt == "xlsx" and args.output == export_.STDOUT and sys.stdout.isatty():
        print("an xlsx workbook is not for a terminal: give --output FILE.xlsx (or redirect)", file=sys.stderr)
        return 2
    request = export_.ExportRequest(fmt, args.status, args.include_national_id, args.output)
    async with open_app(config, make_gateway(config)) as app:
        try:
            count = await export_.export(app.repo, request, export_.os_user(), datetime.now(UTC), sys.stdout.buffer)
        except OSError as e:
            print(f"cannot write {args.output}: {e.strerror or e}", file=sys.stderr)
            return 1
    where = "standard output" if args.output == export_.STDOUT else args.output
    print(f"exported {count} registrations ({args.status or 'all statuses'}) to {where} as {fmt}, "
          f"national IDs {'included' if args.include_national_id else 'left out'}", file=sys.stderr)
    return 0


async def deadline(config: Config, args: argparse.Namespace) -> int:
    now = datetime.now(UTC)
    async with open_app(config, make_gateway(config)) as app, app.repo.transaction():
        if args.date is None:
            value = await app.repo.broadcasts.setting(DEADLINE_KEY)
            print(f"deadline: {value} (Asia/Bangkok)" if value else "no deadline is set")
            return 0
        if args.date.lower() == "clear":
            await app.repo.broadcasts.set_setting(DEADLINE_KEY, None, _operator(), now)
            print("deadline removed; no reminders until a new one is set")
            return 0
        day = parse_date(args.date)
        if day is None:
            print(f"not a date: {args.date!r}; write it as YYYY-MM-DD, e.g. 2027-01-31", file=sys.stderr)
            return 2
        if days_left(day, now) < 0:
            print(f"{day} has already passed (Asia/Bangkok); choose today or a later day", file=sys.stderr)
            return 2
        await set_deadline(app.repo, day, _operator(), now)
    days = ", ".join(str(d) for d in config.reminder_days) or "no"
    print(f"deadline set to {day} ({days_left(day, now)} days left); reminders {days} days before")
    return 0


async def broadcast(config: Config, args: argparse.Namespace) -> int:
    """Like /broadcast on chat: count, confirm, start. The running bot sends it."""
    body = args.text if args.text is not None else _read_text(args.file)
    if body is None:
        return 2
    chosen = broadcasts.segment(args.segment)
    if isinstance(chosen, validation.Invalid):
        hint = chosen.params.get("suggestion")
        print(f"unknown segment {args.segment!r}" + (f"; did you mean the province {hint}?" if hint else ""),
              file=sys.stderr)
        return 2
    if (problem := broadcasts.check_text(body)) is not None:
        print(f"the text cannot be sent: {text(f'err_{problem.reason}', 'en', **problem.params)}", file=sys.stderr)
        return 2
    now = datetime.now(UTC)
    async with open_app(config, make_gateway(config)) as app:
        async with app.repo.transaction():
            audience = await app.repo.broadcasts.audience(chosen)
        reachable = {ch: n for (ch, blocked), n in audience.items() if not blocked}
        blocked = sum(n for (_, b), n in audience.items() if b)
        per_channel = ", ".join(f"{ch} {n}" for ch, n in sorted(reachable.items())) or "nobody"
        print(f"{args.segment}: {sum(reachable.values())} people ({per_channel}); {blocked} who blocked the bot "
              "are skipped")
        if not reachable:
            return 1
        if not args.yes and input("send? [y/N] ").strip().lower() not in ("y", "yes"):
            print("not sent")
            return 1
        async with app.repo.transaction():
            made = await app.repo.broadcasts.create("broadcast", chosen, body, _operator(), now)
            assert made is not None
            count = await app.repo.broadcasts.start(made.id, now)
    print(f"broadcast #{made.id} started for {count} people; the running bot sends it "
          f"(follow it with /broadcast_status {made.id})")
    return 0


async def line_setup(config: Config, args: argparse.Namespace) -> int:
    from bot.line_menu import menu_image, setup_rich_menu  # line-bot-sdk: only for this command

    if args.image is not None:
        args.image.write_bytes(await asyncio.to_thread(menu_image))
        print(f"rich menu image written to {args.image}")
        return 0
    if not config.line_enabled:
        print("LINE is not configured: set KIDDIARY_LINE_CHANNEL_SECRET and KIDDIARY_LINE_CHANNEL_ACCESS_TOKEN",
              file=sys.stderr)
        return 2
    import aiohttp
    from linebot.v3.messaging.exceptions import ApiException

    try:
        done = await setup_rich_menu(config)
    except ApiException as e:
        print(f"LINE refused the rich menu: HTTP {e.status} {e.body}", file=sys.stderr)
        return 1
    except (aiohttp.ClientError, TimeoutError) as e:
        print(f"could not reach LINE ({config.line_api_url}): {e}", file=sys.stderr)
        return 1
    replaced = f", replacing {', '.join(done.replaced)}" if done.replaced else ""
    print(f"rich menu {done.menu_id} is every user's default{replaced}")
    return 0


async def rotate_key(config: Config, args: argparse.Namespace) -> int:
    """A thin caller: bot/keys.py says what is rotated, and how it resumes."""
    rows, check = await keys.rotate_data_folder(config, lambda line: print(line, file=sys.stderr))
    print(f"key rotation finished: {rows} rows and every upload are under the key {check}")
    return 0


def _read_text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8-sig").strip()
    except FileNotFoundError:
        print(f"no such file: {path}", file=sys.stderr)
    except UnicodeDecodeError:
        print(f"{path} is not UTF-8 text; save it as UTF-8", file=sys.stderr)
    return None


def _operator() -> str:
    """Who ran an admin command from the shell, for the record."""
    return f"shell:{getpass.getuser()}"


COMMANDS = {
    "run": run, "chat": chat, "stats": stats, "import-schools": import_schools, "export": export,
    "deadline": deadline, "broadcast": broadcast, "line-setup": line_setup, "rotate-key": rotate_key,
}
