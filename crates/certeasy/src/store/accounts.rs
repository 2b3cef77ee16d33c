//! Accounts.

use acme_wire::AccountStatus;

use super::Store;

/// A stored account.
#[derive(Debug, Clone)]
pub struct AccountRow {
    /// Identifier (last path segment of the account URL).
    pub id: String,
    /// RFC 7638 thumbprint of the account key.
    pub thumbprint: String,
    /// Canonical public JWK JSON.
    pub jwk: String,
    /// Contact URIs.
    pub contact: Vec<String>,
    /// Status.
    pub status: AccountStatus,
    /// Whether the terms of service were agreed.
    pub tos_agreed: bool,
    /// Creation time (unix ms).
    pub created_at: i64,
    /// The external account binding key the account was created with: its
    /// restrictions apply to every order of the account.
    pub eab_kid: Option<String>,
}

/// What a POST to an account URL changes; what it leaves out keeps its
/// stored value (never the value the request was authenticated with).
#[derive(Debug, Clone, Copy, Default)]
pub struct AccountChange<'a> {
    /// New contact URIs.
    pub contact: Option<&'a [String]>,
    /// The terms of service are agreed now.
    pub agree_tos: bool,
    /// The account is deactivated.
    pub deactivate: bool,
}

impl AccountChange<'_> {
    /// True when nothing would be written.
    pub fn is_empty(&self) -> bool {
        self.contact.is_none() && !self.agree_tos && !self.deactivate
    }
}

impl Store {
    delegate! {
        /// Account by id.
        pub async fn account(&self, id: &str) -> Result<Option<AccountRow>>;

        /// Account by key thumbprint.
        pub async fn account_by_thumbprint(&self, thumbprint: &str) -> Result<Option<AccountRow>>;

        /// Same lookup inside a write transaction (race-free create).
        pub async fn account_by_thumbprint_tx(
            tx: &mut Tx,
            thumbprint: &str,
        ) -> Result<Option<AccountRow>>;

        /// Inserts an account (`created_at` 0: now).
        pub async fn insert_account(tx: &mut Tx, a: &AccountRow) -> Result<()>;

        /// Applies `change` to account `id` if it is still `valid` and still
        /// has the key of thumbprint `thumbprint` (the key the request was
        /// authenticated with): the account as it is now, or None when it was
        /// deactivated or re-keyed meanwhile (nothing written). Only the
        /// columns the change names are written.
        pub async fn update_account(
            &self,
            id: &str,
            thumbprint: &str,
            change: &AccountChange<'_>,
        ) -> Result<Option<AccountRow>>;

        /// [`Store::update_account`] inside a write transaction.
        pub async fn update_account_tx(
            tx: &mut Tx,
            id: &str,
            thumbprint: &str,
            change: &AccountChange<'_>,
        ) -> Result<Option<AccountRow>>;

        /// Replaces the key of account `id` if it is still `valid` and still
        /// has the key `old_thumbprint`: the account with its new key, or None
        /// when it was deactivated or re-keyed meanwhile. Fails with
        /// [`StoreError::Conflict`](super::StoreError::Conflict) when the new
        /// key already belongs to another account (the caller checked first,
        /// the constraint closes the race).
        pub async fn change_account_key(
            tx: &mut Tx,
            id: &str,
            old_thumbprint: &str,
            thumbprint: &str,
            jwk: &str,
        ) -> Result<Option<AccountRow>>;

        /// Cancels what a just-deactivated account left open (RFC 8555
        /// §7.3.6), in the deactivation's transaction: its pending and ready
        /// orders become `invalid` with `problem` as their error, its pending
        /// authorizations `deactivated`; the validation and issuance jobs no
        /// worker holds (queued, or with an expired lease) are removed, and
        /// their challenges and orders become `invalid`. A job a worker holds
        /// runs to its end: an issuance job checks the account first
        /// (`jobs::issue`), a validation no longer changes a deactivated
        /// authorization.
        pub async fn cancel_account_work(tx: &mut Tx, account_id: &str, problem: &str) -> Result<()>;
    }
}
