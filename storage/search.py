"""Looking registrations up for reviewers (/find), each kind of query by its own index.

Exact look-ups go straight to an index: the reference (unique), the school code, the
phone's keyed hash. The officer's name is encrypted, so it cannot be searched as text: each
word of the first and last name is stored as a keyed hash (`registration_name_tokens`), and
a name query finds the registrations that have every word it gives. Only the school name,
which is not personal data, is searched as text (part of a name).
"""

from __future__ import annotations

import sqlite3
import unicodedata
from collections.abc import Callable

from storage.crypto import Crypto
from storage.database import Database
from storage.models import Registration

BACKFILL_PAGE = 500


def name_words(*parts: str | None) -> set[str]:
    """The words of a name as they are compared: NFC, case-folded, split at white space."""
    joined = " ".join(p for p in parts if p)
    return {w for w in unicodedata.normalize("NFC", joined).casefold().split() if w}


class SearchStore:
    def __init__(self, db: Database, crypto: Crypto, decode: Callable[[sqlite3.Row], Registration]) -> None:
        self._db = db
        self._crypto = crypto
        self._decode = decode

    def _token(self, word: str) -> str:
        return self._crypto.index("name", word)

    async def sync_name(self, reg: Registration) -> None:
        """Make the stored name words those of `reg` (none once the name is erased). Writes
        only when they changed: a save that did not touch the name costs one read."""
        wanted = {self._token(w) for w in name_words(reg.officer_first_name, reg.officer_last_name)}
        rows = await self._db.all(
            "SELECT token_index FROM registration_name_tokens WHERE registration_id = ?", (reg.id,))
        stored = {r[0] for r in rows}
        if stored == wanted:
            return
        await self._db.execute("DELETE FROM registration_name_tokens WHERE registration_id = ?", (reg.id,))
        await self._db.executemany(
            "INSERT INTO registration_name_tokens (token_index, registration_id) VALUES (?, ?)",
            [(token, reg.id) for token in sorted(wanted)],
        )

    async def backfill_names(self) -> int:
        """Name words for the registrations stored before they were kept (or whose words were
        lost); the number filled in. Runs in the caller's transaction."""
        done = 0
        after = 0
        while True:
            rows = await self._db.all(
                """SELECT id, officer_first_name_enc, officer_last_name_enc FROM registrations r
                   WHERE id > ? AND officer_first_name_enc IS NOT NULL
                   AND NOT EXISTS (SELECT 1 FROM registration_name_tokens t WHERE t.registration_id = r.id)
                   ORDER BY id LIMIT ?""",
                (after, BACKFILL_PAGE),
            )
            for row in rows:
                words = name_words(self._crypto.decrypt(row[1]), self._crypto.decrypt(row[2]))
                await self._db.executemany(
                    "INSERT OR IGNORE INTO registration_name_tokens (token_index, registration_id) VALUES (?, ?)",
                    [(self._token(w), row[0]) for w in sorted(words)],
                )
                done += 1
            if len(rows) < BACKFILL_PAGE:
                return done
            after = rows[-1][0]

    async def by_ref(self, ref: str) -> list[Registration]:
        return await self._rows("SELECT * FROM registrations WHERE ref = ?", (ref,))

    async def by_phone(self, phone: str) -> list[Registration]:
        """By the phone's keyed hash (E.164 in), newest first."""
        return await self._rows("SELECT * FROM registrations WHERE phone_index = ? ORDER BY id DESC LIMIT 10",
                                (self._crypto.index("phone", phone),))

    async def by_school_code(self, code: str) -> list[Registration]:
        return await self._rows("SELECT * FROM registrations WHERE school_code = ? ORDER BY id DESC LIMIT 10",
                                (code,))

    async def by_name(self, words: set[str], limit: int = 10) -> list[Registration]:
        """The registrations whose officer's name has every one of `words`, newest first."""
        tokens = sorted({self._token(w) for w in words})
        if not tokens:
            return []
        marks = ", ".join("?" * len(tokens))
        return await self._rows(
            f"""SELECT * FROM registrations WHERE id IN (
                    SELECT registration_id FROM registration_name_tokens WHERE token_index IN ({marks})
                    GROUP BY registration_id HAVING COUNT(*) = ?)
                ORDER BY id DESC LIMIT ?""",
            (*tokens, len(tokens), limit),
        )

    async def by_school_name(self, part: str, limit: int = 10) -> list[Registration]:
        pattern = "%" + part.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        return await self._rows(
            "SELECT * FROM registrations WHERE school_name LIKE ? ESCAPE '\\' ORDER BY id DESC LIMIT ?",
            (pattern, limit),
        )

    async def _rows(self, sql: str, params: tuple[object, ...]) -> list[Registration]:
        return [self._decode(r) for r in await self._db.all(sql, params)]
