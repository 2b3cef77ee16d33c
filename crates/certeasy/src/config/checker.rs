//! The one checker: an operator who runs `certeasy validate` wants every
//! problem of the file at once, each with its line, not one per run.
//!
//! Every section's checks run on one [`Checker`], which collects the issues
//! (key path, line, message) in the order of the file's sections. The checks
//! themselves live with their sections, as `impl Checker` blocks in
//! `server.rs`, `tls.rs`, `authorities/` and so on; this file holds what
//! they share: recording an issue or a warning at a key's line, and
//! resolving `%CONFIGDIR%` and `%WORKDIR%` paths.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::locate::LineIndex;
use super::schema::Document;
use super::{Config, ConfigIssue};

/// Runs the semantic checks, collecting every issue and warning.
pub(super) struct Checker<'a> {
    /// Lines of the file's keys.
    pub(super) index: &'a LineIndex,
    /// Directory of the configuration file (`%CONFIGDIR%`).
    config_dir: PathBuf,
    /// The resolved `workdir` (`%WORKDIR%`).
    pub(super) workdir: PathBuf,
    /// Problems found so far.
    pub(super) issues: Vec<ConfigIssue>,
    /// Warnings found so far: the configuration loads, but should change.
    warnings: Vec<ConfigIssue>,
}

impl<'a> Checker<'a> {
    /// A checker for a file whose keys are in `index`, read from `config_dir`.
    pub(super) fn new(index: &'a LineIndex, config_dir: PathBuf) -> Self {
        Checker {
            index,
            config_dir,
            workdir: PathBuf::new(),
            issues: Vec::new(),
            warnings: Vec::new(),
        }
    }

    fn located(&self, path: impl Into<String>, message: impl Into<String>) -> ConfigIssue {
        let path = path.into();
        let line = self.index.line_of(&path);
        ConfigIssue {
            path,
            line,
            message: message.into(),
        }
    }

    /// Records a problem at the key `path`: the configuration is refused.
    pub(super) fn issue(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let issue = self.located(path, message);
        self.issues.push(issue);
    }

    /// Records a warning at the key `path`: the configuration still loads.
    pub(super) fn warn(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let warning = self.located(path, message);
        self.warnings.push(warning);
    }

    /// Refuses an explicit zero for a duration whose zero has no meaning.
    pub(super) fn nonzero_duration(&mut self, path: &str, d: Duration) -> Duration {
        if d.is_zero() {
            self.issue(
                path,
                "an explicit zero is not allowed; omit the key to get the default",
            );
        }
        d
    }

    /// Reads a PEM file of certificates named by `key` (one or more
    /// CERTIFICATE blocks). Records an issue, ending in `hint`, and returns
    /// None when the file cannot be read, parsed, or holds none.
    pub(super) fn pem_certs_file(
        &mut self,
        key: &str,
        raw: &str,
        hint: &str,
    ) -> Option<(PathBuf, Vec<Vec<u8>>)> {
        let path = self.work_path(key, raw);
        let problem = match std::fs::read_to_string(&path) {
            Err(e) => format!("cannot read {}: {e}", path.display()),
            Ok(text) => match pki::pem_to_der_certs(&text) {
                Ok(certs) if !certs.is_empty() => return Some((path, certs)),
                Ok(_) => format!("{} holds no CERTIFICATE block{hint}", path.display()),
                Err(e) => format!("{}: {e}{hint}", path.display()),
            },
        };
        self.issue(key, problem);
        None
    }

    /// Resolves a path that must be absolute or start with `%WORKDIR%`.
    pub(super) fn work_path(&mut self, key: &str, raw: &str) -> PathBuf {
        if let Some(rest) = raw.strip_prefix("%WORKDIR%") {
            return self.workdir.join(rest.trim_start_matches(['/', '\\']));
        }
        let p = PathBuf::from(raw);
        if !p.is_absolute() {
            self.issue(
                key,
                format!(
                    "path {raw:?} is relative; write an absolute path or start it with %WORKDIR%"
                ),
            );
        }
        p
    }

    /// Checks every section, in the file's order; None when a section the
    /// rest depends on is unusable (the issues say why).
    pub(super) fn build(&mut self, doc: Document) -> Option<Config> {
        self.workdir = self.check_workdir(&doc.workdir);
        let server = self.check_server(&doc.server);
        let validation_profiles = self.check_validation_profiles(&doc.dns_validation_profiles);
        let authorities = self.check_authorities(&doc.authorities);
        let tls_bundles =
            self.check_tls(&doc.tls_certificate_manager, server.as_ref(), &authorities);
        let policies = self.check_policies(&doc.issuance_policies, &validation_profiles);
        let bindings = self.check_bindings(&doc.policy_bindings, &policies, &authorities);
        let (database_path, postgres) = self.check_database(&doc.database);
        let workers = self.check_workers(doc.workers, doc.server.shutdown_timeout.get());
        let rate_limiting = self.check_rate_limiting(&doc.rate_limiting);
        let audit = self.check_audit(&doc.audit);
        let renewal_info = self.check_renewal_info(&doc.renewal_info);
        let profiles = self.check_profiles(&doc.acme_profiles, &policies, &bindings, &authorities);
        let logs = self.check_logs(doc.logs);
        let metrics = self.check_metrics(&doc.metrics, server.as_ref().map(|s| s.listen));
        let revocation_status = self.check_revocation_status(
            doc.revocation_status.as_ref(),
            &[
                ("server.listen", server.as_ref().map(|s| s.listen)),
                ("metrics.listen", metrics.listen),
            ],
            authorities
                .iter()
                .filter(|a| matches!(a.kind, super::AuthorityKind::Builtin(_)))
                .count(),
        );
        Some(Config {
            workdir: self.workdir.clone(),
            server: server?,
            tls_bundles,
            validation_profiles,
            authorities,
            policies,
            bindings,
            database_path,
            postgres,
            workers,
            rate_limiting,
            audit,
            logs,
            metrics,
            revocation_status,
            renewal_info,
            eab: doc.external_account_binding.into(),
            profiles,
            warnings: std::mem::take(&mut self.warnings),
        })
    }

    fn check_workdir(&mut self, raw: &str) -> PathBuf {
        if let Some(rest) = raw.strip_prefix("%CONFIGDIR%") {
            return self.config_dir.join(rest.trim_start_matches(['/', '\\']));
        }
        let p = PathBuf::from(raw);
        if !p.is_absolute() {
            self.issue(
                "workdir",
                format!(
                    "path {raw:?} is relative; write an absolute path or start it with %CONFIGDIR%"
                ),
            );
        }
        p
    }
}

/// Expands `%WORKDIR%` in a path given on the command line or in docs.
pub fn expand_workdir(workdir: &Path, raw: &str) -> PathBuf {
    match raw.strip_prefix("%WORKDIR%") {
        Some(rest) => workdir.join(rest.trim_start_matches(['/', '\\'])),
        None => PathBuf::from(raw),
    }
}
