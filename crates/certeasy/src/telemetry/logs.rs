//! Structured logs: level, format, destination (stderr, stdout, or a file
//! rotated by size) and per-component levels from the configuration;
//! `APP_LOG_LEVEL` overrides `logs.level`.
//!
//! The filter is built from [`LOG_COMPONENTS`], the one list of component
//! names that `logs.services` is checked against: every component's
//! targets get its level (its `services` entry, else `level`); other
//! crates log at `warn`.
//!
//! The file is written through `file-rotate`: each event is formatted into
//! one buffer and written with one `write` call under a mutex, and the file
//! is rotated only between two writes (`BytesSurpassed`), so a line is
//! never split across files and no line is dropped by a rotation.

use std::fs::OpenOptions;
use std::io::IsTerminal;
use std::sync::Mutex;

use file_rotate::compression::Compression;
use file_rotate::suffix::AppendCount;
use file_rotate::{ContentLimit, FileRotate};
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::EnvFilter;

use crate::config::{LogFile, LogFormat, LogLevel, LogOutput, LogSettings, LOG_COMPONENTS};

/// The environment variable that overrides `logs.level`.
pub const LEVEL_ENV: &str = "APP_LOG_LEVEL";

/// Why logging could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LogInitError {
    /// The log file cannot be opened or its directory created.
    #[error("logs.file {path}: {message}")]
    File {
        /// The file.
        path: String,
        /// What failed.
        message: String,
    },
    /// `APP_LOG_LEVEL` holds no level.
    #[error("{LEVEL_ENV}={0:?} is not a level; use debug, info, warn or error")]
    BadEnvLevel(String),
}

/// The level in effect: `APP_LOG_LEVEL` when set, else `logs.level`.
pub fn effective_level(logs: &LogSettings) -> Result<LogLevel, LogInitError> {
    match std::env::var(LEVEL_ENV) {
        Ok(v) if !v.trim().is_empty() => match v.trim().to_ascii_lowercase().as_str() {
            "debug" | "trace" => Ok(LogLevel::Debug),
            "info" => Ok(LogLevel::Info),
            "warn" | "warning" => Ok(LogLevel::Warn),
            "error" => Ok(LogLevel::Error),
            _ => Err(LogInitError::BadEnvLevel(v)),
        },
        _ => Ok(logs.level),
    }
}

/// The filter directives for `level` and the per-component levels.
pub fn directives(
    level: LogLevel,
    services: &std::collections::BTreeMap<String, LogLevel>,
) -> String {
    let mut d = format!("warn,certeasy={}", level.as_str());
    for (component, targets) in LOG_COMPONENTS {
        let l = services.get(*component).copied().unwrap_or(level);
        for t in *targets {
            d.push(',');
            d.push_str(t);
            d.push('=');
            d.push_str(l.as_str());
        }
    }
    d
}

/// Opens the log file (creating its directory, mode 0600 for a new file)
/// behind a rotating writer. Failures are reported here, at startup, not
/// swallowed at the first write.
fn open_file(f: &LogFile) -> Result<FileRotate<AppendCount>, LogInitError> {
    let err = |message: String| LogInitError::File {
        path: f.path.display().to_string(),
        message,
    };
    let dir = f
        .path
        .parent()
        .filter(|_| f.path.file_name().is_some())
        .ok_or_else(|| err("not a file path".into()))?;
    // Not `create_private_dir`: the directory may be a shared one such as
    // /var/log, whose mode is not ours to change.
    std::fs::create_dir_all(dir)
        .map_err(|e| err(format!("cannot create {}: {e}", dir.display())))?;
    let mut options = OpenOptions::new();
    options.read(true).create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
        .open(&f.path)
        .map_err(|e| err(format!("cannot open: {e}")))?;
    let limit = usize::try_from(f.max_size_bytes).unwrap_or(usize::MAX);
    Ok(FileRotate::new(
        &f.path,
        AppendCount::new(f.max_backups),
        ContentLimit::BytesSurpassed(limit),
        Compression::None,
        Some(options),
    ))
}

/// Installs the global subscriber (once; later calls are ignored).
pub fn init(logs: &LogSettings) -> Result<(), LogInitError> {
    let level = effective_level(logs)?;
    let filter = EnvFilter::try_new(directives(level, &logs.services))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, ansi) = match (logs.output, &logs.file) {
        (LogOutput::File, Some(f)) => (BoxMakeWriter::new(Mutex::new(open_file(f)?)), false),
        (LogOutput::Stdout, _) => (
            BoxMakeWriter::new(std::io::stdout),
            std::io::stdout().is_terminal(),
        ),
        // Colour only on a terminal: files, pipes and journald get plain text.
        _ => (
            BoxMakeWriter::new(std::io::stderr),
            std::io::stderr().is_terminal(),
        ),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer)
        .with_ansi(ansi);
    let _ = match logs.format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn rotation_keeps_every_line_whole() {
        let dir = tempfile::tempdir().unwrap();
        let file = LogFile {
            path: dir.path().join("logs/certeasy.log"),
            max_size_bytes: 16 * 1024,
            max_backups: 1000,
        };
        let writer = Mutex::new(open_file(&file).unwrap());
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_writer(writer)
            .finish();
        const N: usize = 3000;
        tracing::subscriber::with_default(subscriber, || {
            for i in 0..N {
                tracing::info!(target: "server", seq = i, padding = "x".repeat(i % 200), "line");
            }
        });
        let mut seen = vec![false; N];
        let mut files = 0;
        for e in std::fs::read_dir(dir.path().join("logs")).unwrap() {
            let path = e.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                text.is_empty() || text.ends_with('\n'),
                "{} ends mid-line",
                path.display()
            );
            // A rotated file exceeds the limit by one line at most.
            assert!(
                text.len() < 16 * 1024 + 1024,
                "{} holds {} bytes",
                path.display(),
                text.len()
            );
            files += 1;
            for line in text.lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                let seq = v["fields"]["seq"].as_u64().unwrap() as usize;
                assert!(!seen[seq], "line {seq} twice");
                seen[seq] = true;
            }
        }
        assert!(files > 10, "only {files} files: no rotation");
        assert!(seen.iter().all(|s| *s), "lines lost");
    }

    #[test]
    fn components_get_their_own_level() {
        let mut services = std::collections::BTreeMap::new();
        services.insert("va".to_string(), LogLevel::Debug);
        let d = directives(LogLevel::Warn, &services);
        assert!(d.contains(",va=debug,certeasy_va=debug"), "{d}");
        assert!(d.contains(",wfe=warn,"), "{d}");
        assert!(d.starts_with("warn,certeasy=warn"), "{d}");
        assert!(EnvFilter::try_new(&d).is_ok());
    }

    #[test]
    fn unusable_log_file_is_an_error_at_startup() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("taken"), "a file, not a directory").unwrap();
        let file = LogFile {
            path: dir.path().join("taken/certeasy.log"),
            max_size_bytes: 1024,
            max_backups: 1,
        };
        let e = open_file(&file).err().unwrap().to_string();
        assert!(e.contains("taken"), "{e}");
    }
}
