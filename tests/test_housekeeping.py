"""Housekeeping at scale: the queries the queue and the account retry make use their indexes,
event ids are dropped periodically, /healthz tells a broken or read-only database, and the
migration that makes account usernames unique copes with duplicates already there."""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import UTC, datetime, timedelta
from importlib import resources

import aiohttp
import pytest

from bot import web
from bot.cli import maintenance
from handlers.dispatch import EVENT_ID_RETENTION
from storage import Repository
from storage import reviewing as queries
from storage.database import ts


def plan(path, sql: str, params: tuple = ()) -> list[str]:
    with sqlite3.connect(path) as db:
        return [row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql, params)]


@pytest.fixture
async def database(tmp_path, crypto):
    path = tmp_path / "kiddiary.sqlite3"
    repo = await Repository.open(path, crypto)
    await repo.close()
    return path


def test_the_pending_queue_reads_a_page_from_its_index(database):
    steps = plan(database, queries.PENDING_PAGE, (8, 800))
    assert "SEARCH registrations USING COVERING INDEX registrations_queue (status=?)" in steps
    assert "SEARCH registrations USING INTEGER PRIMARY KEY (rowid=?)" in steps  # the page's rows only
    assert not [s for s in steps if s.startswith("SCAN registrations")]
    assert plan(database, queries.PENDING_COUNT) == [
        "SEARCH registrations USING COVERING INDEX registrations_queue (status=?)"]


def test_the_accounts_still_to_make_come_from_the_partial_index(database):
    for sql, params in ((queries.ACCOUNTS_NOT_MADE, ()), (queries.TO_PROVISION, (10, "2026-01-01"))):
        steps = plan(database, sql, params)
        assert steps[0] == "SCAN registrations USING INDEX registrations_provision_open", steps
    with sqlite3.connect(database) as db:
        [(where,)] = db.execute("SELECT sql FROM sqlite_master WHERE name = 'registrations_provision_open'")
    assert "WHERE status = 'approved' AND provision_status != 'done'" in where


async def test_the_queue_pages_in_submission_order(repo, clock):
    async with repo.transaction():
        regs = [await repo.create_registration("test", f"u{n}", "submitted", clock()) for n in range(5)]
        for n, reg in enumerate(regs):
            reg.submitted_at = clock() - timedelta(minutes=n)  # the last made was submitted first
            await repo.save_registration(reg, clock())
        page, total = await repo.submitted(2, 2)
    assert total == 5 and [r.ref for r in page] == [regs[2].ref, regs[1].ref]


async def test_old_event_ids_are_dropped_periodically_not_only_at_start(dispatcher, clock):
    repo = dispatcher.repo
    async with repo.transaction():
        await repo.events.claim("line", "old", clock())
    clock.advance(days=EVENT_ID_RETENTION.days, seconds=1)
    async with repo.transaction():
        await repo.events.claim("line", "new", clock())
    loop = asyncio.create_task(maintenance(dispatcher, every=0.01))
    try:
        for _ in range(500):
            async with repo.transaction():
                if not await repo.events.seen("line", "old"):
                    break
            await asyncio.sleep(0.01)
        async with repo.transaction():
            assert not await repo.events.seen("line", "old")
            assert await repo.events.seen("line", "new")
    finally:
        loop.cancel()


async def health(repo, clock) -> tuple[int, dict]:
    runner = await web.serve(web.make_app(health=lambda: repo.health_check(clock())), "127.0.0.1", 0)
    port = runner.addresses[0][1]
    try:
        async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/healthz") as response:
            return response.status, await response.json()
    finally:
        await runner.cleanup()


async def test_healthz_writes_to_the_database(repo, clock, tmp_path):
    assert await health(repo, clock) == (200, {"status": "ok"})
    with sqlite3.connect(tmp_path / "kiddiary.sqlite3") as db:
        assert db.execute("SELECT checked_at FROM health").fetchone() == (ts(clock()),)


async def test_healthz_fails_on_a_read_only_database(repo, clock):
    # Fault injection: SQLite's own switch makes the open connection refuse every write, as a
    # database on a read-only file system would.
    await repo._db._db.execute("PRAGMA query_only = ON")
    assert await health(repo, clock) == (503, {"status": "database unavailable"})
    await repo._db._db.execute("PRAGMA query_only = OFF")
    assert await health(repo, clock) == (200, {"status": "ok"})


async def test_healthz_fails_on_a_closed_database(tmp_path, crypto, clock):
    repo = await Repository.open(tmp_path / "broken.sqlite3", crypto)
    await repo.close()
    assert await health(repo, clock) == (503, {"status": "database unavailable"})


async def test_the_unique_username_migration_keeps_the_first_of_a_duplicate(tmp_path, crypto):
    """Two approvals of one school made before the rule both hold sch<code>: the later gives it
    up, is marked failed (not retried automatically) and the history says why."""
    path = tmp_path / "old.sqlite3"
    old = datetime(2026, 11, 1, tzinfo=UTC)
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT, applied_at TEXT)")
        for entry in sorted(resources.files("storage.migrations").iterdir(), key=lambda e: e.name):
            if entry.name.endswith(".sql") and int(entry.name[:4]) < 14:
                db.executescript(entry.read_text(encoding="utf-8"))
                db.execute("INSERT INTO schema_migrations VALUES (?, ?, '')", (int(entry.name[:4]), entry.name))
        for n in (1, 2, 3):
            db.execute("""INSERT INTO registrations (ref, channel, user_id, status, school_code, account_username,
                          provision_status, created_at, updated_at)
                          VALUES (?, 'test', ?, 'approved', '1054530001', ?, 'done', ?, ?)""",
                       (f"KD-{n}", f"u{n}", "sch1054530001" if n < 3 else "sch1054530002", ts(old), ts(old)))
    repo = await Repository.open(path, crypto)
    try:
        async with repo.transaction():
            first, second, other = [await repo.get_registration_by_ref(f"KD-{n}") for n in (1, 2, 3)]
            trail = await repo.audit_trail(second.id)
            waiting = await repo.to_provision(10, datetime.now(UTC))
        assert first.account_username == "sch1054530001" and other.account_username == "sch1054530002"
        assert second.account_username is None and second.provision_status == "failed"
        assert [e.kind for e in trail] == ["provision_failed"] and "sch1054530001" in trail[0].detail
        assert waiting == []
    finally:
        await repo.close()
