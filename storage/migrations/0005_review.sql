-- The review (step 13 of the registration): who decided, the reason of a rejection, and the new
-- account made for an approved registration. Reviewers added by admins beside the
-- configured ones.
ALTER TABLE registrations ADD COLUMN decided_at TEXT;
ALTER TABLE registrations ADD COLUMN decided_by TEXT;
ALTER TABLE registrations ADD COLUMN reject_reason TEXT;
ALTER TABLE registrations ADD COLUMN account_username TEXT;
ALTER TABLE registrations ADD COLUMN provision_status TEXT;          -- pending | done | failed
ALTER TABLE registrations ADD COLUMN provision_attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE registrations ADD COLUMN provision_error TEXT;
CREATE INDEX registrations_provision ON registrations (provision_status);

CREATE TABLE reviewers (
    channel  TEXT NOT NULL,
    user_id  TEXT NOT NULL,
    added_by TEXT NOT NULL,
    added_at TEXT NOT NULL,
    PRIMARY KEY (channel, user_id)
) WITHOUT ROWID;
