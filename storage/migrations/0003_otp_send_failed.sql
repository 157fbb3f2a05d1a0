-- A code the SMS gateway could not deliver counts against no limit.
ALTER TABLE otp_challenges ADD COLUMN send_failed INTEGER NOT NULL DEFAULT 0;
