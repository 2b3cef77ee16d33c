-- Revocation that reaches the CA, and the built-in CA's CRLs (the SQLite
-- migration of the same number explains each column).
ALTER TABLE certificates ADD COLUMN ca_revocation TEXT;
ALTER TABLE certificates ADD COLUMN ca_revocation_detail TEXT;
ALTER TABLE certificates ADD COLUMN ca_revoked_at BIGINT;
UPDATE certificates SET ca_revocation = 'local' WHERE revoked_at IS NOT NULL;

CREATE INDEX certificates_revoked ON certificates(authority) WHERE revoked_at IS NOT NULL;

CREATE TABLE crls (
    authority    TEXT PRIMARY KEY,
    number       BIGINT NOT NULL,
    this_update  BIGINT NOT NULL,
    next_update  BIGINT NOT NULL,
    der          BYTEA NOT NULL,
    stale        BIGINT NOT NULL DEFAULT 0
);
