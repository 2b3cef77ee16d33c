-- certeasy schema v1 (SQLite). Times are unix milliseconds.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE accounts (
    id          TEXT PRIMARY KEY,
    thumbprint  TEXT NOT NULL UNIQUE,          -- RFC 7638: one key, one account
    jwk         TEXT NOT NULL,                 -- canonical public JWK JSON
    contact     TEXT NOT NULL,                 -- JSON array of URIs
    status      TEXT NOT NULL,                 -- valid | deactivated | revoked
    tos_agreed  INTEGER NOT NULL,
    created_at  INTEGER NOT NULL
);

CREATE TABLE orders (
    id              TEXT PRIMARY KEY,
    account_id      TEXT NOT NULL REFERENCES accounts(id),
    status          TEXT NOT NULL,             -- pending | ready | processing | valid | invalid
    policy          TEXT NOT NULL,
    names           TEXT NOT NULL,             -- JSON array of normalised names, sorted
    not_before      INTEGER,
    not_after       INTEGER,
    expires         INTEGER NOT NULL,
    error           TEXT,                      -- problem document JSON
    csr             BLOB,
    replaces        TEXT,
    profile         TEXT,
    created_at      INTEGER NOT NULL,
    updated_at      INTEGER NOT NULL
);
CREATE INDEX orders_by_account ON orders(account_id, created_at);

CREATE TABLE authorizations (
    id          TEXT PRIMARY KEY,
    order_id    TEXT NOT NULL REFERENCES orders(id),
    account_id  TEXT NOT NULL REFERENCES accounts(id),
    identifier  TEXT NOT NULL,                 -- base name (no "*.")
    wildcard    INTEGER NOT NULL,
    status      TEXT NOT NULL,                 -- pending | valid | invalid | deactivated | expired | revoked
    expires     INTEGER NOT NULL,
    position    INTEGER NOT NULL
);
CREATE INDEX authorizations_by_order ON authorizations(order_id, position);

CREATE TABLE challenges (
    id          TEXT PRIMARY KEY,
    authz_id    TEXT NOT NULL REFERENCES authorizations(id),
    kind        TEXT NOT NULL,                 -- http-01 | dns-01 | tls-alpn-01
    token       TEXT NOT NULL,
    status      TEXT NOT NULL,                 -- pending | processing | valid | invalid
    validated   INTEGER,
    error       TEXT,                          -- problem document JSON
    record      TEXT,                          -- validation record JSON
    position    INTEGER NOT NULL
);
CREATE INDEX challenges_by_authz ON challenges(authz_id, position);

CREATE TABLE certificates (
    id                 TEXT PRIMARY KEY,
    order_id           TEXT NOT NULL UNIQUE REFERENCES orders(id),  -- one certificate per order, ever
    account_id         TEXT NOT NULL REFERENCES accounts(id),
    authority          TEXT NOT NULL,
    serial             TEXT NOT NULL,          -- lower-case hex
    names              TEXT NOT NULL,          -- JSON array, sorted
    leaf_der           BLOB NOT NULL,
    chain_pem          TEXT NOT NULL,          -- leaf first
    not_before         INTEGER NOT NULL,
    not_after          INTEGER NOT NULL,
    revoked_at         INTEGER,
    revocation_reason  INTEGER,
    created_at         INTEGER NOT NULL
);
CREATE UNIQUE INDEX certificates_by_serial ON certificates(authority, serial);
CREATE INDEX certificates_by_account ON certificates(account_id, names);

CREATE TABLE nonces (
    value    TEXT PRIMARY KEY,
    expires  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX nonces_by_expiry ON nonces(expires);

CREATE TABLE jobs (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    kind         TEXT NOT NULL,                -- validate | issue
    subject      TEXT NOT NULL,                -- challenge id | order id
    state        TEXT NOT NULL,                -- queued | running
    attempts     INTEGER NOT NULL DEFAULT 0,
    run_at       INTEGER NOT NULL,
    lease_owner  TEXT,
    lease_until  INTEGER,
    last_error   TEXT,
    created_at   INTEGER NOT NULL
);
CREATE UNIQUE INDEX jobs_by_subject ON jobs(kind, subject);
CREATE INDEX jobs_ready ON jobs(state, run_at);
