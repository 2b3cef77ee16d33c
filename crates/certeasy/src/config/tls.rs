//! `tls-certificate-manager`: where certeasy's own HTTPS certificate comes
//! from, checked before startup because a listener without a certificate
//! serves nobody.
//!
//! Each bundle serves some hosts from PEM files (`files`, hot-reloaded),
//! from one of certeasy's own authorities (`pki`) or from an external ACME
//! CA (`acme`); every host of every `server.url` must be covered by exactly
//! one bundle.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use base64::Engine;

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
    /// `pki` and `acme` modes: key of the listener certificate.
    #[serde(default)]
    key: Option<TlsKey>,
    /// `acme` mode: directory URL of the external CA.
    #[serde(default)]
    directory_url: Option<String>,
    /// `acme` mode: CA certificates (PEM) to trust for the directory's
    /// HTTPS, instead of the system's.
    #[serde(default)]
    ca_root: Option<String>,
    /// `acme` mode: account contact URLs (`mailto:`).
    #[serde(default)]
    contact: Vec<String>,
    /// `acme` mode: external account binding the CA requires.
    #[serde(default)]
    eab: Option<AcmeEabRaw>,
    /// `acme` mode: `tls-alpn-01` (default, answered by the listener) or
    /// `http-01` (answered on `http-01-listen`).
    #[serde(default)]
    challenge: Option<AcmeChallengeRaw>,
    /// `acme` mode with `challenge: http-01`: address of the plain-HTTP
    /// responder, bound only while a challenge is pending.
    #[serde(default)]
    http_01_listen: Option<String>,
    /// `acme` mode: where the account key and certificate are kept.
    #[serde(default)]
    local_acme_cache_dir: Option<String>,
}

/// `eab` of an `acme` bundle, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct AcmeEabRaw {
    /// Key identifier given by the CA.
    key_id: String,
    /// File holding the base64url HMAC key given by the CA (mode 600).
    hmac_key_file: String,
}

/// Challenge type of an `acme` bundle, as written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum AcmeChallengeRaw {
    /// TLS-ALPN-01 on the listener itself.
    #[serde(rename = "tls-alpn-01")]
    TlsAlpn01,
    /// HTTP-01 on `http-01-listen`.
    #[serde(rename = "http-01")]
    Http01,
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
    /// Obtained from an external ACME CA.
    Acme(Box<AcmeSource>),
}

/// An `acme`-mode bundle: the external CA and how to answer it.
#[derive(Debug, Clone)]
pub struct AcmeSource {
    /// Directory URL of the CA.
    pub directory_url: String,
    /// CA certificates (PEM file) trusted for the CA's HTTPS; the system's
    /// when absent.
    pub ca_root: Option<PathBuf>,
    /// Account contact URLs.
    pub contact: Vec<String>,
    /// External account binding: key id and the file holding the HMAC key
    /// (read when the account is created, never kept in the configuration).
    pub eab: Option<(String, PathBuf)>,
    /// How the CA validates the names.
    pub challenge: AcmeChallenge,
    /// Account key, account URL and certificate live here.
    pub cache_dir: PathBuf,
    /// Key type of the listener certificate.
    pub key: ListenerKey,
}

/// How the external CA validates the listener's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcmeChallenge {
    /// TLS-ALPN-01 (RFC 8737), answered by the listener itself.
    TlsAlpn01,
    /// HTTP-01, answered by a plain-HTTP responder bound to this address
    /// while a challenge is pending.
    Http01(SocketAddr),
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
                    let key = self.listener_key(&base, b.key.as_ref());
                    TlsSource::Pki {
                        authority: authority.clone(),
                        cache_dir,
                        renew_before: b.renew_before.get(),
                        acquire_timeout: b.acquire_timeout.get(),
                        key,
                    }
                }
                TlsMode::Acme => {
                    let Some(source) = self.check_acme_bundle(&base, b, m, server) else {
                        continue;
                    };
                    TlsSource::Acme(Box::new(source))
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

    /// The key of a `pki` or `acme` listener certificate.
    fn listener_key(&mut self, base: &str, key: Option<&TlsKey>) -> ListenerKey {
        match key {
            None => ListenerKey::EcdsaP256,
            Some(k) => match (k.kind, k.curve.as_deref(), k.size) {
                (TlsKeyType::Ecdsa, None | Some("P-256"), None) => ListenerKey::EcdsaP256,
                (TlsKeyType::Ecdsa, Some("P-384"), None) => ListenerKey::EcdsaP384,
                (TlsKeyType::Rsa, None, size) => ListenerKey::Rsa(size.unwrap_or(3072)),
                _ => {
                    self.issue(
                        format!("{base}.key"),
                        "use {type: ecdsa, curve: P-256|P-384} or {type: rsa, size: 2048|3072|4096}",
                    );
                    ListenerKey::EcdsaP256
                }
            },
        }
    }

    /// Checks an `acme` bundle: the CA's directory URL, contacts, EAB key
    /// file, challenge and the names it will ask for.
    fn check_acme_bundle(
        &mut self,
        base: &str,
        b: &Bundle,
        m: &TlsCertificateManager,
        server: Option<&ServerSettings>,
    ) -> Option<AcmeSource> {
        let Some(directory_url) = &b.directory_url else {
            self.issue(
                base,
                "mode acme needs directory-url: the ACME directory of the CA that issues the listener certificate",
            );
            return None;
        };
        let key = format!("{base}.directory-url");
        match url::Url::parse(directory_url) {
            Ok(u) if u.scheme() == "https" && u.host_str().is_some() => {}
            Ok(_) => self.issue(&key, "the directory URL must be https://host/…"),
            Err(e) => self.issue(&key, format!("not a URL: {e}")),
        }
        for (i, c) in b.contact.iter().enumerate() {
            if !c.starts_with("mailto:") || c.len() <= "mailto:".len() {
                self.issue(
                    format!("{base}.contact[{i}]"),
                    format!(
                        "contact {c:?} must be a mailto: URL, e.g. mailto:pki-team@example.com"
                    ),
                );
            }
        }
        let ca_root = b
            .ca_root
            .as_ref()
            .map(|p| self.work_path(&format!("{base}.ca-root"), p));
        if let Some(p) = &ca_root {
            match std::fs::read_to_string(p) {
                Ok(pem) if pki::pem_to_der_certs(&pem).is_ok_and(|c| !c.is_empty()) => {}
                Ok(_) => self.issue(
                    format!("{base}.ca-root"),
                    format!("{} holds no PEM CERTIFICATE", p.display()),
                ),
                Err(e) => self.issue(
                    format!("{base}.ca-root"),
                    format!("cannot read {}: {e}", p.display()),
                ),
            }
        }
        let eab = match &b.eab {
            None => None,
            Some(e) => {
                let key = format!("{base}.eab.hmac-key-file");
                let path = self.work_path(&key, &e.hmac_key_file);
                match crate::fsutil::check_secret_file(&path).and_then(|()| {
                    std::fs::read_to_string(&path)
                        .map_err(|err| format!("cannot read {}: {err}", path.display()))
                }) {
                    Ok(text) => {
                        if base64::engine::general_purpose::URL_SAFE_NO_PAD
                            .decode(text.trim().trim_end_matches('='))
                            .map_or(true, |k| k.is_empty())
                        {
                            self.issue(
                                &key,
                                format!(
                                    "{} must hold the HMAC key as the CA gave it (base64url)",
                                    path.display()
                                ),
                            );
                        }
                    }
                    Err(err) => self.issue(&key, err),
                }
                if e.key_id.is_empty() {
                    self.issue(format!("{base}.eab.key-id"), "the key id given by the CA");
                }
                Some((e.key_id.clone(), path))
            }
        };
        let challenge = match (b.challenge, &b.http_01_listen) {
            (None | Some(AcmeChallengeRaw::TlsAlpn01), None) => AcmeChallenge::TlsAlpn01,
            (Some(AcmeChallengeRaw::Http01), Some(listen)) => match listen.parse::<SocketAddr>() {
                Ok(a) => AcmeChallenge::Http01(a),
                Err(e) => {
                    self.issue(
                        format!("{base}.http-01-listen"),
                        format!("{listen:?} is not an address:port ({e}); e.g. 0.0.0.0:80"),
                    );
                    AcmeChallenge::TlsAlpn01
                }
            },
            (Some(AcmeChallengeRaw::Http01), None) => {
                self.issue(
                    format!("{base}.http-01-listen"),
                    "challenge http-01 needs http-01-listen: the address the CA reaches on port 80, e.g. 0.0.0.0:80",
                );
                AcmeChallenge::TlsAlpn01
            }
            (_, Some(_)) => {
                self.issue(
                    format!("{base}.http-01-listen"),
                    "http-01-listen is used only with challenge: http-01",
                );
                AcmeChallenge::TlsAlpn01
            }
        };
        // The names the certificate will carry must be validatable by
        // tls-alpn-01 / http-01: DNS names, no wildcard.
        let names: Vec<String> = if b.hosts.is_empty() && m.bundles.len() == 1 {
            server
                .map(|s| {
                    s.urls
                        .iter()
                        .filter_map(|u| u.host_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default()
        } else {
            b.hosts.clone()
        };
        for n in &names {
            if n.starts_with("*.") || n.parse::<std::net::IpAddr>().is_ok() || n.starts_with('[') {
                self.issue(
                    format!("{base}.hosts"),
                    format!("mode acme obtains certificates for DNS names validated by {}; {n:?} cannot be (use mode files or pki for it)", if matches!(challenge, AcmeChallenge::TlsAlpn01) { "tls-alpn-01" } else { "http-01" }),
                );
            }
        }
        let cache_dir = match &b.local_acme_cache_dir {
            Some(d) => self.work_path(&format!("{base}.local-acme-cache-dir"), d),
            None => self.workdir.join("server-certificate-acme").join(&b.name),
        };
        let key = self.listener_key(base, b.key.as_ref());
        Some(AcmeSource {
            directory_url: directory_url.clone(),
            ca_root,
            contact: b.contact.clone(),
            eab,
            challenge,
            cache_dir,
            key,
        })
    }
}
