-- ARI (RFC 9773), external account binding (RFC 8555 §7.3.4), profiles;
-- see migrations/sqlite/0008_ari_eab_profiles.sql.
ALTER TABLE certificates ADD COLUMN replaced_by TEXT;
ALTER TABLE certificates ADD COLUMN renew_early_at BIGINT;

ALTER TABLE accounts ADD COLUMN eab_kid TEXT;

CREATE TABLE eab_keys (
    kid         TEXT PRIMARY KEY,
    label       TEXT NOT NULL,
    sealed_key  BYTEA NOT NULL,
    policies    TEXT NOT NULL,
    profiles    TEXT NOT NULL,
    names       TEXT NOT NULL,
    expires_at  BIGINT,
    created_at  BIGINT NOT NULL,
    revoked_at  BIGINT,
    account_id  TEXT UNIQUE REFERENCES accounts(id),
    bound_at    BIGINT
);

-- PostgreSQL only (several nodes on one database): the token buckets of
-- the limits that must hold across nodes (account-creation,
-- order-creation): one row per key, its theoretical arrival time (unix ms).
CREATE TABLE limit_buckets (
    name  TEXT NOT NULL,
    key   TEXT NOT NULL,
    tat   BIGINT NOT NULL,
    PRIMARY KEY (name, key)
);
