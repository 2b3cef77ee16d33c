-- The listener certificates of `pki`-mode bundles, shared by every node (the
-- SQLite migration of the same number explains each column).
CREATE TABLE listener_certificates (
    bundle       TEXT PRIMARY KEY,
    names        TEXT NOT NULL DEFAULT '',
    chain_pem    TEXT,
    key_pem      TEXT,
    not_after    BIGINT,
    issued_at    BIGINT,
    issued_by    TEXT,
    claimed_by   TEXT,
    claim_until  BIGINT
);
