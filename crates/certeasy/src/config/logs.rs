//! `logs`: level, format and stream of certeasy's own logs, read here so
//! that `logging` gets values that are already known to be good.
//!
//! `APP_LOG_LEVEL` overrides the level at startup (see `logging`).

use serde::Deserialize;

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
}

impl Default for LogsSection {
    fn default() -> Self {
        LogsSection {
            level: default_level(),
            format: default_format(),
            output: default_output(),
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogSettings {
    /// Minimum level.
    pub level: LogLevel,
    /// Output format.
    pub format: LogFormat,
    /// Output stream.
    pub output: LogOutput,
}

impl From<LogsSection> for LogSettings {
    fn from(l: LogsSection) -> Self {
        LogSettings {
            level: l.level,
            format: l.format,
            output: l.output,
        }
    }
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
}
