//! Enrollment over the native bridge: MS-ICPR `CertServerRequest` over
//! DCE/RPC (`ncacn_ip_tcp`), NTLM/Kerberos at packet privacy, in process.
//! No child process and no file is involved at any point.
//!
//! One connection per exchange: an enrollment is rare next to its ACME
//! round-trips, and a fresh bind keeps failures (an expired password, a CA
//! restart) from poisoning later requests.

use msrpc::{
    AuthLevel, ClientAuth, ClientOptions, Disposition, EndpointSelection, IcprClient, IcprError,
    IcprReply,
};

use std::sync::atomic::Ordering;

use crate::{AdcsTarget, Error, Transport};

pub use crate::target::PROBE_REQUEST_ID;

/// What to add to an access-denied error when the exchange ran below packet
/// privacy: a CA with `IF_ENFORCEENCRYPTICERTREQUEST` (the default since
/// the 2022 hardening updates) answers `E_ACCESSDENIED` to such requests,
/// and the permissions the bare message blames may well be right.
pub const PRIVACY_HINT: &str = "auth-level is integrity, and a CA with IF_ENFORCEENCRYPTICERTREQUEST (the default since the 2022 updates) denies requests below packet privacy: set auth-level: privacy (or remove the flag on the CA)";

/// Is this an access refusal (rather than an answer about the request)?
pub fn is_access_denied(e: &IcprError) -> bool {
    match e {
        IcprError::Denied { hresult, .. } => *hresult == msrpc::icpr::E_ACCESSDENIED,
        IcprError::Fault { status, .. } => *status == msrpc::icpr::RPC_S_ACCESS_DENIED,
        IcprError::Authentication(_) => true,
        _ => false,
    }
}

/// Does this ICertPassage failure say that the CA does not offer
/// ICertPassage at all? The endpoint mapper does not know the interface, or
/// the CA answers `E_ACCESSDENIED` without assigning a request id (what
/// lab-adcs answers with `icpr-enabled: false`; Windows with
/// `IF_NORPCICERTREQUEST` could not be checked here).
pub fn icpr_refused(e: &IcprError) -> bool {
    match e {
        IcprError::Denied {
            hresult,
            request_id: 0,
            ..
        } => *hresult == msrpc::icpr::E_ACCESSDENIED,
        IcprError::EndpointMapper {
            source: msrpc::RpcError::Protocol(m),
            ..
        } => m.contains("not registered with the endpoint mapper"),
        _ => false,
    }
}

/// What the CA answered to a submission or retrieval.
#[derive(Debug)]
pub enum Enrolled {
    /// Issued now.
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

/// Which step of the probe failed.
#[derive(Debug)]
pub(crate) enum ProbeFailure {
    /// Connect or bind (with NTLM, bad credentials do not show here).
    Bind(IcprError),
    /// The retrieval of [`PROBE_REQUEST_ID`].
    Call(IcprError),
}

/// The ICPR client side of one [`AdcsTarget`].
pub struct Enrollment {
    t: AdcsTarget,
    auth: ClientAuth,
    opts: ClientOptions,
    pool: crate::pool::Pool,
    /// Set once the CA refused ICertPassage under [`Transport::Auto`]: from
    /// then on every exchange goes over DCOM.
    icpr_refused: std::sync::atomic::AtomicBool,
}

/// One enrollment exchange.
enum Op<'a> {
    /// A CSR and the template to submit it for.
    Submit(&'a [u8], &'a str),
    Retrieve(u32),
}

impl Enrollment {
    /// Prepares the client side (no I/O), with the default pool.
    pub fn new(t: &AdcsTarget) -> Enrollment {
        Enrollment::with_pool(t, crate::pool::PoolSettings::default())
    }

    /// Prepares the client side (no I/O) with a pool of `pool`'s size and
    /// idle timeout.
    pub fn with_pool(t: &AdcsTarget, pool: crate::pool::PoolSettings) -> Enrollment {
        Enrollment {
            t: t.clone(),
            auth: t.client_auth(),
            opts: t.client_options(),
            pool: crate::pool::Pool::new(pool),
            icpr_refused: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// The target.
    pub fn target(&self) -> &AdcsTarget {
        &self.t
    }

    /// Client authentication used for every exchange.
    pub fn auth(&self) -> &ClientAuth {
        &self.auth
    }

    /// RPC client options (timeouts).
    pub fn options(&self) -> &ClientOptions {
        &self.opts
    }

    fn endpoint(&self) -> EndpointSelection {
        match self.t.port {
            Some(p) => EndpointSelection::Fixed(p),
            None => EndpointSelection::EndpointMapper {
                port: self.t.endpoint_mapper_port,
            },
        }
    }

    async fn connect_at(&self, endpoint: EndpointSelection) -> Result<IcprClient, IcprError> {
        IcprClient::connect(&self.t.host, endpoint, &self.auth, &self.opts).await
    }

    /// [`Enrollment::submit`] on a fresh association of its own, outside the
    /// pool (what every request did before the pool; kept for comparisons).
    pub async fn submit_unpooled(&self, csr_der: &[u8]) -> Result<Enrolled, Error> {
        let r = async {
            let mut c = self.connect_at(self.endpoint()).await?;
            self.pool.opened();
            self.run(&mut c, &Op::Submit(csr_der, &self.t.template))
                .await
        }
        .await;
        self.outcome(r)
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
        let template = template.unwrap_or(&self.t.template);
        let reply = self.exchange(Op::Submit(csr_der, template)).await;
        self.outcome(reply)
    }

    /// Asks for the outcome of an earlier (pending) request.
    pub async fn retrieve(&self, request_id: u32) -> Result<Enrolled, Error> {
        let reply = self.exchange(Op::Retrieve(request_id)).await;
        self.outcome(reply)
    }

    /// Associations authenticated so far (each one bind with NTLM or
    /// Kerberos); with the pool this grows with concurrency, not with the
    /// number of requests.
    pub fn authentications(&self) -> u64 {
        self.pool.authentications()
    }

    async fn run(&self, c: &mut IcprClient, op: &Op<'_>) -> Result<IcprReply, IcprError> {
        match op {
            Op::Submit(csr, template) => c.submit(&self.t.ca, template, csr).await,
            Op::Retrieve(id) => c.retrieve(&self.t.ca, *id).await,
        }
    }

    /// Whether exchanges currently go over DCOM (configured, or switched to
    /// after the CA refused ICertPassage).
    pub fn uses_dcom(&self) -> bool {
        match self.t.transport {
            Transport::Dcom => true,
            Transport::Icpr => false,
            Transport::Auto => self.icpr_refused.load(Ordering::Relaxed),
        }
    }

    /// Runs `op` over the target's transport.
    async fn exchange(&self, op: Op<'_>) -> Result<IcprReply, IcprError> {
        if self.uses_dcom() {
            return self.dcom_exchange(&op).await;
        }
        match self.icpr_exchange(&op).await {
            Err(e) if self.switches_to_dcom(&e) => self.dcom_exchange(&op).await,
            r => r,
        }
    }

    async fn dcom_exchange(&self, op: &Op<'_>) -> Result<IcprReply, IcprError> {
        let req = match op {
            Op::Submit(csr, template) => {
                msrpc::csra::EnrollRequest::submit(&self.t.ca, template, csr)
            }
            Op::Retrieve(id) => msrpc::csra::EnrollRequest::retrieve(&self.t.ca, *id),
        };
        let reply = crate::admin::request2(&self.t, &self.auth, &self.opts, &req).await?;
        crate::admin::reply_to_icpr(reply)
    }

    /// Runs `op` on a pooled association, or on a fresh one when none is
    /// idle or the pooled one turns out to be dead (see [`crate::pool`]).
    async fn icpr_exchange(&self, op: &Op<'_>) -> Result<IcprReply, IcprError> {
        let op = match op {
            Op::Submit(c, t) => Op::Submit(c, t),
            Op::Retrieve(id) => Op::Retrieve(*id),
        };
        if let Some(mut c) = self.pool.take() {
            match self.run(&mut c, &op).await {
                Ok(r) => {
                    self.pool.put(c);
                    return Ok(r);
                }
                Err(e) if crate::pool::keeps_association(&e) => {
                    self.pool.put(c);
                    return Err(e);
                }
                Err(e) if crate::pool::stale_association(&e) => {
                    // the association died while idle: authenticate again
                }
                Err(e) => return Err(e),
            }
        }
        let mut c = self.connect_at(self.endpoint()).await?;
        self.pool.opened();
        let r = self.run(&mut c, &op).await;
        if r.is_ok() || r.as_ref().is_err_and(crate::pool::keeps_association) {
            self.pool.put(c);
        }
        r
    }

    /// Health probe: connect, bind, and make one real call. With NTLM's
    /// three-leg bind the client's AUTH3 gets no reply, so bad credentials
    /// only show on a call. The call retrieves [`PROBE_REQUEST_ID`], which no
    /// CA holds: the CA answers "no such request" without recording
    /// anything (request id 0 would be a *new submission* and leave a
    /// denied request in the CA database at every probe).
    pub async fn probe(&self) -> Result<(), Error> {
        if self.uses_dcom() {
            return self.dcom_probe().await;
        }
        let e = match self.probe_at(self.endpoint()).await {
            Ok(()) => return Ok(()),
            Err(ProbeFailure::Bind(e) | ProbeFailure::Call(e)) => e,
        };
        if self.switches_to_dcom(&e) {
            return self.dcom_probe().await;
        }
        Err(self.error(e))
    }

    /// Under [`Transport::Auto`] at packet privacy, a refusal of
    /// ICertPassage itself switches this CA to DCOM (and says so once).
    fn switches_to_dcom(&self, e: &IcprError) -> bool {
        if self.t.transport != Transport::Auto
            || self.t.auth_level != AuthLevel::Privacy
            || !icpr_refused(e)
        {
            return false;
        }
        if !self.icpr_refused.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                ca = %self.t.ca_name,
                error = %e,
                "the CA refuses ICertPassage (MS-ICPR); switching to DCOM (ICertRequestD2) for this CA"
            );
        }
        true
    }

    /// The probe over DCOM: a retrieval of [`PROBE_REQUEST_ID`] through
    /// `ICertRequestD2::Request2`.
    async fn dcom_probe(&self) -> Result<(), Error> {
        match self.dcom_exchange(&Op::Retrieve(PROBE_REQUEST_ID)).await {
            Err(e) if is_access_denied(&e) => Err(self.error(e)),
            Ok(_) | Err(IcprError::Denied { .. }) => Ok(()),
            Err(e) => Err(self.error(e)),
        }
    }

    /// [`Enrollment::probe`] against `endpoint`, saying which step failed.
    pub(crate) async fn probe_at(&self, endpoint: EndpointSelection) -> Result<(), ProbeFailure> {
        let mut c = self
            .connect_at(endpoint)
            .await
            .map_err(ProbeFailure::Bind)?;
        match c.retrieve(&self.t.ca, PROBE_REQUEST_ID).await {
            Err(e) if is_access_denied(&e) => Err(ProbeFailure::Call(e)),
            Ok(_) | Err(IcprError::Denied { .. }) => Ok(()),
            Err(e) => Err(ProbeFailure::Call(e)),
        }
    }

    /// Longest a request may stay pending.
    pub fn default_timeout(&self) -> std::time::Duration {
        self.t.default_timeout
    }

    fn outcome(&self, reply: Result<IcprReply, IcprError>) -> Result<Enrolled, Error> {
        let r = reply.map_err(|e| self.error(e))?;
        let ca_name = || self.t.ca_name.clone();
        match r.disposition {
            Disposition::Issued => {
                let leaf = r.cert_der.ok_or_else(|| Error::NoCertificate {
                    ca_name: ca_name(),
                    request_id: r.request_id,
                })?;
                let mut pool = match &r.chain_cms {
                    Some(cms) => {
                        pki::certs_from_pkcs7(cms).map_err(|e| Error::UnreadableChain {
                            ca_name: ca_name(),
                            reason: e.to_string(),
                        })?
                    }
                    None => Vec::new(),
                };
                pool.extend(self.t.ca_chain.iter().cloned());
                let chain =
                    pki::chain_above(&leaf, &pool).map_err(|e| Error::UnreadableCertificate {
                        ca_name: ca_name(),
                        reason: e.to_string(),
                    })?;
                Ok(Enrolled::Issued {
                    leaf_der: leaf,
                    chain_der: chain,
                })
            }
            Disposition::UnderSubmission => Ok(Enrolled::Pending {
                request_id: r.request_id,
                message: r.message,
            }),
            // Failed dispositions arrive as IcprError::Denied; keep a clear
            // message should a client version report them here.
            Disposition::Failed(code) => Err(Error::Failed {
                ca_name: ca_name(),
                request_id: r.request_id,
                code,
                message: r.message,
            }),
        }
    }

    /// Denials are final; everything else (unreachable, authentication,
    /// timeouts, faults) may heal.
    fn error(&self, e: IcprError) -> Error {
        let hint = self.privacy_hint(&e);
        match e {
            IcprError::Denied { .. } => Error::Denied {
                source: Box::new(e),
                hint,
            },
            other => Error::Exchange {
                ca_name: self.t.ca_name.clone(),
                host: self.t.host.clone(),
                source: Box::new(other),
                hint,
            },
        }
    }

    /// [`PRIVACY_HINT`] for an access refusal below packet privacy.
    pub fn privacy_hint(&self, e: &IcprError) -> Option<&'static str> {
        (self.t.auth_level != AuthLevel::Privacy && is_access_denied(e)).then_some(PRIVACY_HINT)
    }
}
