//! `logs`: level, format, destination, rotation and per-component levels
//! of certeasy's own logs, read here so that `telemetry` gets values that
//! are already known to be good.
//!
//! The component names of `logs.services` come from one list,
//! [`LOG_COMPONENTS`], which `telemetry` also uses to build its filter: a
//! name that filters nothing cannot be configured. `APP_LOG_LEVEL`
//! overrides `level` at startup (see `telemetry::logs`).

use std::collections::BTreeMap;
use std::num::NonZeroU64;
use std::path::PathBuf;

use serde::Deserialize;

use super::checker::Checker;

/// The components whose level `logs.services` may set, each with the
/// tracing targets (prefixes) it covers: certeasy's own targets, and the
/// library crates it drives.
pub const LOG_COMPONENTS: &[(&str, &[&str])] = &[
    ("server", &["server", "certeasy::server"]),
    ("tls", &["tls", "certeasy::tls"]),
    ("wfe", &["wfe", "certeasy::wfe"]),
    ("ra", &["ra", "certeasy::ra"]),
    ("va", &["va", "certeasy_va"]),
    ("ca", &["ca", "certeasy::ca"]),
    ("adcs", &["adcs", "certeasy_adcs"]),
    ("msrpc", &["msrpc"]),
    ("jobs", &["jobs", "certeasy::jobs"]),
    ("store", &["store", "certeasy::store"]),
    ("telemetry", &["telemetry", "certeasy::telemetry"]),
    ("config", &["config", "certeasy::config"]),
];

/// `logs` as written: every key may be omitted.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename = "Logs", deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct LogsSection {
    /// Minimum level.
    #[serde(default = "default_level")]
    level: LogLevel,
    /// Output format.
    #[serde(default = "default_format")]
    format: LogFormat,
    /// Output stream.
    #[serde(default = "default_output")]
    output: LogOutput,
    /// Log file (`output: file`).
    #[serde(default)]
    file: Option<String>,
    /// Rotation of the log file.
    #[serde(default)]
    rotate: RotateSection,
    /// Per-component levels.
    #[serde(default)]
    services: BTreeMap<String, LogLevel>,
}

impl Default for LogsSection {
    fn default() -> Self {
        LogsSection {
            level: default_level(),
            format: default_format(),
            output: default_output(),
            file: None,
            rotate: RotateSection::default(),
            services: BTreeMap::new(),
        }
    }
}

/// `logs.rotate` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(
    rename = "Rotate",
    default,
    deny_unknown_fields,
    rename_all = "kebab-case"
)]
struct RotateSection {
    max_size_mb: NonZeroU64,
    max_backups: NonZeroU64,
}

impl Default for RotateSection {
    fn default() -> Self {
        RotateSection {
            max_size_mb: NonZeroU64::new(100).unwrap_or(NonZeroU64::MIN),
            max_backups: NonZeroU64::new(10).unwrap_or(NonZeroU64::MIN),
        }
    }
}

fn default_level() -> LogLevel {
    LogLevel::Info
}
fn default_format() -> LogFormat {
    LogFormat::Text
}
fn default_output() -> LogOutput {
    LogOutput::Stderr
}

/// Logging settings after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogSettings {
    /// Minimum level.
    pub level: LogLevel,
    /// Output format.
    pub format: LogFormat,
    /// Output stream.
    pub output: LogOutput,
    /// The log file, when `output` is `file`.
    pub file: Option<LogFile>,
    /// Levels of single components (names from [`LOG_COMPONENTS`]).
    pub services: BTreeMap<String, LogLevel>,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            level: default_level(),
            format: default_format(),
            output: default_output(),
            file: None,
            services: BTreeMap::new(),
        }
    }
}

/// The log file and its rotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogFile {
    /// Path of the current file.
    pub path: PathBuf,
    /// The file is rotated once it holds more than this many bytes.
    pub max_size_bytes: u64,
    /// Rotated files kept (`FILE.1` the newest).
    pub max_backups: usize,
}

/// Log level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogLevel {
    /// Debug.
    Debug,
    /// Info.
    Info,
    /// Warn.
    Warn,
    /// Error.
    Error,
}

impl LogLevel {
    /// Directive text for tracing's filter.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// Log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable.
    Text,
}

/// Log destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogOutput {
    /// Standard error.
    Stderr,
    /// Standard output.
    Stdout,
    /// The file `logs.file`, rotated by size.
    File,
}

impl Checker<'_> {
    /// Checks `logs`: a file exactly when `output: file`, known component
    /// names in `services`.
    pub(super) fn check_logs(&mut self, l: LogsSection) -> LogSettings {
        let file = match (l.output, &l.file) {
            (LogOutput::File, Some(raw)) => {
                let path = self.work_path("logs.file", raw);
                Some(LogFile {
                    path,
                    max_size_bytes: l.rotate.max_size_mb.get().saturating_mul(1024 * 1024),
                    max_backups: usize::try_from(l.rotate.max_backups.get()).unwrap_or(usize::MAX),
                })
            }
            (LogOutput::File, None) => {
                self.issue(
                    "logs.output",
                    "output: file needs logs.file (e.g. file: \"%WORKDIR%/certeasy.log\")",
                );
                None
            }
            (_, Some(_)) => {
                self.issue(
                    "logs.file",
                    "file applies only to output: file; remove it or set output: file",
                );
                None
            }
            (_, None) => None,
        };
        for name in l.services.keys() {
            if !LOG_COMPONENTS.iter().any(|(c, _)| c == name) {
                let valid: Vec<&str> = LOG_COMPONENTS.iter().map(|(c, _)| *c).collect();
                self.issue(
                    format!("logs.services.{name}"),
                    format!(
                        "unknown component {name:?}; valid components: {}",
                        valid.join(", ")
                    ),
                );
            }
        }
        LogSettings {
            level: l.level,
            format: l.format,
            output: l.output,
            file,
            services: l.services,
        }
    }
}
