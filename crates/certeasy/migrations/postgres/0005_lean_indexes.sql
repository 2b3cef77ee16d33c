-- Jobs keyed by what they work on, (kind, subject), as in SQLite's v5; the
-- ready index stays on PostgreSQL: the claim query's FOR UPDATE SKIP LOCKED
-- scans it in run_at order.
CREATE TABLE jobs_v5 (
    kind         TEXT NOT NULL,
    subject      TEXT NOT NULL,
    state        TEXT NOT NULL,
    attempts     BIGINT NOT NULL DEFAULT 0,
    run_at       BIGINT NOT NULL,
    lease_owner  TEXT,
    lease_until  BIGINT,
    last_error   TEXT,
    created_at   BIGINT NOT NULL,
    PRIMARY KEY (kind, subject)
);
INSERT INTO jobs_v5 (kind, subject, state, attempts, run_at, lease_owner, lease_until, last_error, created_at)
    SELECT kind, subject, state, attempts, run_at, lease_owner, lease_until, last_error, created_at FROM jobs;
DROP TABLE jobs;
ALTER TABLE jobs_v5 RENAME TO jobs;
ALTER INDEX jobs_v5_pkey RENAME TO jobs_pkey;
CREATE INDEX jobs_by_run_at ON jobs(run_at);

DROP INDEX certificates_by_serial_only;
DROP INDEX certificates_by_serial;
CREATE UNIQUE INDEX certificates_by_serial ON certificates(serial, authority);
