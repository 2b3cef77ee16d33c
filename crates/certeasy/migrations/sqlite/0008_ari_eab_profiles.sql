-- ARI (RFC 9773), external account binding (RFC 8555 §7.3.4), profiles.
--
-- ARI looks certificates up by serial: the unique index
-- certificates_by_serial (serial, authority) already serves that lookup,
-- and the AKI of the one or few rows found is compared in the process, so
-- no index is added to the issuance path.
--
-- replaced_by: the order that replaces this certificate (new-order's
-- `replaces`); set conditionally, so that only one live order replaces a
-- certificate. renew_early_at: when an operator asked for early renewal
-- (`certeasy cert renew-early`); the ARI window then starts there.
ALTER TABLE certificates ADD COLUMN replaced_by TEXT;
ALTER TABLE certificates ADD COLUMN renew_early_at INTEGER;

-- The EAB key an account was created with (its restrictions apply to every
-- order of the account); NULL for accounts created without one.
ALTER TABLE accounts ADD COLUMN eab_kid TEXT;

-- EAB keys (`certeasy eab add`). The HMAC key itself is needed to verify a
-- binding, so it is stored sealed (AES-256-GCM) under the installation's
-- EAB key file, not in clear and not hashed. account_id: the one account
-- the key bound (a key binds once).
CREATE TABLE eab_keys (
    kid         TEXT PRIMARY KEY,
    label       TEXT NOT NULL,
    sealed_key  BLOB NOT NULL,                 -- nonce (12 bytes) || ciphertext+tag
    policies    TEXT NOT NULL,                 -- JSON array; empty = any
    profiles    TEXT NOT NULL,                 -- JSON array; empty = any
    names       TEXT NOT NULL,                 -- JSON array of scope rules; empty = any
    expires_at  INTEGER,
    created_at  INTEGER NOT NULL,
    revoked_at  INTEGER,
    account_id  TEXT UNIQUE REFERENCES accounts(id),
    bound_at    INTEGER
) WITHOUT ROWID;
