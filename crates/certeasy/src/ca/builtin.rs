//! The built-in CA (`type: builtin`, formerly `fake`): key material on
//! disk, signing in process through `pki::BuiltinCa`.
//!
//! Files in the authority's directory (`%WORKDIR%/ca/<name>/`):
//! `root.pem`, `root-key.pem` (encrypted PKCS#8), and with an intermediate
//! `intermediate.pem`, `intermediate-key.pem`. They are created once, with
//! `create_new`, and never overwritten. A wrong password or corrupt or
//! mismatched files refuse startup and leave every byte as it was.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use pki::CaFiles;
use time::OffsetDateTime;

use super::{AuthorityError, IssueRequest};
use crate::config::{BuiltinSettings, SimulatedFailure};

/// Why the built-in CA cannot start.
#[derive(Debug, thiserror::Error)]
pub enum BuiltinCaError {
    /// Filesystem failure.
    #[error("{path}: {source}")]
    Io {
        /// File or directory.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// Some files exist and others are missing.
    #[error("incomplete CA material in {dir}: {missing} is missing while other files exist; restore it from a backup (certeasy never overwrites CA material)")]
    Incomplete {
        /// Directory.
        dir: PathBuf,
        /// Missing file name.
        missing: String,
    },
    /// Loading failed (wrong password, corrupt or mismatched files).
    #[error("cannot load the CA in {dir}: {source}")]
    Load {
        /// Directory.
        dir: PathBuf,
        /// Cause.
        source: pki::CaError,
    },
}

/// The built-in CA.
pub struct BuiltinCa {
    ca: pki::BuiltinCa,
    validity: std::time::Duration,
    dir: PathBuf,
    simulate: Option<SimulatedFailure>,
}

const ROOT: &str = "root.pem";
const ROOT_KEY: &str = "root-key.pem";
const INTER: &str = "intermediate.pem";
const INTER_KEY: &str = "intermediate-key.pem";

impl BuiltinCa {
    /// Loads the CA from `dir`, creating it on first start.
    pub fn open(dir: &Path, s: &BuiltinSettings) -> Result<BuiltinCa, BuiltinCaError> {
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| BuiltinCaError::Io { path, source }
        };
        let present: Vec<bool> = [ROOT, ROOT_KEY, INTER, INTER_KEY]
            .iter()
            .map(|f| dir.join(f).exists())
            .collect();
        let files = if present.iter().any(|p| *p) {
            for (name, exists) in [ROOT, ROOT_KEY].iter().zip(&present) {
                if !exists {
                    return Err(BuiltinCaError::Incomplete {
                        dir: dir.to_path_buf(),
                        missing: (*name).to_string(),
                    });
                }
            }
            if present[2] != present[3] {
                let missing = if present[2] { INTER_KEY } else { INTER };
                return Err(BuiltinCaError::Incomplete {
                    dir: dir.to_path_buf(),
                    missing: missing.to_string(),
                });
            }
            let read = |f: &str| fs::read_to_string(dir.join(f)).map_err(io(&dir.join(f)));
            CaFiles {
                root_cert_pem: read(ROOT)?,
                root_key_pem: read(ROOT_KEY)?,
                intermediate_cert_pem: if present[2] { Some(read(INTER)?) } else { None },
                intermediate_key_pem: if present[3] {
                    Some(read(INTER_KEY)?)
                } else {
                    None
                },
            }
        } else {
            let files = pki::generate_ca(&s.common_name, s.key_type, s.intermediate, &s.password)
                .map_err(|source| BuiltinCaError::Load {
                dir: dir.to_path_buf(),
                source,
            })?;
            crate::fsutil::create_private_dir(dir).map_err(io(dir))?;
            write_new(&dir.join(ROOT), &files.root_cert_pem, false)?;
            write_new(&dir.join(ROOT_KEY), &files.root_key_pem, true)?;
            if let (Some(c), Some(k)) = (&files.intermediate_cert_pem, &files.intermediate_key_pem)
            {
                write_new(&dir.join(INTER), c, false)?;
                write_new(&dir.join(INTER_KEY), k, true)?;
            }
            tracing::info!(target: "ca", dir = %dir.display(), "created new built-in CA material");
            files
        };
        let ca =
            pki::BuiltinCa::load(&files, &s.password).map_err(|source| BuiltinCaError::Load {
                dir: dir.to_path_buf(),
                source,
            })?;
        Ok(BuiltinCa {
            ca,
            validity: s.validity,
            dir: dir.to_path_buf(),
            simulate: s.simulate_failure,
        })
    }

    /// Root certificate PEM.
    pub fn root_pem(&self) -> &str {
        self.ca.root_cert_pem()
    }

    /// Directory holding the material.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Health probe: the built-in CA is in process, so it is healthy unless
    /// an outage is simulated.
    pub fn probe(&self) -> Result<(), AuthorityError> {
        match self.simulate {
            Some(SimulatedFailure::Transient) => Err(AuthorityError::Transient(
                "simulated outage (simulate-failure: transient)".into(),
            )),
            _ => Ok(()),
        }
    }

    /// Revocation at the built-in CA: certeasy's own records are the
    /// CA's (the CRL and OCSP answers of `revocation-status` read them),
    /// so there is nothing to send; a simulated outage or refusal
    /// (`simulate-failure`, test-only) applies here too.
    pub fn revoke(&self) -> Result<(), AuthorityError> {
        match self.simulate {
            Some(SimulatedFailure::Transient) => Err(AuthorityError::Transient(
                "simulated outage (simulate-failure: transient)".into(),
            )),
            Some(SimulatedFailure::Refused) => Err(AuthorityError::Refused(
                "revocation refused (simulate-failure: refused)".into(),
            )),
            None => Ok(()),
        }
    }

    /// Puts the CRL distribution point and the OCSP URL in every
    /// certificate issued from now on (`revocation-status`).
    pub fn set_revocation_urls(
        &mut self,
        urls: Option<pki::RevocationUrls>,
    ) -> Result<(), BuiltinCaError> {
        self.ca
            .set_revocation_urls(urls)
            .map_err(|source| BuiltinCaError::Load {
                dir: self.dir.clone(),
                source,
            })
    }

    /// The CA of `pki`, for CRL and OCSP signing.
    pub fn pki(&self) -> &pki::BuiltinCa {
        &self.ca
    }

    /// Signs a leaf certificate.
    pub fn issue(&self, req: &IssueRequest<'_>) -> Result<(Vec<u8>, Vec<Vec<u8>>), AuthorityError> {
        match self.simulate {
            Some(SimulatedFailure::Transient) => {
                return Err(AuthorityError::Transient(
                    "simulated outage (simulate-failure: transient)".into(),
                ))
            }
            Some(SimulatedFailure::Refused) => {
                return Err(AuthorityError::Refused(
                    "request denied by policy (simulate-failure: refused)".into(),
                ))
            }
            None => {}
        }
        let now = OffsetDateTime::now_utc();
        let from_ms =
            |ms: i64| OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000).ok();
        // Backdate by a minute so clients with a slightly slow clock accept it.
        let not_before = req
            .not_before
            .and_then(from_ms)
            .unwrap_or(now - time::Duration::minutes(1));
        let not_after = req
            .not_after
            .and_then(from_ms)
            .unwrap_or(not_before + req.validity.unwrap_or(self.validity));
        let issued = self
            .ca
            .issue_with_eku(
                req.spki_der,
                req.names,
                req.extra_eku,
                not_before,
                not_after,
            )
            .map_err(|e| AuthorityError::Refused(format!("built-in CA cannot sign: {e}")))?;
        Ok((issued.leaf_der, issued.chain_der))
    }
}

/// Writes a file that must not exist yet.
fn write_new(path: &Path, content: &str, private: bool) -> Result<(), BuiltinCaError> {
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut f = opts.open(path).map_err(|source| BuiltinCaError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    f.write_all(content.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|source| BuiltinCaError::Io {
            path: path.to_path_buf(),
            source,
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(password: &str) -> BuiltinSettings {
        BuiltinSettings {
            common_name: "test CA".into(),
            key_type: pki::CaKeyType::EcdsaP256,
            validity: std::time::Duration::from_secs(86400),
            intermediate: true,
            password: password.as_bytes().to_vec(),
            simulate_failure: None,
        }
    }

    fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
        let mut files: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap())
            .map(|e| {
                (
                    e.file_name().to_string_lossy().to_string(),
                    fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        files.sort();
        files
    }

    #[test]
    fn first_start_creates_material_and_second_start_reuses_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ca");
        let first = BuiltinCa::open(&dir, &settings("pw")).unwrap();
        let before = snapshot(&dir);
        assert_eq!(
            before.len(),
            4,
            "root, root key, intermediate, intermediate key"
        );
        let second = BuiltinCa::open(&dir, &settings("pw")).unwrap();
        assert_eq!(first.root_pem(), second.root_pem());
        assert_eq!(snapshot(&dir), before, "nothing rewritten");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(dir.join(ROOT_KEY))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600);
        }
    }

    #[test]
    fn wrong_password_refuses_and_leaves_files_byte_identical() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ca");
        BuiltinCa::open(&dir, &settings("right")).unwrap();
        let before = snapshot(&dir);
        let err = BuiltinCa::open(&dir, &settings("wrong")).err().unwrap();
        assert!(
            matches!(
                err,
                BuiltinCaError::Load {
                    source: pki::CaError::WrongPassword,
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(snapshot(&dir), before);
    }

    #[test]
    fn corrupt_certificate_refuses_and_leaves_files_byte_identical() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ca");
        BuiltinCa::open(&dir, &settings("pw")).unwrap();
        fs::write(
            dir.join(INTER),
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let before = snapshot(&dir);
        let err = BuiltinCa::open(&dir, &settings("pw")).err().unwrap();
        assert!(matches!(err, BuiltinCaError::Load { .. }), "{err}");
        assert_eq!(snapshot(&dir), before);
    }

    #[test]
    fn mismatched_key_refuses() {
        let tmp = tempfile::tempdir().unwrap();
        let a = tmp.path().join("a");
        let b = tmp.path().join("b");
        BuiltinCa::open(&a, &settings("pw")).unwrap();
        BuiltinCa::open(&b, &settings("pw")).unwrap();
        // Root certificate of one CA with the root key of another.
        fs::copy(b.join(ROOT_KEY), a.join(ROOT_KEY)).unwrap();
        let before = snapshot(&a);
        let err = BuiltinCa::open(&a, &settings("pw")).err().unwrap();
        assert!(
            matches!(
                err,
                BuiltinCaError::Load {
                    source: pki::CaError::Mismatch { .. },
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(snapshot(&a), before);
    }

    #[test]
    fn missing_file_is_incomplete_not_regenerated() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ca");
        BuiltinCa::open(&dir, &settings("pw")).unwrap();
        fs::remove_file(dir.join(ROOT_KEY)).unwrap();
        let before = snapshot(&dir);
        let err = BuiltinCa::open(&dir, &settings("pw")).err().unwrap();
        assert!(err.to_string().contains("root-key.pem is missing"), "{err}");
        assert_eq!(snapshot(&dir), before);
    }
}
