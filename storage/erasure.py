"""Erasure and retention: what `repo.erasure` removes, and what it finds due for removal.

The personal fields of a registration are emptied by the caller on its `Registration` (the
turn saves it); this store removes what lives beside it: the signed-letter scans (their rows:
the files are unlinked after the commit, see UploadStore.remove), the one-time-code rows and
wrong-code counts of its phone, and any conversation still pointing at it. Every method runs
inside the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from storage.crypto import Crypto
from storage.database import Database
from storage.database import ts as _ts

ERASED_INDEX = "erased:"  # an OTP row stripped of its phone: counts for the limits, names nobody


@dataclass
class Erased:
    """What one erasure removed: for the audit trail and for the person who asked."""

    letters: int = 0
    otp_rows: int = 0
    phone_guards: int = 0
    files: list[str] = field(default_factory=list)  # upload paths no row refers to any more: to unlink

    def add(self, other: Erased) -> None:
        self.letters += other.letters
        self.otp_rows += other.otp_rows
        self.phone_guards += other.phone_guards
        self.files += [f for f in other.files if f not in self.files]


class ErasureStore:
    def __init__(self, db: Database, crypto: Crypto) -> None:
        self._db = db
        self._crypto = crypto

    async def erase_letters(self, registration_id: int) -> Erased:
        """Delete the signed-letter rows of a registration; the files left without a row."""
        rows = await self._db.all("SELECT path FROM signed_letters WHERE registration_id = ?", (registration_id,))
        await self._db.execute("DELETE FROM signed_letters WHERE registration_id = ?", (registration_id,))
        paths = sorted({r["path"] for r in rows})
        orphans = [p for p in paths if await self._db.one("SELECT 1 FROM signed_letters WHERE path = ? LIMIT 1",
                                                          (p,)) is None]
        return Erased(letters=len(rows), files=orphans)

    async def erase_codes(
        self, phones: Iterable[str], channel: str, user_id: str, now: datetime, keep_since: datetime,
    ) -> Erased:
        """Remove the one-time-code rows of these phones and of this chat user, and the phones'
        wrong-code counts (the newest row of all is stripped, never deleted: see forget_codes).
        Rows younger than `keep_since` still count for the sending limits
        (per chat user, and in all): they stay, stripped of the phone and the secret, until the
        retention job deletes them. A count whose lock is still running stays until it ends
        (erasing must not be a way round the lockout); the retention job removes it then."""
        indexes = {self._crypto.index("phone", p) for p in phones if p}
        indexes |= {r[0] for r in await self._db.all(  # the numbers this user asked codes for
            "SELECT DISTINCT phone_index FROM otp_challenges WHERE channel = ? AND user_id = ? "
            "AND phone_index NOT LIKE 'erased:%'", (channel, user_id))}
        indexes = sorted(indexes)
        marks = ", ".join("?" * len(indexes))
        whose = f"(phone_index IN ({marks}) OR (channel = ? AND user_id = ?))" if indexes else \
            "(channel = ? AND user_id = ?)"
        params = (*indexes, channel, user_id)
        ids = [r[0] for r in await self._db.all(
            f"SELECT id FROM otp_challenges WHERE {whose} AND phone_index NOT LIKE 'erased:%'", params)]
        if ids:
            id_marks = ", ".join("?" * len(ids))
            await self._db.execute(
                f"UPDATE conversations SET otp_challenge_id = NULL WHERE otp_challenge_id IN ({id_marks})", ids)
            await self._db.execute(
                f"""DELETE FROM otp_challenges WHERE id IN ({id_marks}) AND created_at < ?
                    AND id < (SELECT MAX(id) FROM otp_challenges)""", (*ids, _ts(keep_since)))
            blank = self._crypto.encrypt("")
            await self._db.execute(
                f"""UPDATE otp_challenges SET phone_enc = ?, secret_enc = ?, phone_index = '{ERASED_INDEX}' || id,
                        closed_at = COALESCE(closed_at, ?) WHERE id IN ({id_marks})""",
                (blank, blank, _ts(now), *ids),
            )
        guards = 0
        if indexes:
            cursor = await self._db.execute(
                f"""DELETE FROM otp_phone_guards WHERE phone_index IN ({marks})
                    AND (locked_until IS NULL OR locked_until <= ?)""",
                (*indexes, _ts(now)),
            )
            guards = cursor.rowcount
        return Erased(otp_rows=len(ids), phone_guards=guards)

    async def mark_erased(self, registration_id: int, now: datetime) -> None:
        """Record the erasure, and let go of any conversation that was on this registration
        unless it is approved (its officer can still ask where it stands)."""
        await self._db.execute("UPDATE registrations SET erased_at = ? WHERE id = ?", (_ts(now), registration_id))
        await self._db.execute(
            """UPDATE conversations SET state = 'start', registration_id = NULL, editing = 0, confirm_cancel = 0,
                   otp_challenge_id = NULL, updated_at = ?
               WHERE registration_id = ? AND (SELECT status FROM registrations WHERE id = ?) != 'approved'""",
            (_ts(now), registration_id, registration_id),
        )

    async def erased_at(self, registration_id: int) -> datetime | None:
        row = await self._db.one("SELECT erased_at FROM registrations WHERE id = ?", (registration_id,))
        return None if row is None or row[0] is None else datetime.fromisoformat(row[0])

    async def codes_of(self, channel: str, user_id: str) -> int:
        """One-time-code rows kept for this chat user (they go after a day: the sending limits)."""
        row = await self._db.one("SELECT COUNT(*) FROM otp_challenges WHERE channel = ? AND user_id = ?",
                                 (channel, user_id))
        return row[0] if row else 0

    # --- what the retention job looks at ---------------------------------------------------

    async def due(self, abandoned_before: datetime, approved_before: datetime, limit: int = 200) -> list[int]:
        """Registrations whose personal data is due to go: drafts (and letters never sent back,
        and rejections never answered) untouched since `abandoned_before`; approvals older than
        `approved_before`; cancelled ones that still hold something (cancelled before erasure
        removed the scans)."""
        rows = await self._db.all(
            """SELECT id FROM registrations WHERE erased_at IS NULL AND (
                   (status IN ('draft', 'letter_issued', 'rejected') AND updated_at < ?)
                OR (status = 'approved' AND decided_at < ?)
                OR status = 'cancelled')
               ORDER BY id LIMIT ?""",
            (_ts(abandoned_before), _ts(approved_before), limit),
        )
        return [r[0] for r in rows]

    async def forget_codes(self, before: datetime, now: datetime) -> int:
        """Delete one-time-code rows older than every sending limit, and wrong-code counts with
        no lock running and no code since `before`."""
        # The newest row is never deleted, only stripped: SQLite gives a new row the largest id
        # plus one, and an id given again could hand a conversation or a queued SMS that still
        # names an old code someone else's.
        await self._db.execute(
            f"""UPDATE otp_challenges SET phone_enc = ?, secret_enc = ?, phone_index = '{ERASED_INDEX}' || id,
                    closed_at = COALESCE(closed_at, ?)
                WHERE id = (SELECT MAX(id) FROM otp_challenges) AND created_at < ?
                  AND phone_index NOT LIKE 'erased:%'""",
            (self._crypto.encrypt(""), self._crypto.encrypt(""), _ts(now), _ts(before)),
        )
        await self._db.execute(
            "UPDATE conversations SET otp_challenge_id = NULL WHERE otp_challenge_id IN "
            "(SELECT id FROM otp_challenges WHERE created_at < ?)", (_ts(before),))
        cursor = await self._db.execute(
            "DELETE FROM otp_challenges WHERE created_at < ? AND id < (SELECT MAX(id) FROM otp_challenges)",
            (_ts(before),))
        deleted = cursor.rowcount
        cursor = await self._db.execute(
            """DELETE FROM otp_phone_guards WHERE (locked_until IS NULL OR locked_until <= ?)
               AND NOT EXISTS (SELECT 1 FROM otp_challenges c WHERE c.phone_index = otp_phone_guards.phone_index
                               AND c.created_at >= ?)""",
            (_ts(now), _ts(before)),
        )
        return deleted + cursor.rowcount

    async def referenced_files(self) -> set[str]:
        """Every upload path a signed-letter row refers to (for the sweep of orphan files)."""
        return {r[0] for r in await self._db.all("SELECT DISTINCT path FROM signed_letters")}

    async def is_referenced(self, path: str) -> bool:
        return await self._db.one("SELECT 1 FROM signed_letters WHERE path = ? LIMIT 1", (path,)) is not None
