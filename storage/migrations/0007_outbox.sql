-- What the bot has to send, written in the same transaction as the turn that wants it sent,
-- and deleted once the platform accepted it (or refused it for good). A restart sends what
-- is still here. The message is encrypted: it may quote a name, a phone or a national ID.
CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY,
    channel     TEXT NOT NULL,     -- line | telegram | console | sms | …
    chat_id     TEXT NOT NULL,     -- the user or group; for SMS a keyed hash of the phone
    priority    INTEGER NOT NULL,  -- 0 an answer to who just wrote, 1 a notice to someone else, 2 a broadcast
    batch       TEXT NOT NULL,     -- rows written together for one chat (sent together where the platform can)
    replace_key TEXT,              -- a newer message under the same key replaces this one (review cards)
    payload_enc BLOB NOT NULL,     -- the message, JSON
    reply_token TEXT,              -- the platform's token to answer the message that caused this one
    event_at    TEXT,              -- when the platform received that message (the token's age)
    idem_key    TEXT NOT NULL,     -- the platform's idempotency key (LINE X-Line-Retry-Key, SMS gateway)
    created_at  TEXT NOT NULL
);
CREATE INDEX outbox_by_channel ON outbox (channel, id);
CREATE UNIQUE INDEX outbox_by_replace_key ON outbox (channel, chat_id, replace_key) WHERE replace_key IS NOT NULL;

-- The platform's id of the last message sent under a replace key (a review card), so that a
-- newer version edits it where the platform can (Telegram), or waits its turn where it cannot.
CREATE TABLE sent_keys (
    channel     TEXT NOT NULL,
    chat_id     TEXT NOT NULL,
    replace_key TEXT NOT NULL,
    message_ref TEXT,
    sent_at     TEXT NOT NULL,
    PRIMARY KEY (channel, chat_id, replace_key)
) WITHOUT ROWID;
