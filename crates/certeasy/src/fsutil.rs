//! Small file helpers for the workdir (private directories, atomic replace).

use std::fs;
use std::io::Write;
use std::path::Path;

/// Creates a directory (and parents) readable only by the owner.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
    }
    #[cfg(not(unix))]
    {
        fs::create_dir_all(dir)
    }
}

/// Replaces `path` atomically: writes `path.new` beside it, syncs, renames.
/// Used only for derived files that may be rewritten (listener certificate
/// cache, `ca/root.pem`), never for CA key material.
pub fn replace_file(path: &Path, content: &[u8], private: bool) -> anyhow::Result<()> {
    let tmp = path.with_extension("new");
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
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
