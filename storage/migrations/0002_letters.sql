-- The appointment letter (its version and date) and the signed letters sent back.

ALTER TABLE registrations ADD COLUMN letter_version INTEGER NOT NULL DEFAULT 0;
ALTER TABLE registrations ADD COLUMN letter_issued_at TEXT;
ALTER TABLE registrations ADD COLUMN submitted_at TEXT;

-- Each photo or scan received; the file itself is encrypted under DATA_DIR/uploads.
CREATE TABLE signed_letters (
    id              INTEGER PRIMARY KEY,
    registration_id INTEGER NOT NULL REFERENCES registrations (id),
    sha256          TEXT NOT NULL,
    kind            TEXT NOT NULL,      -- image | pdf
    mime_type       TEXT NOT NULL,
    size            INTEGER NOT NULL,
    qr_status       TEXT NOT NULL,      -- matched | unverified
    path            TEXT NOT NULL,      -- relative to DATA_DIR/uploads
    received_at     TEXT NOT NULL,
    rejected_at     TEXT,
    reject_reason   TEXT
);
CREATE INDEX signed_letters_registration ON signed_letters (registration_id, id);
CREATE INDEX signed_letters_sha256 ON signed_letters (sha256);
