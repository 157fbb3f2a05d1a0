-- Reviewing, the SMS budget and housekeeping at scale.

-- /pending walks the submitted rows in their order, one page at a time, from this index
-- (it also serves every look-up by status, so the old one-column index goes).
CREATE INDEX registrations_queue ON registrations (status, submitted_at, id);
DROP INDEX registrations_status;

-- Only approved rows whose account is not made yet: what the provisioning retry and the
-- "accounts not made" figure read. Every other row costs this index nothing.
DROP INDEX registrations_provision;
CREATE INDEX registrations_provision_open ON registrations (provision_status, updated_at)
    WHERE status = 'approved' AND provision_status != 'done';

-- One account per username. Two approvals of one school made before this rule both hold
-- `sch<code>`: the later one gives its username up and is marked failed (no automatic retry)
-- so a reviewer decides, with /approve REF replace, which one stands.
INSERT INTO audit_events (registration_id, at, actor, kind, detail)
    SELECT id, strftime('%Y-%m-%dT%H:%M:%S', 'now') || '.000000+00:00', 'system', 'provision_failed',
           'duplicate account username ' || account_username
    FROM registrations r
    WHERE account_username IS NOT NULL
      AND id != (SELECT MIN(id) FROM registrations o WHERE o.account_username = r.account_username);
UPDATE registrations
    SET provision_status = 'failed', provision_attempts = 1000,
        provision_error = 'duplicate account username ' || account_username, account_username = NULL
    WHERE account_username IS NOT NULL
      AND id != (SELECT MIN(id) FROM registrations o WHERE o.account_username = registrations.account_username);
CREATE UNIQUE INDEX registrations_account_username ON registrations (account_username)
    WHERE account_username IS NOT NULL;

-- A code whose SMS the gateway may or may not have sent (a timeout): it counts against every
-- limit like a sent one, and is not sent again.
ALTER TABLE otp_challenges ADD COLUMN send_unknown INTEGER NOT NULL DEFAULT 0;

-- /healthz writes here: the database answers and takes a write.
CREATE TABLE health (
    id          INTEGER PRIMARY KEY CHECK (id = 1),
    checked_at  TEXT NOT NULL
);
