"""The repository: every query about conversations, registrations, codes and the directory.

All access goes through `async with repo.transaction():` (storage/database.py: one block at a
time, committed in groups); every method refuses to run outside one. What is to be sent lives
in `repo.outbox` (storage/outbox.py), written in the same transactions.
"""

from __future__ import annotations

import logging
import secrets
import sqlite3
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from storage.audit_log import AuditLog
from storage.broadcasts import BroadcastStore
from storage.crypto import Crypto
from storage.database import Database
from storage.database import dt as _dt
from storage.database import ts as _ts
from storage.directory import DirectoryStore
from storage.erasure import ErasureStore
from storage.events import EventStore
from storage.export_pages import ExportPages
from storage.keys import KeyStore, phone_ref
from storage.models import Conversation, Registration, School, SignedLetter, UsernameTaken
from storage.otp import OtpStore
from storage.outbox import OutboxStore
from storage.reviewing import ReviewStore
from storage.search import SearchStore
from storage.stats import StatsStore

log = logging.getLogger(__name__)

# Crockford's alphabet without I, L, O, U: a reference read aloud on the phone survives.
_REF_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_reference() -> str:
    body = "".join(secrets.choice(_REF_ALPHABET) for _ in range(8))
    return f"KD-{body[:4]}-{body[4:]}"


@dataclass(frozen=True)
class AuditEvent:
    at: datetime
    actor: str
    kind: str
    detail: str


class Repository:
    def __init__(self, db: Database, crypto: Crypto) -> None:
        self._db = db
        self._crypto = crypto
        self._execute, self._one, self._all = db.execute, db.one, db.all
        self.outbox = OutboxStore(db, crypto)
        self.otp = OtpStore(db, crypto)
        self.events = EventStore(db, crypto)
        self.broadcasts = BroadcastStore(db)
        self.stats = StatsStore(db)  # read-only figures for admins
        self.audit_log = AuditLog(db)  # exports and directory imports (not per registration)
        self.directory = DirectoryStore(db)
        self.erasure = ErasureStore(db, crypto)  # erasure on request, on cancel, and by the retention job
        self.export = ExportPages(db, self._registration)  # opens its own short transactions
        self.search = SearchStore(db, crypto, self._registration)  # /find, each query by its index
        self.reviewing = ReviewStore(db, crypto, self._registration)  # reviewers as people; standing approvals
        self.keys = KeyStore(db, crypto)  # which key the data is under; key rotation

    @classmethod
    async def open(cls, path: Path | str, crypto: Crypto) -> Repository:
        """Open (creating if needed) the database, apply pending migrations, and fill in the
        keyed-hash indexes a migration could not (they need the key)."""
        repo = cls(await Database.open(path), crypto)
        async with repo.transaction():
            if filled := await repo.search.backfill_names():
                log.info("indexed the officer names of %d registrations for /find", filled)
        return repo

    async def close(self) -> None:
        await self._db.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Repository]:
        """One atomic unit of work: committed (durably) when the block ends, rolled back on any error."""
        async with self._db.transaction():
            yield self

    async def health_check(self, now: datetime) -> None:
        """Raise unless the database answers and takes a write (committed, so on disk)."""
        async with self._db.transaction():
            await self._execute(
                """INSERT INTO health (id, checked_at) VALUES (1, ?)
                   ON CONFLICT (id) DO UPDATE SET checked_at = excluded.checked_at""",
                (_ts(now),),
            )

    # --- conversations -----------------------------------------------------------------

    async def get_conversation(self, channel: str, user_id: str) -> Conversation | None:
        row = await self._one("SELECT * FROM conversations WHERE channel = ? AND user_id = ?", (channel, user_id))
        if row is None:
            return None
        return Conversation(
            channel=row["channel"],
            user_id=row["user_id"],
            state=row["state"],
            lang=row["lang"],
            registration_id=row["registration_id"],
            consent_at=_dt(row["consent_at"]),
            editing=bool(row["editing"]),
            confirm_cancel=bool(row["confirm_cancel"]),
            otp_challenge_id=row["otp_challenge_id"],
            blocked=bool(row["blocked"]),
        )

    async def save_conversation(self, conv: Conversation, now: datetime) -> None:
        await self._execute(
            """INSERT INTO conversations (channel, user_id, state, lang, registration_id, consent_at, editing,
                                          confirm_cancel, otp_challenge_id, blocked, updated_at)
               VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (channel, user_id) DO UPDATE SET
                   state = excluded.state, lang = excluded.lang, registration_id = excluded.registration_id,
                   consent_at = excluded.consent_at, editing = excluded.editing,
                   confirm_cancel = excluded.confirm_cancel, otp_challenge_id = excluded.otp_challenge_id,
                   blocked = excluded.blocked, updated_at = excluded.updated_at""",
            (
                conv.channel, conv.user_id, conv.state, conv.lang, conv.registration_id, _ts(conv.consent_at),
                int(conv.editing), int(conv.confirm_cancel), conv.otp_challenge_id, int(conv.blocked), _ts(now),
            ),
        )

    async def set_blocked(self, channel: str, user_id: str, at: datetime) -> bool:
        """Mark a user who blocked or unfollowed the bot; False when there was nothing to change."""
        cursor = await self._execute(
            "UPDATE conversations SET blocked = 1, updated_at = ? WHERE channel = ? AND user_id = ? AND blocked = 0",
            (_ts(at), channel, user_id),
        )
        return cursor.rowcount == 1

    async def awaits_signed_letter(self, channel: str, user_id: str) -> bool:
        """Whether this user has a registration a signed letter may be sent for."""
        row = await self._one(
            """SELECT 1 FROM registrations WHERE channel = ? AND user_id = ?
               AND status IN ('letter_issued', 'submitted', 'rejected') LIMIT 1""",
            (channel, user_id),
        )
        return row is not None

    def phone_ref(self, phone: str) -> str:
        """A phone number as the outbox names an SMS recipient: a keyed hash, never the number."""
        return phone_ref(self._crypto, phone)

    # --- registrations -----------------------------------------------------------------

    async def create_registration(self, channel: str, user_id: str, status: str, now: datetime) -> Registration:
        while True:
            ref = new_reference()
            try:
                cursor = await self._execute(
                    """INSERT INTO registrations (ref, channel, user_id, status, created_at, updated_at)
                       VALUES (?, ?, ?, ?, ?, ?)""",
                    (ref, channel, user_id, status, _ts(now), _ts(now)),
                )
            except sqlite3.IntegrityError:  # 32^8 references: a clash is rare, but not impossible
                continue
            assert cursor.lastrowid is not None
            return Registration(cursor.lastrowid, ref, channel, user_id, status, created_at=now)

    def _registration(self, row: sqlite3.Row) -> Registration:
        dec = self._crypto.decrypt
        return Registration(
            id=row["id"],
            ref=row["ref"],
            channel=row["channel"],
            user_id=row["user_id"],
            status=row["status"],
            created_at=_dt(row["created_at"]),  # type: ignore[arg-type]
            affiliation=row["affiliation"],
            school_code=row["school_code"],
            school_name=row["school_name"],
            province=row["province"],
            school_from_directory=bool(row["school_from_directory"]),
            old_tsl_username=row["old_tsl_username"],
            old_kiddiary_username=row["old_kiddiary_username"],
            officer_title=row["officer_title"],
            officer_first_name=dec(row["officer_first_name_enc"]),
            officer_last_name=dec(row["officer_last_name_enc"]),
            national_id=dec(row["national_id_enc"]),
            phone=dec(row["phone_enc"]),
            phone_verified_at=_dt(row["phone_verified_at"]),
            confirmed_at=_dt(row["confirmed_at"]),
            letter_version=row["letter_version"],
            letter_issued_at=_dt(row["letter_issued_at"]),
            submitted_at=_dt(row["submitted_at"]),
            decided_at=_dt(row["decided_at"]),
            decided_by=row["decided_by"],
            reject_reason=row["reject_reason"],
            account_username=row["account_username"],
            account_password_hash=row["account_password_hash"],
            provision_status=row["provision_status"],
            provision_attempts=row["provision_attempts"],
            provision_error=row["provision_error"],
        )

    async def get_registration(self, registration_id: int) -> Registration | None:
        row = await self._one("SELECT * FROM registrations WHERE id = ?", (registration_id,))
        return None if row is None else self._registration(row)

    async def get_registration_by_ref(self, ref: str) -> Registration | None:
        row = await self._one("SELECT * FROM registrations WHERE ref = ?", (ref.upper(),))
        return None if row is None else self._registration(row)

    async def registrations_with_status(self, status: str) -> list[Registration]:
        rows = await self._all("SELECT * FROM registrations WHERE status = ? ORDER BY id", (status,))
        return [self._registration(r) for r in rows]

    async def save_registration(self, reg: Registration, now: datetime) -> None:
        """Raises UsernameTaken when its account username is another registration's."""
        try:
            await self._save_registration(reg, now)
        except sqlite3.IntegrityError as e:
            if "account_username" in str(e):
                raise UsernameTaken(reg.account_username or "") from e
            raise

    async def _save_registration(self, reg: Registration, now: datetime) -> None:
        enc, idx = self._crypto.encrypt, self._crypto.index
        await self._execute(
            """UPDATE registrations SET status = ?, affiliation = ?, school_code = ?, school_name = ?,
                   province = ?, school_from_directory = ?, old_tsl_username = ?, old_kiddiary_username = ?,
                   officer_title = ?, officer_first_name_enc = ?, officer_last_name_enc = ?,
                   national_id_enc = ?, national_id_index = ?, phone_enc = ?, phone_index = ?,
                   phone_verified_at = ?, confirmed_at = ?, letter_version = ?, letter_issued_at = ?,
                   submitted_at = ?, decided_at = ?, decided_by = ?, reject_reason = ?, account_username = ?,
                   account_password_hash = ?, provision_status = ?, provision_attempts = ?, provision_error = ?,
                   updated_at = ?
               WHERE id = ?""",
            (
                reg.status, reg.affiliation, reg.school_code, reg.school_name, reg.province,
                int(reg.school_from_directory), reg.old_tsl_username, reg.old_kiddiary_username,
                reg.officer_title, enc(reg.officer_first_name), enc(reg.officer_last_name),
                enc(reg.national_id), reg.national_id and idx("national_id", reg.national_id),
                enc(reg.phone), reg.phone and idx("phone", reg.phone),
                _ts(reg.phone_verified_at), _ts(reg.confirmed_at), reg.letter_version, _ts(reg.letter_issued_at),
                _ts(reg.submitted_at), _ts(reg.decided_at), reg.decided_by, reg.reject_reason, reg.account_username,
                reg.account_password_hash, reg.provision_status, reg.provision_attempts, reg.provision_error,
                _ts(now), reg.id,
            ),
        )
        await self.search.sync_name(reg)

    async def accounts_not_made(self) -> int:
        """Approved registrations whose account is not made yet (pending, running or failed)."""
        return await self.reviewing.accounts_not_made()

    async def count_by_status(self) -> dict[str, int]:
        rows = await self._all("SELECT status, COUNT(*) AS n FROM registrations GROUP BY status")
        return {r["status"]: r["n"] for r in rows}

    async def registrations_of(self, channel: str, user_id: str) -> list[Registration]:
        rows = await self._all(
            "SELECT * FROM registrations WHERE channel = ? AND user_id = ? ORDER BY id", (channel, user_id)
        )
        return [self._registration(r) for r in rows]

    async def submitted(self, offset: int, limit: int) -> tuple[list[Registration], int]:
        """Registrations waiting for review, oldest submission first, and how many there are."""
        return await self.reviewing.pending_page(offset, limit)

    async def others_for_school(self, reg: Registration) -> list[Registration]:
        rows = await self._all(
            """SELECT * FROM registrations WHERE school_code = ? AND id != ?
               AND status IN ('letter_issued', 'submitted', 'approved') ORDER BY id""",
            (reg.school_code, reg.id),
        )
        return [self._registration(r) for r in rows]

    async def school_registrations(self, school_code: str, except_id: int) -> list[Registration]:
        """The registrations of a school that are approved or on their way (letter issued or
        submitted), other than `except_id`: an officer starting another is told."""
        rows = await self._all(
            """SELECT * FROM registrations WHERE school_code = ? AND id != ?
               AND status IN ('letter_issued', 'submitted', 'approved') ORDER BY id""",
            (school_code, except_id),
        )
        return [self._registration(r) for r in rows]

    async def same_person_matches(self, reg: Registration) -> list[tuple[Registration, bool, bool]]:
        """Like `others_with_same_person`, saying what matched: (registration, same national
        ID, same phone)."""
        return [(r, bool(reg.national_id) and r.national_id == reg.national_id,
                 bool(reg.phone) and r.phone == reg.phone)
                for r in await self.others_with_same_person(reg)]

    async def others_with_same_person(self, reg: Registration) -> list[Registration]:
        """Registrations of other schools with this national ID or this phone."""
        rows = await self._all(
            """SELECT * FROM registrations WHERE id != ? AND status != 'cancelled' AND school_code != ?
               AND (national_id_index = ? OR phone_index = ?) ORDER BY id""",
            (reg.id, reg.school_code or "", reg.national_id and self._crypto.index("national_id", reg.national_id),
             reg.phone and self._crypto.index("phone", reg.phone)),
        )
        return [self._registration(r) for r in rows]

    async def to_provision(self, max_attempts: int, stale_before: datetime) -> list[Registration]:
        """Approved registrations whose account is to be tried again (storage/reviewing.py)."""
        return await self.reviewing.to_provision(max_attempts, stale_before)

    async def claim_provisioning(self, registration_id: int, now: datetime, stale_before: datetime) -> bool:
        """Mark the account as being made; False when someone else is making it (or it is made)."""
        cursor = await self._execute(
            """UPDATE registrations SET provision_status = 'running', updated_at = ?
               WHERE id = ? AND status = 'approved'
               AND (provision_status IN ('pending', 'failed')
                    OR (provision_status = 'running' AND updated_at < ?))""",
            (_ts(now), registration_id, _ts(stale_before)),
        )
        return cursor.rowcount == 1

    # --- reviewers added by admins -------------------------------------------------------

    async def add_reviewer(self, channel: str, user_id: str, added_by: str, at: datetime) -> None:
        await self._execute(
            """INSERT INTO reviewers (channel, user_id, added_by, added_at) VALUES (?, ?, ?, ?)
               ON CONFLICT (channel, user_id) DO NOTHING""",
            (channel, user_id, added_by, _ts(at)),
        )

    async def remove_reviewer(self, channel: str, user_id: str) -> bool:
        cursor = await self._execute("DELETE FROM reviewers WHERE channel = ? AND user_id = ?", (channel, user_id))
        return cursor.rowcount == 1

    async def reviewers(self) -> list[tuple[str, str]]:
        return [(r[0], r[1]) for r in await self._all("SELECT channel, user_id FROM reviewers ORDER BY added_at")]

    # --- signed letters ----------------------------------------------------------------

    async def add_signed_letter(
        self, registration_id: int, sha256: str, kind: str, mime_type: str, size: int, qr_status: str, path: str,
        received_at: datetime, signature: str = "unchecked",
    ) -> SignedLetter:
        row = await self._one("SELECT COUNT(*) FROM signed_letters WHERE registration_id = ?", (registration_id,))
        cursor = await self._execute(
            """INSERT INTO signed_letters (registration_id, sha256, kind, mime_type, size, qr_status, path,
                                           received_at, signature) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)""",
            (registration_id, sha256, kind, mime_type, size, qr_status, path, _ts(received_at), signature),
        )
        assert cursor.lastrowid is not None and row is not None
        return SignedLetter(cursor.lastrowid, registration_id, sha256, kind, mime_type, size, qr_status, path,
                            received_at, signature=signature, number=row[0] + 1)

    async def signed_letters_of(self, registration_id: int) -> list[SignedLetter]:
        """This registration's letters, oldest first, numbered from 1 (ฉบับที่ 1, 2 …)."""
        rows = await self._all("SELECT * FROM signed_letters WHERE registration_id = ? ORDER BY id",
                               (registration_id,))
        return [
            SignedLetter(r["id"], r["registration_id"], r["sha256"], r["kind"], r["mime_type"], r["size"],
                         r["qr_status"], r["path"], _dt(r["received_at"]), _dt(r["rejected_at"]),  # type: ignore[arg-type]
                         r["reject_reason"], r["signature"], number)
            for number, r in enumerate(rows, 1)
        ]

    async def get_signed_letter(self, letter_id: int) -> SignedLetter | None:
        row = await self._one("SELECT registration_id FROM signed_letters WHERE id = ?", (letter_id,))
        if row is None:
            return None
        return next(x for x in await self.signed_letters_of(row[0]) if x.id == letter_id)

    async def reject_signed_letter(self, letter_id: int, at: datetime, reason: str) -> None:
        await self._execute(
            "UPDATE signed_letters SET rejected_at = ?, reject_reason = ? WHERE id = ?", (_ts(at), reason, letter_id)
        )

    async def was_rejected(self, sha256: str) -> bool:
        """Whether a file with exactly this content was rejected before (for any registration)."""
        row = await self._one(
            "SELECT 1 FROM signed_letters WHERE sha256 = ? AND rejected_at IS NOT NULL LIMIT 1", (sha256,)
        )
        return row is not None

    # --- audit trail -------------------------------------------------------------------

    async def add_audit(self, registration_id: int, at: datetime, actor: str, kind: str, detail: str = "") -> None:
        await self._execute(
            "INSERT INTO audit_events (registration_id, at, actor, kind, detail) VALUES (?, ?, ?, ?, ?)",
            (registration_id, _ts(at), actor, kind, detail),
        )

    async def audit_trail(self, registration_id: int) -> list[AuditEvent]:
        rows = await self._all(
            "SELECT at, actor, kind, detail FROM audit_events WHERE registration_id = ? ORDER BY id",
            (registration_id,),
        )
        return [AuditEvent(_dt(r["at"]), r["actor"], r["kind"], r["detail"]) for r in rows]  # type: ignore[arg-type]

    # --- school directory --------------------------------------------------------------

    async def find_school(self, code: str) -> School | None:
        row = await self._one("SELECT code, name, province, affiliation FROM schools WHERE code = ?", (code,))
        return None if row is None else School(*row)

    async def has_school_directory(self) -> bool:
        return await self._one("SELECT 1 FROM schools LIMIT 1") is not None

    async def import_schools(self, schools: Iterable[School]) -> int:
        count = 0
        for s in schools:
            await self._execute(
                """INSERT INTO schools (code, name, province, affiliation) VALUES (?, ?, ?, ?)
                   ON CONFLICT (code) DO UPDATE SET name = excluded.name, province = excluded.province,
                                                    affiliation = excluded.affiliation""",
                (s.code, s.name, s.province, s.affiliation),
            )
            count += 1
        return count
