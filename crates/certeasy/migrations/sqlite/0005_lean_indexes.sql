-- Fewer B-trees on the issuance path: every index an insert or update
-- touches is one more page written to the WAL at each commit (and copied
-- back at the next checkpoint).
--
-- Jobs are identified by what they work on, (kind, subject), which the old
-- table already kept unique: keyed by it WITHOUT ROWID, a job is one B-tree
-- instead of three (rowid table, unique index, ready index) plus the
-- AUTOINCREMENT counter row. The claim query used the ready index, but the
-- table only ever holds the jobs in flight, so scanning it costs about what
-- the index saved, while the index cost a page write at every enqueue and
-- completion.
CREATE TABLE jobs_v5 (
    kind         TEXT NOT NULL,                -- validate | issue
    subject      TEXT NOT NULL,                -- challenge id | order id
    state        TEXT NOT NULL,                -- queued | running
    attempts     INTEGER NOT NULL DEFAULT 0,
    run_at       INTEGER NOT NULL,
    lease_owner  TEXT,
    lease_until  INTEGER,
    last_error   TEXT,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (kind, subject)
) WITHOUT ROWID;
INSERT INTO jobs_v5 (kind, subject, state, attempts, run_at, lease_owner, lease_until, last_error, created_at)
    SELECT kind, subject, state, attempts, run_at, lease_owner, lease_until, last_error, created_at FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_v5 RENAME TO jobs;

-- One index on (serial, authority) keeps serials unique per authority and
-- serves revoke-cert's lookup by serial alone (its leading column).
DROP INDEX certificates_by_serial_only;
DROP INDEX certificates_by_serial;
CREATE UNIQUE INDEX certificates_by_serial ON certificates(serial, authority);
