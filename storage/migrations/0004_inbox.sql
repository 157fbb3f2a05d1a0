-- Webhook events acknowledged to the platform but not yet handled. LINE gets its 200 at once
-- and does not send an event again; a crash before handling must not lose it, so the raw
-- event (encrypted: it may hold a national ID) waits here until its turn is done.
CREATE TABLE inbox (
    channel     TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    payload_enc BLOB NOT NULL,
    received_at TEXT NOT NULL,
    PRIMARY KEY (channel, event_id)
) WITHOUT ROWID;
