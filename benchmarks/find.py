"""How long a reviewer's /find takes at 50,000 registrations, by the kind of text searched.

Run by hand: `python benchmarks/find.py [--rows 50000] [--repeat 200]`. Generates the
registrations (names, national IDs and phones encrypted, name words indexed, as the bot stores
them) in a temporary database, then times `handlers.find.search` (the look-ups /find makes)
for a phone, a reference read back with confusions, a school code, an officer's name and a
part of a school name, and, for comparison, the single OR/LIKE query /find used to run.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from handlers.find import search
from handlers.messages import Inbound, Kind
from handlers.turn import CoreSettings, Turn
from storage import Conversation, Crypto, Repository
from storage.models import STATUSES

NOW = datetime(2026, 11, 28, 3, 0, tzinfo=UTC)
FIRST = ["สมศรี", "สมชาย", "วิภา", "ประเสริฐ", "มาลี", "John", "อรทัย", "สุนทร"]
LAST = ["ใจดี", "ทองดี", "Smith", "ศรีสุข", "บุญมา", "แสงทอง", "วงศ์ไทย"]


async def generate(repo: Repository, rows: int) -> None:
    for start in range(0, rows, 1000):
        async with repo.transaction():
            for n in range(start, min(start + 1000, rows)):
                reg = await repo.create_registration("bench", f"user-{n}", STATUSES[n % 5], NOW)
                reg.affiliation, reg.school_code = "obec", f"{1054530000 + n}"
                reg.school_name, reg.province = f"โรงเรียนบ้านหนองบัว {n}", "แพร่"
                reg.officer_title = "นางสาว"
                reg.officer_first_name = f"{FIRST[n % len(FIRST)]}{n // 56}"
                reg.officer_last_name = LAST[n % len(LAST)]
                reg.national_id, reg.phone = "1234545678781", f"+668{n:08d}"
                await repo.save_registration(reg, NOW)


async def old_query(repo: Repository, crypto: Crypto, text: str) -> None:
    """What /find ran before: one statement with ORs and a LIKE (a scan of the whole table)."""
    pattern = f"%{text}%"
    await repo._db.all(
        """SELECT * FROM registrations
           WHERE ref = ? OR school_code = ? OR phone_index = ? OR school_name LIKE ? ESCAPE '\\'
           ORDER BY id DESC LIMIT 10""",
        (text.upper(), text, crypto.index("phone", text), pattern),
    )


async def main(rows: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        crypto = Crypto("benchmark-secret-key-that-is-long-enough-0123")
        repo = await Repository.open(Path(folder) / "bench.sqlite3", crypto)
        started = time.perf_counter()
        await generate(repo, rows)
        print(f"{rows} registrations generated in {time.perf_counter() - started:.1f} s")
        async with repo.transaction():
            probe = (await repo.search.by_school_code(f"{1054530000 + rows // 2}"))[0]
        conv = Conversation("bench", "reviewer", "start", "th")
        turn = Turn(Inbound("bench", "reviewer", Kind.TEXT), conv, None, repo, NOW, CoreSettings())
        spoken_ref = probe.ref.replace("-", "").lower().replace("0", "o").replace("1", "l")
        queries = {
            "phone": probe.phone and f"0{probe.phone[3:]}",
            "reference (read back)": spoken_ref,
            "school code": probe.school_code,
            "officer name (2 words)": f"{probe.officer_first_name} {probe.officer_last_name}",
            "officer first name": probe.officer_first_name,
            "school name part": "หนองบัว 25000",
        }
        print(f"{'query':<26} {'median ms':>10} {'p95 ms':>8}  found")
        for label, query in queries.items():
            assert query
            times, found = [], []
            for _ in range(repeat):
                t0 = time.perf_counter()
                async with repo.transaction():
                    _, found = await search(turn, query)
                times.append((time.perf_counter() - t0) * 1000)
            times.sort()
            print(f"{label:<26} {statistics.median(times):>10.2f} {times[int(len(times) * 0.95)]:>8.2f}  {len(found)}")
        times = []
        for _ in range(repeat):
            t0 = time.perf_counter()
            async with repo.transaction():
                await old_query(repo, crypto, probe.ref)
            times.append((time.perf_counter() - t0) * 1000)
        times.sort()
        p95 = times[int(len(times) * 0.95)]
        print(f"{'old OR/LIKE query (ref)':<26} {statistics.median(times):>10.2f} {p95:>8.2f}")
        await repo.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    asyncio.run(main(args.rows, args.repeat))
