-- The keys the stored data has been under, known by their check values (storage/crypto.py):
-- the newest row is the key everything is encrypted and indexed with. Written on the first
-- start; a start with a key whose check value is not the newest is refused, so a lost or
-- mistyped key never makes a second, silent one.
CREATE TABLE key_versions (
    version     INTEGER PRIMARY KEY,
    check_value TEXT NOT NULL UNIQUE,
    added_at    TEXT NOT NULL
);

-- A rotation under way (`kiddiary-bot rotate-key`): the key it moves to, and how far it got
-- (the table and the last key of it done, then the uploads, then the indexes). At most one row;
-- while it is here only rotate-key may start, and a rotation killed half-way resumes from it.
CREATE TABLE key_rotation (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    to_check    TEXT NOT NULL,
    step        TEXT NOT NULL,
    position    TEXT NOT NULL DEFAULT '',
    done_rows   INTEGER NOT NULL DEFAULT 0,
    started_at  TEXT NOT NULL
);
