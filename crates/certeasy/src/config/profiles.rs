//! `acme-profiles`: the ACME profiles (draft-ietf-acme-profiles) a client
//! may ask for in new-order. Each maps to one issuance policy and may
//! narrow or adjust what is issued under it: a validity, extra EKUs the
//! policy allows, and a certificate template per ADCS authority.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;

use super::checker::Checker;
use super::duration::ConfDuration;
use super::{AuthorityKind, AuthoritySettings, Binding, PolicySettings};

/// One entry of `acme-profiles` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct ProfileEntry {
    name: String,
    #[serde(default)]
    description: String,
    policy: String,
    #[serde(default)]
    validity: Option<ConfDuration>,
    #[serde(default)]
    extra_eku: Vec<String>,
    #[serde(default)]
    certificate_templates: BTreeMap<String, String>,
    #[serde(default)]
    default: bool,
}

/// An ACME profile after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeProfile {
    /// Name clients ask for.
    pub name: String,
    /// Shown in the directory's `meta.profiles`.
    pub description: String,
    /// The issuance policy it maps to.
    pub policy: String,
    /// Lifetime of its certificates (built-in CA; ADCS: the template's).
    pub validity: Option<Duration>,
    /// EKUs its certificates carry besides serverAuth (each allowed by the
    /// policy's `csr.allowed-extra-eku`).
    pub extra_eku: Vec<pki::ExtraEku>,
    /// Authority name → ADCS certificate template used instead of the
    /// authority's `certificate-template`.
    pub templates: BTreeMap<String, String>,
    /// Used when a new-order asks for no profile.
    pub default: bool,
}

fn valid_name(n: &str) -> bool {
    !n.is_empty()
        && n.len() <= 64
        && n.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl Checker<'_> {
    /// Checks `acme-profiles` against the policies, bindings and authorities.
    pub(super) fn check_profiles(
        &mut self,
        list: &[ProfileEntry],
        policies: &[PolicySettings],
        bindings: &BTreeMap<String, Binding>,
        authorities: &[AuthoritySettings],
    ) -> Vec<AcmeProfile> {
        let mut out: Vec<AcmeProfile> = Vec::new();
        let mut default_seen = false;
        for (i, p) in list.iter().enumerate() {
            let base = format!("acme-profiles[{i}]");
            let mut ok = true;
            if !valid_name(&p.name) {
                self.issue(
                    format!("{base}.name"),
                    format!(
                        "{:?} is not a profile name: use 1 to 64 letters, digits, '-', '_' or '.'",
                        p.name
                    ),
                );
                ok = false;
            } else if out.iter().any(|o| o.name == p.name) {
                self.issue(
                    format!("{base}.name"),
                    format!("profile name {:?} is used twice", p.name),
                );
                ok = false;
            }
            let Some(policy) = policies.iter().find(|x| x.name == p.policy) else {
                let known: Vec<&str> = policies.iter().map(|x| x.name.as_str()).collect();
                self.issue(
                    format!("{base}.policy"),
                    format!(
                        "unknown issuance policy {:?}; known: {}",
                        p.policy,
                        known.join(", ")
                    ),
                );
                continue;
            };
            let bound: Vec<&AuthoritySettings> = bindings
                .get(&p.policy)
                .into_iter()
                .flat_map(|b| b.authorities.iter())
                .filter_map(|n| authorities.iter().find(|a| &a.name == n))
                .collect();
            let validity = p.validity.map(ConfDuration::get);
            if let Some(v) = validity {
                let v = self.nonzero_duration(&format!("{base}.validity"), v);
                if let Some(a) = bound.iter().find(|a| a.max_validity < v) {
                    self.issue(
                        format!("{base}.validity"),
                        format!(
                            "{} exceeds the max-validity {} of authority {:?}, bound to policy {:?}",
                            super::duration::format_duration(v),
                            super::duration::format_duration(a.max_validity),
                            a.name,
                            p.policy
                        ),
                    );
                    ok = false;
                }
            }
            let mut extra_eku = Vec::new();
            for (j, raw) in p.extra_eku.iter().enumerate() {
                match raw.parse::<pki::ExtraEku>() {
                    Ok(e) if policy.csr.allowed_extra_eku.contains(&e) => extra_eku.push(e),
                    Ok(e) => {
                        self.issue(
                            format!("{base}.extra-eku[{j}]"),
                            format!(
                                "{e} is not in csr.allowed-extra-eku of policy {:?}; a profile grants only what its policy allows",
                                p.policy
                            ),
                        );
                        ok = false;
                    }
                    Err(err) => {
                        self.issue(format!("{base}.extra-eku[{j}]"), err.to_string());
                        ok = false;
                    }
                }
            }
            for (authority, template) in &p.certificate_templates {
                let key = format!("{base}.certificate-templates.{authority}");
                match bound.iter().find(|a| &a.name == authority) {
                    None => {
                        self.issue(
                            key,
                            format!(
                                "authority {authority:?} is not bound to policy {:?}",
                                p.policy
                            ),
                        );
                        ok = false;
                    }
                    Some(a) if matches!(a.kind, AuthorityKind::Builtin(_)) => {
                        self.issue(
                            key,
                            format!("authority {authority:?} is the built-in CA, which has no certificate templates; use validity and extra-eku"),
                        );
                        ok = false;
                    }
                    Some(_) if template.trim().is_empty() || template.trim() != template => {
                        self.issue(
                            key,
                            "the template name must be non-empty, without surrounding spaces",
                        );
                        ok = false;
                    }
                    Some(_) => {}
                }
            }
            if p.default {
                if default_seen {
                    self.issue(
                        format!("{base}.default"),
                        "only one profile can be the default",
                    );
                    ok = false;
                }
                default_seen = true;
            }
            if ok {
                out.push(AcmeProfile {
                    name: p.name.clone(),
                    description: p.description.clone(),
                    policy: p.policy.clone(),
                    validity,
                    extra_eku,
                    templates: p.certificate_templates.clone(),
                    default: p.default,
                });
            }
        }
        out
    }
}
