"""The general audit log: who did what, when, for actions that concern no single registration.

Exports of personal data and imports of the school directory are written here (each
registration's own trail stays in `audit_events`, see Repository.add_audit). Like every
store, it runs only inside the caller's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.database import Database
from storage.database import dt as _dt
from storage.database import ts as _ts


@dataclass(frozen=True)
class LogEntry:
    id: int
    at: datetime
    actor: str
    kind: str
    detail: dict[str, Any]


class AuditLog:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def add(self, at: datetime, actor: str, kind: str, detail: dict[str, Any] | None = None) -> None:
        await self._db.execute(
            "INSERT INTO audit_log (at, actor, kind, detail) VALUES (?, ?, ?, ?)",
            (_ts(at), actor, kind, json.dumps(detail or {}, ensure_ascii=False, sort_keys=True)),
        )

    async def latest(self, actor: str, kinds: Iterable[str], since: datetime) -> LogEntry | None:
        """The newest entry of `actor` of one of `kinds`, written at `since` or later."""
        kinds = list(kinds)
        row = await self._db.one(
            f"""SELECT * FROM audit_log WHERE actor = ? AND kind IN ({", ".join("?" * len(kinds))}) AND at >= ?
                ORDER BY id DESC LIMIT 1""",
            (actor, *kinds, _ts(since)),
        )
        return None if row is None else self._entry(row)

    async def entries(self, kind: str | None = None, limit: int = 100) -> list[LogEntry]:
        """The newest entries first (of one kind, or all)."""
        rows = await self._db.all(
            "SELECT * FROM audit_log WHERE ? IS NULL OR kind = ? ORDER BY id DESC LIMIT ?", (kind, kind, limit),
        )
        return [self._entry(r) for r in rows]

    async def views(self, ref: str, kind: str, whats: Iterable[str], other_than: str) -> tuple[int, datetime | None]:
        """How often entries of `kind` whose `what` is one of `whats` named registration `ref` in
        their `refs` (looks at it by anyone but `other_than`), and the last time."""
        whats = list(whats)
        row = await self._db.one(
            f"""SELECT COUNT(*), MAX(at) FROM audit_log, json_each(audit_log.detail, '$.refs') AS r
                WHERE kind = ? AND actor != ? AND r.value = ?
                AND json_extract(audit_log.detail, '$.what') IN ({", ".join("?" * len(whats))})""",
            (kind, other_than, ref, *whats),
        )
        return (row[0], _dt(row[1])) if row else (0, None)

    @staticmethod
    def _entry(row: Any) -> LogEntry:
        return LogEntry(row["id"], _dt(row["at"]), row["actor"], row["kind"], json.loads(row["detail"]))  # type: ignore[arg-type]
