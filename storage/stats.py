"""The figures admins ask for (`/stats`, `kiddiary-bot stats`, the chart): read-only queries.

Kept apart from storage/sqlite.py so the registrations' repository stays about one registration
at a time; composed into it as `repo.stats`. Everything is counted in SQL (a national campaign
has tens of thousands of registrations); only the median is taken in Python.

"Registered" (provinces, progress) means a registration whose signed letter is in: status
submitted (waiting for review) or approved. A school counts once however many registrations
it has; a rejected one waiting for a new photo does not count until the photo comes.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from storage.database import Database
from storage.database import dt as _dt
from storage.database import ts as _ts
from storage.reviewing import NOT_MADE

REGISTERED = ("submitted", "approved")
_REGISTERED_SQL = "('submitted', 'approved')"
# Days are Thai days: stored times are UTC, Thailand is UTC+7 all year.
_LOCAL = "'+7 hours'"


@dataclass(frozen=True)
class AffiliationCount:
    affiliation: str  # obec | lao
    registrations: int  # not cancelled
    registered: int  # submitted or approved
    approved: int


@dataclass(frozen=True)
class ProvinceShare:
    province: str
    schools: int  # in the school directory
    registered: int  # of those, schools with a submitted or approved registration

    @property
    def share(self) -> float:
        return self.registered / self.schools if self.schools else 0.0


@dataclass(frozen=True)
class Figures:
    by_status: dict[str, int]
    by_affiliation: list[AffiliationCount]
    submitted_today: int  # signed letters received today (a second photo after a rejection counts again)
    decided_today: int  # approvals and rejections today
    median_wait: timedelta | None  # from the submission to its decision, over every decision so far
    queue: int  # waiting for review
    accounts_not_made: int  # approved, account not made yet
    directory_schools: int  # schools in the directory (0: none loaded)
    registered_schools: int  # distinct schools with a submitted or approved registration

    @property
    def total(self) -> int:
        return sum(self.by_status.values())


@dataclass(frozen=True)
class DailySeries:
    """What the chart plots: registrations started per day by their status now, and for each
    registered school the day its signed letter came in (the earliest, when it has several)."""

    started: dict[date, dict[str, int]]  # day → status → registrations created that day
    first_registered: dict[date, int]  # day → schools that became registered that day


class StatsStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    async def figures(self, day_start: datetime, day_end: datetime) -> Figures:
        """Everything `/stats` shows; "today" is [day_start, day_end)."""
        by_status = {r[0]: r[1] for r in await self._db.all(
            "SELECT status, COUNT(*) FROM registrations GROUP BY status")}
        affiliations = [AffiliationCount(*r) for r in await self._db.all(
            f"""SELECT affiliation, SUM(status != 'cancelled'), SUM(status IN {_REGISTERED_SQL}),
                       SUM(status = 'approved')
                FROM registrations WHERE affiliation IS NOT NULL GROUP BY affiliation ORDER BY affiliation""")]
        today = await self._db.one(
            """SELECT SUM(kind = 'submitted'), SUM(kind IN ('approved', 'rejected'))
               FROM audit_events WHERE at >= ? AND at < ?""",
            (_ts(day_start), _ts(day_end)),
        )
        counts = await self._db.one(
            f"""SELECT (SELECT COUNT(*) FROM registrations WHERE status = 'submitted'),
                       (SELECT COUNT(*) FROM {NOT_MADE}),
                       (SELECT COUNT(*) FROM schools),
                       (SELECT COUNT(DISTINCT school_code) FROM registrations
                        WHERE status IN {_REGISTERED_SQL})""")
        assert today is not None and counts is not None
        return Figures(
            by_status=by_status, by_affiliation=affiliations,
            submitted_today=today[0] or 0, decided_today=today[1] or 0, median_wait=await self._median_wait(),
            queue=counts[0], accounts_not_made=counts[1], directory_schools=counts[2], registered_schools=counts[3],
        )

    async def _median_wait(self) -> timedelta | None:
        """Each decision against the submission it decided (the latest one before it)."""
        rows = await self._db.all(
            """SELECT d.at, (SELECT MAX(s.at) FROM audit_events s
                             WHERE s.registration_id = d.registration_id AND s.kind = 'submitted' AND s.at <= d.at)
               FROM audit_events d WHERE d.kind IN ('approved', 'rejected')""")
        waits = [(_dt(r[0]) - _dt(r[1])).total_seconds() for r in rows if r[1] is not None]  # type: ignore[operator]
        return timedelta(seconds=statistics.median(waits)) if waits else None

    async def directory_size(self) -> int:
        """Schools in the directory: the target of the campaign (0 when none is loaded)."""
        row = await self._db.one("SELECT COUNT(*) FROM schools")
        return row[0] if row else 0

    async def provinces(self) -> list[ProvinceShare]:
        """Every province of the school directory, with its schools and how many are registered
        (by the directory's province of the school code, whatever the officer typed)."""
        rows = await self._db.all(
            f"""SELECT s.province, COUNT(*),
                       SUM(EXISTS (SELECT 1 FROM registrations r
                                   WHERE r.school_code = s.code AND r.status IN {_REGISTERED_SQL}))
                FROM schools s GROUP BY s.province""")
        return [ProvinceShare(r[0], r[1], r[2] or 0) for r in rows]

    async def daily(self) -> DailySeries:
        started: dict[date, dict[str, int]] = {}
        for day, status, n in await self._db.all(
            f"""SELECT date(created_at, {_LOCAL}) AS day, status, COUNT(*) FROM registrations
                GROUP BY day, status ORDER BY day"""):
            started.setdefault(date.fromisoformat(day), {})[status] = n
        first_registered = {date.fromisoformat(day): n for day, n in await self._db.all(
            f"""SELECT day, COUNT(*) FROM (SELECT date(MIN(submitted_at), {_LOCAL}) AS day FROM registrations
                                           WHERE status IN {_REGISTERED_SQL} AND submitted_at IS NOT NULL
                                           GROUP BY school_code)
                GROUP BY day ORDER BY day""")}
        return DailySeries(started, first_registered)
