//! The fallback that drives `certreq.exe`.
//!
//! **This is the only code in the workspace allowed to start a process or
//! write scratch files.** It exists for hosts whose EDR policy trusts only
//! Microsoft-signed binaries talking to the CA; everywhere else the native
//! bridge ([`crate::enrollment`]) does the same work in process. Each
//! exchange runs in a private directory under the target's `scratch_dir`,
//! deleted on every path, success or failure.
//!
//! `certreq -submit -q -attrib "CertificateTemplate:T" -config "HOST\CA" req cert chain`
//! and `certreq -retrieve -q -config "HOST\CA" ID cert chain`; the outcome is
//! read from the files written and from certreq's output (`RequestId: N`,
//! "Issued", "Taken Under Submission", "Denied … 0x80094012").

use std::path::Path;
use std::time::Duration;

use crate::{CertreqTarget, Enrolled, Error};

/// The certreq-driving client of one [`CertreqTarget`].
pub struct Certreq {
    s: CertreqTarget,
}

/// What one certreq run reported.
#[derive(Debug, PartialEq, Eq)]
pub enum CertreqOutcome {
    /// Certificate written.
    Issued,
    /// Pending with this request id.
    Pending(u32, String),
    /// Denied or failed, with certreq's message.
    Denied(String),
}

/// Parses certreq's console output.
pub fn parse_certreq_output(out: &str) -> (Option<u32>, CertreqOutcome) {
    let id = out.lines().find_map(|l| {
        l.trim()
            .strip_prefix("RequestId:")
            .and_then(|v| v.trim().trim_matches('"').parse().ok())
    });
    let lower = out.to_ascii_lowercase();
    let outcome =
        if lower.contains("taken under submission") || lower.contains("request is pending") {
            let msg = out
                .lines()
                .find(|l| l.to_ascii_lowercase().contains("pending"))
                .unwrap_or("pending")
                .trim()
                .to_string();
            CertreqOutcome::Pending(id.unwrap_or(0), msg)
        } else if lower.contains("(issued)")
            || lower.contains("certificate retrieved") && lower.contains("issued")
        {
            CertreqOutcome::Issued
        } else {
            let msg = out
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("RequestId"))
                .collect::<Vec<_>>()
                .join(" ");
            CertreqOutcome::Denied(if msg.is_empty() {
                "certreq reported no outcome".into()
            } else {
                msg
            })
        };
    (id, outcome)
}

impl Certreq {
    /// A certreq-driving client (no I/O).
    pub fn new(s: CertreqTarget) -> Certreq {
        Certreq { s }
    }

    /// The target.
    pub fn target(&self) -> &CertreqTarget {
        &self.s
    }

    /// Longest a request may stay pending.
    pub fn default_timeout(&self) -> Duration {
        self.s.default_timeout
    }

    /// Submits a CSR for the target's template.
    pub async fn submit(&self, csr_der: &[u8]) -> Result<Enrolled, Error> {
        self.submit_for(csr_der, None).await
    }

    /// Submits a CSR for `template`, or the target's template when None.
    pub async fn submit_for(
        &self,
        csr_der: &[u8],
        template: Option<&str>,
    ) -> Result<Enrolled, Error> {
        let dir = self.scratch()?;
        let req = dir.path().join("request.req");
        let pem = pki::pem_encode("CERTIFICATE REQUEST", csr_der);
        tokio::fs::write(&req, pem)
            .await
            .map_err(|e| Error::Scratch(format!("cannot write {}: {e}", req.display())))?;
        let attrib = format!(
            "CertificateTemplate:{}",
            template.unwrap_or(&self.s.template)
        );
        let args: Vec<String> = vec![
            "-submit".into(),
            "-q".into(),
            "-attrib".into(),
            attrib,
            "-config".into(),
            self.s.ca_name.clone(),
            path_str(&req),
            path_str(&dir.path().join("cert.cer")),
            path_str(&dir.path().join("chain.p7b")),
        ];
        self.run(&args, dir.path()).await
    }

    /// Retrieves a pending request.
    pub async fn retrieve(&self, request_id: u32) -> Result<Enrolled, Error> {
        let dir = self.scratch()?;
        let args: Vec<String> = vec![
            "-retrieve".into(),
            "-q".into(),
            "-config".into(),
            self.s.ca_name.clone(),
            request_id.to_string(),
            path_str(&dir.path().join("cert.cer")),
            path_str(&dir.path().join("chain.p7b")),
        ];
        self.run(&args, dir.path()).await
    }

    /// Health: certreq exists and is executable.
    pub fn probe(&self) -> Result<(), Error> {
        match std::fs::metadata(&self.s.certreq_path) {
            Ok(m) if m.is_file() => Ok(()),
            _ => Err(Error::CertreqMissing(self.s.certreq_path.clone())),
        }
    }

    /// A fresh private directory inside `scratch_dir` (which must exist),
    /// removed when dropped.
    fn scratch(&self) -> Result<tempfile::TempDir, Error> {
        tempfile::Builder::new()
            .prefix("req-")
            .tempdir_in(&self.s.scratch_dir)
            .map_err(|e| {
                Error::Scratch(format!(
                    "cannot create a scratch directory in {}: {e}",
                    self.s.scratch_dir.display()
                ))
            })
    }

    async fn run(&self, args: &[String], dir: &Path) -> Result<Enrolled, Error> {
        let child = tokio::process::Command::new(&self.s.certreq_path)
            .args(args)
            .current_dir(dir)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output();
        let out = tokio::time::timeout(self.s.default_timeout, child)
            .await
            .map_err(|_| Error::CertreqTimeout(self.s.default_timeout))?
            .map_err(|source| Error::CertreqSpawn {
                path: self.s.certreq_path.clone(),
                source,
            })?;
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let (_, outcome) = parse_certreq_output(&text);
        match outcome {
            CertreqOutcome::Issued => {
                let cert = tokio::fs::read(dir.join("cert.cer"))
                    .await
                    .map_err(Error::CertreqNoCertificate)?;
                let leaf = match std::str::from_utf8(&cert)
                    .ok()
                    .and_then(|t| pki::pem_to_der_certs(t).ok())
                    .and_then(|mut v| (!v.is_empty()).then(|| v.remove(0)))
                {
                    Some(der) => der,
                    None => cert,
                };
                let mut pool = match tokio::fs::read(dir.join("chain.p7b")).await {
                    Ok(p7) => pki::certs_from_pkcs7(&p7).unwrap_or_default(),
                    Err(_) => Vec::new(),
                };
                pool.extend(self.s.ca_chain.iter().cloned());
                let chain = pki::chain_above(&leaf, &pool)
                    .map_err(|e| Error::CertreqUnreadable(e.to_string()))?;
                Ok(Enrolled::Issued {
                    leaf_der: leaf,
                    chain_der: chain,
                })
            }
            CertreqOutcome::Pending(id, message) => Ok(Enrolled::Pending {
                request_id: id,
                message,
            }),
            CertreqOutcome::Denied(message) => Err(Error::CertreqDenied {
                exit: out.status.code().unwrap_or(-1),
                message,
            }),
        }
    }
}

fn path_str(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_certreq_outputs() {
        let issued = "RequestId: 12\nRequestId: \"12\"\nCertificate retrieved(Issued) Issued\n";
        assert_eq!(
            parse_certreq_output(issued),
            (Some(12), CertreqOutcome::Issued)
        );
        let pending = "RequestId: 13\nRequestId: \"13\"\nCertificate request is pending: Taken Under Submission (0)\n";
        assert!(matches!(
            parse_certreq_output(pending),
            (Some(13), CertreqOutcome::Pending(13, _))
        ));
        let denied = "RequestId: 14\nRequestId: \"14\"\nCertificate not issued (Denied) Denied by Policy Module  0x80094012, The request was denied by a certificate manager or CA administrator.\n";
        match parse_certreq_output(denied) {
            (Some(14), CertreqOutcome::Denied(m)) => assert!(m.contains("0x80094012"), "{m}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse_certreq_output(""),
            (None, CertreqOutcome::Denied(_))
        ));
    }
}
