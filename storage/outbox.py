"""The outbox: messages committed with the turn that wants them sent, until they are sent.

Rows are written inside the caller's transaction and deleted when delivered; nothing else
reads them but the delivery workers (bot/delivery.py), which load a channel's rows at start-up
and are handed new ones after each commit.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable
from datetime import datetime

from storage.crypto import Crypto
from storage.database import Database
from storage.database import dt as _dt
from storage.database import ts as _ts
from storage.models import BROADCAST, OutboxRow

_COLUMNS = ("id, channel, chat_id, priority, batch, replace_key, payload_enc, reply_token, event_at, idem_key,"
            " created_at")
_READ = _COLUMNS + ", attempted_at"


class OutboxStore:
    def __init__(self, db: Database, crypto: Crypto) -> None:
        self._db = db
        self._crypto = crypto

    async def add(self, rows: Iterable[OutboxRow], now: datetime) -> list[OutboxRow]:
        """Write `rows` (their ids, keys and times filled in). A row with a replace key that is
        still waiting for the same chat takes the waiting row's place instead: its id, its
        earliest priority, the newest payload. New rows go in one statement per hundred, not one
        each: a broadcast writes thousands, and each statement is a trip to SQLite's thread."""
        written = list(rows)
        fresh: list[tuple[OutboxRow, bytes | None]] = []
        for row in written:
            payload = self._crypto.encrypt(json.dumps(row.payload, ensure_ascii=False))
            if row.replace_key is not None:
                waiting = await self._db.one(
                    "SELECT id, priority, idem_key, created_at FROM outbox"
                    " WHERE channel = ? AND chat_id = ? AND replace_key = ?",
                    (row.channel, row.chat_id, row.replace_key),
                )
                if waiting is not None:
                    row.id, row.idem_key = waiting["id"], waiting["idem_key"]
                    row.created_at = _dt(waiting["created_at"])
                    row.priority = min(row.priority, waiting["priority"])
                    await self._db.execute(
                        "UPDATE outbox SET payload_enc = ?, priority = ?, batch = ? WHERE id = ?",
                        (payload, row.priority, row.batch, row.id),
                    )
                    continue
            row.idem_key, row.created_at = str(uuid.uuid4()), now
            fresh.append((row, payload))
        for start in range(0, len(fresh), 100):
            part = fresh[start:start + 100]
            values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(part))
            ids = await self._db.all(
                f"INSERT INTO outbox ({_COLUMNS.removeprefix('id, ')}) VALUES {values} RETURNING id, idem_key",
                [value for row, payload in part for value in (
                    row.channel, row.chat_id, row.priority, row.batch, row.replace_key, payload, row.reply_token,
                    _ts(row.event_at), row.idem_key, _ts(now))],
            )
            by_key = {r[1]: r[0] for r in ids}  # RETURNING promises no order: matched by key
            for row, _ in part:
                row.id = by_key[row.idem_key]
        return written

    async def pending(self, channel: str) -> list[OutboxRow]:
        """Every row still to be sent on `channel`, in the order they were written."""
        rows = await self._db.all(f"SELECT {_READ} FROM outbox WHERE channel = ? ORDER BY id", (channel,))
        return [self._row(r) for r in rows]

    async def last_id(self) -> int:
        row = await self._db.one("SELECT MAX(id) FROM outbox")
        return (row[0] if row else None) or 0

    async def count(self) -> dict[str, int]:
        rows = await self._db.all("SELECT channel, COUNT(*) FROM outbox GROUP BY channel")
        return {r[0]: r[1] for r in rows}

    async def done(self, ids: Iterable[int]) -> None:
        await self._db.executemany("DELETE FROM outbox WHERE id = ?", ([i] for i in ids))

    async def attempting(self, ids: list[int], at: datetime) -> set[int]:
        """Mark broadcast rows about to be handed to the platform; the ids still here (a row no
        longer here was cancelled). On a platform that cannot recognise a resend (Telegram) a
        row found so marked after a crash is not sent again: at most once."""
        marks = ", ".join("?" for _ in ids)
        rows = await self._db.all(f"UPDATE outbox SET attempted_at = ? WHERE id IN ({marks}) RETURNING id",
                                  [_ts(at), *ids])
        return {r[0] for r in rows}

    async def broadcast_backlog(self, channel: str) -> int:
        """Broadcast rows of `channel` waiting to be sent (the broadcaster keeps this short)."""
        row = await self._db.one("SELECT COUNT(*) FROM outbox WHERE channel = ? AND priority = ?", (channel, BROADCAST))
        return row[0] if row else 0

    async def sent_under(self, channel: str, chat_id: str, replace_key: str) -> tuple[str | None, datetime] | None:
        """The platform's id of the message last sent under this key, and when it was sent."""
        row = await self._db.one(
            "SELECT message_ref, sent_at FROM sent_keys WHERE channel = ? AND chat_id = ? AND replace_key = ?",
            (channel, chat_id, replace_key),
        )
        return None if row is None else (row[0], _dt(row[1]))  # type: ignore[return-value]

    async def remember_sent(
        self, channel: str, chat_id: str, replace_key: str, message_ref: str | None, at: datetime,
    ) -> None:
        await self._db.execute(
            """INSERT INTO sent_keys (channel, chat_id, replace_key, message_ref, sent_at) VALUES (?, ?, ?, ?, ?)
               ON CONFLICT (channel, chat_id, replace_key) DO UPDATE
               SET message_ref = excluded.message_ref, sent_at = excluded.sent_at""",
            (channel, chat_id, replace_key, message_ref, _ts(at)),
        )

    def _row(self, r: object) -> OutboxRow:
        return OutboxRow(
            id=r["id"], channel=r["channel"], chat_id=r["chat_id"], priority=r["priority"],  # type: ignore[index]
            batch=r["batch"], replace_key=r["replace_key"],  # type: ignore[index]
            payload=json.loads(self._crypto.decrypt(r["payload_enc"]) or "{}"),  # type: ignore[index]
            reply_token=r["reply_token"], event_at=_dt(r["event_at"]),  # type: ignore[index]
            idem_key=r["idem_key"], created_at=_dt(r["created_at"]),  # type: ignore[index]
            attempted=r["attempted_at"] is not None,  # type: ignore[index]
        )
