"""The repository: migrations, WAL, transactions, encryption at rest, restarts."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest

from handlers.dispatch import Dispatcher
from handlers.steps import TOTAL_STEPS
from handlers.turn import CoreSettings
from storage import Crypto, Repository
from storage.database import OutsideTransaction, _migration_files
from tests.helpers import NATIONAL_ID, PHONE, Officer


async def test_migrations_are_numbered_applied_once_and_recorded(tmp_path, crypto):
    files = _migration_files()
    numbers = [n for n, _, _ in files]
    assert numbers[0] == 1 and numbers == sorted(set(numbers))  # in order, each once; gaps are fine
    for _ in range(2):  # opening again applies nothing twice
        repo = await Repository.open(tmp_path / "db.sqlite3", crypto)
        await repo.close()
    with sqlite3.connect(tmp_path / "db.sqlite3") as db:
        versions = [row[0] for row in db.execute("SELECT version FROM schema_migrations ORDER BY version")]
        mode = db.execute("PRAGMA journal_mode").fetchone()[0]
    assert versions == [n for n, _, _ in files]
    assert mode == "wal"


async def test_every_method_needs_a_transaction(repo):
    with pytest.raises(OutsideTransaction):
        await repo.get_conversation("test", "u")


async def test_an_error_rolls_the_whole_transaction_back(repo, clock):
    with pytest.raises(RuntimeError):
        async with repo.transaction():
            await repo.create_registration("test", "u", "draft", clock())
            raise RuntimeError("boom")
    async with repo.transaction():
        assert await repo.count_by_status() == {}


async def test_personal_data_is_encrypted_at_rest(officer: Officer, tmp_path, sms):
    await officer.up_to("summary")
    await officer.press("confirm")
    await officer.dispatcher.repo.close()
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("kiddiary.sqlite3*"))
    for personal in (NATIONAL_ID, PHONE, "0812345678", "สมศรี", "ใจดี"):
        assert personal.encode() not in raw, personal
    assert "โรงเรียนบ้านหนองบัว".encode() in raw  # the school is not personal data


async def test_a_wrong_secret_key_is_an_explicit_error(officer: Officer, tmp_path):
    await officer.up_to("phone")
    await officer.dispatcher.repo.close()
    other = await Repository.open(tmp_path / "kiddiary.sqlite3", Crypto("another-secret-key-of-sufficient-length!!"))
    try:
        async with other.transaction():
            conv = await other.get_conversation(officer.channel, officer.user_id)
            with pytest.raises(RuntimeError, match="KIDDIARY_SECRET_KEY"):
                await other.get_registration(conv.registration_id)
    finally:
        await other.close()


async def test_a_registration_survives_a_restart(tmp_path, crypto, sms, clock):
    path = tmp_path / "kiddiary.sqlite3"
    repo = await Repository.open(path, crypto)
    officer = Officer(Dispatcher(repo, CoreSettings(seal_key=crypto.signing_key), sms, clock=clock), sms)
    await officer.up_to("otp")
    code = sms.last_code()
    await repo.close()

    repo = await Repository.open(path, crypto)  # as a new process would
    try:
        officer = Officer(Dispatcher(repo, CoreSettings(seal_key=crypto.signing_key), sms, clock=clock), sms)
        await officer.say("/status")
        assert f"9/{TOTAL_STEPS}" in officer.text
        await officer.say(code)
        assert officer.said("otp_verified", phone="081-234-5678")
    finally:
        await repo.close()


async def test_blind_indexes_are_keyed(crypto):
    assert crypto.index("phone", PHONE) == crypto.index("phone", PHONE)
    assert crypto.index("phone", PHONE) != Crypto("x" * 40).index("phone", PHONE)
    assert crypto.index("phone", PHONE) != crypto.index("national_id", PHONE)


async def test_old_event_ids_can_be_forgotten(repo, clock):
    async with repo.transaction():
        await repo.events.record("line", "old", clock())
        clock.advance(days=31)
        await repo.events.record("line", "new", clock())
        assert await repo.events.forget_before(clock.now - timedelta(days=30)) == 1
        assert not await repo.events.seen("line", "old") and await repo.events.seen("line", "new")


async def test_a_failed_commit_is_rolled_back_and_the_next_transaction_works(repo, clock):
    from storage import Conversation

    with pytest.raises(sqlite3.IntegrityError):
        async with repo.transaction():
            # A constraint checked only at COMMIT stands in for a full disk or an I/O error there.
            await repo._db.execute("PRAGMA defer_foreign_keys = ON")
            await repo.save_conversation(Conversation("test", "u", "start", registration_id=999), clock())
    async with repo.transaction():
        assert await repo.get_conversation("test", "u") is None
        await repo.save_conversation(Conversation("test", "u", "start"), clock())
    async with repo.transaction():
        assert (await repo.get_conversation("test", "u")).state == "start"


async def test_transactions_do_not_nest_and_belong_to_their_task(repo):
    import asyncio

    go = asyncio.Event()

    async def intruder() -> None:  # another user's turn, calling in while this one holds the transaction
        await go.wait()
        await repo.count_by_status()

    task = asyncio.create_task(intruder())
    async with repo.transaction():
        with pytest.raises(RuntimeError, match="nest"):
            async with repo.transaction():
                pass
        go.set()
        with pytest.raises(OutsideTransaction):
            await task


async def test_concurrent_transactions_share_one_commit_and_a_failing_one_keeps_out(repo, clock):
    import asyncio

    statements: list[str] = []
    await repo._db._db.set_trace_callback(statements.append)

    async def turn(n: int) -> None:
        async with repo.transaction():
            await repo.events.record("test", f"e{n}", clock())
            if n == 7:
                raise ValueError("this turn fails half-way")

    results = await asyncio.gather(*(turn(n) for n in range(20)), return_exceptions=True)
    assert [type(r).__name__ for r in results].count("ValueError") == 1
    commits = [s for s in statements if s.strip().upper() == "COMMIT"]
    assert 1 <= len(commits) <= 3  # twenty transactions, a few fsyncs
    async with repo.transaction():
        seen = [n for n in range(20) if await repo.events.seen("test", f"e{n}")]
    assert seen == [n for n in range(20) if n != 7]  # the failed one left nothing, the others all stayed
