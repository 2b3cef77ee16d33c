//! Certificate of certeasy's own HTTPS listener.
//!
//! Each bundle holds its current certificate behind a lock that handshakes
//! only read; reloading (`files` mode) or renewing (`pki` and `acme` modes)
//! swaps it without touching established connections. An `acme` bundle may
//! have no certificate yet (it is being obtained, `/readyz` says so); its
//! tls-alpn-01 validation certificates are served from [`acme::Challenges`]
//! to handshakes that offer only `acme-tls/1`.

pub mod acme;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use anyhow::Context;
use pki::DnsName;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::ca::{Authorities, IssueOutcome, IssueRequest};
use crate::config::{Config, ListenerKey, TlsSource};
use crate::store::{ListenerCertRow, Store};
pub use acme::ACME_TLS_ALPN;

/// One bundle's hosts and current certificate.
#[derive(Debug)]
struct Slot {
    name: String,
    hosts: Vec<String>,
    /// `None` only for an `acme` bundle whose first certificate is still
    /// being obtained.
    current: RwLock<Option<Arc<CertifiedKey>>>,
}

impl Slot {
    fn current(&self) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok()?.clone()
    }

    fn set(&self, ck: CertifiedKey) {
        if let Ok(mut g) = self.current.write() {
            *g = Some(Arc::new(ck));
        }
    }
}

/// Resolves the listener certificate by SNI.
#[derive(Debug)]
pub struct ListenerCerts {
    slots: Vec<Arc<Slot>>,
    /// Pending tls-alpn-01 answers of `acme` bundles.
    challenges: Arc<acme::Challenges>,
    /// Some bundle is in `acme` mode with tls-alpn-01: the listener offers
    /// `acme-tls/1`.
    alpn_challenges: bool,
}

impl ResolvesServerCert for ListenerCerts {
    fn resolve(&self, hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        let sni = hello.server_name().map(|s| s.to_ascii_lowercase());
        // RFC 8737 §3: a validation handshake offers acme-tls/1 only; it
        // gets the validation certificate of a pending challenge or none.
        if self.alpn_challenges
            && hello
                .alpn()
                .is_some_and(|mut protocols| protocols.any(|p| p == ACME_TLS_ALPN))
        {
            return self.challenges.get(sni.as_deref()?);
        }
        let slot = sni
            .as_deref()
            .and_then(|n| self.slots.iter().find(|s| s.hosts.iter().any(|h| h == n)))
            .or_else(|| self.slots.iter().find(|s| s.hosts.is_empty()))
            .or_else(|| self.slots.first())?;
        slot.current()
    }
}

/// Builds a rustls `CertifiedKey` from a PEM chain and a PEM private key.
pub fn certified_key_from_pem(chain_pem: &[u8], key_pem: &[u8]) -> anyhow::Result<CertifiedKey> {
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile_certs(chain_pem)?;
    if certs.is_empty() {
        anyhow::bail!("no CERTIFICATE block found");
    }
    let key = private_key_from_pem(key_pem)?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .map_err(|e| anyhow::anyhow!("unusable private key: {e}"))?;
    let ck = CertifiedKey::new(certs, signing);
    ck.keys_match()
        .map_err(|e| anyhow::anyhow!("the private key does not match the certificate: {e}"))?;
    Ok(ck)
}

fn rustls_pemfile_certs(pem: &[u8]) -> anyhow::Result<Vec<CertificateDer<'static>>> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| anyhow::anyhow!("bad certificate PEM: {e:?}"))
}

fn private_key_from_pem(pem: &[u8]) -> anyhow::Result<PrivateKeyDer<'static>> {
    use rustls::pki_types::pem::PemObject;
    PrivateKeyDer::from_pem_slice(pem)
        .map_err(|e| anyhow::anyhow!("no usable private key in PEM: {e:?}"))
}

impl ListenerCerts {
    /// Loads or obtains every bundle's certificate and starts the reload /
    /// renewal tasks.
    pub async fn start(
        config: &Config,
        authorities: Arc<Authorities>,
        store: Store,
        node: &str,
        stop: tokio_util::sync::CancellationToken,
    ) -> anyhow::Result<Arc<ListenerCerts>> {
        // The reload and renewal tasks end when the server stops.
        let spawn = |task: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>| {
            let stop = stop.clone();
            tokio::spawn(async move {
                tokio::select! {
                    () = task => {}
                    () = stop.cancelled() => {}
                }
            });
        };
        let mut slots = Vec::new();
        let challenges = Arc::new(acme::Challenges::default());
        let mut alpn_challenges = false;
        for b in &config.tls_bundles {
            let hosts = if b.hosts.is_empty() && config.tls_bundles.len() == 1 {
                Vec::new()
            } else {
                b.hosts.clone()
            };
            // The files' stamps are taken before they are read, so a change
            // made while the server starts is seen by the first watch tick.
            let mut file_stamps = None;
            let mut pki_source = None;
            let ck = match &b.source {
                TlsSource::Files { cert, key, .. } => {
                    file_stamps = Some((stamp(cert), stamp(key)));
                    load_files(cert, key).with_context(|| format!("tls bundle {}", b.name))?
                }
                TlsSource::Pki {
                    authority,
                    cache_dir,
                    renew_before,
                    acquire_timeout,
                    key,
                } => {
                    let src = Arc::new(PkiBundle {
                        bundle: b.name.clone(),
                        store: store.clone(),
                        node: node.to_string(),
                        authorities: authorities.clone(),
                        authority: authority.clone(),
                        cache_dir: cache_dir.clone(),
                        renew_before: *renew_before,
                        acquire_timeout: *acquire_timeout,
                        key: *key,
                        names: bundle_names(config, &b.hosts),
                    });
                    let ck = tokio::time::timeout(*acquire_timeout, src.obtain())
                        .await
                        .map_err(|_| anyhow::anyhow!("tls bundle {}: no certificate from authority {authority} within acquire-timeout", b.name))?
                        .with_context(|| format!("tls bundle {}", b.name))?
                        .0;
                    pki_source = Some(src);
                    ck
                }
                // Obtained in the background: the listener must be serving
                // to answer tls-alpn-01.
                TlsSource::Acme(src) => {
                    let cached = acme::load_cached(src);
                    tracing::info!(target: "tls", bundle = %b.name, directory = %src.directory_url, cached = cached.is_some(), account = acme::has_account(&src.cache_dir), "listener certificate from an external ACME CA");
                    match cached {
                        Some(ck) => ck,
                        None => {
                            slots.push(Arc::new(Slot {
                                name: b.name.clone(),
                                hosts,
                                current: RwLock::new(None),
                            }));
                            continue;
                        }
                    }
                }
            };
            let slot = Arc::new(Slot {
                name: b.name.clone(),
                hosts,
                current: RwLock::new(Some(Arc::new(ck))),
            });
            match &b.source {
                TlsSource::Files {
                    cert,
                    key,
                    watch_interval,
                } => {
                    spawn(Box::pin(watch_files(
                        slot.clone(),
                        cert.clone(),
                        key.clone(),
                        file_stamps.unwrap_or_default(),
                        *watch_interval,
                    )));
                }
                TlsSource::Pki { .. } => {
                    if let Some(src) = pki_source {
                        spawn(Box::pin(renew_loop(slot.clone(), src)));
                    }
                }
                TlsSource::Acme(_) => {}
            }
            slots.push(slot);
        }
        // The renewal tasks of `acme` bundles, those without a certificate
        // included.
        for (b, slot) in config.tls_bundles.iter().zip(&slots) {
            if let TlsSource::Acme(src) = &b.source {
                alpn_challenges |= matches!(src.challenge, crate::config::AcmeChallenge::TlsAlpn01);
                spawn(Box::pin(acme::run(
                    slot.clone(),
                    (**src).clone(),
                    bundle_names(config, &b.hosts),
                    challenges.clone(),
                )));
            }
        }
        Ok(Arc::new(ListenerCerts {
            slots,
            challenges,
            alpn_challenges,
        }))
    }

    /// Bundles whose current certificate is expired or unreadable, each
    /// with the reason (`/readyz`).
    pub fn invalid_bundles(&self) -> Vec<String> {
        let now = SystemTime::now();
        self.slots
            .iter()
            .filter_map(|slot| {
                let Some(current) = slot.current() else {
                    return Some(format!(
                        "bundle {}: no certificate yet (being obtained)",
                        slot.name
                    ));
                };
                let leaf = current.cert.first()?;
                match cached_info(leaf.as_ref()) {
                    Ok((not_after, _)) if not_after > now => None,
                    Ok(_) => Some(format!("bundle {}: certificate expired", slot.name)),
                    Err(e) => Some(format!("bundle {}: {e}", slot.name)),
                }
            })
            .collect()
    }

    /// The rustls server configuration (HTTP/2 and HTTP/1.1 by ALPN).
    pub fn server_config(self: &Arc<Self>) -> anyhow::Result<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| anyhow::anyhow!("{e}"))?
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        if self.alpn_challenges {
            cfg.alpn_protocols.push(ACME_TLS_ALPN.to_vec());
        }
        Ok(cfg)
    }
}

/// Names of a `pki` or `acme` bundle's certificate: its hosts, or every URL host.
fn bundle_names(config: &Config, hosts: &[String]) -> Vec<String> {
    let mut names: Vec<String> = if hosts.is_empty() {
        config
            .server
            .urls
            .iter()
            .filter_map(|u| u.host_str().map(|h| h.to_ascii_lowercase()))
            .collect()
    } else {
        hosts.to_vec()
    };
    names.sort();
    names.dedup();
    names
}

fn load_files(cert: &Path, key: &Path) -> anyhow::Result<CertifiedKey> {
    let c = std::fs::read(cert).with_context(|| format!("cannot read {}", cert.display()))?;
    let k = std::fs::read(key).with_context(|| format!("cannot read {}", key.display()))?;
    certified_key_from_pem(&c, &k)
        .with_context(|| format!("{} / {}", cert.display(), key.display()))
}

fn stamp(p: &Path) -> Stamp {
    let m = std::fs::metadata(p).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Size and modification time of a file.
type Stamp = Option<(SystemTime, u64)>;

async fn watch_files(
    slot: Arc<Slot>,
    cert: PathBuf,
    key: PathBuf,
    loaded: (Stamp, Stamp),
    every: Duration,
) {
    let mut last = loaded;
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tick.tick().await;
        let now = (stamp(&cert), stamp(&key));
        if now == last {
            continue;
        }
        match load_files(&cert, &key) {
            Ok(ck) => {
                slot.set(ck);
                last = now;
                tracing::info!(target: "tls", bundle = %slot.name, "listener certificate reloaded from files");
            }
            // A half-written pair is normal while an operator copies files:
            // keep serving the old certificate and try again next tick.
            Err(e) => {
                tracing::warn!(target: "tls", bundle = %slot.name, error = format!("{e:#}"), "listener certificate files changed but cannot be loaded yet")
            }
        }
    }
}

const CACHE_CERT: &str = "cert.pem";
const CACHE_KEY: &str = "key.pem";

/// When `renew-before` exceeds the lifetime the authority gives, a fresh
/// certificate is due at once; no node renews more often than this.
const MIN_RENEWAL_GAP: Duration = Duration::from_secs(3600);

/// How often a node waiting for another node's certificate looks again.
const WAIT_STEP: Duration = Duration::from_millis(500);

/// A `pki` bundle: its authority, the database row every node on the
/// database shares (one node obtains the certificate while holding the
/// row's claim, the others wait and load it), and this node's file cache
/// (`local-pki-cache-dir`, a copy of the row).
struct PkiBundle {
    bundle: String,
    store: Store,
    /// This node's worker id (who holds the claim).
    node: String,
    authorities: Arc<Authorities>,
    authority: String,
    cache_dir: PathBuf,
    renew_before: Duration,
    /// Also how long a claim holds: a node that dies while obtaining the
    /// certificate hands over to the others after it.
    acquire_timeout: Duration,
    key: ListenerKey,
    names: Vec<String>,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn unix_time(secs: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs.max(0) as u64)
}

impl PkiBundle {
    /// The shared certificate when it still covers the names and is not
    /// due for renewal (or was stored less than [`MIN_RENEWAL_GAP`] ago);
    /// otherwise a new one, obtained by this node if it gets the claim, or
    /// by the node that holds it. Returns the key and the time at which it
    /// is due for renewal.
    async fn obtain(&self) -> anyhow::Result<(CertifiedKey, SystemTime)> {
        let mut told = false;
        loop {
            let now = unix_now();
            if let Some(found) = self.shared(now).await? {
                return Ok(found);
            }
            let until = now + self.acquire_timeout.as_secs().max(1) as i64;
            if self
                .store
                .listener_cert_claim(&self.bundle, &self.node, now, until)
                .await?
            {
                // Another node may have stored one between the read and
                // the claim.
                if let Some(found) = self.shared(now).await? {
                    self.store
                        .listener_cert_release(&self.bundle, &self.node)
                        .await?;
                    return Ok(found);
                }
                let row = match self.cached_files(now) {
                    // An installation upgraded from a version that kept the
                    // certificate in files only: no need to issue again.
                    Some(row) => row,
                    None => match self.issue(now).await {
                        Ok(row) => row,
                        Err(e) => {
                            if let Err(re) = self
                                .store
                                .listener_cert_release(&self.bundle, &self.node)
                                .await
                            {
                                tracing::warn!(target: "tls", bundle = %self.bundle, error = %re, "cannot release the claim on the listener certificate; it lapses after acquire-timeout");
                            }
                            return Err(e);
                        }
                    },
                };
                self.store.listener_cert_put(&self.bundle, &row).await?;
                self.write_cache(&row);
                return self.certified(&row);
            }
            if !told {
                told = true;
                tracing::info!(target: "tls", bundle = %self.bundle, "another node is obtaining the listener certificate; waiting for it");
            }
            tokio::time::sleep(WAIT_STEP).await;
        }
    }

    /// The stored certificate if this node may serve it as it is.
    async fn shared(&self, now: i64) -> anyhow::Result<Option<(CertifiedKey, SystemTime)>> {
        let Some(row) = self.store.listener_cert(&self.bundle).await? else {
            return Ok(None);
        };
        let due = row.not_after - self.renew_before.as_secs() as i64;
        let fresh = now < due || now - row.issued_at < MIN_RENEWAL_GAP.as_secs() as i64;
        if row.names != self.names || now >= row.not_after || !fresh {
            return Ok(None);
        }
        match self.certified(&row) {
            Ok(found) => {
                self.write_cache(&row);
                Ok(Some(found))
            }
            Err(e) => {
                tracing::warn!(target: "tls", bundle = %self.bundle, error = format!("{e:#}"), "the stored listener certificate is unusable; obtaining a new one");
                Ok(None)
            }
        }
    }

    /// The key of a row and its renewal time.
    fn certified(&self, row: &ListenerCertRow) -> anyhow::Result<(CertifiedKey, SystemTime)> {
        let ck = certified_key_from_pem(row.chain_pem.as_bytes(), row.key_pem.as_bytes())?;
        Ok((ck, unix_time(row.not_after) - self.renew_before))
    }

    /// The certificate of the file cache when it covers the names and is
    /// not due for renewal.
    fn cached_files(&self, now: i64) -> Option<ListenerCertRow> {
        let chain = std::fs::read_to_string(self.cache_dir.join(CACHE_CERT)).ok()?;
        let key = std::fs::read_to_string(self.cache_dir.join(CACHE_KEY)).ok()?;
        let ck = certified_key_from_pem(chain.as_bytes(), key.as_bytes()).ok()?;
        let (not_after, names) = cached_info(ck.cert.first()?.as_ref()).ok()?;
        if names != self.names || SystemTime::now() >= not_after - self.renew_before {
            return None;
        }
        Some(ListenerCertRow {
            names,
            chain_pem: chain,
            key_pem: key,
            not_after: not_after
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
            issued_at: now,
            issued_by: self.node.clone(),
        })
    }

    /// Copies the row to the file cache when it differs. The database is
    /// the reference, so a failure is logged, not fatal.
    fn write_cache(&self, row: &ListenerCertRow) {
        let cert_path = self.cache_dir.join(CACHE_CERT);
        if std::fs::read_to_string(&cert_path).ok().as_deref() == Some(row.chain_pem.as_str()) {
            return;
        }
        let written = crate::fsutil::create_private_dir(&self.cache_dir)
            .with_context(|| format!("cannot create {}", self.cache_dir.display()))
            .and_then(|()| {
                crate::fsutil::replace_file(
                    &self.cache_dir.join(CACHE_KEY),
                    row.key_pem.as_bytes(),
                    true,
                )
            })
            .and_then(|()| {
                crate::fsutil::replace_file(&cert_path, row.chain_pem.as_bytes(), false)
            });
        if let Err(e) = written {
            tracing::warn!(target: "tls", bundle = %self.bundle, error = format!("{e:#}"), "cannot update the listener certificate's file cache");
        }
    }

    /// Issues a new certificate from the authority.
    async fn issue(&self, now: i64) -> anyhow::Result<ListenerCertRow> {
        let (authority, names) = (&self.authority, &self.names);
        let alg = match self.key {
            ListenerKey::EcdsaP256 => &rcgen::PKCS_ECDSA_P256_SHA256,
            ListenerKey::EcdsaP384 => &rcgen::PKCS_ECDSA_P384_SHA384,
            ListenerKey::Rsa(_) => anyhow::bail!(
                "RSA listener keys are not supported in pki mode yet; use key: {{type: ecdsa}}"
            ),
        };
        let kp = rcgen::KeyPair::generate_for(alg).context("cannot generate the listener key")?;
        let dns: Vec<DnsName> = names
            .iter()
            .map(|n| DnsName::parse(n))
            .collect::<Result<_, _>>()
            .context("listener host names")?;
        let spki = rcgen::PublicKeyData::subject_public_key_info(&kp);
        // A real CSR, so any authority (ADCS included) can sign it.
        let mut params = rcgen::CertificateParams::new(names.to_vec()).context("listener CSR")?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        let csr = params.serialize_request(&kp).context("listener CSR")?;
        let req = IssueRequest {
            spki_der: &spki,
            csr_der: csr.der(),
            names: &dns,
            key: None,
            extra_eku: &[],
            not_before: None,
            not_after: None,
            validity: None,
            templates: None,
        };
        let issued = match self.authorities.issue_with(authority, &req).await.map_err(|e| anyhow::anyhow!("authority {authority}: {e}"))? {
            IssueOutcome::Issued(i) => i,
            IssueOutcome::Pending { request_id, .. } => anyhow::bail!(
                "authority {authority} took the listener certificate request under submission (request {request_id}); use a template that issues without approval for tls-certificate-manager"
            ),
        };
        let (not_after, leaf_names) = cached_info(&issued.leaf_der)?;
        tracing::info!(target: "tls", bundle = %self.bundle, authority = %authority, names = ?names, "issued the listener certificate");
        Ok(ListenerCertRow {
            names: leaf_names,
            chain_pem: pki::pem_chain(&issued.leaf_der, &issued.chain_der),
            key_pem: kp.serialize_pem(),
            not_after: not_after
                .duration_since(SystemTime::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
            issued_at: now,
            issued_by: self.node.clone(),
        })
    }
}

/// (notAfter, sorted SAN names) of a certificate.
fn cached_info(der: &[u8]) -> anyhow::Result<(SystemTime, Vec<String>)> {
    let (not_after, mut names) =
        pki::leaf_expiry_and_names(der).map_err(|e| anyhow::anyhow!("{e}"))?;
    names.sort();
    Ok((unix_time(not_after.unix_timestamp()), names))
}

/// Renews a `pki` bundle when it is due. Every node runs this loop; the
/// first whose turn comes gets the claim and renews, the others load its
/// certificate (their certificates are due at the same time).
async fn renew_loop(slot: Arc<Slot>, src: Arc<PkiBundle>) {
    let mut last_renewal = Some(tokio::time::Instant::now());
    loop {
        let due = slot
            .current()
            .and_then(|c| c.cert.first().and_then(|l| cached_info(l.as_ref()).ok()))
            .map(|(na, _)| na - src.renew_before)
            .unwrap_or_else(SystemTime::now);
        let wait = due
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        // Re-check at least daily so clock jumps are noticed.
        tokio::time::sleep(wait.min(Duration::from_secs(86400))).await;
        if SystemTime::now() < due {
            continue;
        }
        if let Some(since) = last_renewal.map(|t| t.elapsed()) {
            if since < MIN_RENEWAL_GAP {
                tracing::warn!(target: "tls", bundle = %slot.name, renew_before = ?src.renew_before, "renew-before is longer than the listener certificate's lifetime; renewing at most hourly");
                tokio::time::sleep(MIN_RENEWAL_GAP - since).await;
            }
        }
        match tokio::time::timeout(src.acquire_timeout, src.obtain()).await {
            Ok(Ok((ck, _))) => {
                last_renewal = Some(tokio::time::Instant::now());
                slot.set(ck);
                tracing::info!(target: "tls", bundle = %slot.name, "listener certificate renewed");
            }
            failed => {
                let error = match failed {
                    Ok(Err(e)) => format!("{e:#}"),
                    _ => "no certificate within acquire-timeout".to_string(),
                };
                tracing::error!(target: "tls", bundle = %slot.name, error, "listener certificate renewal failed; retrying in 5 minutes");
                tokio::time::sleep(Duration::from_secs(300)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn slot(name: &str, not_after: (i32, u8, u8)) -> Arc<Slot> {
        let mut params = rcgen::CertificateParams::new(vec!["a.test".to_string()]).unwrap();
        params.not_before = rcgen::date_time_ymd(2000, 1, 1);
        params.not_after = rcgen::date_time_ymd(not_after.0, not_after.1, not_after.2);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.self_signed(&key).unwrap();
        let ck =
            certified_key_from_pem(cert.pem().as_bytes(), key.serialize_pem().as_bytes()).unwrap();
        Arc::new(Slot {
            name: name.to_string(),
            hosts: Vec::new(),
            current: RwLock::new(Some(Arc::new(ck))),
        })
    }

    #[test]
    fn an_expired_listener_certificate_is_reported() {
        let missing = Arc::new(Slot {
            name: "acme".to_string(),
            hosts: Vec::new(),
            current: RwLock::new(None),
        });
        let certs = ListenerCerts {
            slots: vec![
                slot("current", (4000, 1, 1)),
                slot("old", (2001, 1, 1)),
                missing,
            ],
            challenges: Arc::default(),
            alpn_challenges: false,
        };
        assert_eq!(
            certs.invalid_bundles(),
            vec![
                "bundle old: certificate expired".to_string(),
                "bundle acme: no certificate yet (being obtained)".to_string()
            ]
        );
    }
}
