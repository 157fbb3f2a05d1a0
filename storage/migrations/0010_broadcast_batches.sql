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
    user_ids     TEXT NOT NULL,       -- JSON array: who this batch carries
    recipients   INTEGER NOT NULL,
    state        TEXT NOT NULL,
    done_at      TEXT
);
CREATE INDEX broadcast_batches_of ON broadcast_batches (broadcast_id, state);
CREATE INDEX broadcast_batches_outbox ON broadcast_batches (outbox_id) WHERE state = 'queued';

-- Recipients queued under the old scheme become batches. They were always taken in user-id
-- order, so the cursor is the highest id that reached the outbox.
INSERT INTO broadcast_cursors (broadcast_id, channel, last_user_id)
    SELECT broadcast_id, channel, MAX(user_id) FROM broadcast_recipients WHERE outbox_id IS NOT NULL
    GROUP BY broadcast_id, channel;
INSERT INTO broadcast_batches (broadcast_id, channel, outbox_id, user_ids, recipients, state)
    SELECT broadcast_id, channel, outbox_id, json_group_array(user_id), COUNT(*), 'queued'
    FROM broadcast_recipients WHERE state = 'queued' GROUP BY broadcast_id, channel, outbox_id;
UPDATE broadcast_recipients SET state = 'pending' WHERE state = 'queued';
DROP INDEX broadcast_recipients_queued;
DROP INDEX broadcast_recipients_outbox;

-- Each recipient's state, for people and tests reading the database (not for the sending).
CREATE VIEW broadcast_recipient_states AS
    SELECT r.broadcast_id, r.channel, r.user_id,
           CASE WHEN r.state != 'pending' THEN r.state
                WHEN b.state IS NOT NULL THEN b.state
                WHEN s.status = 'cancelled' THEN 'cancelled'
                ELSE 'pending' END AS state
    FROM broadcast_recipients r
    JOIN broadcasts s ON s.id = r.broadcast_id
    LEFT JOIN (SELECT bb.broadcast_id, bb.channel, j.value AS user_id, bb.state
               FROM broadcast_batches bb, json_each(bb.user_ids) j) b
      ON b.broadcast_id = r.broadcast_id AND b.channel = r.channel AND b.user_id = r.user_id;
