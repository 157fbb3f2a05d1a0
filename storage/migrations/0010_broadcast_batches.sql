-- A broadcast's recipients are handed to the outbox in user-id order, a batch at a time, and
-- what became of them is recorded per batch (one outbox row: up to 500 people on LINE, one on
-- Telegram), not per person: writing every recipient twice while sending cost more than
-- sending to them. A recipient row keeps its own state only where it is known per person
-- from the start (blocked) — or was recorded per person before this migration.

-- Where each (broadcast, channel) stands: every pending recipient up to last_user_id is in a batch.
CREATE TABLE broadcast_cursors (
    broadcast_id INTEGER NOT NULL REFERENCES broadcasts (id),
    channel      TEXT NOT NULL,
    last_user_id TEXT NOT NULL,
    PRIMARY KEY (broadcast_id, channel)
) WITHOUT ROWID;

-- One outbox row's people and what became of them: queued → sent | blocked | failed |
-- unknown (in flight at a crash on a platform that cannot recognise a resend) | cancelled.
CREATE TABLE broadcast_batches (
    id           INTEGER PRIMARY KEY,
    broadcast_id INTEGER NOT NULL REFERENCES broadcasts (id),
    channel      TEXT NOT NULL,
    outbox_id    INTEGER NOT NULL,
    first_user_id TEXT NOT NULL,
    last_user_id TEXT NOT NULL,
    user_ids     TEXT,                -- JSON array of who it carries; NULL: every pending recipient
                                      -- from first_user_id to last_user_id (a text the same for all)
    recipients   INTEGER NOT NULL,
    state        TEXT NOT NULL,
    done_at      TEXT
);
CREATE INDEX broadcast_batches_of ON broadcast_batches (broadcast_id, state);
CREATE INDEX broadcast_batches_range ON broadcast_batches (broadcast_id, channel, first_user_id);
CREATE INDEX broadcast_batches_outbox ON broadcast_batches (outbox_id) WHERE state = 'queued';

-- Recipients queued under the old scheme become batches. They were always taken in user-id
-- order, so the cursor is the highest id that reached the outbox.
INSERT INTO broadcast_cursors (broadcast_id, channel, last_user_id)
    SELECT broadcast_id, channel, MAX(user_id) FROM broadcast_recipients WHERE outbox_id IS NOT NULL
    GROUP BY broadcast_id, channel;
INSERT INTO broadcast_batches (broadcast_id, channel, outbox_id, first_user_id, last_user_id, user_ids,
                               recipients, state)
    SELECT broadcast_id, channel, outbox_id, MIN(user_id), MAX(user_id), json_group_array(user_id), COUNT(*),
           'queued'
    FROM broadcast_recipients WHERE state = 'queued' GROUP BY broadcast_id, channel, outbox_id;
UPDATE broadcast_recipients SET state = 'pending' WHERE state = 'queued';
DROP INDEX broadcast_recipients_queued;
DROP INDEX broadcast_recipients_outbox;

-- Each recipient's state, for people and tests reading the database (not for the sending).
CREATE VIEW broadcast_recipient_states AS
    SELECT r.broadcast_id, r.channel, r.user_id,
           CASE WHEN r.state != 'pending' THEN r.state
                ELSE COALESCE(
                    (SELECT b.state FROM broadcast_batches b
                     WHERE b.broadcast_id = r.broadcast_id AND b.channel = r.channel
                       AND r.user_id BETWEEN b.first_user_id AND b.last_user_id
                       AND (b.user_ids IS NULL OR EXISTS (SELECT 1 FROM json_each(b.user_ids) j
                                                          WHERE j.value = r.user_id))),
                    CASE WHEN s.status = 'cancelled' THEN 'cancelled' ELSE 'pending' END)
           END AS state
    FROM broadcast_recipients r
    JOIN broadcasts s ON s.id = r.broadcast_id;
