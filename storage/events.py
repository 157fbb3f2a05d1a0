"""Platform events: the ids already handled (`repo.events`, so a redelivery is handled once), and
the inbox (the events acknowledged to the platform before they were handled, encrypted: one
may hold a national ID)."""

from __future__ import annotations

from datetime import datetime

from storage.crypto import Crypto
from storage.database import Database
from storage.database import ts as _ts


class EventStore:
    def __init__(self, db: Database, crypto: Crypto) -> None:
        self._db = db
        self._crypto = crypto

    async def seen(self, channel: str, event_id: str) -> bool:
        row = await self._db.one(
            "SELECT 1 FROM processed_events WHERE channel = ? AND event_id = ?", (channel, event_id)
        )
        return row is not None

    async def record(self, channel: str, event_id: str, at: datetime) -> None:
        await self._db.execute(
            "INSERT INTO processed_events (channel, event_id, at) VALUES (?, ?, ?)", (channel, event_id, _ts(at))
        )

    async def claim(self, channel: str, event_id: str, at: datetime) -> bool:
        """Record an event id; False when it was recorded before (a redelivery). One statement:
        the check and the record together."""
        cursor = await self._db.execute(
            "INSERT INTO processed_events (channel, event_id, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
            (channel, event_id, _ts(at)),
        )
        return cursor.rowcount == 1

    async def forget_before(self, before: datetime) -> int:
        cursor = await self._db.execute("DELETE FROM processed_events WHERE at < ?", (_ts(before),))
        return cursor.rowcount

    async def keep(self, channel: str, event_id: str, payload: str, at: datetime) -> bool:
        """Keep an event until it is handled; False when it is already waiting (a redelivery)."""
        cursor = await self._db.execute(
            """INSERT INTO inbox (channel, event_id, payload_enc, received_at) VALUES (?, ?, ?, ?)
               ON CONFLICT (channel, event_id) DO NOTHING""",
            (channel, event_id, self._crypto.encrypt(payload), _ts(at)),
        )
        return cursor.rowcount == 1

    async def waiting(self, channel: str) -> list[tuple[str, str]]:
        """(event id, payload) of the events still waiting, oldest first."""
        rows = await self._db.all(
            "SELECT event_id, payload_enc FROM inbox WHERE channel = ? ORDER BY received_at, event_id", (channel,)
        )
        return [(r[0], self._crypto.decrypt(r[1])) for r in rows]  # type: ignore[misc]

    async def done(self, channel: str, event_id: str) -> None:
        await self._db.execute("DELETE FROM inbox WHERE channel = ? AND event_id = ?", (channel, event_id))
