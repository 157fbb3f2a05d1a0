"""How long one turn takes through the dispatcher (its answers committed to the outbox), and how
many turns a second one process serves with every answer delivered (a whole registration,
consent to the letter, for many officers at once).

Run by hand: `python benchmarks/core.py [--officers 200]`. Prints medians, and ratios against a
baseline measured in the same run: a bare transaction that only records an event id (the least
any turn must do), so the figures say what the conversation logic costs on top of the disk.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from handlers.dispatch import Dispatcher
from handlers.turn import CoreSettings
from storage import Crypto, Repository
from tests.fakes.sms import RecordingSmsGateway
from tests.helpers import Clock, Officer, stop_delivery


async def bare_transactions(repo: Repository, count: int) -> list[float]:
    times = []
    for n in range(count):
        start = time.perf_counter()
        async with repo.transaction():
            await repo.events.record("bench", f"bare-{n}", Clock()())
        times.append(time.perf_counter() - start)
    return times


async def registration(dispatcher: Dispatcher, sms: RecordingSmsGateway, n: int) -> None:
    """One whole registration, consent to the letter; the answers are delivered meanwhile."""
    officer = Officer(dispatcher, sms, user_id=f"officer-{n}", phone=f"081{n:07d}", wait_for_delivery=False)
    await officer.up_to("summary")
    await officer.press("confirm")


def timing(dispatcher: Dispatcher, into: list[float]) -> None:
    """Time every turn: from the inbound to its answers committed to the outbox (the delivery,
    which runs beside it as in production, is not counted)."""
    handle = dispatcher.handle

    async def timed(*args, **kwargs):
        start = time.perf_counter()
        result = await handle(*args, **kwargs)
        into.append(time.perf_counter() - start)
        return result

    dispatcher.handle = timed  # type: ignore[method-assign]


async def main(officers: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        crypto = Crypto("benchmark-secret-key-0123456789-abcdef")
        repo = await Repository.open(Path(folder) / "bench.sqlite3", crypto)
        sms = RecordingSmsGateway()
        clock = Clock()
        dispatcher = Dispatcher(repo, CoreSettings(seal_key=crypto.signing_key), sms, clock=clock)
        try:
            bare = await bare_transactions(repo, 300)
            sequential: list[float] = []
            timing(dispatcher, sequential)
            for n in range(30):
                await registration(dispatcher, sms, n)
            del dispatcher.handle  # back to the untimed method for the crowd
            per_registration = len(sequential) // 30

            start = time.perf_counter()
            await asyncio.gather(*(registration(dispatcher, sms, 1000 + n) for n in range(officers)))
            elapsed = time.perf_counter() - start
            turns = per_registration * officers
            async with repo.transaction():
                confirmed = len(await repo.registrations_with_status("letter_issued"))
            assert confirmed == 30 + officers, f"only {confirmed} registrations were confirmed"
        finally:
            await stop_delivery(dispatcher)
            await repo.close()

    bare_ms = statistics.median(bare) * 1000
    turn_ms = statistics.median(sequential) * 1000
    print(f"bare transaction (baseline):      median {bare_ms:7.2f} ms   (n={len(bare)})")
    print(f"one turn, one officer at a time:  median {turn_ms:7.2f} ms   ({turn_ms / bare_ms:.1f}× baseline, "
          f"n={len(sequential)}, p95 {statistics.quantiles(sequential, n=20)[-1] * 1000:.2f} ms)")
    print(f"{officers} officers at once:            {turns / elapsed:7.0f} turns/s "
          f"({turns} turns in {elapsed:.2f} s; baseline allows {1000 / bare_ms:.0f} transactions/s)")
    print(f"a whole registration is {per_registration} turns; the letter (PDF) is made by the delivery, after the last")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--officers", type=int, default=200)
    asyncio.run(main(parser.parse_args().officers))
