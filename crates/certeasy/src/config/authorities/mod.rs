//! `authorities`: the CAs that sign, each checked as far as can be without
//! contacting it, so that a wrong password file or CA name stops `validate`
//! rather than the first issuance.
//!
//! `type` selects the shape of `configuration`, which is deserialised in a
//! second step into that type's schema: `builtin` (the built-in CA;
//! `fake` is its deprecated name and loads with a warning), `adcs` (the
//! native bridge to Microsoft ADCS) and `adcs-cli` (the `certreq.exe`
//! fallback). Each type has its own file with its schema, validated type
//! and checks; this one dispatches and holds what they share (secrets).

mod adcs;
mod adcs_cli;
mod builtin;
mod ldap;

use std::fmt;
use std::time::Duration;

use certeasy_adcs::{AdcsTarget, CertreqTarget};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use super::checker::Checker;
use super::duration::ConfDuration;
use super::parse_nested;

pub use adcs::ExpectationsExt;
pub use builtin::{BuiltinSettings, SimulatedFailure};

/// One authority, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(in crate::config) struct Authority {
    /// Authority name.
    name: String,
    /// Backend type.
    #[serde(rename = "type")]
    kind: AuthorityType,
    /// Type-specific configuration, deserialised in a second step.
    #[serde(default)]
    configuration: Option<serde_norway::Value>,
}

/// Authority backend types, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AuthorityType {
    /// Built-in CA.
    Builtin,
    /// Built-in CA under its deprecated name `fake`.
    Fake,
    /// Native ADCS bridge (also spelt `adcs-native`).
    Adcs,
    /// `certreq.exe` fallback.
    AdcsCli,
}

/// The names an error suggests: not the deprecated `fake`.
const AUTHORITY_TYPES: &[&str] = &["builtin", "adcs", "adcs-cli"];

impl<'de> Deserialize<'de> for AuthorityType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = AuthorityType;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an authority type: builtin, adcs or adcs-cli")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<AuthorityType, E> {
                match v {
                    "builtin" => Ok(AuthorityType::Builtin),
                    "fake" => Ok(AuthorityType::Fake),
                    "adcs" | "adcs-native" => Ok(AuthorityType::Adcs),
                    "adcs-cli" => Ok(AuthorityType::AdcsCli),
                    other => Err(E::unknown_variant(other, AUTHORITY_TYPES)),
                }
            }
        }
        d.deserialize_str(V)
    }
}

/// One authority after validation.
#[derive(Debug, Clone)]
pub struct AuthoritySettings {
    /// Name.
    pub name: String,
    /// Longest lifetime accepted from this authority.
    pub max_validity: Duration,
    /// Health probe interval.
    pub health_check_interval: Duration,
    /// Size and idle timeout of the pool of authenticated associations
    /// (`type: adcs`; the default elsewhere, where it is unused).
    pub pool: certeasy_adcs::pool::PoolSettings,
    /// Backend.
    pub kind: AuthorityKind,
}

/// Authority backends.
#[derive(Debug, Clone)]
pub enum AuthorityKind {
    /// Built-in CA.
    Builtin(BuiltinSettings),
    /// Microsoft ADCS over the native RPC bridge.
    Adcs(Box<AdcsTarget>),
    /// Microsoft ADCS through `certreq.exe` (fallback; spawns processes).
    AdcsCli(Box<CertreqTarget>),
}

impl AuthorityKind {
    /// The `type` of this kind in the configuration.
    pub fn type_name(&self) -> &'static str {
        match self {
            AuthorityKind::Builtin(_) => "builtin",
            AuthorityKind::Adcs(_) => "adcs",
            AuthorityKind::AdcsCli(_) => "adcs-cli",
        }
    }

    /// Whether an authority of this kind can issue a certificate for a
    /// public key of type `key` (one the CSR model accepted). The built-in
    /// CA signs every such key; Microsoft ADCS cannot issue for Ed25519
    /// keys (its policy module denies the request), so finalize refuses
    /// them up front with `badPublicKey` when no authority of the policy
    /// can.
    pub fn issues_for(&self, key: pki::PublicKeyKind) -> bool {
        match self {
            AuthorityKind::Builtin(_) => true,
            AuthorityKind::Adcs(_) | AuthorityKind::AdcsCli(_) => {
                !matches!(key, pki::PublicKeyKind::Ed25519)
            }
        }
    }
}

/// `max-validity` of an ADCS authority (either connector): the CA/Browser
/// Forum ceiling of 398 days unless the operator says otherwise.
fn adcs_max_validity(configured: Option<ConfDuration>) -> Duration {
    configured
        .map(ConfDuration::get)
        .unwrap_or(Duration::from_secs(398 * 86400))
}

impl Checker<'_> {
    /// Checks every authority; the valid ones, in configuration order.
    pub(in crate::config) fn check_authorities(
        &mut self,
        list: &[Authority],
    ) -> Vec<AuthoritySettings> {
        let mut out: Vec<AuthoritySettings> = Vec::new();
        if list.is_empty() {
            self.issue(
                "authorities",
                "define at least one authority (type: builtin for the built-in CA)",
            );
        }
        for (i, a) in list.iter().enumerate() {
            let base = format!("authorities[{i}]");
            if out.iter().any(|o| o.name == a.name) {
                self.issue(
                    format!("{base}.name"),
                    format!("authority name {:?} is used twice", a.name),
                );
                continue;
            }
            let settings = match a.kind {
                AuthorityType::Builtin | AuthorityType::Fake => {
                    if a.kind == AuthorityType::Fake {
                        self.warn(
                            format!("{base}.type"),
                            "type fake is the deprecated name of the built-in CA; write type: builtin (nothing else changes)",
                        );
                    }
                    self.configuration(a, &base)
                        .and_then(|c| self.check_builtin(&base, &a.name, c))
                }
                AuthorityType::Adcs => self
                    .configuration(a, &base)
                    .and_then(|c| self.check_adcs(&base, &a.name, c)),
                AuthorityType::AdcsCli => self
                    .configuration(a, &base)
                    .and_then(|c| self.check_adcs_cli(&base, &a.name, c)),
            };
            out.extend(settings);
        }
        out
    }

    /// Deserialises an authority's `configuration` into its type's schema,
    /// recording the issue (with key path and line) when it does not fit.
    fn configuration<T: serde::de::DeserializeOwned>(
        &mut self,
        a: &Authority,
        base: &str,
    ) -> Option<T> {
        let value = a
            .configuration
            .clone()
            .unwrap_or(serde_norway::Value::Mapping(Default::default()));
        match parse_nested(value, self.index, &format!("{base}.configuration")) {
            Ok(c) => Some(c),
            Err(issue) => {
                self.issues.push(issue);
                None
            }
        }
    }

    /// Reads a secret from `file` (`key` names it in errors): refused when
    /// every user may read or change the file; trailing newlines dropped.
    pub(in crate::config) fn secret_file(&mut self, key: &str, file: &str) -> Option<Vec<u8>> {
        let path = self.work_path(key, file);
        if let Err(e) = crate::fsutil::check_secret_file(&path) {
            self.issue(key, e);
            return None;
        }
        match std::fs::read(&path) {
            Ok(mut bytes) => {
                while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    bytes.pop();
                }
                Some(bytes)
            }
            Err(e) => {
                self.issue(key, format!("cannot read {}: {e}", path.display()));
                None
            }
        }
    }

    /// Reads a secret from the environment variable `var`.
    pub(in crate::config) fn secret_env(&mut self, key: &str, var: &str) -> Option<String> {
        match std::env::var(var) {
            Ok(p) if !p.is_empty() => Some(p),
            _ => {
                self.issue(
                    key,
                    format!("environment variable {var} is not set or empty"),
                );
                None
            }
        }
    }
}
