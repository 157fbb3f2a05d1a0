-- Settings an admin changes on chat or from the shell (the registration deadline).
CREATE TABLE settings (
    key         TEXT PRIMARY KEY,
    value       TEXT NOT NULL,
    changed_by  TEXT NOT NULL,
    changed_at  TEXT NOT NULL
) WITHOUT ROWID;

-- A message to many: an admin's broadcast, or a reminder before the deadline (key says which
-- reminder, so the same one is never made twice). Status: draft (waiting for the admin's
-- confirmation) → sending → done, or cancelled.
CREATE TABLE broadcasts (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,             -- broadcast | reminder
    key         TEXT UNIQUE,               -- reminder:<deadline>:<days>
    segment     TEXT NOT NULL,
    text        TEXT NOT NULL,             -- the admin's text with {school} {ref} {deadline}; empty for reminders
    created_by  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    status      TEXT NOT NULL,
    started_at  TEXT,
    finished_at TEXT
);

-- One row per recipient and its state: pending (not yet in the outbox) → queued (in the outbox,
-- as outbox_id) → sent | blocked | failed | unknown (in flight when the process died, on a
-- platform that cannot tell a resend from a new message: not sent again) | cancelled.
CREATE TABLE broadcast_recipients (
    broadcast_id    INTEGER NOT NULL REFERENCES broadcasts (id),
    channel         TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    registration_id INTEGER,               -- whose {school} and {ref} the text quotes
    state           TEXT NOT NULL,
    outbox_id       INTEGER,
    done_at         TEXT,
    PRIMARY KEY (broadcast_id, channel, user_id)
) WITHOUT ROWID;
-- Partial indexes: a recipient leaves them as it moves on, so the final states cost no index.
CREATE INDEX broadcast_recipients_pending ON broadcast_recipients (broadcast_id, channel) WHERE state = 'pending';
CREATE INDEX broadcast_recipients_queued ON broadcast_recipients (broadcast_id) WHERE state = 'queued';
CREATE INDEX broadcast_recipients_outbox ON broadcast_recipients (outbox_id) WHERE outbox_id IS NOT NULL;

-- Set just before a broadcast message is handed to a platform with no idempotency key
-- (Telegram): after a crash such a row is not sent again (at most once, never twice).
ALTER TABLE outbox ADD COLUMN attempted_at TEXT;
