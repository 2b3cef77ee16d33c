-- Nonces are minted without the database (HMAC with a per-installation key
-- kept in `meta`); only their use is recorded, so every node refuses a replay.
DROP TABLE nonces;

CREATE TABLE used_nonces (
    value    TEXT PRIMARY KEY,
    expires  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX used_nonces_by_expiry ON used_nonces(expires);
