//! Segment files: the log at `audit.path` is written as numbered segments
//! beside it (`audit.log` → `audit.000001.log`, `audit.000002.log`, …).
//! A full segment is closed and the next one begun; segments are never
//! renamed, so a shipper that tails them by name never sees a file change
//! identity, and the numbers show a missing one.

use std::path::{Path, PathBuf};

/// Digits of a segment number in its file name.
const DIGITS: usize = 6;

/// The file of segment `n` of the log at `base`.
pub fn path(base: &Path, n: i64) -> PathBuf {
    let (stem, ext) = split(base);
    let name = match ext {
        Some(ext) => format!("{stem}.{n:0DIGITS$}.{ext}"),
        None => format!("{stem}.{n:0DIGITS$}"),
    };
    base.with_file_name(name)
}

/// The file name of `base` as (stem, extension).
fn split(base: &Path) -> (String, Option<String>) {
    let stem = base
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ext = base.extension().map(|e| e.to_string_lossy().into_owned());
    (stem, ext)
}

/// The segment number of `file_name`, if it is a segment of `base`.
fn number_of(base: &Path, file_name: &str) -> Option<i64> {
    let (stem, ext) = split(base);
    let rest = file_name.strip_prefix(&stem)?.strip_prefix('.')?;
    let digits = match &ext {
        Some(ext) => rest.strip_suffix(ext.as_str())?.strip_suffix('.')?,
        None => rest,
    };
    if digits.len() < DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// The segments of the log at `base` that exist, by number.
pub fn list(base: &Path) -> std::io::Result<Vec<(i64, PathBuf)>> {
    let dir = match base.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(found),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        if let Some(n) = name.to_str().and_then(|s| number_of(base, s)) {
            found.push((n, entry.path()));
        }
    }
    found.sort();
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segment_names_carry_the_number_before_the_extension() {
        let base = Path::new("/w/audit.log");
        assert_eq!(path(base, 1), Path::new("/w/audit.000001.log"));
        assert_eq!(path(base, 1234567), Path::new("/w/audit.1234567.log"));
        assert_eq!(path(Path::new("/w/trail"), 2), Path::new("/w/trail.000002"));
        assert_eq!(number_of(base, "audit.000042.log"), Some(42));
        for other in [
            "audit.log",
            "audit.42.log",
            "audit.00004x.log",
            "other.000001.log",
            "audit.000001.log.gz",
        ] {
            assert_eq!(number_of(base, other), None, "{other}");
        }
    }

    #[test]
    fn listing_is_in_number_order() {
        let dir = tempfile::tempdir().unwrap();
        let base = dir.path().join("audit.log");
        for n in [10, 2, 1] {
            std::fs::write(path(&base, n), b"").unwrap();
        }
        std::fs::write(dir.path().join("audit.log"), b"").unwrap();
        let numbers: Vec<i64> = list(&base).unwrap().into_iter().map(|(n, _)| n).collect();
        assert_eq!(numbers, vec![1, 2, 10]);
    }
}
