-- Conversations, registrations, their audit trail, OTP challenges, redelivery guard,
-- and the optional school directory. Personal data columns (*_enc) hold Fernet tokens;
-- *_index columns hold keyed HMACs for look-ups (storage/crypto.py).

CREATE TABLE registrations (
    id                      INTEGER PRIMARY KEY,
    ref                     TEXT NOT NULL UNIQUE,
    channel                 TEXT NOT NULL,
    user_id                 TEXT NOT NULL,
    status                  TEXT NOT NULL,
    affiliation             TEXT,
    school_code             TEXT,
    school_name             TEXT,
    province                TEXT,
    school_from_directory   INTEGER NOT NULL DEFAULT 0,
    old_tsl_username        TEXT,
    old_kiddiary_username   TEXT,
    officer_title           TEXT,
    officer_first_name_enc  BLOB,
    officer_last_name_enc   BLOB,
    national_id_enc         BLOB,
    national_id_index       TEXT,
    phone_enc               BLOB,
    phone_index             TEXT,
    phone_verified_at       TEXT,
    confirmed_at            TEXT,
    created_at              TEXT NOT NULL,
    updated_at              TEXT NOT NULL
);
CREATE INDEX registrations_owner ON registrations (channel, user_id);
CREATE INDEX registrations_status ON registrations (status);
CREATE INDEX registrations_school ON registrations (school_code);
CREATE INDEX registrations_national_id ON registrations (national_id_index);
CREATE INDEX registrations_phone ON registrations (phone_index);

CREATE TABLE conversations (
    channel             TEXT NOT NULL,
    user_id             TEXT NOT NULL,
    state               TEXT NOT NULL,
    lang                TEXT NOT NULL,
    registration_id     INTEGER REFERENCES registrations (id),
    consent_at          TEXT,
    editing             INTEGER NOT NULL DEFAULT 0,
    confirm_cancel      INTEGER NOT NULL DEFAULT 0,
    otp_challenge_id    INTEGER,
    blocked             INTEGER NOT NULL DEFAULT 0,
    updated_at          TEXT NOT NULL,
    PRIMARY KEY (channel, user_id)
) WITHOUT ROWID;

-- Every status change and decision: who, when, what (every change is an audit event).
CREATE TABLE audit_events (
    id              INTEGER PRIMARY KEY,
    registration_id INTEGER NOT NULL REFERENCES registrations (id),
    at              TEXT NOT NULL,
    actor           TEXT NOT NULL,
    kind            TEXT NOT NULL,
    detail          TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_events_registration ON audit_events (registration_id, id);

-- Platform event ids already processed: a redelivery finds its id here and is skipped.
CREATE TABLE processed_events (
    channel     TEXT NOT NULL,
    event_id    TEXT NOT NULL,
    at          TEXT NOT NULL,
    PRIMARY KEY (channel, event_id)
) WITHOUT ROWID;
CREATE INDEX processed_events_at ON processed_events (at);

CREATE TABLE otp_challenges (
    id          INTEGER PRIMARY KEY,
    phone_index TEXT NOT NULL,
    phone_enc   BLOB NOT NULL,
    secret_enc  BLOB NOT NULL,
    channel     TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    expires_at  TEXT NOT NULL,
    closed_at   TEXT
);
CREATE INDEX otp_challenges_phone ON otp_challenges (phone_index, created_at);
CREATE INDEX otp_challenges_user ON otp_challenges (channel, user_id, created_at);
CREATE INDEX otp_challenges_created ON otp_challenges (created_at);

CREATE TABLE otp_phone_guards (
    phone_index  TEXT PRIMARY KEY,
    failures     INTEGER NOT NULL,
    locked_until TEXT
) WITHOUT ROWID;

CREATE TABLE schools (
    code        TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    province    TEXT NOT NULL,
    affiliation TEXT NOT NULL
) WITHOUT ROWID;
