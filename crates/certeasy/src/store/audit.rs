//! The audit log's outbox and chain state, and the event log of the
//! database-counted rate limits.
//!
//! An audit event is inserted with [`Store::audit_append`] in the
//! transaction of the state change it reports; the node's writer reads its
//! rows in order ([`Store::audit_pending`]), appends them to its file, and
//! once the file is on disk deletes them while recording the chain's new
//! end ([`Store::audit_advance`]) — so an event exists exactly when its
//! change committed, and reaches the file exactly once.

use super::Store;

/// One audit event as recorded in the outbox (the fields of SPEC §8 that
/// are not the chain's).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditRow {
    /// Outbox position (assigned on insert; ignored by
    /// [`Store::audit_append`]).
    pub id: i64,
    /// When the change happened (unix ms).
    pub ts: i64,
    /// Event name (`order.create`, …).
    pub event: String,
    /// Account concerned.
    pub account_id: Option<String>,
    /// Client address of the request that caused it.
    pub source_ip: Option<String>,
    /// Its User-Agent.
    pub user_agent: Option<String>,
    /// `allow` / `deny` where the event is a decision.
    pub decision: Option<String>,
    /// Why (a refusal's or a failure's reason).
    pub reason: Option<String>,
    /// Event-specific fields, a JSON object.
    pub details: Option<String>,
}

/// The end of a node's chain: the last line written to its file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainRow {
    /// Last `seq` written (0 before the first line).
    pub seq: i64,
    /// That line's `mac` (the genesis MAC before the first line), hex.
    pub mac: String,
    /// Active segment number (from 1).
    pub segment: i64,
}

impl Store {
    delegate! {
        /// Records an event for `server_id`'s writer, inside the
        /// transaction of the change it reports.
        pub async fn audit_append(tx: &mut Tx, server_id: &str, e: &AuditRow) -> Result<()>;

        /// Up to `limit` of `server_id`'s undrained events after outbox
        /// position `after` (0: from the oldest), oldest first.
        pub async fn audit_pending(&self, server_id: &str, after: i64, limit: i64) -> Result<Vec<AuditRow>>;

        /// The end of `server_id`'s chain; registers the node with `genesis`
        /// (seq 0, segment 1) the first time.
        pub async fn audit_register(&self, server_id: &str, genesis: &str) -> Result<ChainRow>;

        /// The end of `server_id`'s chain, if the node is registered.
        pub async fn audit_chain(&self, server_id: &str) -> Result<Option<ChainRow>>;

        /// After lines were written to the file: deletes `server_id`'s
        /// events up to outbox position `through` and records the chain's
        /// new end.
        pub async fn audit_advance(
            tx: &mut Tx,
            server_id: &str,
            through: i64,
            end: &ChainRow,
        ) -> Result<()>;

        /// Counts one event of a database-counted limit.
        pub async fn limit_event_add(tx: &mut Tx, name: &str, key: &str, at: i64) -> Result<()>;

        /// Times of a limit's events for `key` at or after `since`, oldest
        /// first.
        pub async fn limit_events_since(&self, name: &str, key: &str, since: i64) -> Result<Vec<i64>>;

        /// Forgets a limit's events older than `before`; how many went.
        pub async fn limit_events_prune(&self, name: &str, before: i64) -> Result<u64>;

        /// Creation times of the account's non-revoked certificates for
        /// exactly this (sorted) name set, at or after `since`, oldest first
        /// (the duplicate-certificate limit).
        pub async fn duplicate_certs_since(
            &self,
            account_id: &str,
            names: &[String],
            since: i64,
        ) -> Result<Vec<i64>>;
    }
}
