"""One broadcast to many recipients, half on LINE and half on Telegram, sent by `kiddiary-bot run`
(a subprocess, SQLite on disk) to the fake platforms. Run by hand:
`python benchmarks/broadcast.py [--recipients 50000]` (at Telegram's 30 messages a second, the
Telegram half of 50,000 takes about 14 minutes).

Prints, per platform, the rate achieved from the first message to the last against the rate the
platform allows (Telegram: 30 messages/s overall; LINE: 200 multicast requests/s of 500 users
each), and how many recipients got the broadcast twice (target 0). Target: at least 95% of the
allowed rate where the platform's limit is the bottleneck. In the same run, a bare loop that
only calls the fakes (no bot, no database, no pacing) shows what the fakes and this machine can
take, so a shortfall can be told apart from the fakes' own limits.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
from aiohttp import web

from tests.fakes.line_api import ACCESS_TOKEN, CHANNEL_SECRET, FakeLine
from tests.fakes.telegram_api import FakeTelegram

SCRIPT = Path(sys.executable).with_name("kiddiary-bot")
TOKEN = "123456:BENCH-broadcast-token-for-the-fake"
TELEGRAM_RATE = 30.0  # messages a second, the bot's pace (Telegram's broadcast limit)
LINE_REQUESTS = 200.0  # multicast requests a second LINE allows
LINE_BATCH = 500


class Timed:
    """When each accepted message reached a fake (time.monotonic, one clock for the run)."""

    def __init__(self) -> None:
        self.telegram: list[float] = []
        self.line: list[tuple[float, int]] = []  # (when, recipients)

    def attach(self, telegram: FakeTelegram, line: FakeLine) -> None:
        @web.middleware
        async def on_telegram(request: web.Request, handler: Any) -> web.StreamResponse:
            response = await handler(request)
            if request.path.endswith("/sendMessage") and response.status == 200:
                self.telegram.append(time.monotonic())
                telegram.calls[-1].params = {"chat_id": telegram.calls[-1].params.get("chat_id")}  # keep it small
            return response

        @web.middleware
        async def on_line(request: web.Request, handler: Any) -> web.StreamResponse:
            response = await handler(request)
            if request.path.endswith("/multicast") and response.status == 200:
                self.line.append((time.monotonic(), len(line.requests[-1].body["to"])))
            return response

        telegram.app.middlewares.append(on_telegram)
        line.app.middlewares.append(on_line)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def rate(times: list[float], count: int) -> float:
    span = times[-1] - times[0] if len(times) > 1 else 0.0
    return (count - 1) / span if span > 0 else float("inf")


async def bare_loop(telegram_url: str, line_url: str, calls: int) -> tuple[float, float]:
    """Messages a second the fakes take when called directly, as fast as 16 connections go."""
    async with aiohttp.ClientSession() as session:
        async def telegram_call(n: int) -> None:
            async with session.post(f"{telegram_url}/bot{TOKEN}/sendMessage",
                                    json={"chat_id": 1_000_000 + n, "text": "bare"}) as r:
                await r.read()

        async def line_call(n: int) -> None:
            async with session.post(f"{line_url}/v2/bot/message/multicast",
                                    headers={"Authorization": f"Bearer {ACCESS_TOKEN}"},
                                    json={"to": [f"U{n:032x}"] * 500, "messages": [{"type": "text", "text": "bare"}]}
                                    ) as r:
                await r.read()

        results = []
        for call, count in ((telegram_call, calls), (line_call, max(calls // 20, 10))):
            start, sem = time.perf_counter(), asyncio.Semaphore(16)

            async def one(n: int, call=call, sem=sem) -> None:
                async with sem:
                    await call(n)

            await asyncio.gather(*(one(n) for n in range(count)))
            results.append(count / (time.perf_counter() - start))
    return results[0], results[1]


def people(database: Path, line_users: list[str], telegram_users: list[str]) -> None:
    now = "2026-11-28T03:00:00.000000+00:00"
    db = sqlite3.connect(database, timeout=10)
    with db:
        db.executemany(
            "INSERT INTO conversations (channel, user_id, state, lang, blocked, updated_at) VALUES (?, ?, ?, ?, 0, ?)",
            [("line", u, "start", "th", now) for u in line_users]
            + [("telegram", u, "start", "th", now) for u in telegram_users],
        )
    db.close()


def broadcast_state(database: Path) -> tuple[str, Counter[str]]:
    db = sqlite3.connect(database, timeout=10)
    try:
        status = db.execute("SELECT status FROM broadcasts ORDER BY id DESC LIMIT 1").fetchone()
        states = Counter(dict(db.execute("SELECT state, COUNT(*) FROM broadcast_recipients GROUP BY state")))
        for state, count in db.execute("SELECT state, SUM(recipients) FROM broadcast_batches GROUP BY state"):
            states["pending"] -= count  # a batch's people are pending rows that were taken
            states[state] += count
    finally:
        db.close()
    return (status[0] if status else "none"), states


async def main(recipients: int, line_only: bool) -> None:
    telegram, line, timed = FakeTelegram(TOKEN), FakeLine(), Timed()
    timed.attach(telegram, line)
    telegram_url, line_url = await telegram.start(), await line.start()
    bare_telegram, bare_line = await bare_loop(telegram_url, line_url, 3000)
    telegram.calls.clear()
    timed.telegram.clear()
    timed.line.clear()
    line.requests.clear()
    line.retry_keys.clear()

    half = 0 if line_only else recipients // 2
    line_users = [f"U{n:032x}" for n in range(1, recipients - half + 1)]
    telegram_users = [str(8_000_000 + n) for n in range(half)]
    with tempfile.TemporaryDirectory() as folder:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KIDDIARY_")}
        env.update(KIDDIARY_DATA_DIR=f"{folder}/data", KIDDIARY_HTTP_PORT=str(free_port()),
                   KIDDIARY_TELEGRAM_TOKEN=TOKEN,
                   KIDDIARY_TELEGRAM_API_URL=telegram_url, KIDDIARY_LINE_CHANNEL_SECRET=CHANNEL_SECRET,
                   KIDDIARY_LINE_CHANNEL_ACCESS_TOKEN=ACCESS_TOKEN, KIDDIARY_LINE_API_URL=line_url,
                   KIDDIARY_LINE_DATA_API_URL=line_url,
                   # `run` refuses the console SMS gateway beside LINE and Telegram; no SMS is sent here
                   KIDDIARY_SMS_PROVIDER="webhook", KIDDIARY_SMS_URL="http://127.0.0.1:9/sms")
        subprocess.run([str(SCRIPT), "stats"], cwd=folder, env=env, check=True, capture_output=True)  # the schema
        database = Path(folder) / "data" / "kiddiary.sqlite3"
        people(database, line_users, telegram_users)
        log = open(Path(folder) / "bot.log", "wb")  # noqa: SIM115 - open for the bot's whole life
        bot = await asyncio.create_subprocess_exec(str(SCRIPT), "run", cwd=folder, env=env,
                                                   stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        try:
            await asyncio.sleep(2)
            started = time.monotonic()
            shell = await asyncio.to_thread(
                subprocess.run, [str(SCRIPT), "broadcast", "all", "--text", "ประกาศ: ขยายเวลาลงทะเบียน", "--yes"],
                cwd=folder, env=env, capture_output=True, text=True)
            assert shell.returncode == 0, shell.stderr
            while True:
                status, states = await asyncio.to_thread(broadcast_state, database)
                done = sum(n for s, n in states.items() if s not in ("pending", "queued"))
                print(f"\r{time.monotonic() - started:6.0f} s  {status:8}  {done}/{recipients} recipients done",
                      end="", file=sys.stderr, flush=True)
                if status == "done":
                    break
                await asyncio.sleep(2)
            print(file=sys.stderr)
        finally:
            bot.terminate()
            await bot.wait()
            log.close()

    got = Counter(str(c.params["chat_id"]) for c in telegram.sent("sendMessage"))
    line_got = line.multicast_deliveries()
    telegram_rate = rate(timed.telegram, len(timed.telegram))
    line_times = [t for t, _ in timed.line]
    line_span = line_times[-1] - line_times[0] if len(line_times) > 1 else 0.0
    line_recipients = sum(n for _, n in timed.line[1:])
    line_rate = line_recipients / line_span if line_span > 0 else float("inf")
    print(f"{recipients} recipients ({len(line_users)} LINE, {len(telegram_users)} Telegram); {os.cpu_count()} CPUs")
    print(f"bare loop (fakes called directly, 16 connections): Telegram {bare_telegram:,.0f} messages/s, "
          f"LINE {bare_line:,.0f} multicast requests/s ({bare_line * LINE_BATCH:,.0f} recipients/s)")
    twice = sum(n > 1 for n in got.values())
    if telegram_users:
        print(f"Telegram: {telegram_rate:5.1f} messages/s achieved vs {TELEGRAM_RATE:.0f} allowed = "
              f"{telegram_rate / TELEGRAM_RATE:.1%} (target ≥ 95%); delivered {len(got)}, twice {twice}, "
              f"missing {len(set(telegram_users) - set(got))}")
    print(f"LINE: {len(timed.line)} multicasts; {line_rate:,.0f} recipients/s achieved vs "
          f"{LINE_REQUESTS * LINE_BATCH:,.0f} allowed ({LINE_REQUESTS:.0f} requests/s × {LINE_BATCH}) = "
          f"{line_rate / (LINE_REQUESTS * LINE_BATCH):.1%}; delivered {len(line_got)}, "
          f"twice {sum(n > 1 for n in line_got.values())}, missing {len(set(line_users) - set(line_got))}")
    gaps = sorted((b - a for a, b in itertools.pairwise(line_times)), reverse=True)[:5]
    print(f"LINE: the longest pauses between multicasts: {', '.join(f'{g * 1000:.0f} ms' for g in gaps)}")
    print(f"recipients' states: {dict(states)}")
    await telegram.stop()
    await line.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--recipients", type=int, default=50_000)
    parser.add_argument("--line-only", action="store_true", help="every recipient on LINE (a quick run)")
    args = parser.parse_args()
    asyncio.run(main(args.recipients, args.line_only))
