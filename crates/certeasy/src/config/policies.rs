//! `issuance-policies`: which names a client may get certificates for, with
//! which keys and extensions; the policy is what stands between an ACME
//! account and a certificate from the company CA.
//!
//! Each policy names its validation profile (`dns-validation-profile`,
//! optional when only one exists), its name scope (`dns.allow` and
//! `dns.deny`, in `pki::Scope`'s grammar) and its CSR requirements.

use std::collections::BTreeMap;

use certeasy_va::ValidationProfile;
use pki::{CsrPolicy, KeyPolicy, Scope};
use serde::Deserialize;

use super::checker::Checker;

/// One issuance policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct IssuancePolicy {
    /// Policy name.
    name: String,
    /// Validation profile (required when several exist).
    #[serde(default)]
    dns_validation_profile: Option<String>,
    /// Name scope.
    dns: DnsScope,
    /// Key and signature requirements.
    #[serde(default)]
    signature: Signature,
    /// CSR options.
    #[serde(default)]
    csr: CsrOptions,
}

/// `dns` of a policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct DnsScope {
    /// Allowed name rules (non-empty).
    allow: Vec<String>,
    /// Denied name rules (win over allow).
    #[serde(default)]
    deny: Vec<String>,
}

/// `signature` of a policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct Signature {
    /// Allowed CSR signature algorithms (empty = all).
    #[serde(default)]
    allowed_algorithms: Vec<String>,
    /// Minimum RSA modulus size.
    #[serde(default = "default_min_rsa")]
    min_rsa_bits: u32,
    /// Allowed EC curves.
    #[serde(default = "default_curves")]
    allowed_ec_curves: Vec<String>,
}

impl Default for Signature {
    fn default() -> Self {
        Signature {
            allowed_algorithms: Vec::new(),
            min_rsa_bits: default_min_rsa(),
            allowed_ec_curves: default_curves(),
        }
    }
}

fn default_min_rsa() -> u32 {
    3072
}
fn default_curves() -> Vec<String> {
    vec!["P-256".into(), "P-384".into()]
}

/// `csr` of a policy.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct CsrOptions {
    /// Extra EKUs accepted besides serverAuth.
    #[serde(default)]
    allowed_extra_eku: Vec<String>,
}

/// One issuance policy after validation.
#[derive(Debug, Clone)]
pub struct PolicySettings {
    /// Name.
    pub name: String,
    /// Name of its DNS validation profile (not an ACME profile).
    pub validation_profile: String,
    /// Name scope.
    pub scope: Scope,
    /// CSR and key requirements.
    pub csr: CsrPolicy,
}

impl Checker<'_> {
    /// Checks every issuance policy against the validation profiles; the
    /// valid ones, in configuration order.
    pub(super) fn check_policies(
        &mut self,
        list: &[IssuancePolicy],
        validation_profiles: &BTreeMap<String, ValidationProfile>,
    ) -> Vec<PolicySettings> {
        let mut out: Vec<PolicySettings> = Vec::new();
        if list.is_empty() {
            self.issue("issuance-policies", "define at least one issuance policy");
        }
        for (i, p) in list.iter().enumerate() {
            let base = format!("issuance-policies[{i}]");
            if out.iter().any(|o| o.name == p.name) {
                self.issue(
                    format!("{base}.name"),
                    format!("policy name {:?} is used twice", p.name),
                );
                continue;
            }
            let validation_profile = match &p.dns_validation_profile {
                Some(name) if validation_profiles.contains_key(name) => name.clone(),
                Some(name) => {
                    self.issue(
                        format!("{base}.dns-validation-profile"),
                        format!("unknown validation profile {name:?}"),
                    );
                    continue;
                }
                None if validation_profiles.len() == 1 => validation_profiles
                    .keys()
                    .next()
                    .cloned()
                    .unwrap_or_default(),
                None => {
                    if validation_profiles.len() > 1 {
                        self.issue(&base, "dns-validation-profile is required when several validation profiles exist");
                    }
                    continue;
                }
            };
            if p.dns.allow.is_empty() {
                self.issue(
                    format!("{base}.dns.allow"),
                    "list at least one rule, e.g. .example.com/3",
                );
            }
            let scope = match Scope::new(&p.dns.allow, &p.dns.deny) {
                Ok(s) => s,
                Err(e) => {
                    self.issue(format!("{base}.dns"), e.to_string());
                    continue;
                }
            };
            let csr = match self.csr_policy(&base, p) {
                Some(c) => c,
                None => continue,
            };
            out.push(PolicySettings {
                name: p.name.clone(),
                validation_profile,
                scope,
                csr,
            });
        }
        out
    }

    fn csr_policy(&mut self, base: &str, p: &IssuancePolicy) -> Option<CsrPolicy> {
        let mut ok = true;
        let mut algs = Vec::new();
        for (i, a) in p.signature.allowed_algorithms.iter().enumerate() {
            match a.parse::<pki::SignatureAlgorithm>() {
                Ok(v) => algs.push(v),
                Err(e) => {
                    ok = false;
                    self.issue(
                        format!("{base}.signature.allowed-algorithms[{i}]"),
                        e.to_string(),
                    );
                }
            }
        }
        let mut curves = Vec::new();
        for (i, c) in p.signature.allowed_ec_curves.iter().enumerate() {
            match c.parse::<pki::EcCurve>() {
                Ok(v) => curves.push(v),
                Err(e) => {
                    ok = false;
                    self.issue(
                        format!("{base}.signature.allowed-ec-curves[{i}]"),
                        e.to_string(),
                    );
                }
            }
        }
        if p.signature.min_rsa_bits < 2048 {
            ok = false;
            self.issue(
                format!("{base}.signature.min-rsa-bits"),
                "must be at least 2048",
            );
        }
        let mut ekus = Vec::new();
        for (i, e) in p.csr.allowed_extra_eku.iter().enumerate() {
            match e.parse::<pki::ExtraEku>() {
                Ok(v) => ekus.push(v),
                Err(err) => {
                    ok = false;
                    self.issue(
                        format!("{base}.csr.allowed-extra-eku[{i}]"),
                        err.to_string(),
                    );
                }
            }
        }
        ok.then_some(CsrPolicy {
            key: KeyPolicy {
                allowed_algorithms: algs,
                min_rsa_bits: p.signature.min_rsa_bits,
                allowed_ec_curves: curves,
            },
            allowed_extra_eku: ekus,
        })
    }
}
