//! Configuration: the only place that reads YAML.
//!
//! [`load`] runs every check that `serve` needs before it touches anything:
//! `certeasy validate` and `certeasy serve` call the same function. Errors
//! name the file, the line, the key path and the fix.
//!
//! Each section owns one file holding its schema (serde structs that never
//! leave this module), its validated type (the type its consumers use) and
//! its checks, written as methods of the one `Checker` that collects every
//! problem: `server`, `tls`, `validation` (DNS validation profiles, not to
//! be confused with ACME profiles), `authorities/` (one file per type),
//! `policies`, `bindings`, `database`, `workers`, `limits`, `audit`,
//! `logs`, `metrics` and `revocation-status`.
//! This file reads and parses; `locate` maps key paths to lines; `schema`
//! names the sections.
//!
//! Value enums that read the same in the file and in code ([`Strategy`],
//! [`LogFormat`], [`SimulatedFailure`], …) are shared between the schema
//! and the validated types; structs are not.

mod audit;
mod authorities;
mod bindings;
mod checker;
mod database;
pub mod duration;
mod eab;
mod limits;
mod locate;
mod logs;
mod meta;
mod metrics;
mod policies;
mod profiles;
mod renewal_info;
mod revocation_status;
mod schema;
mod server;
mod tls;
mod validation;
mod workers;

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use certeasy_va::ValidationProfile;

pub use audit::AuditSettings;
pub use authorities::{
    AuthorityKind, AuthoritySettings, BuiltinSettings, ExpectationsExt, SimulatedFailure,
};
pub use bindings::{Binding, Strategy};
pub use checker::expand_workdir;
pub use database::{PostgresSettings, SslMode};
pub use eab::EabSettings;
pub use limits::{PendingAuthorizations, Rate, RateLimiting, SlidingWindow};
pub use logs::{LogFile, LogFormat, LogLevel, LogOutput, LogSettings, LOG_COMPONENTS};
pub use meta::DirectoryMetaSettings;
pub use metrics::MetricsSettings;
pub use policies::PolicySettings;
pub use profiles::AcmeProfile;
pub use renewal_info::RenewalInfoSettings;
pub use revocation_status::RevocationStatusSettings;
pub use server::{
    default_max_connections, open_file_limit, ServerSettings, DEFAULT_MAX_CONNECTIONS,
};
pub use tls::{AcmeChallenge, AcmeSource, ListenerKey, TlsBundle, TlsSource};
pub use workers::Workers;

use locate::LineIndex;

/// A configuration that passed every check.
#[derive(Debug, Clone)]
pub struct Config {
    /// Runtime directory.
    pub workdir: PathBuf,
    /// Listener settings.
    pub server: ServerSettings,
    /// Listener certificate bundles.
    pub tls_bundles: Vec<TlsBundle>,
    /// DNS validation profiles by name (not ACME profiles).
    pub validation_profiles: BTreeMap<String, ValidationProfile>,
    /// Authorities, in configuration order.
    pub authorities: Vec<AuthoritySettings>,
    /// Issuance policies, in configuration order.
    pub policies: Vec<PolicySettings>,
    /// Policy → authorities, one per policy.
    pub bindings: BTreeMap<String, Binding>,
    /// SQLite database file (empty with `type: postgres`).
    pub database_path: PathBuf,
    /// The PostgreSQL server, with `database.type: postgres`.
    pub postgres: Option<PostgresSettings>,
    /// Job engine settings.
    pub workers: Workers,
    /// Abuse limits.
    pub rate_limiting: RateLimiting,
    /// The audit log.
    pub audit: AuditSettings,
    /// Logging settings.
    pub logs: LogSettings,
    /// ARI window computation.
    pub renewal_info: RenewalInfoSettings,
    /// External account binding requirement.
    pub eab: EabSettings,
    /// ACME profiles, in configuration order.
    pub profiles: Vec<AcmeProfile>,
    /// Prometheus endpoint.
    pub metrics: MetricsSettings,
    /// CRL and OCSP listener of the built-in CAs (None: off).
    pub revocation_status: Option<RevocationStatusSettings>,
    /// What loads but should change (a deprecated spelling, …), each with
    /// its key path and line: `validate` prints them, `serve` logs them.
    pub warnings: Vec<ConfigIssue>,
}

impl Config {
    /// The `ca/` directory of the built-in CA named `authority`.
    pub fn ca_dir(&self, authority: &str) -> PathBuf {
        self.workdir.join("ca").join(authority)
    }

    /// Looks up an ACME profile by name.
    pub fn profile(&self, name: &str) -> Option<&AcmeProfile> {
        self.profiles.iter().find(|p| p.name == name)
    }

    /// Looks up an authority by name.
    pub fn authority(&self, name: &str) -> Option<&AuthoritySettings> {
        self.authorities.iter().find(|a| a.name == name)
    }
}

/// One configuration problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigIssue {
    /// Key path, e.g. `authorities[0].configuration.password`.
    pub path: String,
    /// Line of that key (1-based), when known.
    pub line: Option<usize>,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// Why a configuration cannot be used.
#[derive(Debug)]
pub struct ConfigError {
    /// The file.
    pub file: PathBuf,
    /// Every problem found (at least one).
    pub issues: Vec<ConfigIssue>,
}

impl std::error::Error for ConfigError {}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, issue) in self.issues.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{}", issue.in_file(&self.file))?;
        }
        Ok(())
    }
}

impl ConfigIssue {
    /// This issue as `FILE:LINE: key.path: message`, the form of every
    /// configuration error and warning.
    pub fn in_file<'a>(&'a self, file: &'a Path) -> impl fmt::Display + 'a {
        InFile { file, issue: self }
    }
}

struct InFile<'a> {
    file: &'a Path,
    issue: &'a ConfigIssue,
}

impl fmt::Display for InFile<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.issue.line {
            write!(f, ":{line}")?;
        }
        if self.issue.path.is_empty() {
            write!(f, ": {}", self.issue.message)
        } else {
            write!(f, ": {}: {}", self.issue.path, self.issue.message)
        }
    }
}

/// Reads, parses and validates a configuration file.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        file: path.to_path_buf(),
        issues: vec![ConfigIssue {
            path: String::new(),
            line: None,
            message: format!(
                "cannot read the configuration file: {e}; pass an existing file with -f PATH"
            ),
        }],
    })?;
    load_str(&text, path)
}

/// Parses and validates configuration text that was read from `path`.
pub fn load_str(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let index = LineIndex::build(text);
    let fail = |issues: Vec<ConfigIssue>| ConfigError {
        file: path.to_path_buf(),
        issues,
    };
    if let Some(issue) = unusual_line_break(text) {
        return Err(fail(vec![issue]));
    }
    let doc: schema::Document = parse_value(text, &index, "").map_err(|i| fail(vec![i]))?;
    let config_dir = path
        .canonicalize()
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
        .or_else(|| path.parent().map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    let mut cx = checker::Checker::new(&index, config_dir);
    let config = cx.build(doc);
    match config {
        Some(c) if cx.issues.is_empty() => Ok(c),
        _ => Err(fail(cx.issues)),
    }
}

/// Refuses the characters that the YAML parser (YAML 1.1 rules) takes as
/// line breaks but editors and the line index (YAML 1.2) do not: U+0085
/// NEXT LINE, U+2028 LINE SEPARATOR, U+2029 PARAGRAPH SEPARATOR. Such a file
/// means something other than it shows, and its errors would name lines
/// that are not there (found by the `config` fuzz target).
fn unusual_line_break(text: &str) -> Option<ConfigIssue> {
    let (offset, c) = text
        .char_indices()
        .find(|(_, c)| matches!(c, '\u{85}' | '\u{2028}' | '\u{2029}'))?;
    let name = match c {
        '\u{85}' => "NEXT LINE",
        '\u{2028}' => "LINE SEPARATOR",
        _ => "PARAGRAPH SEPARATOR",
    };
    Some(ConfigIssue {
        path: String::new(),
        line: Some(text[..offset].matches('\n').count() + 1),
        message: format!(
            "the character U+{:04X} ({name}) is a line break to the YAML parser but not to most editors; \
             remove it, or inside a double-quoted string write it as an escape",
            u32::from(c)
        ),
    })
}

/// Deserialises YAML text into `T`, mapping the first error to an issue with
/// its key path (prefixed with `prefix`) and line.
fn parse_value<T: serde::de::DeserializeOwned>(
    text: &str,
    index: &LineIndex,
    prefix: &str,
) -> Result<T, ConfigIssue> {
    let de = serde_norway::Deserializer::from_str(text);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let inner = e.inner();
        issue_from(
            index,
            &join_path(prefix, &e.path().to_string()),
            &inner.to_string(),
            inner.location().map(|l| l.line()),
        )
    })
}

/// Deserialises an already-parsed value (an authority's `configuration`).
fn parse_nested<T: serde::de::DeserializeOwned>(
    value: serde_norway::Value,
    index: &LineIndex,
    prefix: &str,
) -> Result<T, ConfigIssue> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        issue_from(
            index,
            &join_path(prefix, &e.path().to_string()),
            &e.inner().to_string(),
            None,
        )
    })
}

/// Builds an issue from a serde error message, dropping serde_norway's own
/// location and path decorations (the issue carries both).
fn issue_from(
    index: &LineIndex,
    path: &str,
    raw: &str,
    fallback_line: Option<usize>,
) -> ConfigIssue {
    let mut msg = match raw.find(" at line ") {
        Some(i) => &raw[..i],
        None => raw,
    };
    let path = path.to_string();
    if let Some(i) = msg.find("unknown field `") {
        msg = &msg[i..];
    } else if let Some(i) = msg.find("missing field `") {
        msg = &msg[i..];
    } else if let Some((head, tail)) = msg.split_once(": ") {
        // serde_norway prefixes its own path ("server.listen: invalid type").
        if !head.contains(' ') {
            msg = tail;
        }
    }
    let message = if let Some(rest) = msg.strip_prefix("unknown field ") {
        format!("unknown key {rest}; remove it or fix its spelling")
    } else if let Some(rest) = msg.strip_prefix("missing field ") {
        format!("required key {rest} is missing")
    } else {
        msg.to_string()
    };
    let line = index.line_of(&path).or(fallback_line);
    ConfigIssue {
        path,
        line,
        message,
    }
}

fn join_path(prefix: &str, rest: &str) -> String {
    let rest = if rest == "." { "" } else { rest };
    match (prefix.is_empty(), rest.is_empty()) {
        (true, _) => rest.to_string(),
        (false, true) => prefix.to_string(),
        (false, false) if rest.starts_with('[') => format!("{prefix}{rest}"),
        (false, false) => format!("{prefix}.{rest}"),
    }
}

#[cfg(test)]
pub(crate) mod tests;
