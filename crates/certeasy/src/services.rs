//! Everything a request handler or a job needs, built once at startup.

use std::collections::BTreeMap;
use std::sync::Arc;

use certeasy_va::Validator;

use crate::ca::Authorities;
use crate::config::{Config, PolicySettings};
use crate::jobs::JobWaker;
use crate::store::Store;

/// Shared server state.
pub struct Services {
    /// Validated configuration.
    pub config: Arc<Config>,
    /// Database.
    pub store: Store,
    /// One validator per validation profile, built once.
    pub validators: BTreeMap<String, Arc<Validator>>,
    /// Authorities and bindings.
    pub authorities: Arc<Authorities>,
    /// Wakes the local workers.
    pub waker: JobWaker,
    /// Identity of this node (worker lease owner prefix).
    pub node_id: String,
    /// Accounts and their parsed keys, cached for authentication.
    pub accounts: crate::ra::accounts::AccountCache,
    /// Mints and verifies replay nonces.
    pub nonces: crate::wfe::nonce::NonceBook,
}

impl Services {
    /// Policy by name.
    pub fn policy(&self, name: &str) -> anyhow::Result<&PolicySettings> {
        self.config
            .policies
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| anyhow::anyhow!("policy {name} is no longer configured"))
    }

    /// The validator of a policy's profile.
    pub fn validator_for_policy(&self, policy: &str) -> anyhow::Result<&Validator> {
        let name = &self.policy(policy)?.validation_profile;
        self.validators
            .get(name)
            .map(|v| v.as_ref())
            .ok_or_else(|| anyhow::anyhow!("validation profile {name} is not configured"))
    }
}
