//! Revocation: where a revoked certificate stands at its CA, and the
//! built-in CAs' CRLs.

use super::Store;

/// Where the revocation of a revoked certificate stands at its authority.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaRevocation {
    /// A revoke job is queued: the CA has not confirmed yet.
    Pending,
    /// The CA revoked the certificate.
    Confirmed,
    /// The CA refused; the detail holds its answer.
    Refused,
    /// Kept in certeasy only (`disable-ca-revocation`, or revoked before
    /// revocation reached CAs).
    Local,
}

impl CaRevocation {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            CaRevocation::Pending => "pending",
            CaRevocation::Confirmed => "confirmed",
            CaRevocation::Refused => "refused",
            CaRevocation::Local => "local",
        }
    }

    /// The state of a stored name.
    pub fn parse(s: &str) -> Option<CaRevocation> {
        match s {
            "pending" => Some(CaRevocation::Pending),
            "confirmed" => Some(CaRevocation::Confirmed),
            "refused" => Some(CaRevocation::Refused),
            "local" => Some(CaRevocation::Local),
            _ => None,
        }
    }

    /// How an operator reads it (CLI, logs).
    pub fn describe(self) -> &'static str {
        match self {
            CaRevocation::Pending => "revocation pending at the CA",
            CaRevocation::Confirmed => "revoked at the CA",
            CaRevocation::Refused => "the CA refused the revocation",
            CaRevocation::Local => "revoked in certeasy only (not sent to the CA)",
        }
    }
}

/// The revocation of one certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationState {
    /// When certeasy recorded it (unix ms).
    pub revoked_at: i64,
    /// RFC 5280 reason code.
    pub reason: i64,
    /// Where it stands at the CA.
    pub ca: CaRevocation,
    /// The CA's answer when it refused.
    pub detail: Option<String>,
    /// When the CA confirmed or refused (unix ms).
    pub ca_at: Option<i64>,
}

/// One entry of a CRL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedEntry {
    /// Serial, lower-case hex.
    pub serial: String,
    /// Revocation time (unix ms).
    pub revoked_at: i64,
    /// RFC 5280 reason code.
    pub reason: i64,
}

/// The current CRL of a built-in CA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrlRow {
    /// Authority name.
    pub authority: String,
    /// cRLNumber.
    pub number: i64,
    /// thisUpdate (unix ms).
    pub this_update: i64,
    /// nextUpdate (unix ms).
    pub next_update: i64,
    /// The CRL, DER (empty with number 0: a placeholder that
    /// [`Store::mark_crl_stale`] wrote before the first CRL was built).
    pub der: Vec<u8>,
    /// Revocations recorded since it was built (0: up to date).
    pub stale: i64,
}

impl Store {
    delegate! {
        /// The revocation of certificate `id`: None when it is not revoked
        /// (or does not exist).
        pub async fn revocation(&self, id: &str) -> Result<Option<RevocationState>>;

        /// Records the CA's answer to a pending revocation (`Confirmed` or
        /// `Refused`, with the CA's message) at `at`; false when the
        /// revocation is not pending (already settled).
        pub async fn settle_ca_revocation(
            tx: &mut Tx,
            id: &str,
            outcome: CaRevocation,
            detail: Option<&str>,
            at: i64,
        ) -> Result<bool>;

        /// Number of revocations pending at a CA, for the metrics.
        pub async fn count_ca_revocations_pending(&self) -> Result<i64>;

        /// The revoked certificates of `authority` whose notAfter is after
        /// `not_after_after` (unix ms), ordered by serial: a CRL's entries.
        pub async fn revoked_certs(&self, authority: &str, not_after_after: i64) -> Result<Vec<RevokedEntry>>;

        /// The stored CRL of `authority`.
        pub async fn crl(&self, authority: &str) -> Result<Option<CrlRow>>;

        /// Stores `row` as the CRL of its authority unless one with the same
        /// or a higher number is stored (another node built it first);
        /// false then. `row.stale` is the count read before the CRL's
        /// entries were read: it is subtracted, so a revocation recorded
        /// meanwhile leaves the new CRL stale.
        pub async fn store_crl(&self, row: &CrlRow) -> Result<bool>;

        /// Counts one more revocation against the CRL of `authority` (one
        /// is created as a placeholder, number 0, if none exists yet), in
        /// the revocation's transaction.
        pub async fn mark_crl_stale(tx: &mut Tx, authority: &str) -> Result<()>;
    }
}
