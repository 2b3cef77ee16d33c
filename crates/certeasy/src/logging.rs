//! Structured logs: level, format and output from the configuration;
//! `APP_LOG_LEVEL` overrides the level.

use std::io::IsTerminal;

use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, LogOutput, LogSettings};

/// Installs the global subscriber (once; later calls are ignored).
pub fn init(logs: &LogSettings) {
    let level = std::env::var("APP_LOG_LEVEL")
        .ok()
        .filter(|l| !l.trim().is_empty())
        .unwrap_or_else(|| logs.level.as_str().to_string());
    // Our own targets at the chosen level, noisy dependencies at warn.
    let directives = format!("warn,certeasy={level},wfe={level},ra={level},va={level},ca={level},jobs={level},tls={level},server={level}");
    let filter = EnvFilter::try_new(&directives).unwrap_or_else(|_| EnvFilter::new("info"));
    let writer = match logs.output {
        LogOutput::Stderr => BoxMakeWriter::new(std::io::stderr),
        LogOutput::Stdout => BoxMakeWriter::new(std::io::stdout),
    };
    // Colour only on a terminal: files, pipes and journald get plain text.
    let ansi = match logs.output {
        LogOutput::Stderr => std::io::stderr().is_terminal(),
        LogOutput::Stdout => std::io::stdout().is_terminal(),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    let _ = match logs.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}
