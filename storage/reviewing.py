"""What the review needs to know beyond one registration (`repo.reviewing`): who a reviewer is
as a person (the national IDs and phones their chat accounts have registered with), the
approval that stands for a school, the queue a page at a time, and the accounts still to make.

A reviewer is one person with possibly several chat accounts (a Telegram one they registered
their school with, a LINE one they review from). The bot knows a person only by what they
typed into a registration: accounts are taken to be the same person when a registration of
each carries the same national ID or the same OTP-verified phone (compared by keyed hash).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from storage.crypto import Crypto
from storage.database import Database
from storage.database import ts as _ts
from storage.models import Registration

# The queue, oldest submission first: the page's ids come from the index on (status,
# submitted_at, id) alone, and only the page's rows are read whole.
PENDING_PAGE = """SELECT * FROM registrations WHERE id IN (
                      SELECT id FROM registrations WHERE status = 'submitted'
                      ORDER BY submitted_at, id LIMIT ? OFFSET ?)
                  ORDER BY submitted_at, id"""
PENDING_COUNT = "SELECT COUNT(*) FROM registrations WHERE status = 'submitted'"
# Both say the partial index's condition (status approved, account not done) word for word, as
# SQLite requires to use a partial index, and name the index: without statistics the planner
# would rather walk every approved row through the (status, …) index.
NOT_MADE = ("registrations INDEXED BY registrations_provision_open"
            " WHERE status = 'approved' AND provision_status != 'done'")
ACCOUNTS_NOT_MADE = f"SELECT COUNT(*) FROM {NOT_MADE}"
TO_PROVISION = f"""SELECT * FROM {NOT_MADE}
                  AND provision_attempts < ?
                  AND (provision_status = 'failed' OR (provision_status IN ('pending', 'running') AND updated_at < ?))
                  ORDER BY decided_at"""

MAX_ROUNDS = 4  # links followed from the reviewer's own account: ample for one person's accounts
MAX_ACCOUNTS = 50  # a "person" spanning more accounts than this is not one person: stop there


@dataclass
class Identity:
    """The keyed hashes of a person's national IDs and verified phones, and their accounts."""

    accounts: set[tuple[str, str]] = field(default_factory=set)
    national_ids: set[str] = field(default_factory=set)
    phones: set[str] = field(default_factory=set)


class ReviewStore:
    def __init__(self, db: Database, crypto: Crypto, registration: Callable[[sqlite3.Row], Registration]) -> None:
        self._db = db
        self._crypto = crypto
        self._registration = registration

    async def identity(self, channel: str, user_id: str) -> Identity:
        """The person behind this chat account: the national IDs and verified phones its
        registrations carry, then those of every account linked to it by one of them, and so on."""
        found = Identity()
        frontier = {(channel, user_id)}
        for _ in range(MAX_ROUNDS):
            found.accounts |= frontier
            pairs = list(frontier)
            rows = await self._db.all(
                f"""SELECT national_id_index, CASE WHEN phone_verified_at IS NOT NULL THEN phone_index END
                    FROM registrations WHERE (channel, user_id) IN ({",".join("(?, ?)" for _ in pairs)})""",
                [x for pair in pairs for x in pair],
            )
            national_ids = {r[0] for r in rows if r[0]} - found.national_ids
            phones = {r[1] for r in rows if r[1]} - found.phones
            found.national_ids |= national_ids
            found.phones |= phones
            if not national_ids and not phones:
                break
            linked = await self._db.all(
                f"""SELECT DISTINCT channel, user_id FROM registrations
                    WHERE national_id_index IN ({",".join("?" * len(national_ids)) or "NULL"})
                       OR (phone_index IN ({",".join("?" * len(phones)) or "NULL"})
                           AND phone_verified_at IS NOT NULL)""",
                [*national_ids, *phones],
            )
            frontier = {(r[0], r[1]) for r in linked} - found.accounts
            if not frontier or len(found.accounts) + len(frontier) > MAX_ACCOUNTS:
                break
        return found

    def same_person(self, reg: Registration, identity: Identity) -> bool:
        """Whether the registration names this person: their account, national ID or phone."""
        if (reg.channel, reg.user_id) in identity.accounts:
            return True
        if reg.national_id and self._crypto.index("national_id", reg.national_id) in identity.national_ids:
            return True
        return bool(reg.phone) and self._crypto.index("phone", reg.phone) in identity.phones

    async def standing_approval(self, reg: Registration) -> Registration | None:
        """Another approved (not revoked) registration of the same school, if there is one."""
        if not reg.school_code:
            return None
        row = await self._db.one(
            "SELECT * FROM registrations WHERE school_code = ? AND status = 'approved' AND id != ? ORDER BY id LIMIT 1",
            (reg.school_code, reg.id),
        )
        return None if row is None else self._registration(row)

    # --- the queue and the accounts to make ----------------------------------------------------

    async def pending_page(self, offset: int, limit: int) -> tuple[list[Registration], int]:
        """Registrations waiting for review, oldest submission first, and how many there are."""
        rows = await self._db.all(PENDING_PAGE, (limit, offset))
        total = await self._db.one(PENDING_COUNT)
        return [self._registration(r) for r in rows], total[0] if total else 0

    async def accounts_not_made(self) -> int:
        row = await self._db.one(ACCOUNTS_NOT_MADE)
        return row[0] if row else 0

    async def to_provision(self, max_attempts: int, stale_before: datetime) -> list[Registration]:
        """Approved registrations whose account is to be tried again: failed ones, and ones left
        pending or running since before `stale_before` (the process stopped half-way)."""
        rows = await self._db.all(TO_PROVISION, (max_attempts, _ts(stale_before)))
        return [self._registration(r) for r in rows]
