"""The database connection: transactions (with group commit) and numbered migrations.

One aiosqlite connection serves the whole process. `transaction()` is the only way in: a
block runs alone (a lock), inside a savepoint of a shared SQLite transaction. When a block
ends and nobody else is waiting for the lock, the shared transaction is committed and every
block that ran in it is released together: concurrent turns pay for one fsync, not one each.
A block's caller resumes only once its work is committed (durable), so nothing acknowledged
or sent can be lost. A block that raises is rolled back to its savepoint and leaves the others'
work alone; a failed COMMIT fails every block of the group.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Iterable
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import TypeVar

import aiosqlite

log = logging.getLogger(__name__)

T = TypeVar("T")
GROUP_LIMIT = 8  # blocks committed together at most: bounds how long the first one waits


def ts(value: datetime | None) -> str | None:
    """A moment as stored: UTC, ISO 8601, microseconds (sorts as text)."""
    return None if value is None else value.astimezone(UTC).isoformat(timespec="microseconds")


def dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


async def _whole(step: Awaitable[T]) -> T:
    """Run `step` to its end even if the caller is cancelled meanwhile (the cancellation is
    passed on afterwards). aiosqlite runs a statement whether or not anyone waits for it, so the
    statements that open and close a block must not be abandoned half-way: our idea of the
    transaction and the connection's would part."""
    task = asyncio.ensure_future(step)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            if task.done():
                break
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    return task.result()


class OutsideTransaction(RuntimeError):
    """A repository method was called without `async with repo.transaction()`: a bug."""


class DatabaseUnavailable(Exception):
    """The database file cannot be opened or set up (a corrupt file, a folder the process may
    not write): the command line says so in one line and stops."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"cannot open the database {path}: {reason}")


class Database:
    def __init__(self, db: aiosqlite.Connection) -> None:
        self._db = db
        self._lock = asyncio.Lock()
        self._waiting = 0  # blocks queued for the lock: while there are some, the group stays open
        self._group: asyncio.Future[None] | None = None
        self._group_size = 0
        # Set only in the task (context) that holds the lock: another coroutine calling in
        # meanwhile must not slip its statements into someone else's block.
        self._inside: contextvars.ContextVar[bool] = contextvars.ContextVar("inside", default=False)

    @classmethod
    async def open(cls, path: Path | str) -> Database:
        """Open (creating if needed, readable by the owner only) the database and apply pending
        migrations. Any failure closes the connection before raising DatabaseUnavailable: an open
        aiosqlite connection is a thread that would keep the process alive after the error."""
        try:
            _owner_only(Path(path))
            db = await aiosqlite.connect(path, isolation_level=None)
        except (OSError, sqlite3.Error) as e:
            raise DatabaseUnavailable(path, _reason(e)) from e
        try:
            db.row_factory = sqlite3.Row
            await db.execute("PRAGMA busy_timeout=10000")  # first: another process may be creating it too
            await db.execute("PRAGMA journal_mode=WAL")
            # FULL: a commit is on disk before the reply that acknowledges it is sent.
            await db.execute("PRAGMA synchronous=FULL")
            await db.execute("PRAGMA foreign_keys=ON")
            await _migrate(db)
        except BaseException as e:
            await db.close()
            if isinstance(e, (OSError, sqlite3.Error)):
                raise DatabaseUnavailable(path, _reason(e)) from e
            raise
        return cls(db)

    async def close(self) -> None:
        await self._db.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[None]:
        """One atomic unit of work, durable when the block is left without an error."""
        if self._inside.get():
            raise RuntimeError("transactions do not nest")
        self._waiting += 1
        try:
            await self._lock.acquire()
        finally:
            self._waiting -= 1
        group: asyncio.Future[None] | None = None
        try:
            group, savepoint = await _whole(self._open_block())
            token = self._inside.set(True)
            try:
                yield
                if savepoint:
                    await _whole(self._db.execute("RELEASE block"))
            except BaseException:
                await _whole(self._undo_block(savepoint))
                group = None  # nothing of this block is to be committed: no need to wait
                raise
            finally:
                self._inside.reset(token)
        finally:
            if self._group is not None and (self._waiting == 0 or self._group_size >= GROUP_LIMIT):
                await _whole(self._commit())
            self._lock.release()
        if group is not None:
            await asyncio.shield(group)

    async def _open_block(self) -> tuple[asyncio.Future[None], bool]:
        """The group this block joins, and whether it runs in a savepoint. The first block of a
        group needs none: if it fails, the whole transaction holds nothing else to keep."""
        if self._group is None:
            await self._db.execute("BEGIN IMMEDIATE")
            self._group, self._group_size = asyncio.get_running_loop().create_future(), 1
            return self._group, False
        self._group_size += 1
        await self._db.execute("SAVEPOINT block")
        return self._group, True

    async def _undo_block(self, savepoint: bool) -> None:
        if not self._db.in_transaction:  # SQLite already rolled the whole transaction back
            self._fail_group(RuntimeError("the transaction was rolled back by SQLite"))
            return
        try:
            if savepoint:
                await self._db.execute("ROLLBACK TO block")
                await self._db.execute("RELEASE block")
            else:  # the first block: the transaction is its alone
                await self._db.execute("ROLLBACK")
                self._group_ok_after_rollback()
        except Exception:  # keep the original error: it says what went wrong
            log.exception("rolling back a block failed")

    def _group_ok_after_rollback(self) -> None:
        """The group's first block failed and took the transaction with it: start afresh (no
        other block had joined: they would have, only after this one)."""
        group, self._group = self._group, None
        if group is not None and not group.done():
            group.set_result(None)

    async def _commit(self) -> None:
        group, self._group = self._group, None
        assert group is not None
        try:
            await self._db.execute("COMMIT")
        except BaseException as e:  # a full disk: nothing of the group was kept
            if self._db.in_transaction:
                try:
                    await self._db.execute("ROLLBACK")
                except Exception:
                    log.exception("ROLLBACK failed")
            if not group.done():
                group.set_exception(e if isinstance(e, Exception) else RuntimeError("commit interrupted"))
            return
        if not group.done():
            group.set_result(None)

    def _fail_group(self, error: Exception) -> None:
        group, self._group = self._group, None
        if group is not None and not group.done():
            group.set_exception(error)

    async def execute(self, sql: str, params: Iterable[object] = ()) -> aiosqlite.Cursor:
        if not self._inside.get():
            raise OutsideTransaction(sql.split()[0])
        return await self._db.execute(sql, tuple(params))

    async def executemany(self, sql: str, rows: Iterable[Iterable[object]]) -> None:
        if not self._inside.get():
            raise OutsideTransaction(sql.split()[0])
        await self._db.executemany(sql, [tuple(r) for r in rows])

    async def one(self, sql: str, params: Iterable[object] = ()) -> sqlite3.Row | None:
        rows = await self.all(sql, params)
        return rows[0] if rows else None

    async def all(self, sql: str, params: Iterable[object] = ()) -> list[sqlite3.Row]:
        if not self._inside.get():
            raise OutsideTransaction(sql.split()[0])
        return list(await self._db.execute_fetchall(sql, tuple(params)))  # one trip to SQLite's thread


def _owner_only(path: Path) -> None:
    """Create the database file with mode 600 before SQLite does (it would use 644), and take
    group and others' access from one made before; SQLite gives its -wal and -shm files the
    database's mode."""
    os.close(os.open(path, os.O_RDWR | os.O_CREAT, 0o600))
    for part in (path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")):
        try:
            if part.stat().st_mode & 0o077 and part.stat().st_uid == os.geteuid():
                part.chmod(0o600)
        except FileNotFoundError:
            pass


def _reason(error: BaseException) -> str:
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


# --- migrations ----------------------------------------------------------------------


def _migration_files() -> list[tuple[int, str, str]]:
    """(number, name, sql) of every `NNNN_name.sql` in storage/migrations, in order."""
    found = []
    for entry in resources.files("storage.migrations").iterdir():
        if entry.name.endswith(".sql"):
            number = int(entry.name.split("_", 1)[0])
            found.append((number, entry.name, entry.read_text(encoding="utf-8")))
    numbers = [n for n, _, _ in found]
    if len(set(numbers)) != len(numbers):
        raise RuntimeError(f"two migrations share a number: {sorted(numbers)}")
    return sorted(found)


def _statements(sql: str) -> Iterable[str]:
    buffer = ""
    for line in sql.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer
            buffer = ""
    if buffer.strip() and not all(part.strip().startswith("--") for part in buffer.strip().splitlines()):
        raise RuntimeError("migration ends with an incomplete statement")


async def _migrate(db: aiosqlite.Connection) -> None:
    """Apply, in order and each in its own transaction, the migrations not applied yet."""
    await db.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT, applied_at TEXT)"
    )
    for number, name, sql in _migration_files():
        await db.execute("BEGIN IMMEDIATE")  # another process may be migrating the same file
        try:
            cursor = await db.execute("SELECT 1 FROM schema_migrations WHERE version = ?", (number,))
            if await cursor.fetchone() is None:
                for statement in _statements(sql):
                    await db.execute(statement)
                await db.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (number, name, ts(datetime.now(UTC))),
                )
                log.info("applied migration %s", name)
        except BaseException:
            await db.execute("ROLLBACK")
            raise
        await db.execute("COMMIT")
