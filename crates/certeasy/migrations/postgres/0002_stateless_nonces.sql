-- Nonces are minted without the database; only their use is recorded, so
-- every node refuses a replay.
DROP TABLE nonces;

CREATE TABLE used_nonces (
    value    TEXT PRIMARY KEY,
    expires  BIGINT NOT NULL
);
CREATE INDEX used_nonces_by_expiry ON used_nonces(expires);
