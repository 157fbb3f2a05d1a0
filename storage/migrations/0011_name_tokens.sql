-- Finding a registration by the officer's name while the name stays encrypted: one row per
-- word of the first and last name, as a keyed hash (storage/search.py). Filled in for the
-- registrations already stored when the repository opens (a hash needs the key, which SQL
-- has not), and kept up to date on every save; erasing the name removes its rows.
CREATE TABLE registration_name_tokens (
    token_index     TEXT NOT NULL,
    registration_id INTEGER NOT NULL REFERENCES registrations (id),
    PRIMARY KEY (token_index, registration_id)
) WITHOUT ROWID;
CREATE INDEX registration_name_tokens_registration ON registration_name_tokens (registration_id);
