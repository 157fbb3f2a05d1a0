"""LINE webhooks end to end: many users posting signed events to the real HTTP server on
loopback, each answer recorded by a fake LINE Messaging API. Run by hand:
`python benchmarks/webhook.py [--users 200] [--events 10] [--concurrency 4 32]`.

Measures events/s and the p50/p99 latency from the start of a webhook POST to the reply for
that event's reply token reaching the fake API, for `kiddiary-bot run` (a subprocess: the whole
bot, inbox, turn, outbox, delivery, SQLite on disk) and, in the same run against the same fake,
a baseline: a bare echo bot of line-bot-sdk's aiohttp example shape (WebhookParser with its
signature check, then `AsyncMessagingApi.reply_message` with a TextMessage echo before the 200;
no storage), also a subprocess. The fake runs in a process of its own and timestamps every
request with time.monotonic (one clock for the whole machine), so neither server shares an
event loop with the load or the clock that judges it.

Load, like LINE's: each user posts one event at a time, the next once the previous POST got its
200, with at most `--concurrency` POSTs in flight over all users; each event carries a fresh
reply token issued by the fake and the current timestamp, so the answer goes as a reply. A
user's first event, "/start", creates the conversation; the others say "สถานะ" (status), a cheap
answer. Every event must get exactly one reply: missing ones, repeated reply requests and
pushes (the fallback when a reply token is too old) are counted.

Targets set by the team: bot throughput ≥ 0.6× the echo bot's, bot p99 ≤ 3× the echo bot's p99.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
from aiohttp import web

from tests.fakes.line_api import ACCESS_TOKEN, CHANNEL_SECRET, FakeLine, webhook_body

ROOT = Path(__file__).resolve().parent.parent
FIRST_TEXT, NEXT_TEXT = "/start", "สถานะ"
TARGET_THROUGHPUT, TARGET_P99 = 0.6, 3.0
LIFETIME = 15 * 60  # seconds: a helper process left behind stops by itself after this
STARTUP = 60.0  # seconds to wait for a server to answer
STALL = 20.0  # seconds without a new reply before the answers still missing are given up on
SCRIPT = Path(sys.executable).with_name("kiddiary-bot")


# --- the helper processes: the fake LINE API and the echo bot ----------------------------


class TimedFakeLine(FakeLine):
    """The tests' fake, plus when each reply and push arrived, and endpoints for the benchmark."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.arrivals: dict[str, list[tuple[float, int]]] = {}  # reply token → (when, status) per request
        self.pushes: list[tuple[float, str, int]] = []  # (when, to, status)
        self.batches: dict[int, list[str]] = {}
        self.app.router.add_post("/bench/tokens", self._issue)
        self.app.router.add_get("/bench/progress/{batch}", self._progress)
        self.app.router.add_get("/bench/records/{batch}", self._records)

    async def _reply(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()
        response = await super()._reply(request)
        body = await request.json()  # read by the fake already (it must read it first): kept by aiohttp
        self.arrivals.setdefault(body.get("replyToken"), []).append((arrived, response.status))
        self.requests.clear()  # the tests' record of every request is not needed here
        return response

    async def _push(self, request: web.Request) -> web.Response:
        arrived = time.monotonic()
        response = await super()._push(request)
        body = await request.json()  # read by the fake already (it must read it first): kept by aiohttp
        self.pushes.append((arrived, body.get("to", ""), response.status))
        self.requests.clear()
        return response

    async def _issue(self, request: web.Request) -> web.Response:
        count = int((await request.json())["count"])
        batch = len(self.batches)
        self.batches[batch] = [self.reply_token() for _ in range(count)]
        return web.json_response({"batch": batch, "tokens": self.batches[batch]})

    def _replied(self, token: str) -> bool:
        return any(status == 200 for _, status in self.arrivals.get(token, ()))

    async def _progress(self, request: web.Request) -> web.Response:
        tokens = self.batches[int(request.match_info["batch"])]
        return web.json_response({"replied": sum(self._replied(t) for t in tokens)})

    async def _records(self, request: web.Request) -> web.Response:
        tokens = self.batches[int(request.match_info["batch"])]
        return web.json_response({
            "arrivals": {t: self.arrivals.get(t, []) for t in tokens},
            "pushes": self.pushes,
        })


async def until_parent_leaves() -> None:
    """Until the parent closes our stdin (or dies), or LIFETIME has passed."""
    loop = asyncio.get_running_loop()
    gone = asyncio.Event()
    fd = sys.stdin.fileno()

    def readable() -> None:
        if not os.read(fd, 4096):
            gone.set()

    loop.add_reader(fd, readable)
    try:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(gone.wait(), LIFETIME)
    finally:
        loop.remove_reader(fd)


async def serve_fake() -> None:
    fake = TimedFakeLine()
    print(await fake.start(), flush=True)
    try:
        await until_parent_leaves()
    finally:
        await fake.stop()


async def serve_echo(line_api: str) -> None:
    """line-bot-sdk's aiohttp echo example, pointed at the fake."""
    from linebot.v3 import WebhookParser
    from linebot.v3.exceptions import InvalidSignatureError
    from linebot.v3.messaging import (
        AsyncApiClient,
        AsyncMessagingApi,
        Configuration,
        ReplyMessageRequest,
        TextMessage,
    )
    from linebot.v3.webhooks import MessageEvent, TextMessageContent

    client = AsyncApiClient(Configuration(host=line_api, access_token=ACCESS_TOKEN))
    line_bot_api = AsyncMessagingApi(client)
    parser = WebhookParser(CHANNEL_SECRET)

    async def callback(request: web.Request) -> web.Response:
        signature = request.headers["X-Line-Signature"]
        body = await request.text()
        try:
            events = parser.parse(body, signature)
        except InvalidSignatureError:
            return web.Response(status=400, text="Invalid signature")
        for event in events:
            if not isinstance(event, MessageEvent) or not isinstance(event.message, TextMessageContent):
                continue
            await line_bot_api.reply_message(
                ReplyMessageRequest(reply_token=event.reply_token, messages=[TextMessage(text=event.message.text)])
            )
        return web.Response(text="OK\n")

    app = web.Application()
    app.router.add_post("/callback", callback)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    print(f"http://127.0.0.1:{runner.addresses[0][1]}/callback", flush=True)
    try:
        await until_parent_leaves()
    finally:
        await runner.cleanup()
        await client.close()


# --- starting and stopping them ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def spawn_helper(*args: str, log: IO[bytes]) -> tuple[asyncio.subprocess.Process, str]:
    """This script in another mode; the URL it prints once it serves."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, str(Path(__file__).resolve()), *args, cwd=ROOT,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=log,
    )
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(proc.stdout.readline(), STARTUP)
    except TimeoutError:
        line = b""
    if not line.startswith(b"http://"):
        await stop_helper(proc)
        raise RuntimeError(f"{' '.join(args)} did not start (see {log.name})")
    return proc, line.decode().strip()


async def stop_helper(proc: asyncio.subprocess.Process) -> None:
    if proc.returncode is None and proc.stdin is not None:
        proc.stdin.close()  # it stops when its stdin closes
    try:
        await asyncio.wait_for(proc.wait(), 10)
    except TimeoutError:
        proc.kill()
        await proc.wait()


async def start_bot(folder: Path, line_api: str, log: IO[bytes]) -> tuple[subprocess.Popen[bytes], str]:
    """`kiddiary-bot run` with LINE only, against the fake, data in `folder`."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("KIDDIARY_")}
    env.update(
        KIDDIARY_DATA_DIR=str(folder / "data"), KIDDIARY_LINE_CHANNEL_SECRET=CHANNEL_SECRET,
        KIDDIARY_LINE_CHANNEL_ACCESS_TOKEN=ACCESS_TOKEN, KIDDIARY_LINE_API_URL=line_api,
        KIDDIARY_LINE_DATA_API_URL=line_api, KIDDIARY_HTTP_HOST="127.0.0.1", KIDDIARY_HTTP_PORT=str(port),
        KIDDIARY_PUBLIC_URL=f"http://127.0.0.1:{port}",
        # `run` refuses the console SMS gateway beside LINE; the benchmark sends no SMS
        KIDDIARY_SMS_PROVIDER="webhook", KIDDIARY_SMS_URL="http://127.0.0.1:9/sms",
    )
    proc = subprocess.Popen([str(SCRIPT), "run"], cwd=folder, env=env, stdin=subprocess.DEVNULL,
                            stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + STARTUP
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                async with session.get(f"{base}/healthz") as response:
                    if response.status == 200:
                        return proc, f"{base}/line/webhook"
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    stop_bot(proc)
    raise RuntimeError(f"kiddiary-bot run did not start (see {log.name})")


def stop_bot(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.terminate()  # SIGTERM: drains, then stops
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


# --- the load --------------------------------------------------------------------------


@dataclass
class Result:
    events: int
    replied: int
    elapsed: float  # first POST sent → last reply at the fake
    latencies: list[float]  # seconds, per event answered by reply
    missing: int  # events with no accepted reply
    repeated: int  # events whose reply token was sent more than once
    pushes: int  # pushes to this run's users (a reply token judged too old)
    http_errors: dict[str, int]  # POSTs not answered 200: how many of each status or exception

    @property
    def rate(self) -> float:
        return self.replied / self.elapsed if self.elapsed > 0 else 0.0

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[max(0, math.ceil(p * len(ordered)) - 1)] if ordered else math.nan


def line_event(user_id: str, text: str, token: str) -> dict[str, Any]:
    return {
        "type": "message", "mode": "active", "timestamp": int(time.time() * 1000),
        "source": {"type": "user", "userId": user_id}, "webhookEventId": uuid.uuid4().hex.upper()[:26],
        "deliveryContext": {"isRedelivery": False}, "replyToken": token,
        "message": {"type": "text", "id": str(uuid.uuid4().int)[:18], "text": text, "quoteToken": "q"},
    }


async def load(session: aiohttp.ClientSession, fake: str, webhook: str, users: int, events: int,
               concurrency: int) -> Result:
    total = users * events
    async with session.post(f"{fake}/bench/tokens", json={"count": total}) as response:
        issued = await response.json()
    batch, tokens = issued["batch"], iter(issued["tokens"])
    user_ids = [f"U{uuid.uuid4().hex}" for _ in range(users)]
    slots = asyncio.Semaphore(concurrency)
    started: dict[str, float] = {}
    errors: dict[str, int] = {}

    async def user(user_id: str) -> None:
        for n in range(events):
            token = next(tokens)
            async with slots:
                body = webhook_body(line_event(user_id, FIRST_TEXT if n == 0 else NEXT_TEXT, token))
                headers = {"Content-Type": "application/json", "X-Line-Signature": FakeLine.sign(body)}
                started[token] = time.monotonic()
                try:
                    async with session.post(webhook, data=body.encode(), headers=headers) as response:
                        await response.read()
                        error = None if response.status == 200 else f"HTTP {response.status}"
                except (aiohttp.ClientError, TimeoutError) as e:
                    error = type(e).__name__
                if error:
                    errors[error] = errors.get(error, 0) + 1

    await asyncio.gather(*(user(u) for u in user_ids))

    # Until every event has its reply, or none has come for STALL seconds.
    replied, last_change = -1, time.monotonic()
    while sum(errors.values()) < total and time.monotonic() - last_change < STALL:
        async with session.get(f"{fake}/bench/progress/{batch}") as response:
            now_replied = (await response.json())["replied"]
        if now_replied == total:
            break
        if now_replied != replied:
            replied, last_change = now_replied, time.monotonic()
        await asyncio.sleep(0.1)
    async with session.get(f"{fake}/bench/records/{batch}") as response:
        records = await response.json()

    latencies, ends, missing, repeated = [], [], 0, 0
    for token, arrivals in records["arrivals"].items():
        accepted = [when for when, status in arrivals if status == 200]
        repeated += len(arrivals) > 1
        if not accepted:
            missing += 1
            continue
        latencies.append(accepted[0] - started[token])
        ends.append(accepted[0])
    ours = set(user_ids)
    pushes = sum(1 for _, to, status in records["pushes"] if to in ours and status == 200)
    elapsed = max(ends) - min(started.values()) if ends else 0.0
    return Result(total, len(latencies), elapsed, latencies, missing, repeated, pushes, errors)


# --- the run -------------------------------------------------------------------------------


def describe(name: str, r: Result) -> str:
    return (f"  {name:34} {r.rate:7.0f} events/s   p50 {r.percentile(0.5) * 1000:7.1f} ms   "
            f"p99 {r.percentile(0.99) * 1000:7.1f} ms   replies {r.replied}/{r.events}, missing {r.missing}, "
            f"repeated {r.repeated}, pushes {r.pushes}, HTTP errors {sum(r.http_errors.values())} "
            f"{r.http_errors or ''}").rstrip()


def problems_in(log: Path) -> Iterator[str]:
    for line in log.read_text(errors="replace").splitlines():
        if " WARNING " in line or " ERROR " in line or "Traceback" in line:
            yield line


async def main(users: int, events: int, levels: list[int], warmup: int) -> int:
    verdicts: list[bool] = []
    exactly_once = True
    with tempfile.TemporaryDirectory(prefix="kiddiary-webhook-") as name, contextlib.ExitStack() as files:
        folder = Path(name)
        fake_log, echo_log, bot_log = (files.enter_context((folder / f"{n}.log").open("wb"))
                                       for n in ("fake", "echo", "bot"))
        helpers: list[asyncio.subprocess.Process] = []
        bot: subprocess.Popen[bytes] | None = None
        try:
            fake_proc, fake = await spawn_helper("--fake-line", log=fake_log)
            helpers.append(fake_proc)
            echo_proc, echo = await spawn_helper("--echo-server", "--line-api", fake, log=echo_log)
            helpers.append(echo_proc)
            bot, webhook = await start_bot(folder, fake, bot_log)
            print(f"{users} users × {events} events each, loopback; fake LINE API pid {fake_proc.pid}, "
                  f"echo bot pid {echo_proc.pid}, kiddiary-bot pid {bot.pid}; {os.cpu_count()} CPUs, "
                  f"load average {os.getloadavg()[0]:.2f}", flush=True)
            targets = {"echo bot (line-bot-sdk example)": echo, "kiddiary-bot run": webhook}
            timeout = aiohttp.ClientTimeout(total=STALL)
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0), timeout=timeout) as session:
                for url in targets.values():  # connections, imports, caches, the first conversations
                    await load(session, fake, url, warmup, 3, 4)
                for concurrency in levels:
                    print(f"concurrency {concurrency} (POSTs in flight):", flush=True)
                    results = {}
                    for target, url in targets.items():
                        await asyncio.sleep(1)  # what the previous run left to do (deleting sent rows)
                        results[target] = result = await load(session, fake, url, users, events, concurrency)
                        print(describe(target, result), flush=True)
                        exactly_once &= result.replied == result.events and not (
                            result.missing or result.repeated or result.pushes or result.http_errors)
                    e, b = results.values()
                    throughput = b.rate / e.rate if e.rate else 0.0
                    p99 = b.percentile(0.99) / e.percentile(0.99)
                    met = throughput >= TARGET_THROUGHPUT and p99 <= TARGET_P99
                    verdicts.append(met)
                    print(f"  bot/echo throughput {throughput:.2f}× (target ≥ {TARGET_THROUGHPUT}×: "
                          f"{'met' if throughput >= TARGET_THROUGHPUT else 'MISSED'}), "
                          f"bot p99 / echo p99 {p99:.1f}× (target ≤ {TARGET_P99:.0f}×: "
                          f"{'met' if p99 <= TARGET_P99 else 'MISSED'})", flush=True)
        finally:
            for proc in helpers:
                await stop_helper(proc)
            status = stop_bot(bot) if bot is not None else None
            bot_log.flush()
            problems = list(problems_in(folder / "bot.log"))
            if status not in (0, None) or problems:
                print(f"kiddiary-bot exited with {status}; {len(problems)} warnings/errors in its log:")
                print("\n".join(problems[:20]))
    print(f"every event answered exactly once: {'yes' if exactly_once else 'NO'}; "
          f"targets met at {sum(verdicts)} of {len(verdicts)} concurrency levels")
    return 0 if exactly_once else 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--events", type=int, default=10, help="per user")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[4, 32], help="POSTs in flight, per run")
    parser.add_argument("--warmup", type=int, default=10, help="users (3 events each) per server before measuring")
    parser.add_argument("--fake-line", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--echo-server", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--line-api", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fake_line:
        asyncio.run(serve_fake())
    elif args.echo_server:
        asyncio.run(serve_echo(args.line_api))
    else:
        sys.exit(asyncio.run(main(args.users, args.events, args.concurrency, args.warmup)))
