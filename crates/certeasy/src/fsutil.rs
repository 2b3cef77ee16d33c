//! Small file helpers for the workdir (private directories, atomic replace).

use std::fs;
use std::io::Write;
use std::path::Path;

/// Creates a directory (and parents) readable only by the owner; an
/// existing one that others may read or enter is tightened to 0700 (the
/// workdir holds the database, CA keys and the audit log).
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        tighten(dir, 0o700)
    }
    #[cfg(not(unix))]
    {
        fs::create_dir_all(dir)
    }
}

/// Sets `path`'s mode to `mode` when group or others have any right on it
/// (logged at warn). Nothing happens on a path that is already private.
#[cfg(unix)]
pub fn tighten(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let current = fs::metadata(path)?.permissions().mode() & 0o777;
    if current & 0o077 != 0 {
        fs::set_permissions(path, fs::Permissions::from_mode(mode))?;
        tracing::warn!(target: "server", path = %path.display(), "{} was mode {current:03o}; tightened to {mode:03o}", path.display());
    }
    Ok(())
}

/// Makes sure the database file and its `-wal` / `-shm` companions are
/// readable only by the owner: an absent database file is created empty
/// with mode 0600 before SQLite opens it (SQLite gives its companions the
/// database file's mode), existing files are tightened.
pub fn prepare_private_db(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        match fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
        {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => tighten(path, 0o600)?,
            Err(e) => return Err(e),
        }
        for suffix in ["-wal", "-shm"] {
            let mut companion = path.as_os_str().to_owned();
            companion.push(suffix);
            match tighten(Path::new(&companion), 0o600) {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                other => other?,
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Refuses a secret file that every user of the machine may read or write:
/// the error says which file, its mode and the fix.
pub fn check_secret_file(path: &Path) -> Result<(), String> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?
            .permissions()
            .mode()
            & 0o777;
        if mode & 0o007 != 0 {
            return Err(format!(
                "{} is mode {mode:03o}: every user of this machine can {} it; run chmod 600 {} (or 640 with a group only certeasy belongs to)",
                path.display(),
                if mode & 0o002 != 0 { "change" } else { "read" },
                path.display()
            ));
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Replaces `path` atomically: writes `path.new` beside it, syncs, renames.
/// Used only for derived files that may be rewritten (listener certificate
/// cache, `ca/root.pem`), never for CA key material.
pub fn replace_file(path: &Path, content: &[u8], private: bool) -> anyhow::Result<()> {
    let tmp = path.with_extension("new");
    // A leftover of an interrupted replace keeps its mode if reopened:
    // remove it, and create the file anew with the mode wanted.
    match fs::remove_file(&tmp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            anyhow::bail!("cannot remove the leftover {}: {e}", tmp.display())
        }
        _ => {}
    }
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut f = opts
        .open(&tmp)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", tmp.display()))?;
    f.write_all(content)
        .and_then(|_| f.sync_all())
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", tmp.display()))?;
    fs::rename(&tmp, path).map_err(|e| {
        anyhow::anyhow!("cannot rename {} to {}: {e}", tmp.display(), path.display())
    })?;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        fs::metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn an_existing_open_workdir_is_tightened() {
        let dir = tempfile::tempdir().unwrap();
        let work = dir.path().join("work");
        fs::create_dir(&work).unwrap();
        fs::set_permissions(&work, fs::Permissions::from_mode(0o755)).unwrap();
        create_private_dir(&work).unwrap();
        assert_eq!(mode(&work), 0o700);
    }

    #[test]
    fn a_leftover_new_file_does_not_keep_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("key.pem");
        let leftover = dir.path().join("key.new");
        fs::write(&leftover, b"half").unwrap();
        fs::set_permissions(&leftover, fs::Permissions::from_mode(0o666)).unwrap();
        replace_file(&target, b"secret", true).unwrap();
        assert_eq!(mode(&target), 0o600);
        assert_eq!(fs::read(&target).unwrap(), b"secret");
        assert!(!leftover.exists());
    }

    #[test]
    fn world_readable_secret_files_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("pw");
        fs::write(&f, b"x").unwrap();
        for (m, ok) in [
            (0o600, true),
            (0o640, true),
            (0o400, true),
            (0o644, false),
            (0o602, false),
        ] {
            fs::set_permissions(&f, fs::Permissions::from_mode(m)).unwrap();
            let r = check_secret_file(&f);
            assert_eq!(r.is_ok(), ok, "mode {m:o}: {r:?}");
            if let Err(msg) = r {
                assert!(msg.contains("chmod 600"), "{msg}");
            }
        }
    }
}
