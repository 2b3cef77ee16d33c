//! Registration authority: accounts, orders, authorizations, challenges,
//! finalize and revocation — the RFC 8555 state machines and the issuance
//! policy checks. Called by the WFE with an authenticated account; persists
//! through the store and enqueues jobs. Knows nothing of HTTP.
//!
//! [`Ra`] holds what these need — the configuration, the store, the policy
//! catalogue, the job engine and the account cache — built once by the
//! server's composition root and passed down; nothing here reaches up to
//! the web front end or the server. The jobs' work (validation, issuance)
//! lives here too: [`Ra`] is the job engine's [`JobHandler`], so the engine
//! knows job kinds, not what they do.

pub mod accounts;
pub mod ari;
pub mod crl;
pub mod eab;
pub mod issuance;
pub mod orders;
pub mod revoke;
pub mod validation;

#[cfg(test)]
mod state_tests;

use std::sync::Arc;

use acme_wire::{AuthorizationStatus, OrderStatus};

use crate::audit::Audit;
use crate::config::Config;
use crate::jobs::{JobHandler, Jobs, Outcome};
use crate::limits::Limits;
use crate::policy::Catalogue;
use crate::store::jobs::{ClaimedJob, JobKind};
use crate::store::Store;

/// The registration authority's state: everything its operations and its
/// jobs need.
#[derive(Debug)]
pub struct Ra {
    /// Validated configuration.
    pub config: Arc<Config>,
    /// Database.
    pub store: Store,
    /// Policies, their authorities and validators.
    pub catalogue: Arc<Catalogue>,
    /// The job engine (queue, worker slots).
    pub jobs: Arc<Jobs>,
    /// Accounts and their parsed keys, cached for authentication.
    pub accounts: accounts::AccountCache,
    /// Rate limits.
    pub limits: Arc<Limits>,
    /// The audit log: every state change records its event in its own
    /// transaction.
    pub audit: Audit,
    /// The installation's EAB sealing key, read on first use.
    pub eab_sealing: eab::SealingKey,
}

impl Ra {
    /// The registration authority over these parts.
    pub fn new(
        config: Arc<Config>,
        store: Store,
        catalogue: Arc<Catalogue>,
        jobs: Arc<Jobs>,
        audit: Audit,
    ) -> Ra {
        Ra {
            limits: Arc::new(if config.postgres.is_some() {
                Limits::new(&config.rate_limiting).cluster_wide(store.clone())
            } else {
                Limits::new(&config.rate_limiting)
            }),
            config,
            store,
            catalogue,
            jobs,
            accounts: Default::default(),
            audit,
            eab_sealing: Default::default(),
        }
    }

    /// Records a rate-limit refusal (`ratelimit.deny`, in a transaction of
    /// its own) and returns it as the request's error.
    pub async fn deny(
        &self,
        account: Option<&str>,
        d: crate::limits::Denial,
    ) -> crate::error::AcmeError {
        let mut e = crate::audit::Event::new("ratelimit.deny")
            .decision("deny")
            .reason(d.detail.clone())
            .detail("limit", d.limit);
        if let Some(secs) = d.retry_after_secs() {
            e = e.detail("retry_after", secs);
        }
        if let Some(a) = account {
            e = e.account(a);
        }
        self.audit.record_alone(&self.store, e).await;
        crate::telemetry::metrics::ratelimit_denied(d.limit);
        tracing::info!(target: "ra", limit = d.limit, account, "rate limit: {}", d.detail);
        d.into()
    }
}

impl JobHandler for Ra {
    async fn run(&self, job: &ClaimedJob) -> anyhow::Result<Outcome> {
        match job.kind {
            JobKind::Validate => validation::run(self, job).await,
            JobKind::Issue => issuance::run(self, job).await,
            JobKind::Revoke => revoke::run(self, job).await,
        }
    }
}

/// Lifetime of a pending order and of its authorizations.
pub const ORDER_LIFETIME_MS: i64 = 7 * 24 * 3600 * 1000;

/// Most identifiers accepted in one order.
pub const MAX_IDENTIFIERS: usize = 100;

/// Status shown for an order, applying expiry lazily: a `pending` or `ready`
/// order past its expiry is `invalid` (RFC 8555 §7.1.6).
pub fn effective_order_status(status: OrderStatus, expires: i64, now: i64) -> OrderStatus {
    match status {
        OrderStatus::Pending | OrderStatus::Ready if expires <= now => OrderStatus::Invalid,
        s => s,
    }
}

/// Status shown for an authorization, applying expiry lazily: a `pending`
/// or `valid` authorization past its expiry is `expired`.
pub fn effective_authz_status(
    status: AuthorizationStatus,
    expires: i64,
    now: i64,
) -> AuthorizationStatus {
    match status {
        AuthorizationStatus::Pending | AuthorizationStatus::Valid if expires <= now => {
            AuthorizationStatus::Expired
        }
        s => s,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiry_applies_only_to_open_states() {
        use AuthorizationStatus as A;
        use OrderStatus as O;
        for s in O::ALL.iter().copied() {
            assert_eq!(effective_order_status(s, 10, 9), s, "{s} before expiry");
            let expired = matches!(s, O::Pending | O::Ready);
            let shown = effective_order_status(s, 10, 10);
            assert_eq!(shown, if expired { O::Invalid } else { s }, "{s}");
        }
        for s in A::ALL.iter().copied() {
            assert_eq!(effective_authz_status(s, 10, 9), s, "{s} before expiry");
            let expired = matches!(s, A::Pending | A::Valid);
            let shown = effective_authz_status(s, 10, 10);
            assert_eq!(shown, if expired { A::Expired } else { s }, "{s}");
        }
    }
}
