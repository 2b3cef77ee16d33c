//! `type: builtin`: the built-in CA, for trials and labs. Its keys are
//! stored encrypted, so a password is required before anything else.
//!
//! `fake`, the type's former name, still loads (with a warning, see
//! `check_authorities`) and yields the same settings.

use std::time::Duration;

use serde::Deserialize;

use super::{AuthorityKind, AuthoritySettings};
use crate::config::checker::Checker;
use crate::config::duration::{days, format_duration, secs, ConfDuration};

/// `configuration` of a `builtin` authority, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct BuiltinAuthority {
    /// Common name of the CA certificate.
    #[serde(default = "default_ca_cn")]
    common_name: String,
    /// CA key type.
    #[serde(default = "default_ca_key_type")]
    key_type: CaKeyType,
    /// RSA key size (with `key-type: rsa`).
    #[serde(default)]
    key_size: Option<u32>,
    /// Validity of issued certificates.
    #[serde(default = "days::<90>")]
    validity: ConfDuration,
    /// Issue from an intermediate below the root.
    #[serde(default)]
    intermediate: bool,
    /// Password protecting the CA keys.
    #[serde(default)]
    password: Option<String>,
    /// File holding that password.
    #[serde(default)]
    password_file: Option<String>,
    /// Environment variable holding that password.
    #[serde(default)]
    password_env: Option<String>,
    /// Refuse certificates that live longer than this.
    #[serde(default)]
    max_validity: Option<ConfDuration>,
    /// Health probe interval.
    #[serde(default = "secs::<60>")]
    health_check_interval: ConfDuration,
    /// Test-only fault injection: make every request fail.
    #[serde(default)]
    simulate_failure: Option<SimulatedFailure>,
}

fn default_ca_cn() -> String {
    "certeasy built-in CA".into()
}
fn default_ca_key_type() -> CaKeyType {
    CaKeyType::EcdsaP256
}

/// Key type of the built-in CA, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum CaKeyType {
    /// ECDSA P-256.
    EcdsaP256,
    /// ECDSA P-384.
    EcdsaP384,
    /// RSA (`key-size`, default 3072).
    Rsa,
}

/// Test-only fault injection of the built-in CA (exercises bindings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SimulatedFailure {
    /// Unreachable: a transient error, fails over, marks it unhealthy.
    Transient,
    /// Denies every request: a final refusal.
    Refused,
}

/// Built-in CA settings.
#[derive(Clone)]
pub struct BuiltinSettings {
    /// CA common name.
    pub common_name: String,
    /// CA key.
    pub key_type: pki::CaKeyType,
    /// Lifetime of issued certificates.
    pub validity: Duration,
    /// Issue from an intermediate.
    pub intermediate: bool,
    /// Key-encryption password.
    pub password: Vec<u8>,
    /// Test-only fault injection.
    pub simulate_failure: Option<SimulatedFailure>,
}

impl std::fmt::Debug for BuiltinSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BuiltinSettings")
            .field("common_name", &self.common_name)
            .field("key_type", &self.key_type)
            .field("validity", &self.validity)
            .field("intermediate", &self.intermediate)
            .field("password", &"<redacted>")
            .field("simulate_failure", &self.simulate_failure)
            .finish()
    }
}

impl Checker<'_> {
    /// Checks the `configuration` of the built-in CA `name` (`base` is the
    /// authority's key path) and reads its password.
    pub(super) fn check_builtin(
        &mut self,
        base: &str,
        name: &str,
        cfg: BuiltinAuthority,
    ) -> Option<AuthoritySettings> {
        let ck = format!("{base}.configuration");
        let password = match (&cfg.password, &cfg.password_file, &cfg.password_env) {
            (Some(p), None, None) => {
                tracing::warn!(target: "ca", authority = name, "the built-in CA's key password is written in the configuration: fine for trials; put it in password-file or password-env otherwise");
                Some(p.as_bytes().to_vec())
            }
            (None, Some(f), None) => self.secret_file(&format!("{ck}.password-file"), f),
            (None, None, Some(var)) => self
                .secret_env(&format!("{ck}.password-env"), var)
                .map(String::into_bytes),
            (None, None, None) => {
                self.issue(
                    &ck,
                    "set password-file, password-env or password: the built-in CA keys are stored encrypted",
                );
                None
            }
            _ => {
                self.issue(
                    &ck,
                    "set only one of password, password-file and password-env",
                );
                None
            }
        };
        if password.as_ref().is_some_and(|p| p.is_empty()) {
            self.issue(
                format!("{ck}.password"),
                "the CA key password must not be empty",
            );
        }
        let key_type = match (cfg.key_type, cfg.key_size) {
            (CaKeyType::EcdsaP256, None) => pki::CaKeyType::EcdsaP256,
            (CaKeyType::EcdsaP384, None) => pki::CaKeyType::EcdsaP384,
            (CaKeyType::Rsa, size) => {
                let bits = size.unwrap_or(3072);
                if !(2048..=8192).contains(&bits) || bits % 8 != 0 {
                    self.issue(
                        format!("{ck}.key-size"),
                        format!("{bits} is not a usable RSA size; use 2048, 3072 or 4096"),
                    );
                }
                pki::CaKeyType::Rsa { bits }
            }
            (_, Some(_)) => {
                self.issue(
                    format!("{ck}.key-size"),
                    "key-size applies only to key-type: rsa",
                );
                pki::CaKeyType::EcdsaP256
            }
        };
        if cfg.simulate_failure.is_some() {
            tracing::warn!(target: "ca", authority = name, "simulate-failure is set: this authority fails every request (test-only setting)");
        }
        let validity = cfg.validity.get();
        let max_validity = cfg.max_validity.map(|d| d.get()).unwrap_or(validity);
        if validity > max_validity {
            self.issue(
                format!("{ck}.validity"),
                format!(
                    "validity {} exceeds max-validity {}",
                    cfg.validity,
                    format_duration(max_validity)
                ),
            );
        }
        Some(AuthoritySettings {
            name: name.to_string(),
            max_validity,
            health_check_interval: cfg.health_check_interval.get(),
            pool: Default::default(),
            kind: AuthorityKind::Builtin(BuiltinSettings {
                common_name: cfg.common_name,
                key_type,
                validity,
                intermediate: cfg.intermediate,
                password: password?,
                simulate_failure: cfg.simulate_failure,
            }),
        })
    }
}
