//! `acme` mode: the listener's certificate comes from an external ACME CA
//! (a public CA, another certeasy, Pebble), obtained and renewed by a task
//! of this process through the `instant-acme` client.
//!
//! - The CA validates the names with **tls-alpn-01** (RFC 8737) answered by
//!   the listener itself: while a challenge is pending, its validation
//!   certificate is in [`Challenges`], which the listener's certificate
//!   resolver serves to handshakes offering only `acme-tls/1`; or with
//!   **http-01** on `http-01-listen`, a plain-HTTP responder bound only
//!   while a challenge is pending.
//! - Renewal follows the CA's ACME Renewal Information (RFC 9773) when its
//!   directory offers `renewalInfo`, else starts at 2/3 of the lifetime.
//! - The account (its key in `account.json`, mode 600), the certificate
//!   chain (`cert.pem`) and its key (`key.pem`, mode 600) live in the
//!   bundle's cache directory; a new certificate replaces the old one for
//!   new handshakes without a restart. A failure keeps the old certificate
//!   and is retried with a doubling back-off.

use std::borrow::Cow;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use instant_acme::{
    Account, AccountCredentials, AuthorizationStatus, CertificateIdentifier, ChallengeType,
    ExternalAccountKey, Identifier, NewAccount, NewOrder, OrderStatus, RetryPolicy,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;
use serde::{Deserialize, Serialize};

use super::{certified_key_from_pem, Slot};
use crate::config::{AcmeChallenge, AcmeSource, ListenerKey};

/// The ALPN protocol of tls-alpn-01 (RFC 8737 §6.2).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// First pause after a failed attempt; doubles up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_secs(10);
/// Longest pause between failed attempts.
const MAX_RETRY: Duration = Duration::from_secs(3600);
/// The renewal time is re-checked at least this often (clock jumps, ARI
/// windows moved by the CA).
const MAX_SLEEP: Duration = Duration::from_secs(86400);
/// Renewal information is not asked for more often than this, whatever
/// the CA's `Retry-After` says.
const MIN_ARI_POLL: Duration = Duration::from_secs(10);
/// Two certificates are never ordered closer together than this (a CA
/// whose certificates never fit, or whose ARI always says "now", must not
/// be hammered).
const MIN_ORDER_GAP: Duration = Duration::from_secs(10);
/// How long the CA may take to validate and to issue, per attempt.
const ORDER_TIMEOUT: Duration = Duration::from_secs(120);

const ACCOUNT_FILE: &str = "account.json";
const CERT_FILE: &str = "cert.pem";
const KEY_FILE: &str = "key.pem";

/// tls-alpn-01 validation certificates of pending challenges, by name.
#[derive(Debug, Default)]
pub struct Challenges {
    by_name: RwLock<HashMap<String, Arc<CertifiedKey>>>,
}

impl Challenges {
    /// The validation certificate for `name`, while its challenge is
    /// pending.
    pub fn get(&self, name: &str) -> Option<Arc<CertifiedKey>> {
        self.by_name.read().ok()?.get(name).cloned()
    }

    fn insert(&self, name: &str, ck: Arc<CertifiedKey>) {
        if let Ok(mut m) = self.by_name.write() {
            m.insert(name.to_string(), ck);
        }
    }

    fn remove(&self, names: &[String]) {
        if let Ok(mut m) = self.by_name.write() {
            for n in names {
                m.remove(n);
            }
        }
    }
}

/// Removes the challenge answers of one attempt when it ends, however it
/// ends.
struct Answers<'a> {
    challenges: &'a Challenges,
    names: Vec<String>,
    http: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Answers<'_> {
    fn drop(&mut self) {
        self.challenges.remove(&self.names);
        if let Some(h) = self.http.take() {
            h.abort();
        }
    }
}

/// The cached certificate of an `acme` bundle, if there is a usable one.
pub(super) fn load_cached(src: &AcmeSource) -> Option<CertifiedKey> {
    let c = std::fs::read(src.cache_dir.join(CERT_FILE)).ok()?;
    let k = std::fs::read(src.cache_dir.join(KEY_FILE)).ok()?;
    match certified_key_from_pem(&c, &k) {
        Ok(ck) => Some(ck),
        Err(e) => {
            tracing::warn!(target: "tls", dir = %src.cache_dir.display(), error = format!("{e:#}"), "cached ACME listener certificate unusable; obtaining a new one");
            None
        }
    }
}

/// Account as kept in `account.json`: the directory it belongs to and the
/// client's credentials (account URL and private key).
#[derive(Serialize, Deserialize)]
struct StoredAccount {
    directory_url: String,
    credentials: AccountCredentials,
}

/// An HTTP client for the CA: rustls on ring, trusting `ca-root` or the
/// system's CAs.
fn http_client(src: &AcmeSource) -> anyhow::Result<Box<dyn instant_acme::HttpClient>> {
    let mut roots = rustls::RootCertStore::empty();
    match &src.ca_root {
        Some(path) => {
            let pem = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read ca-root {}", path.display()))?;
            for der in pki::pem_to_der_certs(&pem).map_err(|e| anyhow::anyhow!("ca-root: {e}"))? {
                roots
                    .add(CertificateDer::from(der))
                    .map_err(|e| anyhow::anyhow!("ca-root {}: {e}", path.display()))?;
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            for c in found.certs {
                let _ = roots.add(c);
            }
            if roots.is_empty() {
                anyhow::bail!("no system CA certificates found to trust the ACME CA; set ca-root");
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let tls = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_only()
        .enable_http1()
        .enable_http2()
        .build();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build::<_, instant_acme::BodyWrapper<bytes::Bytes>>(connector);
    Ok(Box::new(client))
}

/// Restores the account kept in the cache directory, or creates one (with
/// the external account binding when configured) and keeps it.
async fn account(src: &AcmeSource) -> anyhow::Result<Account> {
    let path = src.cache_dir.join(ACCOUNT_FILE);
    if let Ok(bytes) = std::fs::read(&path) {
        match serde_json::from_slice::<StoredAccount>(&bytes) {
            Ok(stored) if stored.directory_url == src.directory_url => {
                return Account::builder_with_http(http_client(src)?)
                    .from_credentials(stored.credentials)
                    .await
                    .with_context(|| format!("ACME directory {}", src.directory_url));
            }
            Ok(_) => {
                tracing::info!(target: "tls", directory = %src.directory_url, "the ACME directory changed; creating an account there")
            }
            Err(e) => {
                anyhow::bail!(
                    "{} is not an ACME account file ({e}); move it away to create a new account",
                    path.display()
                )
            }
        }
    }
    let eab = match &src.eab {
        None => None,
        Some((kid, file)) => {
            crate::fsutil::check_secret_file(file).map_err(|e| anyhow::anyhow!(e))?;
            let text = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read {}", file.display()))?;
            use base64::Engine;
            let key = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(text.trim().trim_end_matches('='))
                .map_err(|e| anyhow::anyhow!("{}: not base64url: {e}", file.display()))?;
            Some(ExternalAccountKey::new(kid.clone(), &key))
        }
    };
    let contact: Vec<&str> = src.contact.iter().map(String::as_str).collect();
    let (account, credentials) = Account::builder_with_http(http_client(src)?)
        .create(
            &NewAccount {
                contact: &contact,
                terms_of_service_agreed: true,
                only_return_existing: false,
            },
            src.directory_url.clone(),
            eab.as_ref(),
        )
        .await
        .with_context(|| format!("creating an account at {}", src.directory_url))?;
    let stored = StoredAccount {
        directory_url: src.directory_url.clone(),
        credentials,
    };
    crate::fsutil::create_private_dir(&src.cache_dir)
        .with_context(|| format!("cannot create {}", src.cache_dir.display()))?;
    crate::fsutil::replace_file(&path, &serde_json::to_vec_pretty(&stored)?, true)?;
    tracing::info!(target: "tls", directory = %src.directory_url, account = account.id(), "created the ACME account of the listener certificate");
    Ok(account)
}

/// notBefore and notAfter of a certificate.
fn validity(der: &[u8]) -> anyhow::Result<(SystemTime, SystemTime)> {
    use x509_cert::der::Decode;
    let cert = x509_cert::Certificate::from_der(der).map_err(|e| anyhow::anyhow!("{e}"))?;
    let v = cert.tbs_certificate().validity();
    Ok((
        SystemTime::UNIX_EPOCH + v.not_before.to_unix_duration(),
        SystemTime::UNIX_EPOCH + v.not_after.to_unix_duration(),
    ))
}

/// When a certificate is due for renewal without ARI: at 2/3 of its
/// lifetime.
pub(super) fn two_thirds(der: &[u8]) -> anyhow::Result<SystemTime> {
    let (nb, na) = validity(der)?;
    let life = na.duration_since(nb).unwrap_or(Duration::ZERO);
    Ok(nb + life * 2 / 3)
}

/// The RFC 9773 identifier of a certificate, if it has an AKI.
fn cert_id(der: &[u8]) -> Option<CertificateIdentifier<'static>> {
    let id = pki::ari_cert_id(der).ok()?;
    let (aki, serial) = id.split_once('.')?;
    Some(CertificateIdentifier {
        authority_key_identifier: Cow::Owned(aki.to_string()),
        serial: Cow::Owned(serial.to_string()),
    })
}

/// A uniformly random point of `[start, end]` (RFC 9773 §4.2: clients pick
/// a random time in the suggested window).
fn random_point(start: SystemTime, end: SystemTime) -> SystemTime {
    let span = end.duration_since(start).unwrap_or(Duration::ZERO);
    let mut b = [0u8; 8];
    let r = ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut b)
        .map(|()| u64::from_le_bytes(b))
        .unwrap_or(0);
    let frac = (r >> 11) as f64 / (1u64 << 53) as f64;
    start + span.mul_f64(frac)
}

/// What renewal of the current certificate waits for.
enum Due {
    /// Renew now.
    Now,
    /// Look again after this long.
    Later(Duration),
}

/// Decides whether the current certificate is due, by ARI when the CA
/// offers it (`replaces` then names it in the new order), else at 2/3 of
/// its lifetime. A certificate that does not carry exactly `names`, or is
/// expired, is due at once.
async fn due(
    account: &Account,
    leaf: &[u8],
    names: &[String],
    replaces: &mut Option<CertificateIdentifier<'static>>,
) -> Due {
    *replaces = None;
    let now = SystemTime::now();
    // The CA may add names; it must not leave one out.
    let fits = super::cached_info(leaf)
        .is_ok_and(|(na, n)| names.iter().all(|want| n.contains(want)) && na > now);
    if !fits {
        return Due::Now;
    }
    if let Some(id) = cert_id(leaf) {
        match account.renewal_info(&id).await {
            Ok((info, retry_after)) => {
                let start = SystemTime::from(info.suggested_window.start);
                let end = SystemTime::from(info.suggested_window.end);
                *replaces = Some(id);
                let at = random_point(start, end.max(start));
                tracing::debug!(target: "tls", ?start, ?end, ?retry_after, "ACME renewal information of the listener certificate");
                return match at.duration_since(now) {
                    Err(_) => Due::Now,
                    // Poll again when the CA asks (the window may move,
                    // e.g. an early renewal after an incident).
                    Ok(wait) => Due::Later(wait.min(retry_after.max(MIN_ARI_POLL))),
                };
            }
            Err(instant_acme::Error::Unsupported(_)) => {}
            Err(e) => {
                tracing::warn!(target: "tls", error = %e, "ACME renewal information unavailable; renewing at 2/3 of the lifetime");
            }
        }
    }
    match two_thirds(leaf) {
        Ok(at) => match at.duration_since(now) {
            Err(_) => Due::Now,
            Ok(wait) => Due::Later(wait),
        },
        Err(_) => Due::Now,
    }
}

/// Obtains and renews an `acme` bundle's certificate for ever.
pub(super) async fn run(
    slot: Arc<Slot>,
    src: AcmeSource,
    names: Vec<String>,
    challenges: Arc<Challenges>,
) {
    let mut retry = FIRST_RETRY;
    let mut account_handle: Option<Account> = None;
    let mut last_order: Option<tokio::time::Instant> = None;
    loop {
        let account = match &account_handle {
            Some(a) => a.clone(),
            None => match account(&src).await {
                Ok(a) => {
                    account_handle = Some(a.clone());
                    a
                }
                Err(e) => {
                    tracing::error!(target: "tls", bundle = %slot.name, error = format!("{e:#}"), retry_in = ?retry, "no ACME account for the listener certificate; the current certificate (if any) stays");
                    tokio::time::sleep(retry).await;
                    retry = (retry * 2).min(MAX_RETRY);
                    continue;
                }
            },
        };
        let current = slot.current();
        let mut replaces = None;
        if let Some(ck) = &current {
            if let Some(leaf) = ck.cert.first() {
                if let Due::Later(wait) = due(&account, leaf.as_ref(), &names, &mut replaces).await
                {
                    tokio::time::sleep(wait.min(MAX_SLEEP)).await;
                    continue;
                }
            }
        }
        if let Some(since) = last_order.map(|t| t.elapsed()) {
            if since < MIN_ORDER_GAP {
                tracing::warn!(target: "tls", bundle = %slot.name, "the certificate just obtained is already due (the CA's renewal information, or names missing); waiting before the next order");
                tokio::time::sleep(MIN_ORDER_GAP - since).await;
            }
        }
        match obtain(&account, &src, &names, &challenges, replaces).await {
            Ok(ck) => {
                retry = FIRST_RETRY;
                last_order = Some(tokio::time::Instant::now());
                let serial = ck
                    .cert
                    .first()
                    .and_then(|c| pki::serial_hex_of_cert(c.as_ref()).ok())
                    .unwrap_or_default();
                slot.set(ck);
                tracing::info!(target: "tls", bundle = %slot.name, directory = %src.directory_url, serial, names = ?names, "listener certificate obtained from the ACME CA and in use for new connections");
            }
            Err(e) => {
                if account_gone(&e) {
                    // The CA no longer knows the account (a test CA
                    // restarted, an account deactivated): make a new one.
                    account_handle = None;
                    let _ = std::fs::remove_file(src.cache_dir.join(ACCOUNT_FILE));
                }
                tracing::error!(target: "tls", bundle = %slot.name, directory = %src.directory_url, error = format!("{e:#}"), retry_in = ?retry, "obtaining the listener certificate from the ACME CA failed; the current certificate (if any) stays");
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(MAX_RETRY);
            }
        }
    }
}

/// Whether the CA answered that the account does not exist.
fn account_gone(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<instant_acme::Error>(),
            Some(instant_acme::Error::Api(p))
                if p.r#type.as_deref() == Some("urn:ietf:params:acme:error:accountDoesNotExist")
        )
    })
}

/// One order: answers the challenges, finalizes with a fresh key, keeps the
/// certificate in the cache directory.
async fn obtain(
    account: &Account,
    src: &AcmeSource,
    names: &[String],
    challenges: &Challenges,
    replaces: Option<CertificateIdentifier<'static>>,
) -> anyhow::Result<CertifiedKey> {
    let ids: Vec<Identifier> = names.iter().map(|n| Identifier::Dns(n.clone())).collect();
    let mut new = NewOrder::new(&ids);
    if let Some(r) = replaces {
        new = new.replaces(r);
    }
    let mut order = account.new_order(&new).await.context("newOrder")?;
    let tokens: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let mut answers = Answers {
        challenges,
        names: Vec::new(),
        http: None,
    };
    if let AcmeChallenge::Http01(addr) = src.challenge {
        answers.http = Some(http01_responder(addr, tokens.clone()).await?);
    }
    let kind = match src.challenge {
        AcmeChallenge::TlsAlpn01 => ChallengeType::TlsAlpn01,
        AcmeChallenge::Http01(_) => ChallengeType::Http01,
    };
    let mut authzs = order.authorizations();
    while let Some(authz) = authzs.next().await {
        let mut authz = authz.context("authorization")?;
        match authz.status {
            AuthorizationStatus::Pending => {}
            AuthorizationStatus::Valid => continue,
            other => anyhow::bail!("authorization for {} is {other:?}", authz.identifier()),
        }
        let name = match authz.identifier().identifier {
            Identifier::Dns(n) => n.clone(),
            other => anyhow::bail!("the CA asks to validate {other:?}, not a DNS name"),
        };
        let Some(mut challenge) = authz.challenge(kind.clone()) else {
            anyhow::bail!("the CA offers no {kind:?} challenge for {name}");
        };
        let key_auth = challenge.key_authorization();
        match src.challenge {
            AcmeChallenge::TlsAlpn01 => {
                let ck = validation_certificate(&name, key_auth.digest().as_ref())?;
                challenges.insert(&name, Arc::new(ck));
                answers.names.push(name.clone());
            }
            AcmeChallenge::Http01(_) => {
                if let Ok(mut t) = tokens.lock() {
                    t.insert(challenge.token.clone(), key_auth.as_str().to_string());
                }
            }
        }
        challenge
            .set_ready()
            .await
            .with_context(|| format!("answering the {kind:?} challenge for {name}"))?;
    }
    let retries = RetryPolicy::new()
        .initial_delay(Duration::from_millis(250))
        .backoff(1.5)
        .timeout(ORDER_TIMEOUT);
    let status = order.poll_ready(&retries).await.context("validation")?;
    drop(answers);
    if status != OrderStatus::Ready {
        anyhow::bail!("the order became {status:?} (the CA could not validate the names)");
    }
    let (csr, key) = csr(names, src.key)?;
    order.finalize_csr(&csr).await.context("finalize")?;
    let chain_pem = order
        .poll_certificate(&retries)
        .await
        .context("certificate download")?;
    let key_pem = key.serialize_pem();
    let ck = certified_key_from_pem(chain_pem.as_bytes(), key_pem.as_bytes())
        .context("the CA's certificate")?;
    crate::fsutil::create_private_dir(&src.cache_dir)
        .with_context(|| format!("cannot create {}", src.cache_dir.display()))?;
    // Key first: a crash between the two leaves a new key with the old
    // certificate, which the next start refuses as a mismatch and replaces.
    crate::fsutil::replace_file(&src.cache_dir.join(KEY_FILE), key_pem.as_bytes(), true)?;
    crate::fsutil::replace_file(&src.cache_dir.join(CERT_FILE), chain_pem.as_bytes(), false)?;
    Ok(ck)
}

/// A fresh key and a CSR for `names`.
fn csr(names: &[String], key: ListenerKey) -> anyhow::Result<(Vec<u8>, rcgen::KeyPair)> {
    let alg = match key {
        ListenerKey::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
        ListenerKey::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
        ListenerKey::Rsa(_) => anyhow::bail!(
            "RSA listener keys are not supported in acme mode yet; use key: {{type: ecdsa}}"
        ),
    };
    let kp = rcgen::KeyPair::generate_for(alg).context("cannot generate the listener key")?;
    let mut params = rcgen::CertificateParams::new(names.to_vec()).context("listener CSR")?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    let csr = params.serialize_request(&kp).context("listener CSR")?;
    Ok((csr.der().to_vec(), kp))
}

/// The RFC 8737 §3 validation certificate: self-signed, `name` as its only
/// SAN, the critical acmeIdentifier extension holding SHA-256 of the key
/// authorization.
fn validation_certificate(name: &str, digest: &[u8]) -> anyhow::Result<CertifiedKey> {
    if digest.len() != 32 {
        anyhow::bail!("key authorization digest is not SHA-256");
    }
    let kp =
        rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).context("tls-alpn-01 key")?;
    let mut params =
        rcgen::CertificateParams::new(vec![name.to_string()]).context("tls-alpn-01 name")?;
    params
        .custom_extensions
        .push(rcgen::CustomExtension::new_acme_identifier(digest));
    let cert = params.self_signed(&kp).context("tls-alpn-01 certificate")?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&PrivateKeyDer::Pkcs8(
        PrivatePkcs8KeyDer::from(kp.serialize_der()),
    ))
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(CertifiedKey::new(vec![cert.der().clone()], signing))
}

/// Serves `/.well-known/acme-challenge/{token}` on `addr` until aborted.
async fn http01_responder(
    addr: SocketAddr,
    tokens: Arc<Mutex<HashMap<String, String>>>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    use axum::extract::{Path as UrlPath, State};
    use axum::http::StatusCode;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot bind http-01-listen {addr}"))?;
    let app = axum::Router::new()
        .route(
            "/.well-known/acme-challenge/{token}",
            axum::routing::get(
                |State(t): State<Arc<Mutex<HashMap<String, String>>>>,
                 UrlPath(token): UrlPath<String>| async move {
                    match t.lock().ok().and_then(|m| m.get(&token).cloned()) {
                        Some(ka) => (StatusCode::OK, ka),
                        None => (StatusCode::NOT_FOUND, String::new()),
                    }
                },
            ),
        )
        .with_state(tokens);
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::warn!(target: "tls", error = %e, "http-01 responder stopped");
        }
    }))
}

/// Whether the cache directory holds an account for this directory (for
/// the startup log).
pub(super) fn has_account(dir: &Path) -> bool {
    dir.join(ACCOUNT_FILE).exists()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn renewal_without_ari_starts_at_two_thirds_of_the_lifetime() {
        let mut params = rcgen::CertificateParams::new(vec!["a.test".to_string()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2030, 1, 1);
        params.not_after = rcgen::date_time_ymd(2030, 4, 1); // 90 days
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let nb = SystemTime::UNIX_EPOCH + Duration::from_secs(1_893_456_000); // 2030-01-01
        assert_eq!(
            two_thirds(cert.der()).unwrap(),
            nb + Duration::from_secs(60 * 86400)
        );
    }

    #[test]
    fn the_ari_renewal_time_lies_in_the_window() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000);
        let end = start + Duration::from_secs(3600);
        for _ in 0..100 {
            let t = random_point(start, end);
            assert!(t >= start && t <= end);
        }
        assert_eq!(random_point(start, start), start);
    }

    #[test]
    fn the_validation_certificate_carries_the_critical_acme_identifier() {
        use x509_cert::der::Decode;
        let digest = [7u8; 32];
        let ck = validation_certificate("a.example.test", &digest).unwrap();
        let cert = x509_cert::Certificate::from_der(ck.cert[0].as_ref()).unwrap();
        let exts = cert.tbs_certificate().extensions().unwrap();
        let acme = exts
            .iter()
            .find(|e| e.extn_id.to_string() == "1.3.6.1.5.5.7.1.31")
            .expect("acmeIdentifier extension");
        assert!(acme.critical);
        // OCTET STRING (0x04), 32 bytes, the digest.
        assert_eq!(acme.extn_value.as_bytes()[..2], [0x04, 32]);
        assert_eq!(acme.extn_value.as_bytes()[2..], digest);
        let (_, names) = pki::leaf_expiry_and_names(ck.cert[0].as_ref()).unwrap();
        assert_eq!(names, ["a.example.test"]);
    }
}
