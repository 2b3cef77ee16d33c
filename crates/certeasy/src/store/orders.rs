//! Orders, authorizations and challenges.

use acme_wire::{AuthorizationStatus, ChallengeStatus, OrderStatus};

use super::Store;

/// A stored order.
#[derive(Debug, Clone)]
pub struct OrderRow {
    /// Identifier.
    pub id: String,
    /// Owning account.
    pub account_id: String,
    /// RFC 8555 status.
    pub status: OrderStatus,
    /// Issuance policy selected at creation.
    pub policy: String,
    /// Normalised names, sorted.
    pub names: Vec<String>,
    /// Requested notBefore (unix ms).
    pub not_before: Option<i64>,
    /// Requested notAfter (unix ms).
    pub not_after: Option<i64>,
    /// Expiry of the order (unix ms).
    pub expires: i64,
    /// Problem document JSON when invalid.
    pub error: Option<String>,
    /// Finalize CSR (DER).
    pub csr: Option<Vec<u8>>,
    /// ARI `replaces`.
    pub replaces: Option<String>,
    /// ACME profile.
    pub profile: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// A request pending at a CA: (authority, request id, submitted at ms).
    pub ca_pending: Option<(String, i64, i64)>,
}

/// A stored authorization.
#[derive(Debug, Clone)]
pub struct AuthzRow {
    /// Identifier.
    pub id: String,
    /// Order it belongs to.
    pub order_id: String,
    /// Owning account.
    pub account_id: String,
    /// Base DNS name (without `*.`).
    pub identifier: String,
    /// The order asked for the wildcard.
    pub wildcard: bool,
    /// RFC 8555 status.
    pub status: AuthorizationStatus,
    /// Expiry (unix ms).
    pub expires: i64,
}

/// A stored challenge.
#[derive(Debug, Clone)]
pub struct ChallengeRow {
    /// Identifier.
    pub id: String,
    /// Authorization it belongs to.
    pub authz_id: String,
    /// `http-01`, `dns-01` or `tls-alpn-01`.
    pub kind: String,
    /// Token.
    pub token: String,
    /// RFC 8555 status.
    pub status: ChallengeStatus,
    /// Validation time (unix ms).
    pub validated: Option<i64>,
    /// Problem document JSON.
    pub error: Option<String>,
}

/// What [`Store::insert_order`] writes.
#[derive(Debug, Clone)]
pub struct NewOrder {
    /// Order row.
    pub order: OrderRow,
    /// Its authorizations with their challenges.
    pub authzs: Vec<NewAuthz>,
}

/// An authorization to insert with its challenges.
#[derive(Debug, Clone)]
pub struct NewAuthz {
    /// Authorization row.
    pub authz: AuthzRow,
    /// Challenge rows.
    pub challenges: Vec<ChallengeRow>,
}

impl Store {
    delegate! {
        /// Writes an order with its authorizations and challenges (their
        /// order in `new` is the order they are listed in later).
        pub async fn insert_order(tx: &mut Tx, new: &NewOrder) -> Result<()>;

        /// Order by id.
        pub async fn order(&self, id: &str) -> Result<Option<OrderRow>>;

        /// Order by id, inside a write transaction.
        pub async fn order_tx(tx: &mut Tx, id: &str) -> Result<Option<OrderRow>>;

        /// Ids of an account's orders, newest first, with a page limit.
        pub async fn order_ids_of_account(&self, account_id: &str, limit: i64) -> Result<Vec<String>>;

        /// Sets an order's status (and error) when it is currently one of
        /// `from` (at most three). Returns false when the order was not in
        /// such a state (lost a race).
        pub async fn set_order_status(
            tx: &mut Tx,
            id: &str,
            from: &[OrderStatus],
            to: OrderStatus,
            error: Option<&str>,
        ) -> Result<bool>;

        /// Stores the CSR and moves a `ready` order to `processing`.
        pub async fn begin_processing(tx: &mut Tx, id: &str, csr: &[u8]) -> Result<bool>;

        /// Records that a processing order's request is pending at a CA
        /// (once: a request already recorded stays).
        pub async fn set_ca_pending(
            &self,
            order_id: &str,
            authority: &str,
            request_id: i64,
        ) -> Result<()>;

        /// Orders whose request is pending at a CA, oldest submission first:
        /// (order id, authority, request id).
        pub async fn pending_ca_requests(&self) -> Result<Vec<(String, String, i64)>>;

        /// Ids of an order's authorizations, in creation order (order view).
        pub async fn authz_ids_of_order(&self, order_id: &str) -> Result<Vec<String>>;

        /// An order's authorizations in creation order, inside a write
        /// transaction.
        pub async fn authzs_of_order_tx(tx: &mut Tx, order_id: &str) -> Result<Vec<AuthzRow>>;

        /// Authorization by id.
        pub async fn authz(&self, id: &str) -> Result<Option<AuthzRow>>;

        /// Authorization by id, inside a write transaction.
        pub async fn authz_tx(tx: &mut Tx, id: &str) -> Result<Option<AuthzRow>>;

        /// Sets an authorization's status when it is currently one of `from`
        /// (at most three).
        pub async fn set_authz_status(
            tx: &mut Tx,
            id: &str,
            from: &[AuthorizationStatus],
            to: AuthorizationStatus,
        ) -> Result<bool>;

        /// Challenges of an authorization, in creation order.
        pub async fn challenges_of_authz(&self, authz_id: &str) -> Result<Vec<ChallengeRow>>;

        /// Challenge by id.
        pub async fn challenge(&self, id: &str) -> Result<Option<ChallengeRow>>;

        /// Challenge by id, inside a write transaction.
        pub async fn challenge_tx(tx: &mut Tx, id: &str) -> Result<Option<ChallengeRow>>;

        /// Moves a pending challenge to `processing`; false when it was not
        /// pending, or when another challenge of its authorization was already
        /// answered (an authorization is validated by one challenge: three
        /// validations per name would multiply what a client can make the
        /// validator contact).
        pub async fn start_challenge(tx: &mut Tx, id: &str) -> Result<bool>;

        /// How many pending authorizations of unexpired pending orders the
        /// account holds.
        pub async fn pending_authzs_of_account_tx(
            tx: &mut Tx,
            account_id: &str,
            now: i64,
        ) -> Result<i64>;

        /// When the `nth` (1-based) of the account's pending authorizations to
        /// expire does (unix ms): the moment that many have left the count.
        pub async fn nth_pending_authz_expiry_tx(
            tx: &mut Tx,
            account_id: &str,
            now: i64,
            nth: i64,
        ) -> Result<Option<i64>>;

        /// Records a challenge's outcome (`validated` now when valid) when it
        /// is still `processing`; false otherwise.
        pub async fn finish_challenge(
            tx: &mut Tx,
            id: &str,
            valid: bool,
            error: Option<&str>,
            record: Option<&str>,
        ) -> Result<bool>;
    }
}
