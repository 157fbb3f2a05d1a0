-- The initial password of a provisioned account, as a salted scrypt hash (never in clear):
-- exported with the approved registrations so the new platform can accept it once.
ALTER TABLE registrations ADD COLUMN account_password_hash TEXT;
