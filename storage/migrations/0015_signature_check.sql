-- Whether the signature boxes of a returned letter had ink in them when it came in:
-- signed | blank (the officer was asked for a new photo; the reviewer is warned) | unchecked
-- (no QR code to place the boxes by, or a box outside the photo).
ALTER TABLE signed_letters ADD COLUMN signature TEXT NOT NULL DEFAULT 'unchecked';
