//! The certificates of `pki`-mode listener bundles, shared by every node on
//! the database: one node obtains a certificate (it holds the claim), the
//! others load the stored one, so a cluster serves one certificate per
//! bundle and asks its authority once per renewal, not once per node.

use super::Store;

/// A stored listener certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerCertRow {
    /// Sorted SAN names of the leaf.
    pub names: Vec<String>,
    /// Leaf and chain, PEM.
    pub chain_pem: String,
    /// The leaf's PKCS#8 private key, PEM.
    pub key_pem: String,
    /// The leaf's notAfter (unix seconds).
    pub not_after: i64,
    /// When it was stored (unix seconds).
    pub issued_at: i64,
    /// The node (worker id) that stored it.
    pub issued_by: String,
}

impl Store {
    delegate! {
        /// The certificate stored for `bundle`, if any.
        pub async fn listener_cert(&self, bundle: &str) -> Result<Option<ListenerCertRow>>;

        /// Claims the right to obtain `bundle`'s certificate for `node`
        /// until `until` (unix seconds): true when no other node holds an
        /// unexpired claim at `now` (the caller then obtains and stores
        /// the certificate, or releases the claim), false when another
        /// node is obtaining it. Re-claiming one's own claim succeeds.
        pub async fn listener_cert_claim(
            &self,
            bundle: &str,
            node: &str,
            now: i64,
            until: i64,
        ) -> Result<bool>;

        /// Stores `row` as `bundle`'s certificate and ends any claim on it.
        pub async fn listener_cert_put(&self, bundle: &str, row: &ListenerCertRow) -> Result<()>;

        /// Ends `node`'s claim on `bundle` (the certificate could not be
        /// obtained); another node's claim is left alone.
        pub async fn listener_cert_release(&self, bundle: &str, node: &str) -> Result<()>;
    }
}

/// Columns of `listener_certificates` as both engines read them, in
/// [`LISTENER_COLUMNS`] order.
pub(super) type ListenerColumns = (
    String,
    Option<String>,
    Option<String>,
    Option<i64>,
    Option<i64>,
    Option<String>,
);

/// The columns every engine selects, in [`ListenerColumns`] order.
pub(super) const LISTENER_COLUMNS: &str =
    "names, chain_pem, key_pem, not_after, issued_at, issued_by";

/// The upsert that stores a certificate and ends the claim (the same SQL
/// for both engines but for the placeholders, `?` here).
pub(super) const LISTENER_PUT: &str = "INSERT INTO listener_certificates \
     (bundle, names, chain_pem, key_pem, not_after, issued_at, issued_by, claimed_by, claim_until) \
     VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL) \
     ON CONFLICT (bundle) DO UPDATE SET names = excluded.names, chain_pem = excluded.chain_pem, \
     key_pem = excluded.key_pem, not_after = excluded.not_after, issued_at = excluded.issued_at, \
     issued_by = excluded.issued_by, claimed_by = NULL, claim_until = NULL";

/// The conditional update that takes a claim: bundle, node, until, node,
/// now (placeholders `?`).
pub(super) const LISTENER_CLAIM: &str = "UPDATE listener_certificates \
     SET claimed_by = ?, claim_until = ? \
     WHERE bundle = ? AND (claimed_by IS NULL OR claimed_by = ? OR claim_until < ?)";

impl ListenerCertRow {
    /// The row of the selected columns; `None` while no certificate is
    /// stored (a row that holds only a claim).
    pub(super) fn from_columns(
        (names, chain, key, not_after, issued_at, issued_by): ListenerColumns,
    ) -> Option<ListenerCertRow> {
        Some(ListenerCertRow {
            names: names
                .split(',')
                .filter(|n| !n.is_empty())
                .map(str::to_string)
                .collect(),
            chain_pem: chain?,
            key_pem: key?,
            not_after: not_after?,
            issued_at: issued_at.unwrap_or(0),
            issued_by: issued_by.unwrap_or_default(),
        })
    }

    /// The stored form of [`ListenerCertRow::names`].
    pub(super) fn names_column(&self) -> String {
        self.names.join(",")
    }
}

/// `sql` with PostgreSQL's numbered placeholders instead of `?`.
pub(super) fn numbered(sql: &str) -> String {
    let mut out = String::with_capacity(sql.len() + 16);
    let mut n = 0;
    for c in sql.chars() {
        if c == '?' {
            n += 1;
            out.push_str(&format!("${n}"));
        } else {
            out.push(c);
        }
    }
    out
}
