"""How long `kiddiary-bot export` takes for 30,000 registrations, and how much memory it holds.

Run by hand: `python benchmarks/export.py [--rows 30000]`. Generates the registrations (names,
national IDs and phones encrypted, as the bot stores them) in a temporary database, then
measures, in the same run: a bare paged SELECT of the same rows (no decryption, nothing
written: the floor), the old export (every registration loaded into a list, then written),
and the streaming export to CSV and to xlsx. Each is timed once without tracing, then run
again under tracemalloc for its peak of Python memory (tracing slows it down; the times
printed are from the untraced run).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bot.export import COLUMNS, ExportRequest, export
from storage import Crypto, Repository
from storage.models import STATUSES

NOW = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)


async def generate(repo: Repository, rows: int) -> None:
    for start in range(0, rows, 1000):
        async with repo.transaction():
            for n in range(start, min(start + 1000, rows)):
                reg = await repo.create_registration("bench", f"user-{n}", STATUSES[n % 5], NOW)
                reg.affiliation, reg.school_code = "obec", f"{1054530000 + n}"
                reg.school_name, reg.province = f"โรงเรียนบ้านหนองบัว {n}", "แพร่"
                reg.old_tsl_username, reg.old_kiddiary_username = f"tsl{n % 99999}", f"school.{n}"
                reg.officer_title, reg.officer_first_name, reg.officer_last_name = "นางสาว", f"สมศรี{n}", "ใจดี"
                reg.national_id, reg.phone, reg.confirmed_at = "1234545678781", "+66812345678", NOW
                await repo.save_registration(reg, NOW)


async def bare_select(repo: Repository, out: Path) -> int:
    """The floor: the same rows read in the same pages, nothing decrypted or written."""
    count, after = 0, 0
    while True:
        async with repo.transaction():
            rows = await repo._db.all("SELECT * FROM registrations WHERE id > ? ORDER BY id LIMIT 500", (after,))
        count += len(rows)
        if len(rows) < 500:
            return count
        after = rows[-1]["id"]


async def old_list_all(repo: Repository, out: Path) -> int:
    """What `export` did before: every registration in a list, in one transaction, then written."""
    async with repo.transaction():
        registrations = [r for status in STATUSES for r in await repo.registrations_with_status(status)]
    with out.open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for reg in registrations:
            writer.writerow([getattr(reg, column) for column in COLUMNS])
    return len(registrations)


def streaming(fmt: str) -> Run:
    async def run(repo: Repository, out: Path) -> int:
        return await export(repo, ExportRequest(fmt, include_national_id=True, output=str(out)), "os:bench", NOW)
    return run


Run = Callable[[Repository, Path], Awaitable[int]]


async def measure(repo: Repository, run: Run, out: Path) -> tuple[float, float, int]:
    start = time.perf_counter()
    count = await run(repo, out)
    elapsed = time.perf_counter() - start
    tracemalloc.start()
    await run(repo, out)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return elapsed, peak / 2**20, count


async def main(rows: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        repo = await Repository.open(Path(tmp) / "bench.sqlite3", Crypto("benchmark-secret-key-0123456789-abcdef"))
        try:
            start = time.perf_counter()
            await generate(repo, rows)
            print(f"generated {rows} registrations in {time.perf_counter() - start:.1f} s")
            results = {}
            for name, run, suffix in (
                ("bare paged SELECT (floor)", bare_select, "none"),
                ("old: list all, then CSV", old_list_all, "csv"),
                ("streaming CSV", streaming("csv"), "csv"),
                ("streaming xlsx", streaming("xlsx"), "xlsx"),
            ):
                results[name] = await measure(repo, run, Path(tmp) / f"out.{suffix}")
            old_time, old_peak, _ = results["old: list all, then CSV"]
            for name, (elapsed, peak, count) in results.items():
                print(f"{name:28} {count:>6} rows  {elapsed:6.2f} s  peak {peak:7.1f} MiB"
                      f"  ({elapsed / old_time:.2f}× the old time, {peak / old_peak:.3f}× its memory)")
        finally:
            await repo.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=30_000)
    asyncio.run(main(parser.parse_args().rows))
