"""Reading every registration for an export, page by page, without holding the database.

An export may cover tens of thousands of registrations. Loading them all at once held a
quarter of a gigabyte and the database lock for the whole read; here rows come a page at a
time (keyset pagination on the id: each page starts after the last id seen, so a page costs
the same wherever it is), each page read in its own short transaction so the bot's turns run
in between, and each row decrypted only when the consumer asks for it.
"""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable

from storage.database import Database
from storage.models import Registration

PAGE = 500  # rows per transaction: small enough that a turn waits a few milliseconds at most


class ExportPages:
    def __init__(self, db: Database, decode: Callable[[sqlite3.Row], Registration]) -> None:
        self._db = db
        self._decode = decode

    async def registrations(self, status: str | None = None, page: int = PAGE) -> AsyncIterator[Registration]:
        """Every registration (or those with `status`), in id order. Call it outside any
        transaction: it opens one per page. Rows added while it runs are included if their id
        comes after the page being read (a snapshot of the whole table is not the point)."""
        after = 0
        while True:
            async with self._db.transaction():
                rows = await self._db.all(
                    "SELECT * FROM registrations WHERE id > ? AND (? IS NULL OR status = ?) ORDER BY id LIMIT ?",
                    (after, status, status, page),
                )
            for row in rows:
                yield self._decode(row)
            if len(rows) < page:
                return
            after = rows[-1]["id"]
