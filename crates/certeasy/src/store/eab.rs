//! External account binding keys (RFC 8555 §7.3.4), managed with
//! `certeasy eab` and bound at new-account.

use super::Store;

/// A stored EAB key. The HMAC key is kept sealed: see
/// [`EabKeyRow::sealed_key`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EabKeyRow {
    /// Key identifier handed to the client (`kid` of the binding JWS).
    pub kid: String,
    /// Operator's label (who or what the key is for).
    pub label: String,
    /// The HMAC key sealed by the installation's EAB key (nonce followed by
    /// ciphertext and tag); never the key in clear.
    pub sealed_key: Vec<u8>,
    /// Issuance policies the bound account may use; empty: any.
    pub policies: Vec<String>,
    /// ACME profiles the bound account may ask for; empty: any.
    pub profiles: Vec<String>,
    /// Name scope rules (`.zone/N`, `*.zone`, `=name`) every name of the
    /// bound account's orders must match; empty: any.
    pub names: Vec<String>,
    /// The key cannot bind after this time (unix ms).
    pub expires_at: Option<i64>,
    /// Creation time (unix ms).
    pub created_at: i64,
    /// Revocation time (unix ms).
    pub revoked_at: Option<i64>,
    /// The account the key bound, once it did.
    pub account_id: Option<String>,
    /// When it bound (unix ms).
    pub bound_at: Option<i64>,
}

impl Store {
    delegate! {
        /// Inserts a new key; an existing `kid` is
        /// [`StoreError::Conflict`](super::StoreError::Conflict).
        pub async fn insert_eab_key(&self, k: &EabKeyRow) -> Result<()>;

        /// The key `kid` (primary key lookup).
        pub async fn eab_key(&self, kid: &str) -> Result<Option<EabKeyRow>>;

        /// Every key, oldest first.
        pub async fn eab_keys(&self) -> Result<Vec<EabKeyRow>>;

        /// Binds key `kid` to `account_id` at `now`, only if it is unbound,
        /// not revoked and not expired; false otherwise (nothing written).
        pub async fn bind_eab_key(tx: &mut Tx, kid: &str, account_id: &str, now: i64) -> Result<bool>;

        /// Revokes key `kid` at `now`: `None` when there is no such key or
        /// it was already revoked, else `Some(the account it bound)`.
        pub async fn revoke_eab_key(tx: &mut Tx, kid: &str, now: i64) -> Result<Option<Option<String>>>;

        /// Deactivates account `id` if it is valid (an operator's decision,
        /// whatever key it has); false when it was not valid.
        pub async fn deactivate_account_tx(tx: &mut Tx, id: &str) -> Result<bool>;
    }
}
