//! `type: adcs-cli`: Microsoft ADCS through `certreq.exe`, the fallback for
//! hosts whose EDR policy trusts only Microsoft-signed binaries. It spawns
//! processes and writes scratch files, so loading one logs a warning that
//! `adcs` is preferred.

use std::path::PathBuf;

use certeasy_adcs::CertreqTarget;
use serde::Deserialize;

use super::{adcs_max_validity, AuthorityKind, AuthoritySettings};
use crate::config::checker::Checker;
use crate::config::duration::{secs, ConfDuration};

/// `configuration` of an `adcs-cli` authority (fallback through certreq.exe).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct AdcsCliAuthority {
    /// `HOST\CA Common Name`, given to `certreq -config`.
    ca_name: String,
    /// Certificate template.
    certificate_template: String,
    /// Path of certreq.exe (default `C:\Windows\System32\certreq.exe`).
    #[serde(default)]
    certreq_path: Option<String>,
    /// Budget of one certreq run, and how long a request may stay pending.
    #[serde(default = "secs::<240>")]
    default_timeout: ConfDuration,
    /// PEM chain to serve when certreq returns none.
    #[serde(default)]
    ca_chain_file: Option<String>,
    /// Refuse certificates living longer than this.
    #[serde(default)]
    max_validity: Option<ConfDuration>,
    /// Health probe interval.
    #[serde(default = "secs::<60>")]
    health_check_interval: ConfDuration,
}

impl Checker<'_> {
    /// Checks the `configuration` of the `certreq.exe` authority `name`
    /// (`base` is the authority's key path).
    pub(super) fn check_adcs_cli(
        &mut self,
        base: &str,
        name: &str,
        cfg: AdcsCliAuthority,
    ) -> Option<AuthoritySettings> {
        let ck = format!("{base}.configuration");
        if !cfg.ca_name.contains('\\') {
            self.issue(
                format!("{ck}.ca-name"),
                format!(
                    "{:?} must be HOST\\CA Common Name, as given to certreq -config",
                    cfg.ca_name
                ),
            );
            return None;
        }
        let certreq_path = match &cfg.certreq_path {
            Some(p) => self.work_path(&format!("{ck}.certreq-path"), p),
            None if cfg!(windows) => PathBuf::from(r"C:\Windows\System32\certreq.exe"),
            None => {
                self.issue(format!("{ck}.certreq-path"), "is required off Windows (certreq.exe exists only there); prefer type: adcs, the native bridge, which needs no certreq");
                return None;
            }
        };
        let mut ca_chain = Vec::new();
        if let Some(f) = &cfg.ca_chain_file {
            ca_chain = self
                .pem_certs_file(&format!("{ck}.ca-chain-file"), f, "")?
                .1;
        }
        tracing::warn!(target: "ca", authority = name, "authority {name} is type adcs-cli: it starts certreq.exe and writes scratch files; prefer type: adcs");
        Some(AuthoritySettings {
            name: name.to_string(),
            max_validity: adcs_max_validity(cfg.max_validity),
            health_check_interval: cfg.health_check_interval.get(),
            pool: Default::default(),
            kind: AuthorityKind::AdcsCli(Box::new(CertreqTarget {
                ca_name: cfg.ca_name.clone(),
                template: cfg.certificate_template.clone(),
                certreq_path,
                default_timeout: cfg.default_timeout.get(),
                scratch_dir: self.workdir.join("adcs-cli"),
                ca_chain,
            })),
        })
    }
}
