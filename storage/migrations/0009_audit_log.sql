-- A general audit log, for actions that belong to no single registration: an export of
-- personal data, an import of the school directory, an admin's request to import one.
-- (audit_events keeps the trail of each registration.) `detail` is JSON.
CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY,
    at      TEXT NOT NULL,
    actor   TEXT NOT NULL,     -- channel:user_id on chat, os:<login> from the shell
    kind    TEXT NOT NULL,     -- export | directory_import_requested | directory_imported | directory_import_refused
    detail  TEXT NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_actor ON audit_log (actor, kind, id);
