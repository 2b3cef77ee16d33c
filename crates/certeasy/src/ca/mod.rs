//! Certificate authorities and policy bindings.
//!
//! An [`Authority`] signs; [`Authorities`] picks which one signs for a policy
//! (`first_available` with failover, or `round_robin`), skipping unhealthy
//! ones. Health is the count of consecutive failures: an authority that
//! failed [`UNHEALTHY_AFTER`] times in a row is skipped until it succeeds
//! again (a request is still sent to it when every authority is unhealthy,
//! so recovery is noticed).

mod adcs;
mod adcs_cli;
mod builtin;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;

use pki::DnsName;

pub use adcs::AdcsCa;
pub use adcs_cli::AdcsCliCa;
pub use builtin::{BuiltinCa, BuiltinCaError};

use crate::config::{AuthorityKind, Config, Strategy};

/// Consecutive failures after which an authority counts as unhealthy.
pub const UNHEALTHY_AFTER: u32 = 3;

/// What an authority is asked to sign.
#[derive(Debug)]
pub struct IssueRequest<'a> {
    /// Subject public key of the CSR.
    pub spki_der: &'a [u8],
    /// The CSR itself (ADCS submits it as is).
    pub csr_der: &'a [u8],
    /// The order's names.
    pub names: &'a [DnsName],
    /// Type of the CSR's key, when known: authorities that cannot issue for
    /// it are skipped.
    pub key: Option<pki::PublicKeyKind>,
    /// EKUs to grant beyond serverAuth (the CSR asked, the policy allows).
    /// ADCS ignores it: there the template decides, and the issued
    /// certificate is checked against the policy.
    pub extra_eku: &'a [pki::ObjectIdentifier],
    /// Requested notBefore (unix ms).
    pub not_before: Option<i64>,
    /// Requested notAfter (unix ms).
    pub not_after: Option<i64>,
    /// Lifetime when no notAfter is requested (an ACME profile's
    /// `validity`); the authority's own default otherwise. ADCS ignores it
    /// (the template decides).
    pub validity: Option<std::time::Duration>,
    /// Authority name → certificate template to submit to instead of the
    /// authority's configured one (an ACME profile's override).
    pub templates: Option<&'a BTreeMap<String, String>>,
}

impl IssueRequest<'_> {
    /// The template override for authority `name`, if any.
    fn template_for(&self, name: &str) -> Option<&str> {
        self.templates.and_then(|t| t.get(name)).map(String::as_str)
    }
}

/// A signed certificate and the authority that signed it.
#[derive(Debug)]
pub struct Issued {
    /// Authority name.
    pub authority: String,
    /// Leaf DER.
    pub leaf_der: Vec<u8>,
    /// Chain DER, issuer first.
    pub chain_der: Vec<Vec<u8>>,
}

/// What one authority answered.
#[derive(Debug)]
pub enum Signed {
    /// Signed now.
    Issued {
        /// Leaf DER.
        leaf_der: Vec<u8>,
        /// Chain DER, issuer first.
        chain_der: Vec<Vec<u8>>,
    },
    /// Taken under submission (a CA officer must approve it).
    Pending {
        /// The CA's request id, to retrieve the outcome later.
        request_id: u32,
        /// The CA's disposition message.
        message: String,
    },
}

/// What a policy's binding produced.
#[derive(Debug)]
pub enum IssueOutcome {
    /// Signed.
    Issued(Issued),
    /// Pending at `authority` under `request_id`.
    Pending {
        /// Authority holding the request.
        authority: String,
        /// The CA's request id.
        request_id: u32,
        /// The CA's message.
        message: String,
    },
}

/// Why an authority did not sign.
#[derive(Debug, thiserror::Error)]
pub enum AuthorityError {
    /// Worth retrying later (unreachable, timeout).
    #[error("{0}")]
    Transient(String),
    /// Final refusal (denied, policy).
    #[error("{0}")]
    Refused(String),
}

/// One authority implementation.
pub enum Authority {
    /// Built-in CA.
    Builtin(BuiltinCa),
    /// Microsoft ADCS over the native bridge.
    Adcs(AdcsCa),
    /// Microsoft ADCS through certreq.exe.
    AdcsCli(AdcsCliCa),
}

impl Authority {
    async fn issue(
        &self,
        req: &IssueRequest<'_>,
        template: Option<&str>,
    ) -> Result<Signed, AuthorityError> {
        match self {
            Authority::Builtin(ca) => ca.issue(req).map(|(leaf_der, chain_der)| Signed::Issued {
                leaf_der,
                chain_der,
            }),
            Authority::Adcs(ca) => ca.submit(req.csr_der, template).await,
            Authority::AdcsCli(ca) => ca.submit(req.csr_der, template).await,
        }
    }

    async fn retrieve(&self, request_id: u32) -> Result<Signed, AuthorityError> {
        match self {
            Authority::Builtin(_) => Err(AuthorityError::Refused(format!(
                "the built-in CA has no pending request {request_id}"
            ))),
            Authority::Adcs(ca) => ca.retrieve(request_id).await,
            Authority::AdcsCli(ca) => ca.retrieve(request_id).await,
        }
    }

    /// Revokes the certificate with serial `serial_hex` at this authority:
    /// the built-in CA records nothing more (its CRL and OCSP read
    /// certeasy's records); ADCS over MS-CSRA; the certreq fallback
    /// cannot.
    async fn revoke(
        &self,
        serial_hex: &str,
        reason: u32,
        at: std::time::SystemTime,
    ) -> Result<(), AuthorityError> {
        match self {
            Authority::Builtin(ca) => ca.revoke(),
            Authority::Adcs(ca) => ca.revoke(serial_hex, reason, at).await,
            Authority::AdcsCli(ca) => ca.revoke(serial_hex),
        }
    }

    async fn probe(&self) -> Result<(), AuthorityError> {
        match self {
            Authority::Builtin(ca) => ca.probe(),
            Authority::Adcs(ca) => ca.probe().await,
            Authority::AdcsCli(ca) => ca.probe(),
        }
    }
}

struct Entry {
    name: String,
    authority: Authority,
    failures: AtomicU32,
    probe_every: std::time::Duration,
    /// [`AuthorityKind::issues_for`] of this authority's kind.
    issues_for: Box<dyn Fn(pki::PublicKeyKind) -> bool + Send + Sync>,
}

impl Entry {
    fn healthy(&self) -> bool {
        self.failures.load(Ordering::Relaxed) < UNHEALTHY_AFTER
    }
}

struct Bound {
    entries: Vec<Arc<Entry>>,
    strategy: Strategy,
    next: AtomicUsize,
}

/// All authorities and the policy bindings.
pub struct Authorities {
    by_name: BTreeMap<String, Arc<Entry>>,
    bindings: BTreeMap<String, Bound>,
}

/// Startup failure of an authority.
#[derive(Debug, thiserror::Error)]
#[error("authority {name}: {source}")]
pub struct StartupError {
    /// Authority name.
    pub name: String,
    /// Cause.
    #[source]
    pub source: BuiltinCaError,
}

impl Authorities {
    /// Opens every configured authority (creating built-in CA material on
    /// first start) and wires the bindings.
    pub fn open(config: &Config) -> Result<Authorities, StartupError> {
        let mut by_name = BTreeMap::new();
        for a in &config.authorities {
            let authority = match &a.kind {
                AuthorityKind::Builtin(f) => {
                    let startup = |source| StartupError {
                        name: a.name.clone(),
                        source,
                    };
                    let mut ca = BuiltinCa::open(&config.ca_dir(&a.name), f).map_err(startup)?;
                    // With revocation-status, every certificate says where
                    // its status is published.
                    let urls = config
                        .revocation_status
                        .as_ref()
                        .map(|r| pki::RevocationUrls {
                            crl: r.crl_url(&a.name),
                            ocsp: r.ocsp_url(),
                        });
                    ca.set_revocation_urls(urls).map_err(startup)?;
                    Authority::Builtin(ca)
                }
                AuthorityKind::Adcs(settings) => {
                    Authority::Adcs(AdcsCa::with_pool(settings, a.pool))
                }
                AuthorityKind::AdcsCli(settings) => {
                    Authority::AdcsCli(AdcsCliCa::new(settings.as_ref().clone()))
                }
            };
            let kind = a.kind.clone();
            by_name.insert(
                a.name.clone(),
                Arc::new(Entry {
                    name: a.name.clone(),
                    authority,
                    failures: AtomicU32::new(0),
                    probe_every: a.health_check_interval,
                    issues_for: Box::new(move |key| kind.issues_for(key)),
                }),
            );
        }
        let mut bindings = BTreeMap::new();
        for (policy, b) in &config.bindings {
            let entries = b
                .authorities
                .iter()
                .filter_map(|n| by_name.get(n).cloned())
                .collect();
            bindings.insert(
                policy.clone(),
                Bound {
                    entries,
                    strategy: b.strategy,
                    next: AtomicUsize::new(0),
                },
            );
        }
        Ok(Authorities { by_name, bindings })
    }

    /// Root certificates (PEM) of every built-in CA, for `ca/root.pem`.
    pub fn builtin_roots_pem(&self) -> Vec<(String, String)> {
        self.by_name
            .values()
            .filter_map(|e| match &e.authority {
                Authority::Builtin(ca) => Some((e.name.clone(), ca.root_pem().to_string())),
                Authority::Adcs(_) | Authority::AdcsCli(_) => None,
            })
            .collect()
    }

    /// Starts one probe loop per authority: every `health-check-interval` a
    /// lightweight probe; success makes it healthy again, failure counts like
    /// a failed request. Stops with `stop`.
    pub fn spawn_health_probes(
        self: &Arc<Self>,
        stop: tokio_util::sync::CancellationToken,
        audit: crate::audit::Audit,
        store: crate::store::Store,
    ) {
        for e in self.by_name.values() {
            let e = e.clone();
            let stop = stop.clone();
            let audit = audit.clone();
            let store = store.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(e.probe_every);
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                loop {
                    tokio::select! {
                        _ = tick.tick() => {}
                        _ = stop.cancelled() => return,
                    }
                    let was_healthy = e.healthy();
                    match e.authority.probe().await {
                        Ok(()) => {
                            e.failures.store(0, Ordering::Relaxed);
                            if !was_healthy {
                                tracing::info!(target: "ca", authority = %e.name, "authority healthy again");
                                let event = crate::audit::Event::new("authority.health")
                                    .detail("authority", e.name.as_str())
                                    .detail("healthy", true);
                                audit.record_alone(&store, event).await;
                            }
                        }
                        Err(err) => {
                            e.failures.fetch_add(1, Ordering::Relaxed);
                            if was_healthy && !e.healthy() {
                                tracing::warn!(target: "ca", authority = %e.name, error = %err, "authority unhealthy");
                                let event = crate::audit::Event::new("authority.health")
                                    .detail("authority", e.name.as_str())
                                    .detail("healthy", false)
                                    .reason(err.to_string());
                                audit.record_alone(&store, event).await;
                            }
                        }
                    }
                }
            });
        }
    }

    /// Whether the named authority is currently healthy.
    pub fn is_healthy(&self, name: &str) -> bool {
        self.by_name.get(name).is_some_and(|e| e.healthy())
    }

    /// Whether every policy has at least one healthy authority.
    pub fn every_policy_served(&self) -> bool {
        self.bindings
            .values()
            .all(|b| b.entries.iter().any(|e| e.healthy()))
    }

    /// Signs through the named authority directly (own listener certificate).
    pub async fn issue_with(
        &self,
        name: &str,
        req: &IssueRequest<'_>,
    ) -> Result<IssueOutcome, AuthorityError> {
        let e = self
            .by_name
            .get(name)
            .ok_or_else(|| AuthorityError::Refused(format!("unknown authority {name}")))?;
        attempt(e, req).await
    }

    /// Signs for a policy according to its binding.
    pub async fn issue(
        &self,
        policy: &str,
        req: &IssueRequest<'_>,
    ) -> Result<IssueOutcome, AuthorityError> {
        let b = self
            .bindings
            .get(policy)
            .ok_or_else(|| AuthorityError::Refused(format!("policy {policy} has no binding")))?;
        let n = b.entries.len();
        if n == 0 {
            return Err(AuthorityError::Refused(format!(
                "policy {policy} has no authority"
            )));
        }
        let start = match b.strategy {
            Strategy::FirstAvailable => 0,
            Strategy::RoundRobin => b.next.fetch_add(1, Ordering::Relaxed) % n,
        };
        // Only the authorities that can issue for the CSR's key (ADCS cannot
        // for Ed25519: with a mixed binding the built-in CA signs those).
        let order: Vec<&Arc<Entry>> = (0..n)
            .map(|i| &b.entries[(start + i) % n])
            .filter(|e| req.key.is_none_or(|k| (e.issues_for)(k)))
            .collect();
        if order.is_empty() {
            return Err(AuthorityError::Refused(format!(
                "no authority of policy {policy} can issue for this key type"
            )));
        }
        let healthy: Vec<&Arc<Entry>> = order.iter().copied().filter(|e| e.healthy()).collect();
        let candidates = if healthy.is_empty() { order } else { healthy };
        let mut errors = Vec::new();
        for e in candidates {
            match attempt(e, req).await {
                Ok(i) => return Ok(i),
                Err(AuthorityError::Refused(m)) => {
                    return Err(AuthorityError::Refused(format!(
                        "authority {}: {m}",
                        e.name
                    )))
                }
                Err(AuthorityError::Transient(m)) => {
                    tracing::warn!(target: "ca", authority = %e.name, error = %m, "authority failed; trying the next one");
                    errors.push(format!("{}: {m}", e.name));
                }
            }
        }
        Err(AuthorityError::Transient(errors.join("; ")))
    }

    /// Revokes the certificate with serial `serial_hex` (lower-case hex)
    /// at `authority`, for RFC 5280 reason `reason`, effective `at`. A
    /// transient failure counts against the authority's health.
    pub async fn revoke(
        &self,
        authority: &str,
        serial_hex: &str,
        reason: u32,
        at: std::time::SystemTime,
    ) -> Result<(), AuthorityError> {
        let e = self.by_name.get(authority).ok_or_else(|| {
            AuthorityError::Refused(format!(
                "authority {authority}, which signed the certificate, is no longer configured"
            ))
        })?;
        let r = e.authority.revoke(serial_hex, reason, at).await;
        match &r {
            Ok(()) => e.failures.store(0, Ordering::Relaxed),
            Err(AuthorityError::Transient(_)) => {
                e.failures.fetch_add(1, Ordering::Relaxed);
            }
            Err(AuthorityError::Refused(_)) => {}
        }
        r
    }

    /// The built-in CAs with their names (CRL and OCSP signing).
    pub fn builtin_cas(&self) -> impl Iterator<Item = (&str, &pki::BuiltinCa)> {
        self.by_name.values().filter_map(|e| match &e.authority {
            Authority::Builtin(ca) => Some((e.name.as_str(), ca.pki())),
            Authority::Adcs(_) | Authority::AdcsCli(_) => None,
        })
    }

    /// The built-in CA named `name`.
    pub fn builtin_ca(&self, name: &str) -> Option<&pki::BuiltinCa> {
        match &self.by_name.get(name)?.authority {
            Authority::Builtin(ca) => Some(ca.pki()),
            Authority::Adcs(_) | Authority::AdcsCli(_) => None,
        }
    }

    /// Asks `authority` for the outcome of its pending request `request_id`.
    pub async fn retrieve(
        &self,
        authority: &str,
        request_id: u32,
    ) -> Result<IssueOutcome, AuthorityError> {
        let e = self.by_name.get(authority).ok_or_else(|| {
            AuthorityError::Refused(format!("authority {authority}, which holds pending request {request_id}, is no longer configured"))
        })?;
        let r = e.authority.retrieve(request_id).await;
        account(e, r)
    }
}

async fn attempt(e: &Entry, req: &IssueRequest<'_>) -> Result<IssueOutcome, AuthorityError> {
    let r = e.authority.issue(req, req.template_for(&e.name)).await;
    account(e, r)
}

/// Updates the health of `e` from one answer and names the authority.
fn account(e: &Entry, r: Result<Signed, AuthorityError>) -> Result<IssueOutcome, AuthorityError> {
    match r {
        Ok(signed) => {
            e.failures.store(0, Ordering::Relaxed);
            Ok(match signed {
                Signed::Issued {
                    leaf_der,
                    chain_der,
                } => IssueOutcome::Issued(Issued {
                    authority: e.name.clone(),
                    leaf_der,
                    chain_der,
                }),
                Signed::Pending {
                    request_id,
                    message,
                } => IssueOutcome::Pending {
                    authority: e.name.clone(),
                    request_id,
                    message,
                },
            })
        }
        Err(err) => {
            if matches!(err, AuthorityError::Transient(_)) {
                e.failures.fetch_add(1, Ordering::Relaxed);
            }
            Err(err)
        }
    }
}
