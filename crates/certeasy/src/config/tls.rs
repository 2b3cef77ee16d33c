//! `tls-certificate-manager`: where certeasy's own HTTPS certificate comes
//! from, checked before startup because a listener without a certificate
//! serves nobody.
//!
//! Each bundle serves some hosts from PEM files (`files`, hot-reloaded) or
//! from one of certeasy's own authorities (`pki`); every host of every
//! `server.url` must be covered by exactly one bundle.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::authorities::AuthoritySettings;
use super::checker::Checker;
use super::duration::{hours, secs, ConfDuration};
use super::server::ServerSettings;

/// `tls-certificate-manager` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct TlsCertificateManager {
    /// Certificate bundles.
    bundles: Vec<Bundle>,
}

/// One certificate bundle of the own listener, as written (named
/// `TlsBundle` in serde's messages, as before the split).
#[derive(Debug, Clone, Deserialize)]
#[serde(rename = "TlsBundle", deny_unknown_fields, rename_all = "kebab-case")]
struct Bundle {
    /// Bundle name.
    name: String,
    /// Hosts served by this bundle (optional with one bundle).
    #[serde(default)]
    hosts: Vec<String>,
    /// How the certificate is obtained.
    mode: TlsMode,
    /// `files` mode: certificate chain PEM.
    #[serde(default)]
    local_cert_file: Option<String>,
    /// `files` mode: private key PEM.
    #[serde(default)]
    local_key_file: Option<String>,
    /// `files` mode: how often the files are checked for changes.
    #[serde(default = "secs::<5>")]
    file_watch_interval: ConfDuration,
    /// `pki` mode: the authority that issues the listener certificate.
    #[serde(default)]
    authority: Option<String>,
    /// `pki` mode: time allowed to obtain the certificate at startup.
    #[serde(default = "secs::<120>")]
    acquire_timeout: ConfDuration,
    /// `pki` mode: cache directory.
    #[serde(default)]
    local_pki_cache_dir: Option<String>,
    /// `pki` mode: renew this long before expiry.
    #[serde(default = "hours::<720>")]
    renew_before: ConfDuration,
    /// `pki` mode: key of the listener certificate.
    #[serde(default)]
    key: Option<TlsKey>,
    /// `acme` mode (not available yet): directory URL of the external CA.
    #[serde(default)]
    #[allow(dead_code, reason = "read once mode acme is available")]
    directory_url: Option<String>,
    /// `acme` mode (not available yet): CA root to trust for the directory.
    #[serde(default)]
    #[allow(dead_code, reason = "read once mode acme is available")]
    ca_root: Option<String>,
    /// `acme` mode (not available yet): account contact.
    #[serde(default)]
    #[allow(dead_code, reason = "read once mode acme is available")]
    contact: Vec<String>,
}

/// Listener certificate source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum TlsMode {
    /// PEM files on disk, hot-reloaded.
    Files,
    /// Issued by one of certeasy's authorities.
    Pki,
    /// Obtained from an external ACME CA.
    Acme,
}

/// Key of the `pki`-mode listener certificate, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct TlsKey {
    /// `ecdsa` or `rsa`.
    #[serde(rename = "type")]
    kind: TlsKeyType,
    /// ECDSA curve: `P-256` (default) or `P-384`.
    #[serde(default)]
    curve: Option<String>,
    /// RSA size in bits.
    #[serde(default)]
    size: Option<u32>,
}

/// Key algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum TlsKeyType {
    /// ECDSA.
    Ecdsa,
    /// RSA.
    Rsa,
}

/// One listener certificate bundle.
#[derive(Debug, Clone)]
pub struct TlsBundle {
    /// Bundle name.
    pub name: String,
    /// Hosts it serves (empty = every host, only with one bundle).
    pub hosts: Vec<String>,
    /// Where the certificate comes from.
    pub source: TlsSource,
}

/// Source of a listener certificate.
#[derive(Debug, Clone)]
pub enum TlsSource {
    /// PEM files, reloaded when they change.
    Files {
        /// Certificate chain.
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
        /// Poll interval.
        watch_interval: Duration,
    },
    /// Issued by an authority of this server.
    Pki {
        /// Authority name.
        authority: String,
        /// Cache directory.
        cache_dir: PathBuf,
        /// Renew this long before expiry.
        renew_before: Duration,
        /// Startup budget.
        acquire_timeout: Duration,
        /// Key type.
        key: ListenerKey,
    },
}

/// Key of a `pki`-mode listener certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKey {
    /// ECDSA P-256.
    EcdsaP256,
    /// ECDSA P-384.
    EcdsaP384,
    /// RSA with this many bits.
    Rsa(u32),
}

impl Checker<'_> {
    /// Checks the bundles, their authorities, and that each host of
    /// `server.url` is covered by exactly one of them.
    pub(super) fn check_tls(
        &mut self,
        m: &TlsCertificateManager,
        server: Option<&ServerSettings>,
        authorities: &[AuthoritySettings],
    ) -> Vec<TlsBundle> {
        let mut out: Vec<TlsBundle> = Vec::new();
        if m.bundles.is_empty() {
            self.issue(
                "tls-certificate-manager.bundles",
                "define at least one certificate bundle",
            );
        }
        for (i, b) in m.bundles.iter().enumerate() {
            let base = format!("tls-certificate-manager.bundles[{i}]");
            if out.iter().any(|o| o.name == b.name) {
                self.issue(
                    format!("{base}.name"),
                    format!("bundle name {:?} is used twice", b.name),
                );
            }
            if b.hosts.is_empty() && m.bundles.len() > 1 {
                self.issue(
                    format!("{base}.hosts"),
                    "with several bundles, each must list the hosts it serves",
                );
            }
            let source = match b.mode {
                TlsMode::Files => {
                    let (Some(c), Some(k)) = (&b.local_cert_file, &b.local_key_file) else {
                        self.issue(&base, "mode files needs local-cert-file and local-key-file");
                        continue;
                    };
                    TlsSource::Files {
                        cert: self.work_path(&format!("{base}.local-cert-file"), c),
                        key: self.work_path(&format!("{base}.local-key-file"), k),
                        watch_interval: b.file_watch_interval.get(),
                    }
                }
                TlsMode::Pki => {
                    let Some(authority) = &b.authority else {
                        self.issue(&base, "mode pki needs authority: the name of the authority that issues the listener certificate");
                        continue;
                    };
                    if !authorities.iter().any(|a| &a.name == authority) {
                        self.issue(
                            format!("{base}.authority"),
                            format!("unknown authority {authority:?}"),
                        );
                    }
                    let cache_dir = match &b.local_pki_cache_dir {
                        Some(d) => self.work_path(&format!("{base}.local-pki-cache-dir"), d),
                        None => self.workdir.join("server-certificate-cache"),
                    };
                    let key = match &b.key {
                        None => ListenerKey::EcdsaP256,
                        Some(k) => match (k.kind, k.curve.as_deref(), k.size) {
                            (TlsKeyType::Ecdsa, None | Some("P-256"), None) => {
                                ListenerKey::EcdsaP256
                            }
                            (TlsKeyType::Ecdsa, Some("P-384"), None) => ListenerKey::EcdsaP384,
                            (TlsKeyType::Rsa, None, size) => ListenerKey::Rsa(size.unwrap_or(3072)),
                            _ => {
                                self.issue(format!("{base}.key"), "use {type: ecdsa, curve: P-256|P-384} or {type: rsa, size: 2048|3072|4096}");
                                ListenerKey::EcdsaP256
                            }
                        },
                    };
                    TlsSource::Pki {
                        authority: authority.clone(),
                        cache_dir,
                        renew_before: b.renew_before.get(),
                        acquire_timeout: b.acquire_timeout.get(),
                        key,
                    }
                }
                TlsMode::Acme => {
                    self.issue(
                        format!("{base}.mode"),
                        "mode acme is not available in this build yet; use files or pki",
                    );
                    continue;
                }
            };
            let hosts = b
                .hosts
                .iter()
                .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
                .collect();
            out.push(TlsBundle {
                name: b.name.clone(),
                hosts,
                source,
            });
        }
        if let Some(server) = server {
            for (i, u) in server.urls.iter().enumerate() {
                let host = u.host_str().unwrap_or_default().to_ascii_lowercase();
                let n = out
                    .iter()
                    .filter(|b| b.hosts.is_empty() || b.hosts.contains(&host))
                    .count();
                if n != 1 && !out.is_empty() {
                    self.issue(
                        format!("server.url[{i}]"),
                        format!("host {host:?} must be covered by exactly one tls-certificate-manager bundle (found {n})"),
                    );
                }
            }
        }
        out
    }
}
