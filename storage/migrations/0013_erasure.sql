-- Erasure and retention (the privacy notice): when a registration's personal data was erased
-- (on request, on cancel, or by the retention job). The row stays, with the school details and
-- its audit trail, so staff can still see what happened; NULL while nothing was erased.
ALTER TABLE registrations ADD COLUMN erased_at TEXT;
-- The retention job looks only at registrations not erased yet.
CREATE INDEX registrations_not_erased ON registrations (status, updated_at) WHERE erased_at IS NULL;
