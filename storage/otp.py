"""One-time codes and the wrong-try counts per phone: what `repo.otp` stores.

Phones and secrets are encrypted; a phone is looked up by its keyed hash. The code itself is
never stored: it is derived from the secret when the SMS is sent and when a typed code is checked.
"""

from __future__ import annotations

from datetime import datetime

from storage.crypto import Crypto
from storage.database import Database
from storage.database import dt as _dt
from storage.database import ts as _ts
from storage.models import OtpChallenge, PhoneGuard


class OtpStore:
    def __init__(self, db: Database, crypto: Crypto) -> None:
        self._db = db
        self._crypto = crypto

    async def create(
        self, phone: str, secret: str, channel: str, user_id: str, now: datetime, expires_at: datetime
    ) -> OtpChallenge:
        cursor = await self._db.execute(
            """INSERT INTO otp_challenges (phone_index, phone_enc, secret_enc, channel, user_id, created_at,
                                           expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)""",
            (
                self._crypto.index("phone", phone), self._crypto.encrypt(phone), self._crypto.encrypt(secret),
                channel, user_id, _ts(now), _ts(expires_at),
            ),
        )
        assert cursor.lastrowid is not None
        return OtpChallenge(cursor.lastrowid, phone, secret, channel, user_id, now, expires_at)

    async def get(self, challenge_id: int) -> OtpChallenge | None:
        row = await self._db.one("SELECT * FROM otp_challenges WHERE id = ?", (challenge_id,))
        if row is None:
            return None
        return OtpChallenge(
            id=row["id"],
            phone=self._crypto.decrypt(row["phone_enc"]),  # type: ignore[arg-type]
            secret=self._crypto.decrypt(row["secret_enc"]),  # type: ignore[arg-type]
            channel=row["channel"],
            user_id=row["user_id"],
            created_at=_dt(row["created_at"]),  # type: ignore[arg-type]
            expires_at=_dt(row["expires_at"]),  # type: ignore[arg-type]
            closed_at=_dt(row["closed_at"]),
        )

    async def replaced_for_user(
        self, channel: str, user_id: str, before_id: int, now: datetime,
    ) -> list[OtpChallenge]:
        """This user's codes older than challenge `before_id` that were closed while still valid
        (replaced by a newer code or let go) and would not have expired yet."""
        rows = await self._db.all(
            """SELECT id FROM otp_challenges WHERE channel = ? AND user_id = ? AND id < ? AND send_failed = 0
               AND closed_at IS NOT NULL AND closed_at < expires_at AND expires_at > ?
               ORDER BY id DESC LIMIT 10""",
            (channel, user_id, before_id, _ts(now)),
        )
        found = [await self.get(r[0]) for r in rows]
        return [c for c in found if c is not None]

    async def close(self, challenge_id: int, at: datetime) -> None:
        await self._db.execute(
            "UPDATE otp_challenges SET closed_at = ? WHERE id = ? AND closed_at IS NULL", (_ts(at), challenge_id)
        )

    async def send_failed(self, challenge_id: int, at: datetime) -> None:
        """The gateway could not send this code: close it, and let it count against no limit."""
        await self._db.execute(
            "UPDATE otp_challenges SET send_failed = 1, closed_at = COALESCE(closed_at, ?) WHERE id = ?",
            (_ts(at), challenge_id),
        )

    async def send_unknown(self, challenge_id: int) -> None:
        """The gateway may have sent this code: it counts as sent (the flag is for the record)."""
        await self._db.execute("UPDATE otp_challenges SET send_unknown = 1 WHERE id = ?", (challenge_id,))

    async def sent_to_phone(self, phone: str, since: datetime) -> list[datetime]:
        """When codes were sent to this phone after `since`, oldest first."""
        rows = await self._db.all(
            """SELECT created_at FROM otp_challenges WHERE phone_index = ? AND created_at > ? AND send_failed = 0
               ORDER BY created_at""",
            (self._crypto.index("phone", phone), _ts(since)),
        )
        return [_dt(r[0]) for r in rows]  # type: ignore[misc]

    async def sent_for_user(self, channel: str, user_id: str, since: datetime) -> list[datetime]:
        rows = await self._db.all(
            """SELECT created_at FROM otp_challenges
               WHERE channel = ? AND user_id = ? AND created_at > ? AND send_failed = 0 ORDER BY created_at""",
            (channel, user_id, _ts(since)),
        )
        return [_dt(r[0]) for r in rows]  # type: ignore[misc]

    async def sent_total(self, since: datetime) -> tuple[int, datetime | None]:
        """How many codes were sent since `since`, and when the oldest of them was."""
        row = await self._db.one(
            "SELECT COUNT(*), MIN(created_at) FROM otp_challenges WHERE created_at > ? AND send_failed = 0",
            (_ts(since),),
        )
        assert row is not None
        return row[0], _dt(row[1])

    async def guard(self, phone: str) -> PhoneGuard:
        row = await self._db.one(
            "SELECT failures, locked_until FROM otp_phone_guards WHERE phone_index = ?",
            (self._crypto.index("phone", phone),),
        )
        if row is None:
            return PhoneGuard(phone)
        return PhoneGuard(phone, row["failures"], _dt(row["locked_until"]))

    async def save_guard(self, guard: PhoneGuard) -> None:
        await self._db.execute(
            """INSERT INTO otp_phone_guards (phone_index, failures, locked_until) VALUES (?, ?, ?)
               ON CONFLICT (phone_index) DO UPDATE SET failures = excluded.failures,
                                                       locked_until = excluded.locked_until""",
            (self._crypto.index("phone", guard.phone), guard.failures, _ts(guard.locked_until)),
        )
