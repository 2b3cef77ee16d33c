//! Issued certificates.

use acme_wire::CertificateStatus;

use super::Store;

/// A stored certificate.
#[derive(Debug, Clone)]
pub struct CertRow {
    /// Identifier (last segment of the certificate URL).
    pub id: String,
    /// Order it was issued for (unique: one certificate per order).
    pub order_id: String,
    /// Owning account.
    pub account_id: String,
    /// Authority that signed it.
    pub authority: String,
    /// Serial, lower-case hex.
    pub serial: String,
    /// Names, sorted.
    pub names: Vec<String>,
    /// Leaf DER.
    pub leaf_der: Vec<u8>,
    /// Leaf followed by the chain, PEM.
    pub chain_pem: String,
    /// notBefore (unix ms).
    pub not_before: i64,
    /// notAfter (unix ms).
    pub not_after: i64,
    /// Revocation time (unix ms).
    pub revoked_at: Option<i64>,
    /// RFC 5280 reason code.
    pub revocation_reason: Option<i64>,
}

/// What ARI needs of a certificate.
#[derive(Debug, Clone)]
pub struct AriCert {
    /// Identifier.
    pub id: String,
    /// Owning account.
    pub account_id: String,
    /// Names, sorted.
    pub names: Vec<String>,
    /// Leaf DER (its AKI is compared with the CertID's).
    pub leaf_der: Vec<u8>,
    /// notBefore (unix ms).
    pub not_before: i64,
    /// notAfter (unix ms).
    pub not_after: i64,
    /// Revocation time (unix ms).
    pub revoked_at: Option<i64>,
    /// When an operator asked for early renewal (unix ms).
    pub renew_early_at: Option<i64>,
}

/// Which certificates `certeasy cert renew-early` selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenewEarly {
    /// The certificate(s) with this serial (lower-case hex, no leading zeros).
    Serial(String),
    /// Those carrying this DNS name.
    Name(String),
    /// Those signed by this authority.
    Authority(String),
    /// Those issued under this issuance policy.
    Policy(String),
}

impl CertRow {
    /// Revoked or not, from [`CertRow::revoked_at`].
    pub fn status(&self) -> CertificateStatus {
        match self.revoked_at {
            Some(_) => CertificateStatus::Revoked,
            None => CertificateStatus::Valid,
        }
    }
}

impl Store {
    delegate! {
        /// Inserts a certificate; a second certificate for one order fails
        /// with [`StoreError::Conflict`](super::StoreError::Conflict).
        pub async fn insert_cert(tx: &mut Tx, c: &CertRow) -> Result<()>;

        /// Certificate by id.
        pub async fn cert(&self, id: &str) -> Result<Option<CertRow>>;

        /// Certificate id of an order (order view: no need for the DER and PEM).
        pub async fn cert_id_of_order(&self, order_id: &str) -> Result<Option<String>>;

        /// Certificate id of an order, inside a write transaction.
        pub async fn cert_id_of_order_tx(tx: &mut Tx, order_id: &str) -> Result<Option<String>>;

        /// Certificates with a serial (revocation requests carry the certificate).
        pub async fn cert_by_serial(&self, serial_hex: &str) -> Result<Vec<CertRow>>;

        /// Marks a certificate revoked now, its revocation standing at
        /// `ca` with its authority ([`CaRevocation`](super::CaRevocation):
        /// `Pending` with a revoke job queued in the same transaction,
        /// `Local` when it stays in certeasy); false when it already was.
        pub async fn revoke_cert(tx: &mut Tx, id: &str, reason: i64, ca: super::CaRevocation) -> Result<bool>;

        /// The certificates with a serial, as ARI needs them (renewal-info
        /// and new-order's `replaces`): one lookup on the serial index; the
        /// caller compares the AKI of the few rows found.
        pub async fn ari_certs_by_serial(&self, serial_hex: &str) -> Result<Vec<AriCert>>;

        /// Records that order `order_id` replaces certificate `cert_id`,
        /// only if no other order does: none recorded, or the one recorded
        /// is invalid or expired at `now`. False when it is already
        /// replaced.
        pub async fn mark_replaced(tx: &mut Tx, cert_id: &str, order_id: &str, now: i64) -> Result<bool>;

        /// Asks for the early renewal, from `at`, of the unrevoked,
        /// unexpired certificates `which` selects; returns how many.
        pub async fn renew_early(&self, which: &RenewEarly, at: i64) -> Result<u64>;

        /// Number of certificates stored (used by crash tests).
        pub async fn count_certs(&self) -> Result<i64>;

        /// Unrevoked certificates whose notAfter is in `(now, until]` (unix
        /// ms), for the metrics.
        pub async fn count_certs_expiring(&self, now: i64, until: i64) -> Result<i64>;
    }
}
