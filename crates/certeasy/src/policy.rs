//! The policy catalogue: the one place that answers "which issuance policy
//! allows these names, which authorities sign for it, which validator
//! proves control of them".
//!
//! Before it, the registration authority, the job handlers and the server
//! each walked `issuance-policies`, `bindings` and `authorities` of the
//! configuration on their own (five places), and each walk could drift from
//! the others. The catalogue is built once by the server's composition root
//! from the validated configuration, the opened authorities and one
//! validator per validation profile; it answers with configuration types
//! and `acme_wire::Problem`s, and knows nothing of HTTP or the store.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use acme_wire::{Identifier, Problem, ProblemType, Subproblem};
use anyhow::Context;
use certeasy_va::Validator;
use pki::{DnsName, ScopeDecision};

use crate::ca::Authorities;
use crate::config::{AuthoritySettings, Config, PolicySettings};

/// Policies, their authorities and their validators.
pub struct Catalogue {
    config: Arc<Config>,
    validators: BTreeMap<String, Arc<Validator>>,
    authorities: Arc<Authorities>,
}

impl std::fmt::Debug for Catalogue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalogue")
            .field("policies", &self.config.policies.len())
            .field("validators", &self.validators.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl Catalogue {
    /// The catalogue of `config`, signing through `authorities`; builds one
    /// validator per validation profile.
    pub fn new(config: Arc<Config>, authorities: Arc<Authorities>) -> anyhow::Result<Catalogue> {
        let mut validators = BTreeMap::new();
        for (name, profile) in &config.validation_profiles {
            let v = Validator::new(profile.clone())
                .with_context(|| format!("validation profile {name}"))?;
            validators.insert(name.clone(), Arc::new(v));
        }
        Ok(Catalogue {
            config,
            validators,
            authorities,
        })
    }

    /// The authorities (signing, health).
    pub fn authorities(&self) -> &Arc<Authorities> {
        &self.authorities
    }

    /// The policy named `name`, if it is still configured.
    pub fn policy(&self, name: &str) -> Option<&PolicySettings> {
        self.config.policies.iter().find(|p| p.name == name)
    }

    /// The policy named `name`, or an error saying it is gone (an order
    /// outlived a configuration change).
    pub fn require_policy(&self, name: &str) -> anyhow::Result<&PolicySettings> {
        self.policy(name)
            .ok_or_else(|| anyhow::anyhow!("policy {name} is no longer configured"))
    }

    /// The one policy that allows every name; see [`select_policy`].
    pub fn select(&self, names: &[DnsName]) -> Result<&PolicySettings, Problem> {
        select_policy(&self.config.policies, names)
    }

    /// The validator of a policy's validation profile.
    pub fn validator(&self, policy: &str) -> anyhow::Result<&Validator> {
        let p = self.require_policy(policy)?;
        self.validators
            .get(&p.validation_profile)
            .map(|v| v.as_ref())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "validation profile {} is not configured",
                    p.validation_profile
                )
            })
    }

    /// The authorities bound to `policy`, in binding order.
    pub fn bound_authorities<'a>(
        &'a self,
        policy: &str,
    ) -> impl Iterator<Item = &'a AuthoritySettings> + 'a {
        self.config
            .bindings
            .get(policy)
            .into_iter()
            .flat_map(|b| b.authorities.iter())
            .filter_map(|a| self.config.authority(a))
    }

    /// The longest lifetime every authority of `policy` accepts (the
    /// smallest `max-validity` among them); None without authorities.
    pub fn max_validity(&self, policy: &str) -> Option<Duration> {
        self.bound_authorities(policy).map(|a| a.max_validity).min()
    }

    /// Why an order's names are no longer acceptable under its policy (the
    /// policy was removed or narrowed since the order was created), if they
    /// are not.
    pub fn scope_refusal(&self, policy: &str, names: &[String]) -> Option<Problem> {
        let Some(p) = self.policy(policy) else {
            return Some(Problem::new(
                ProblemType::RejectedIdentifier,
                format!("issuance policy {policy:?} of this order is no longer configured"),
            ));
        };
        let mut subs = Vec::new();
        for n in names {
            let decision = DnsName::parse(n).map(|d| p.scope.check(&d));
            let detail = match decision {
                Ok(ScopeDecision::Allowed { .. }) => continue,
                Ok(ScopeDecision::Denied { rule }) => {
                    format!("denied by rule {rule:?} of policy {policy:?}")
                }
                Ok(ScopeDecision::NotAllowed) => format!("no longer allowed by policy {policy:?}"),
                Err(e) => e.to_string(),
            };
            subs.push(Subproblem {
                kind: ProblemType::RejectedIdentifier,
                detail,
                identifier: Some(Identifier::dns(n.clone())),
            });
        }
        if subs.is_empty() {
            return None;
        }
        Some(
            Problem::new(
                ProblemType::RejectedIdentifier,
                format!("the issuance policy {policy:?} no longer allows every name of this order"),
            )
            .with_subproblems(subs),
        )
    }

    /// The refusal of a CSR key of type `key` when no authority bound to
    /// `policy` can issue for it (an ADCS-only binding and an Ed25519 key):
    /// better `badPublicKey` now than a denial by the CA after finalize.
    pub fn key_refusal(&self, policy: &str, key: pki::PublicKeyKind) -> Option<Problem> {
        let authorities: Vec<_> = self.bound_authorities(policy).collect();
        // A policy without authorities fails at issuance, with its own message.
        if authorities.is_empty() || authorities.iter().any(|a| a.kind.issues_for(key)) {
            return None;
        }
        let names: Vec<String> = authorities
            .iter()
            .map(|a| format!("{} (type {})", a.name, a.kind.type_name()))
            .collect();
        Some(Problem::new(
            ProblemType::BadPublicKey,
            format!(
                "the authorities of issuance policy {policy:?}, {}, cannot issue certificates for {key} keys; use a key of another type (RSA or ECDSA)",
                names.join(", ")
            ),
        ))
    }
}

/// Selects the first issuance policy (in configuration order) that allows
/// every name. When none does, the problem says, per name, which rule of
/// which policy decided.
pub fn select_policy<'a>(
    policies: &'a [PolicySettings],
    names: &[DnsName],
) -> Result<&'a PolicySettings, Problem> {
    if let Some(p) = policies.iter().find(|p| {
        names
            .iter()
            .all(|n| matches!(p.scope.check(n), ScopeDecision::Allowed { .. }))
    }) {
        return Ok(p);
    }
    let mut subs = Vec::new();
    for n in names {
        let mut reasons = Vec::new();
        let mut allowed_by = Vec::new();
        for p in policies {
            match p.scope.check(n) {
                ScopeDecision::Allowed { .. } => allowed_by.push(p.name.clone()),
                ScopeDecision::Denied { rule } => {
                    reasons.push(format!("denied by rule {rule:?} of policy {:?}", p.name))
                }
                ScopeDecision::NotAllowed => {}
            }
        }
        let detail = if !reasons.is_empty() {
            reasons.join("; ")
        } else if allowed_by.is_empty() {
            format!("{} is not allowed by any issuance policy", n.as_str())
        } else {
            // Allowed, but by a policy that does not allow the other names.
            format!("{} is allowed only by policy {}, which does not allow every name of this order; request it in a separate order", n.as_str(), allowed_by.join(", "))
        };
        subs.push(Subproblem {
            kind: ProblemType::RejectedIdentifier,
            detail,
            identifier: Some(Identifier::dns(n.as_str())),
        });
    }
    let detail = match subs.as_slice() {
        [one] => one.detail.clone(),
        _ => "no single issuance policy allows every identifier of this order".to_string(),
    };
    Err(Problem::new(ProblemType::RejectedIdentifier, detail).with_subproblems(subs))
}
