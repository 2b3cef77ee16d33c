-- Revocation that reaches the CA, and the built-in CA's CRLs.
--
-- ca_revocation: where the revocation of a revoked certificate stands at
-- its authority: 'pending' (a revoke job is queued: the CA has not
-- confirmed yet), 'confirmed' (the CA revoked it), 'refused' (the CA said
-- no; ca_revocation_detail holds its answer), 'local' (kept in certeasy
-- only: disable-ca-revocation, or revoked before this migration). NULL
-- while the certificate is not revoked. ca_revoked_at: when the CA
-- confirmed or refused (unix ms).
ALTER TABLE certificates ADD COLUMN ca_revocation TEXT;
ALTER TABLE certificates ADD COLUMN ca_revocation_detail TEXT;
ALTER TABLE certificates ADD COLUMN ca_revoked_at INTEGER;
UPDATE certificates SET ca_revocation = 'local' WHERE revoked_at IS NOT NULL;

-- The revoked certificates of one authority, for its CRL. Partial: a
-- certificate enters it only when it is revoked, so issuance writes no
-- page of it.
CREATE INDEX certificates_revoked ON certificates(authority) WHERE revoked_at IS NOT NULL;

-- The current CRL of each built-in CA (revocation-status). number: the
-- RFC 5280 cRLNumber, one more at each new CRL (0: a placeholder row, no
-- CRL built yet); stale: revocations recorded since it was built (counted
-- in each revocation's transaction).
CREATE TABLE crls (
    authority    TEXT PRIMARY KEY,
    number       INTEGER NOT NULL,
    this_update  INTEGER NOT NULL,
    next_update  INTEGER NOT NULL,
    der          BLOB NOT NULL,
    stale        INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
