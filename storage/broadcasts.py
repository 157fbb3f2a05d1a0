"""Broadcasts and reminders: who gets one, and what became of each recipient; the settings.

A broadcast is chosen by a `Segment` of the people who talked to the bot. Its recipients are
written once, when it is confirmed (one row each: `pending`, or `blocked` when they blocked the
bot). The broadcaster (bot/broadcaster.py) hands them to the outbox in user-id order, a chunk at
a time, moving a per-channel cursor past them; each outbox row's people form a batch, and the
delivery records how each batch went (`sent`, `blocked`, `failed`, `unknown`). Nothing is written
per person while sending: a batch of 500 is one row. A restart resumes after the cursor, and a
recipient is never queued twice.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from storage.database import Database
from storage.database import dt as _dt
from storage.database import ts as _ts
from storage.models import CANCELLED, DRAFT, LETTER_ISSUED, REJECTED

# A recipient's states (a batch's, once queued). Remaining = pending + queued; the others are
# final. Queries name 'pending' and 'queued' literally: SQLite uses a partial index only for a
# literal term.
PENDING, QUEUED, SENT, BLOCKED, FAILED, UNKNOWN, CANCELLED_STATE = (
    "pending", "queued", "sent", "blocked", "failed", "unknown", "cancelled")

# A broadcast's status.
DRAFT_BROADCAST, SENDING, DONE, CANCELLED_BROADCAST = "draft", "sending", "done", "cancelled"

NOT_SUBMITTED = (REJECTED, LETTER_ISSUED, DRAFT)  # what a reminder is about, most urgent first


@dataclass(frozen=True)
class Segment:
    """Who a broadcast reaches. `kind`: all | not_started | status | province | affiliation |
    not_submitted (the reminders: not started, a draft, a letter not sent back, a rejection)."""

    kind: str
    value: str = ""

    def __str__(self) -> str:
        return f"{self.kind}:{self.value}" if self.value else self.kind

    @classmethod
    def parse(cls, text: str) -> Segment:
        kind, _, value = text.partition(":")
        return cls(kind, value)


@dataclass(frozen=True)
class Broadcast:
    id: int
    kind: str
    key: str | None
    segment: Segment
    text: str
    created_by: str
    created_at: datetime
    status: str
    started_at: datetime | None
    finished_at: datetime | None


@dataclass(frozen=True)
class Recipient:
    """One person to send to, with what the text may quote."""

    channel: str
    user_id: str
    lang: str
    registration_id: int | None
    ref: str | None
    school: str | None
    status: str | None  # of that registration; None: has not started one


@dataclass(frozen=True)
class Progress:
    counts: dict[str, int]  # state → recipients
    last_sent: datetime | None

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def remaining(self) -> int:
        return self.counts.get(PENDING, 0) + self.counts.get(QUEUED, 0)


def _match(segment: Segment) -> tuple[str, list[object], str]:
    """(condition on a registration `r` of the person, its parameters, which registration to
    quote when several match) for `segment`."""
    newest = "r.id DESC"
    if segment.kind in ("all", "not_started"):
        return "r.status != ?", [CANCELLED], newest
    if segment.kind == "status":
        return "r.status = ?", [segment.value], newest
    if segment.kind == "province":
        return "r.province = ? AND r.status != ?", [segment.value, CANCELLED], newest
    if segment.kind == "affiliation":
        return "r.affiliation = ? AND r.status != ?", [segment.value, CANCELLED], newest
    if segment.kind == "not_submitted":
        marks = ", ".join("?" for _ in NOT_SUBMITTED)
        urgency = "CASE r.status " + " ".join(f"WHEN '{s}' THEN {n}" for n, s in enumerate(NOT_SUBMITTED)) + " END"
        return f"r.status IN ({marks})", list(NOT_SUBMITTED), f"{urgency}, r.id DESC"
    raise ValueError(f"unknown segment {segment}")


def _people(segment: Segment) -> tuple[str, list[object]]:
    """SELECT channel, user_id, blocked, reg_id of everyone in `segment`."""
    condition, params, order = _match(segment)
    started = ("EXISTS (SELECT 1 FROM registrations s WHERE s.channel = p.channel AND s.user_id = p.user_id"
               " AND s.status != 'cancelled')")
    who = {
        "all": "1", "not_started": f"NOT {started}",
        "not_submitted": f"(p.reg_id IS NOT NULL OR NOT {started})",
    }.get(segment.kind, "p.reg_id IS NOT NULL")
    sql = f"""SELECT * FROM (
                SELECT c.channel, c.user_id, c.blocked,
                       (SELECT r.id FROM registrations r WHERE r.channel = c.channel AND r.user_id = c.user_id
                        AND {condition} ORDER BY {order} LIMIT 1) AS reg_id
                FROM conversations c) AS p
              WHERE {who}"""
    return sql, params


# The cursor of (broadcast_id, channel): everyone pending up to it is in a batch.
_AFTER = ("COALESCE((SELECT last_user_id FROM broadcast_cursors WHERE broadcast_id = ? AND channel = ?), '')")


class BroadcastStore:
    def __init__(self, db: Database) -> None:
        self._db = db

    # --- settings ----------------------------------------------------------------------

    async def setting(self, key: str) -> str | None:
        row = await self._db.one("SELECT value FROM settings WHERE key = ?", (key,))
        return None if row is None else row[0]

    async def set_setting(self, key: str, value: str | None, by: str, at: datetime) -> None:
        if value is None:
            await self._db.execute("DELETE FROM settings WHERE key = ?", (key,))
            return
        await self._db.execute(
            """INSERT INTO settings (key, value, changed_by, changed_at) VALUES (?, ?, ?, ?)
               ON CONFLICT (key) DO UPDATE SET value = excluded.value, changed_by = excluded.changed_by,
               changed_at = excluded.changed_at""",
            (key, value, by, _ts(at)),
        )

    # --- making one --------------------------------------------------------------------

    async def audience(self, segment: Segment) -> dict[tuple[str, bool], int]:
        """How many people `segment` holds now: (channel, blocked) → count."""
        sql, params = _people(segment)
        rows = await self._db.all(f"SELECT channel, blocked, COUNT(*) FROM ({sql}) GROUP BY channel, blocked", params)
        return {(r[0], bool(r[1])): r[2] for r in rows}

    async def sample(self, segment: Segment) -> Recipient | None:
        """One person of `segment` (the text's preview is made for them)."""
        sql, params = _people(segment)
        row = await self._db.one(f"SELECT channel, user_id, reg_id FROM ({sql}) WHERE blocked = 0 LIMIT 1", params)
        if row is None:
            return None
        return (await self._recipients([(row[0], row[1], row[2])]))[0]

    async def create(
        self, kind: str, segment: Segment, text: str, by: str, at: datetime, key: str | None = None,
    ) -> Broadcast | None:
        """A new broadcast (a draft, waiting for confirmation); None when `key` was used before."""
        cursor = await self._db.execute(
            """INSERT INTO broadcasts (kind, key, segment, text, created_by, created_at, status)
               VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (key) DO NOTHING""",
            (kind, key, str(segment), text, by, _ts(at), DRAFT_BROADCAST),
        )
        if cursor.rowcount != 1:
            return None
        return await self.get(cursor.lastrowid or 0)

    async def start(
        self, broadcast_id: int, at: datetime, staff: Iterable[tuple[str, str]] | None = None,
    ) -> int | None:
        """Confirm a draft: its recipients are fixed now (the blocked ones counted, not sent to).
        With `staff` (channel, user_id), those and the reviewers added on chat are left out (a
        reminder to register is not for them). The number of recipients; None when it was not a
        draft."""
        cursor = await self._db.execute(
            "UPDATE broadcasts SET status = ?, started_at = ? WHERE id = ? AND status = ?",
            (SENDING, _ts(at), broadcast_id, DRAFT_BROADCAST),
        )
        if cursor.rowcount != 1:
            return None
        broadcast = await self.get(broadcast_id)
        assert broadcast is not None
        sql, params = _people(broadcast.segment)
        cursor = await self._db.execute(
            f"""INSERT INTO broadcast_recipients (broadcast_id, channel, user_id, registration_id, state, done_at)
                SELECT ?, channel, user_id, reg_id, CASE WHEN blocked THEN ? ELSE ? END,
                       CASE WHEN blocked THEN ? END FROM ({sql})""",
            [broadcast_id, BLOCKED, PENDING, _ts(at), *params],
        )
        count = cursor.rowcount
        if staff is not None:
            await self._db.executemany(
                "DELETE FROM broadcast_recipients WHERE broadcast_id = ? AND channel = ? AND user_id = ?",
                ([broadcast_id, channel, user_id] for channel, user_id in staff),
            )
            await self._db.execute(
                """DELETE FROM broadcast_recipients WHERE broadcast_id = ? AND EXISTS (SELECT 1 FROM reviewers v
                   WHERE v.channel = broadcast_recipients.channel AND v.user_id = broadcast_recipients.user_id)""",
                (broadcast_id,),
            )
            row = await self._db.one("SELECT COUNT(*) FROM broadcast_recipients WHERE broadcast_id = ?",
                                     (broadcast_id,))
            count = row[0] if row else 0
        return count

    async def cancel(self, broadcast_id: int, at: datetime) -> list[int] | None:
        """Stop a broadcast: who was not sent to yet never will be. The outbox rows taken back
        (the caller tells the delivery); None when it was not a draft or sending."""
        cursor = await self._db.execute(
            "UPDATE broadcasts SET status = ?, finished_at = ? WHERE id = ? AND status IN (?, ?)",
            (CANCELLED_BROADCAST, _ts(at), broadcast_id, DRAFT_BROADCAST, SENDING),
        )
        if cursor.rowcount != 1:
            return None
        rows = await self._db.all(
            "SELECT outbox_id FROM broadcast_batches WHERE broadcast_id = ? AND state = 'queued'", (broadcast_id,))
        outbox_ids = [r[0] for r in rows]
        await self._db.executemany("DELETE FROM outbox WHERE id = ?", ([i] for i in outbox_ids))
        await self._db.execute(
            "UPDATE broadcast_batches SET state = ?, done_at = ? WHERE broadcast_id = ? AND state = 'queued'",
            (CANCELLED_STATE, _ts(at), broadcast_id),
        )
        return outbox_ids  # the recipients not reached yet read as cancelled (broadcast_recipient_states)

    # --- sending -----------------------------------------------------------------------

    async def sending(self) -> list[Broadcast]:
        rows = await self._db.all("SELECT * FROM broadcasts WHERE status = ? ORDER BY id", (SENDING,))
        return [self._broadcast(r) for r in rows]

    async def next_recipients(self, broadcast_id: int, channel: str, limit: int) -> list[Recipient]:
        """The next recipients after the cursor, in user-id order, with what the text may quote."""
        rows = await self._db.all(
            f"""SELECT b.channel, b.user_id, c.lang, b.registration_id, r.ref, r.school_name, r.status
               FROM broadcast_recipients b
               JOIN conversations c ON c.channel = b.channel AND c.user_id = b.user_id
               LEFT JOIN registrations r ON r.id = b.registration_id
               WHERE b.broadcast_id = ? AND b.channel = ? AND b.user_id > {_AFTER} AND b.state = 'pending'
               ORDER BY b.user_id LIMIT ?""",
            (broadcast_id, channel, broadcast_id, channel, limit),
        )
        return [Recipient(*r) for r in rows]

    async def next_user_ids(self, broadcast_id: int, channel: str, limit: int) -> list[str]:
        """The next recipients' ids alone: for a text that is the same for everyone. As one JSON
        array from SQLite, not a row each (thousands a chunk)."""
        row = await self._db.one(
            f"""SELECT json_group_array(user_id) FROM (SELECT user_id FROM broadcast_recipients
               WHERE broadcast_id = ? AND channel = ? AND user_id > {_AFTER} AND state = 'pending'
               ORDER BY user_id LIMIT ?)""",
            (broadcast_id, channel, broadcast_id, channel, limit),
        )
        return json.loads(row[0]) if row else []

    async def queued(
        self, broadcast_id: int, channel: str, batches: list[tuple[int, list[str]]], every: bool = False,
    ) -> None:
        """The recipients just taken (`next_…`) are in the outbox: (outbox id, user ids) per row.
        The cursor moves past the highest of them, so they are never taken again. `every`: each
        batch is every pending recipient of its id range (a text the same for all, cut in id
        order), so the range says who, and thousands of ids are not written again."""
        if not batches:
            return
        await self._db.executemany(
            """INSERT INTO broadcast_batches (broadcast_id, channel, outbox_id, first_user_id, last_user_id,
                                              user_ids, recipients, state)
               VALUES (?, ?, ?, ?, ?, ?, ?, 'queued')""",
            ([broadcast_id, channel, outbox_id, min(ids), max(ids), None if every else json.dumps(ids), len(ids)]
             for outbox_id, ids in batches),
        )
        await self._db.execute(
            """INSERT INTO broadcast_cursors (broadcast_id, channel, last_user_id) VALUES (?, ?, ?)
               ON CONFLICT (broadcast_id, channel) DO UPDATE SET last_user_id = excluded.last_user_id
               WHERE excluded.last_user_id > last_user_id""",
            (broadcast_id, channel, max(max(ids) for _, ids in batches)),
        )

    async def delivered(self, outcomes: Iterable[tuple[int, str]], at: datetime) -> None:
        """How each broadcast outbox row went: (outbox id, sent | blocked | failed | unknown | cancelled)."""
        await self._db.executemany(
            "UPDATE broadcast_batches SET state = ?, done_at = ? WHERE outbox_id = ? AND state = 'queued'",
            ([state, _ts(at), outbox_id] for outbox_id, state in outcomes),
        )

    async def finish_if_done(self, broadcast_id: int, at: datetime) -> bool:
        """Mark the broadcast done when nobody is left after any channel's cursor and no batch is
        in the outbox. A few index probes, whatever the size."""
        if await self._db.one(
            "SELECT 1 FROM broadcast_batches WHERE broadcast_id = ? AND state = 'queued' LIMIT 1", (broadcast_id,)):
            return False
        channel = ""
        while row := await self._db.one(
            "SELECT channel FROM broadcast_recipients WHERE broadcast_id = ? AND channel > ? ORDER BY channel LIMIT 1",
            (broadcast_id, channel),
        ):
            channel = row[0]
            if await self._db.one(
                f"""SELECT 1 FROM broadcast_recipients WHERE broadcast_id = ? AND channel = ? AND user_id > {_AFTER}
                    AND state = 'pending' LIMIT 1""",
                (broadcast_id, channel, broadcast_id, channel),
            ):
                return False
        cursor = await self._db.execute(
            "UPDATE broadcasts SET status = ?, finished_at = ? WHERE id = ? AND status = ?",
            (DONE, _ts(at), broadcast_id, SENDING),
        )
        return cursor.rowcount == 1

    # --- reading -----------------------------------------------------------------------

    async def get(self, broadcast_id: int) -> Broadcast | None:
        row = await self._db.one("SELECT * FROM broadcasts WHERE id = ?", (broadcast_id,))
        return None if row is None else self._broadcast(row)

    async def recent(self, limit: int = 20) -> list[Broadcast]:
        rows = await self._db.all("SELECT * FROM broadcasts ORDER BY id DESC LIMIT ?", (limit,))
        return [self._broadcast(r) for r in rows]

    async def progress(self, broadcast_id: int) -> Progress:
        """Recipients per state: the batches' people, those known per person (blocked from the
        start), and the rest (pending, or cancelled with the broadcast)."""
        status = await self._db.one("SELECT status FROM broadcasts WHERE id = ?", (broadcast_id,))
        counts: dict[str, int] = {}
        own = await self._db.all(
            "SELECT state, COUNT(*) FROM broadcast_recipients WHERE broadcast_id = ? GROUP BY state", (broadcast_id,))
        for state, count in own:
            counts[state] = counts.get(state, 0) + count
        batches = await self._db.all(
            """SELECT state, SUM(recipients), MAX(done_at) FROM broadcast_batches WHERE broadcast_id = ?
               GROUP BY state""",
            (broadcast_id,),
        )
        for state, count, _ in batches:
            counts[PENDING] = counts.get(PENDING, 0) - count  # taken out of the pending rows
            counts[state] = counts.get(state, 0) + count
        if status is not None and status[0] == CANCELLED_BROADCAST and counts.get(PENDING):
            counts[CANCELLED_STATE] = counts.get(CANCELLED_STATE, 0) + counts.pop(PENDING)
        last = next((_dt(r[2]) for r in batches if r[0] == SENT), None)
        return Progress({state: n for state, n in counts.items() if n}, last)

    async def recipient_states(self, broadcast_id: int) -> dict[tuple[str, str], str]:
        rows = await self._db.all(
            "SELECT channel, user_id, state FROM broadcast_recipient_states WHERE broadcast_id = ?", (broadcast_id,))
        return {(r[0], r[1]): r[2] for r in rows}

    async def _recipients(self, people: list[tuple[str, str, int | None]]) -> list[Recipient]:
        if not people:
            return []
        marks = ", ".join("(?, ?, ?)" for _ in people)
        rows = await self._db.all(
            f"""WITH p (channel, user_id, reg_id) AS (VALUES {marks})
                SELECT p.channel, p.user_id, p.reg_id, c.lang, r.ref, r.school_name, r.status
                FROM p JOIN conversations c ON c.channel = p.channel AND c.user_id = p.user_id
                LEFT JOIN registrations r ON r.id = p.reg_id""",
            [value for person in people for value in person],
        )
        return [Recipient(r[0], r[1], r[3], r[2], r[4], r[5], r[6]) for r in rows]

    @staticmethod
    def _broadcast(r: object) -> Broadcast:
        return Broadcast(
            id=r["id"], kind=r["kind"], key=r["key"], segment=Segment.parse(r["segment"]),  # type: ignore[index]
            text=r["text"], created_by=r["created_by"], created_at=_dt(r["created_at"]),  # type: ignore[index,arg-type]
            status=r["status"], started_at=_dt(r["started_at"]), finished_at=_dt(r["finished_at"]),  # type: ignore[index]
        )
