"""Which key the stored data is under (`repo.keys`), and the storage side of a key rotation.

The database keeps the check value of every key its data has been under (`key_versions`, the
newest is current) and, while a rotation runs, how far it got (`key_rotation`). A rotation
walks each table below in order of its key, a batch per transaction: every encrypted column is
re-encrypted under the current key and every keyed hash made again from the decrypted value, and
the batch's position is written in the same transaction. Killed anywhere, it resumes after the
last committed batch; redoing a batch is harmless (re-encrypting a value already under the new key
gives a value under the new key; a hash made again is the same hash).

Adding a keyed index: a hash column of a table listed here goes into that table's `hashed`; a
table of hashes made from another table's values (several rows per owner, such as name tokens)
gets a function in the owner's `derived`, called with each batch's decrypted rows, that deletes
and makes again the hashes of those owners (see `_move_phone_guards`, `_sms_chat_ids`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from storage.crypto import Crypto
from storage.database import Database
from storage.database import ts as _ts
from storage.search import name_words

BATCH = 200  # rows per transaction: a few milliseconds of Fernet each, and at most this many redone

Plain = dict[str, object]  # one row: "key", the plain columns, and each encrypted column decrypted
Derived = Callable[[Database, Crypto, list[Plain]], Awaitable[None]]


@dataclass(frozen=True)
class HashedColumn:
    column: str  # holds crypto.index(kind, plaintext)
    source: str  # the encrypted column of the same row the plaintext is in
    kind: str


@dataclass(frozen=True)
class RotatedTable:
    table: str
    key: str  # walked in this order (unique); an expression for a table without a single key column
    encrypted: tuple[str, ...]
    hashed: tuple[HashedColumn, ...] = ()
    plain: tuple[str, ...] = ()  # other columns the derived functions need
    derived: tuple[Derived, ...] = ()


def phone_ref(crypto: Crypto, phone: str) -> str:
    """A phone number as the outbox names an SMS recipient: a keyed hash, never the number."""
    return crypto.index("phone", phone)[:24]


async def _move_phone_guards(db: Database, crypto: Crypto, rows: list[Plain]) -> None:
    """Wrong-code counts are kept by the phone's hash alone: move each to the phone's new hash
    (the phone itself is in the registrations and codes walked). One look-up per batch: few
    phones have a count."""
    moves = {old: crypto.index("phone", phone) for row in rows if isinstance(phone := row.get("phone_enc"), str)
             for old in crypto.old_indexes("phone", phone)}
    if not moves:
        return
    marks = ", ".join("?" * len(moves))
    for (old,) in await db.all(f"SELECT phone_index FROM otp_phone_guards WHERE phone_index IN ({marks})", list(moves)):
        await db.execute("UPDATE OR IGNORE otp_phone_guards SET phone_index = ? WHERE phone_index = ?",
                         (moves[old], old))
        await db.execute("DELETE FROM otp_phone_guards WHERE phone_index = ?", (old,))


async def _sms_chat_ids(db: Database, crypto: Crypto, rows: list[Plain]) -> None:
    """An SMS waiting in the outbox names its recipient by the phone's hash: made again."""
    for row in rows:
        if row["channel"] == "sms" and isinstance(row["payload_enc"], str):
            phone = json.loads(row["payload_enc"]).get("phone")
            if phone:
                await db.execute("UPDATE outbox SET chat_id = ? WHERE id = ?", (phone_ref(crypto, phone), row["key"]))


async def _name_tokens(db: Database, crypto: Crypto, rows: list[Plain]) -> None:
    """The words of each officer's name (for /find) are hashed under the key: made again."""
    for row in rows:
        words = name_words(*(v for v in (row["officer_first_name_enc"], row["officer_last_name_enc"])
                             if isinstance(v, str)))
        await db.execute("DELETE FROM registration_name_tokens WHERE registration_id = ?", (row["key"],))
        await db.executemany(
            "INSERT OR IGNORE INTO registration_name_tokens (token_index, registration_id) VALUES (?, ?)",
            [(crypto.index("name", word), row["key"]) for word in sorted(words)],
        )


TABLES: tuple[RotatedTable, ...] = (
    RotatedTable(
        "registrations", "id", ("officer_first_name_enc", "officer_last_name_enc", "national_id_enc", "phone_enc"),
        hashed=(HashedColumn("national_id_index", "national_id_enc", "national_id"),
                HashedColumn("phone_index", "phone_enc", "phone")),
        derived=(_move_phone_guards, _name_tokens),
    ),
    RotatedTable(
        "otp_challenges", "id", ("phone_enc", "secret_enc"),
        hashed=(HashedColumn("phone_index", "phone_enc", "phone"),), derived=(_move_phone_guards,),
    ),
    RotatedTable("outbox", "id", ("payload_enc",), plain=("channel",), derived=(_sms_chat_ids,)),
    RotatedTable("inbox", "channel || char(31) || event_id", ("payload_enc",)),
)
STEPS = (*(t.table for t in TABLES), "uploads", "guards", "finish")


@dataclass(frozen=True)
class Rotation:
    to_check: str
    step: str
    position: str
    done_rows: int


class KeyStore:
    def __init__(self, db: Database, crypto: Crypto) -> None:
        self._db = db
        self._crypto = crypto

    async def current(self) -> str | None:
        """The check value of the key the data is under; None for a database that never had one."""
        row = await self._db.one("SELECT check_value FROM key_versions ORDER BY version DESC LIMIT 1")
        return None if row is None else row[0]

    async def record_first(self, check: str, at: datetime) -> str:
        """Record the first key (two processes starting together: the first one's stands);
        return the check value recorded."""
        await self._db.execute(
            "INSERT INTO key_versions (version, check_value, added_at) VALUES (1, ?, ?) ON CONFLICT DO NOTHING",
            (check, _ts(at)),
        )
        found = await self.current()
        assert found is not None
        return found

    async def sample(self) -> bytes | None:
        """One encrypted value, if there is any: how a database from before key check values tells
        whether the configured key is the one its data is under."""
        for table in TABLES:
            for column in table.encrypted:
                row = await self._db.one(f"SELECT {column} FROM {table.table} WHERE {column} IS NOT NULL LIMIT 1")
                if row is not None:
                    return bytes(row[0])
        return None

    async def rotation(self) -> Rotation | None:
        row = await self._db.one("SELECT to_check, step, position, done_rows FROM key_rotation")
        return None if row is None else Rotation(*row)

    async def start_rotation(self, to_check: str, at: datetime) -> Rotation:
        await self._db.execute(
            "INSERT INTO key_rotation (id, to_check, step, started_at) VALUES (1, ?, ?, ?) ON CONFLICT DO NOTHING",
            (to_check, STEPS[0], _ts(at)),
        )
        found = await self.rotation()
        assert found is not None
        return found

    async def advance(self, step: str, position: str, rows: int = 0) -> None:
        await self._db.execute(
            "UPDATE key_rotation SET step = ?, position = ?, done_rows = done_rows + ?", (step, position, rows)
        )

    async def finish_rotation(self, at: datetime) -> None:
        """The data is all under the new key: it becomes the current version."""
        rotation = await self.rotation()
        assert rotation is not None
        await self._db.execute(
            """INSERT INTO key_versions (version, check_value, added_at)
               SELECT COALESCE(MAX(version), 0) + 1, ?, ? FROM key_versions""",
            (rotation.to_check, _ts(at)),
        )
        await self._db.execute("DELETE FROM key_rotation")

    async def rotate_batch(self, table: RotatedTable, after: str | None) -> tuple[str | None, int]:
        """Re-encrypt and re-hash the next batch of `table` after the key `after`; return the last
        key done (None when the table is finished) and how many rows. Call inside a transaction,
        with `advance`."""
        columns = ", ".join((*table.encrypted, *table.plain))
        where = "" if after is None else f"WHERE ({table.key}) > ?"
        rows = await self._db.all(
            f"SELECT ({table.key}) AS key, {columns} FROM {table.table} {where} ORDER BY 1 LIMIT {BATCH}",
            () if after is None else (_typed(after, table),),
        )
        if not rows:
            return None, 0
        plains = [self._rotate_row(table, row) for row in rows]
        updates = [*table.encrypted, *(h.column for h in table.hashed)]
        assignments = ", ".join(f"{c} = ?" for c in updates)
        await self._db.executemany(
            f"UPDATE {table.table} SET {assignments} WHERE ({table.key}) = ?",
            [[*values, plain["key"]] for plain, values in plains],
        )
        for derive in table.derived:
            await derive(self._db, self._crypto, [plain for plain, _ in plains])
        return str(rows[-1]["key"]), len(rows)

    def _rotate_row(self, table: RotatedTable, row: sqlite3.Row) -> tuple[Plain, list[object]]:
        plain: Plain = {"key": row["key"], **{c: row[c] for c in table.plain}}
        values: list[object] = []
        for column in table.encrypted:
            token = row[column]
            value = None if token is None else self._crypto.decrypt(bytes(token))
            plain[column] = value
            values.append(self._crypto.encrypt(value))  # under the current key
        for hashed in table.hashed:
            source = plain[hashed.source]
            values.append(None if source is None else self._crypto.index(hashed.kind, str(source)))
        return plain, values

    async def drop_stale_guards(self) -> int:
        """Wrong-code counts whose hash is under no phone still stored: after the move above they
        are under the old key, unreachable by any look-up, so they go."""
        cursor = await self._db.execute(
            """DELETE FROM otp_phone_guards WHERE phone_index NOT IN (
                   SELECT phone_index FROM otp_challenges
                   UNION SELECT phone_index FROM registrations WHERE phone_index IS NOT NULL)"""
        )
        return cursor.rowcount


def _typed(position: str, table: RotatedTable) -> object:
    """The stored position as the key's own type (integer ids compare as integers)."""
    return int(position) if table.key == "id" else position
