//! `audit`: the tamper-evident audit log (SPEC §8), on by default.
//!
//! The validated [`AuditSettings`] says where the node's chain is written
//! and when a segment is full; the log itself is `crate::audit`'s.

use std::num::NonZeroU64;
use std::path::PathBuf;

use serde::Deserialize;

use super::checker::Checker;

/// `audit` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(
    rename = "Audit",
    default,
    deny_unknown_fields,
    rename_all = "kebab-case"
)]
pub(super) struct AuditSection {
    enabled: bool,
    path: Option<String>,
    rotate: RotateSection,
}

impl Default for AuditSection {
    fn default() -> Self {
        AuditSection {
            enabled: true,
            path: None,
            rotate: RotateSection::default(),
        }
    }
}

/// `audit.rotate`.
#[derive(Debug, Clone, Deserialize)]
#[serde(
    rename = "AuditRotate",
    default,
    deny_unknown_fields,
    rename_all = "kebab-case"
)]
struct RotateSection {
    max_size_mb: NonZeroU64,
}

impl Default for RotateSection {
    fn default() -> Self {
        RotateSection {
            max_size_mb: NonZeroU64::new(100).unwrap_or(NonZeroU64::MIN),
        }
    }
}

/// The audit log's settings after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditSettings {
    /// Whether events are recorded at all.
    pub enabled: bool,
    /// The log's base path: segments are named after it with a number
    /// before the extension (`audit.log` → `audit.000001.log`).
    pub path: PathBuf,
    /// Size at which the active segment is closed and the next begun.
    pub max_segment_bytes: u64,
}

impl Checker<'_> {
    /// Checks `audit`.
    pub(super) fn check_audit(&mut self, a: &AuditSection) -> AuditSettings {
        let path = match &a.path {
            Some(p) => self.work_path("audit.path", p),
            None => self.workdir.join("audit.log"),
        };
        if path.file_name().is_none() {
            self.issue("audit.path", "must name a file, e.g. %WORKDIR%/audit.log");
        }
        AuditSettings {
            enabled: a.enabled,
            path,
            max_segment_bytes: a.rotate.max_size_mb.get().saturating_mul(1024 * 1024),
        }
    }
}
