//! `revocation-status`: the plain-HTTP listener that publishes the
//! built-in CAs' CRLs and answers OCSP (docs/revocation.md). Absent: no
//! listener, and no CRL distribution point or OCSP URL in certificates.

use std::net::SocketAddr;

use serde::Deserialize;

use super::checker::Checker;

/// `revocation-status` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(
    rename = "RevocationStatus",
    deny_unknown_fields,
    rename_all = "kebab-case"
)]
pub(super) struct RevocationStatusSection {
    /// Address of the plain-HTTP listener.
    listen: String,
    /// The URL relying parties reach that listener at.
    base_url: String,
}

/// Revocation-status settings after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationStatusSettings {
    /// Where the CRLs and the OCSP responder are served.
    pub listen: SocketAddr,
    /// Public base URL of that listener, without a trailing slash.
    pub base_url: String,
}

impl RevocationStatusSettings {
    /// The CRL URL of built-in CA `authority` (in its certificates' CRL
    /// distribution point).
    pub fn crl_url(&self, authority: &str) -> String {
        format!("{}/crl/{authority}.crl", self.base_url)
    }

    /// The OCSP responder's URL (in certificates' authorityInfoAccess).
    pub fn ocsp_url(&self) -> String {
        format!("{}/ocsp", self.base_url)
    }
}

impl Checker<'_> {
    /// Checks `revocation-status`: a socket address of its own and an
    /// `http://` base URL without query or fragment.
    pub(super) fn check_revocation_status(
        &mut self,
        section: Option<&RevocationStatusSection>,
        taken: &[(&str, Option<SocketAddr>)],
        builtin_authorities: usize,
    ) -> Option<RevocationStatusSettings> {
        let s = section?;
        let listen = match s.listen.parse::<SocketAddr>() {
            Ok(a) => {
                if let Some((key, _)) = taken.iter().find(|(_, t)| *t == Some(a)) {
                    self.issue(
                        "revocation-status.listen",
                        format!("{a} is {key}; give the CRL and OCSP listener an address of its own (e.g. 0.0.0.0:8080)"),
                    );
                }
                Some(a)
            }
            Err(_) => {
                self.issue(
                    "revocation-status.listen",
                    format!(
                        "{:?} is not an IP address and port (e.g. 0.0.0.0:8080)",
                        s.listen
                    ),
                );
                None
            }
        };
        let base_url = match url::Url::parse(&s.base_url) {
            Ok(u) if u.scheme() != "http" => {
                self.issue(
                    "revocation-status.base-url",
                    format!("{:?} is not an http:// URL; CRLs and OCSP are fetched over plain HTTP (RFC 5280 §4.2.1.13, RFC 6960 Appendix A), since a relying party checking a certificate cannot depend on TLS to do so", s.base_url),
                );
                None
            }
            Ok(u) if u.query().is_some() || u.fragment().is_some() || !u.has_host() => {
                self.issue(
                    "revocation-status.base-url",
                    format!(
                        "{:?} must be http://HOST[:PORT][/PATH], without query or fragment",
                        s.base_url
                    ),
                );
                None
            }
            Ok(u) if !u.as_str().is_ascii() => {
                self.issue(
                    "revocation-status.base-url",
                    format!(
                        "{:?} must be ASCII (it is written into certificates as an IA5String)",
                        s.base_url
                    ),
                );
                None
            }
            Ok(u) => Some(u.as_str().trim_end_matches('/').to_string()),
            Err(e) => {
                self.issue(
                    "revocation-status.base-url",
                    format!(
                        "{:?} is not a URL ({e}); e.g. http://pki.example.com:8080",
                        s.base_url
                    ),
                );
                None
            }
        };
        if builtin_authorities == 0 {
            self.warn(
                "revocation-status",
                "no authority is of type builtin: the listener serves CRLs and OCSP for built-in CAs only (an ADCS CA publishes its own)",
            );
        }
        Some(RevocationStatusSettings {
            listen: listen?,
            base_url: base_url?,
        })
    }
}
