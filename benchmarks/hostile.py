"""What an overlong message costs before it is refused: the event loop blocked while one is
handled, through the core and through each channel's webhook (the real HTTP server, LINE signed
with HMAC, Telegram with its secret, each against its fake platform). Run by hand:
`python benchmarks/hostile.py [--repeat 7]`.

For each input it prints the median time to handle it (the core: inbound to answers committed;
a webhook: POST to response), the median of the longest stall of the event loop meanwhile (a
ticker that wakes every millisecond records the largest gap: the stall is what every other
user waits), and what came back (the core's answer, a webhook's HTTP status). A short wrong
answer is the baseline.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from itertools import count
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp

from handlers.dispatch import Dispatcher
from handlers.messages import Inbound, Kind
from handlers.turn import CoreSettings
from storage import Crypto, Repository
from tests.fakes.line_api import FakeLine, webhook_body
from tests.fakes.sms import RecordingSmsGateway
from tests.helpers import Clock, Officer, stop_delivery

MB = 1_000_000
INPUTS = {  # name → text
    "short wrong answer": "ไม่รู้",
    "5,001 characters": "a" * 5001,  # one more than LINE lets anyone type
    "200 KB of ASCII": "a" * 200_000,  # within both webhooks' body limits: reaches the core
    "1 MB of ASCII": "a" * MB,
    "1 MB of Thai": "ก" * (MB // 3),  # 1 MB as UTF-8
    "1 MB of zero-width spaces": "\u200b" * (MB // 3),
    "1 MB of combining marks": "a" + "\u0301" * (MB // 2 - 1),
}
_ids = count(1)


@contextlib.asynccontextmanager
async def stall_meter() -> AsyncIterator[list[float]]:
    """Yields a list that holds, afterwards, the longest gap between the ticks of a task that
    asks to wake every millisecond: how long the loop was kept from anything else."""
    result: list[float] = []
    gaps = [0.0]
    stop = asyncio.Event()

    async def tick() -> None:
        last = time.perf_counter()
        while not stop.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps[0] = max(gaps[0], now - last)
            last = now

    ticker = asyncio.create_task(tick())
    await asyncio.sleep(0.005)
    try:
        yield result
    finally:
        stop.set()
        await ticker
        result.append(gaps[0])


async def measure(repeat: int, one: Callable[[str], Awaitable[object]], text: str) -> tuple[float, float, str]:
    """(median time, median longest stall, what the last run returned) of `one(text)` over
    `repeat` runs."""
    times, stalls, result = [], [], None
    for _ in range(repeat):
        async with stall_meter() as stall:
            start = time.perf_counter()
            result = await one(text)
            times.append(time.perf_counter() - start)
        stalls.append(stall[0])
    return statistics.median(times), statistics.median(stalls), str(result)


def report(title: str, figures: dict[str, tuple[float, float, str]]) -> None:
    print(title)
    for name, (took, stall, result) in figures.items():
        print(f"  {name:28s} median {took * 1000:8.1f} ms   longest loop stall {stall * 1000:8.1f} ms   {result}")


async def core(repeat: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        crypto = Crypto("benchmark-secret-key-0123456789-abcdef")
        repo = await Repository.open(Path(folder) / "bench.sqlite3", crypto)
        sms = RecordingSmsGateway()
        dispatcher = Dispatcher(repo, CoreSettings(seal_key=crypto.signing_key), sms, clock=Clock())
        try:
            officer = Officer(dispatcher, sms)
            await officer.up_to("officer_name")

            async def one(text: str) -> str:
                replies = await dispatcher.handle(Inbound("test", officer.user_id, Kind.TEXT, text=text,
                                                          event_id=f"bench-{next(_ids)}"))
                return replies[0].text.splitlines()[0][:50] if replies else "(no answer)"

            report("core (dispatcher.handle, at the officer-name step):",
                   {name: await measure(repeat, one, text) for name, text in INPUTS.items()})
        finally:
            await stop_delivery(dispatcher)
            await repo.close()


async def line(repeat: int) -> None:
    from tests.test_line import User
    from tests.test_line import running as line_running

    with tempfile.TemporaryDirectory() as folder:
        async with line_running(Path(folder)) as h:
            user = User(h)
            await user.say("/start")

            async def one(text: str) -> str:
                body = webhook_body(user.text_event(text))
                return f"HTTP {await h.post(body, FakeLine.sign(body))}"

            report("LINE webhook (signed POST, handled before the 200):",
                   {name: await measure(repeat, one, text) for name, text in INPUTS.items()})


async def telegram(repeat: int) -> None:
    from bot import web
    from tests.test_telegram import SECRET, User
    from tests.test_telegram import running as telegram_running

    with tempfile.TemporaryDirectory() as folder:
        async with telegram_running("webhook", Path(folder)) as h:
            user = User(h)
            await user.say("/start")

            async def one(text: str) -> str:
                async with aiohttp.ClientSession() as session, session.post(
                    f"{h.web_url}/telegram/webhook", json=user.message(text=text),
                    headers={web.TELEGRAM_SECRET_HEADER: SECRET},
                ) as response:
                    return f"HTTP {response.status}"

            report("Telegram webhook (POST with the secret, handled before the 200):",
                   {name: await measure(repeat, one, text) for name, text in INPUTS.items()})


async def main(repeat: int) -> None:
    logging.basicConfig(level=logging.CRITICAL)
    await core(repeat)
    await line(repeat)
    await telegram(repeat)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    asyncio.run(main(parser.parse_args().repeat))
