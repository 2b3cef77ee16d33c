//! `policy-bindings`: which authorities sign for each issuance policy, and
//! in what order, so that a policy fails over to a second CA when the first
//! is down.
//!
//! With one policy and one authority the binding may be omitted; otherwise
//! every policy needs exactly one.

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use super::authorities::AuthoritySettings;
use super::checker::Checker;
use super::policies::PolicySettings;

/// One policy binding.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct PolicyBinding {
    /// Policy name.
    policy: String,
    /// Authority names, in order.
    authorities: Vec<String>,
    /// Selection strategy.
    #[serde(default = "default_strategy")]
    strategy: Strategy,
}

fn default_strategy() -> Strategy {
    Strategy::FirstAvailable
}

/// Authority selection strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// First healthy authority, failing over on error.
    FirstAvailable,
    /// Rotate among healthy authorities.
    RoundRobin,
}

/// A policy's authorities and strategy.
#[derive(Debug, Clone)]
pub struct Binding {
    /// Authority names in order.
    pub authorities: Vec<String>,
    /// Strategy.
    pub strategy: Strategy,
}

impl Checker<'_> {
    /// Checks the bindings against the policies and authorities; without
    /// any, one policy and one authority are bound implicitly.
    pub(super) fn check_bindings(
        &mut self,
        list: &[PolicyBinding],
        policies: &[PolicySettings],
        authorities: &[AuthoritySettings],
    ) -> BTreeMap<String, Binding> {
        let mut out = BTreeMap::new();
        if list.is_empty() {
            if policies.len() == 1 && authorities.len() == 1 {
                out.insert(
                    policies[0].name.clone(),
                    Binding {
                        authorities: vec![authorities[0].name.clone()],
                        strategy: Strategy::FirstAvailable,
                    },
                );
            } else if !policies.is_empty() && !authorities.is_empty() {
                self.issue(
                    "policy-bindings",
                    "is required when there is more than one policy or authority: bind each policy to its authorities",
                );
            }
            return out;
        }
        for (i, b) in list.iter().enumerate() {
            let base = format!("policy-bindings[{i}]");
            if !policies.iter().any(|p| p.name == b.policy) {
                self.issue(
                    format!("{base}.policy"),
                    format!("unknown issuance policy {:?}", b.policy),
                );
            }
            if out.contains_key(&b.policy) {
                self.issue(
                    format!("{base}.policy"),
                    format!("policy {:?} is bound twice; merge the bindings", b.policy),
                );
                continue;
            }
            if b.authorities.is_empty() {
                self.issue(format!("{base}.authorities"), "list at least one authority");
            }
            let mut seen = BTreeSet::new();
            for (j, a) in b.authorities.iter().enumerate() {
                if !authorities.iter().any(|x| &x.name == a) {
                    self.issue(
                        format!("{base}.authorities[{j}]"),
                        format!("unknown authority {a:?}"),
                    );
                }
                if !seen.insert(a) {
                    self.issue(
                        format!("{base}.authorities[{j}]"),
                        format!("authority {a:?} is listed twice"),
                    );
                }
            }
            out.insert(
                b.policy.clone(),
                Binding {
                    authorities: b.authorities.clone(),
                    strategy: b.strategy,
                },
            );
        }
        for p in policies {
            if !out.contains_key(&p.name) {
                self.issue(
                    "policy-bindings",
                    format!("policy {:?} has no binding; add one", p.name),
                );
            }
        }
        out
    }
}
