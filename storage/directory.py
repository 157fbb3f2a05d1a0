"""Loading the school directory: rows added or updated, or the whole directory replaced.

The caller's transaction makes a load all or nothing; the counts let the operator (shell or
chat) see what changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from storage.database import Database
from storage.models import School


@dataclass(frozen=True)
class DirectoryChange:
    added: int
    updated: int  # already there; name, province or affiliation rewritten (even if unchanged)
    removed: int  # only when the directory is replaced: schools that are not in the new file
    total: int  # schools in the directory afterwards


class DirectoryStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def load(self, schools: Sequence[School], replace: bool = False) -> DirectoryChange:
        """Add or update `schools`; with `replace`, the directory becomes exactly `schools`."""
        before = await self.count()
        codes = [s.code for s in schools]
        known = 0
        for start in range(0, len(codes), 500):  # SQLite caps the number of parameters
            chunk = codes[start:start + 500]
            row = await self._db.one(
                f"SELECT COUNT(*) FROM schools WHERE code IN ({', '.join('?' * len(chunk))})", chunk,
            )
            known += row[0] if row else 0
        if replace:
            await self._db.execute("DELETE FROM schools")
        await self._db.executemany(
            """INSERT INTO schools (code, name, province, affiliation) VALUES (?, ?, ?, ?)
               ON CONFLICT (code) DO UPDATE SET name = excluded.name, province = excluded.province,
                                                affiliation = excluded.affiliation""",
            [(s.code, s.name, s.province, s.affiliation) for s in schools],
        )
        total = await self.count()
        return DirectoryChange(
            added=len(schools) - known, updated=known, removed=before - known if replace else 0, total=total,
        )

    async def count(self) -> int:
        row = await self._db.one("SELECT COUNT(*) FROM schools")
        return row[0] if row else 0

    async def all(self) -> list[School]:
        rows = await self._db.all("SELECT code, name, province, affiliation FROM schools ORDER BY code")
        return [School(*r) for r in rows]
