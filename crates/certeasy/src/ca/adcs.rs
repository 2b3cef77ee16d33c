//! Microsoft ADCS over the native bridge: MS-ICPR `CertServerRequest` over
//! DCE/RPC (`ncacn_ip_tcp`), NTLM/Kerberos at packet privacy, in process.
//! No child process and no file is involved at any point.
//!
//! One connection per exchange: an enrollment is rare next to its ACME
//! round-trips, and a fresh bind keeps failures (an expired password, a CA
//! restart) from poisoning later requests.

use msrpc::{
    AuthLevel, AuthMethod, ClientAuth, ClientOptions, Credentials, Disposition, EndpointSelection,
    IcprClient, IcprError, IcprReply, Timeouts,
};

use super::{AuthorityError, Signed};
use crate::config::schema::{AdcsAuthLevel, AdcsAuthMethod};
use crate::config::AdcsSettings;

/// Request id retrieved by health probes and `adcs check`: non-zero (so it
/// is a retrieval, never a submission) and far beyond any real CA's counter.
pub const PROBE_REQUEST_ID: u32 = 0x7fff_ffff;

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

/// A native ADCS authority.
pub struct AdcsCa {
    s: AdcsSettings,
    auth: ClientAuth,
    opts: ClientOptions,
}

impl AdcsCa {
    /// Prepares the client side (no I/O).
    pub fn new(s: &AdcsSettings) -> AdcsCa {
        let auth = ClientAuth {
            method: match s.method {
                AdcsAuthMethod::Ntlm => AuthMethod::Ntlm,
                AdcsAuthMethod::Kerberos => AuthMethod::Kerberos,
                AdcsAuthMethod::Negotiate => AuthMethod::Negotiate,
            },
            level: match s.auth_level {
                AdcsAuthLevel::Privacy => AuthLevel::Privacy,
                AdcsAuthLevel::Integrity => AuthLevel::Integrity,
            },
            credentials: Credentials {
                domain: s.domain.clone(),
                username: s.username.clone(),
                password: s.password.clone(),
            },
            spn: s.spn.clone().or_else(|| Some(format!("host/{}", s.host))),
            kdc: s.kdc.clone(),
        };
        let t = s.request_timeout;
        let opts = ClientOptions {
            timeouts: Timeouts {
                connect: t,
                bind: t,
                call: t,
            },
            ..ClientOptions::default()
        };
        AdcsCa {
            s: s.clone(),
            auth,
            opts,
        }
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
        match self.s.port {
            Some(p) => EndpointSelection::Fixed(p),
            None => EndpointSelection::EndpointMapper {
                port: self.s.endpoint_mapper_port,
            },
        }
    }

    async fn connect(&self) -> Result<IcprClient, AuthorityError> {
        IcprClient::connect(&self.s.host, self.endpoint(), &self.auth, &self.opts)
            .await
            .map_err(|e| self.error(e))
    }

    /// Submits a CSR for the configured template.
    pub async fn submit(&self, csr_der: &[u8]) -> Result<Signed, AuthorityError> {
        let mut c = self.connect().await?;
        let reply = c.submit(&self.s.ca, &self.s.template, csr_der).await;
        self.outcome(reply)
    }

    /// Asks for the outcome of an earlier (pending) request.
    pub async fn retrieve(&self, request_id: u32) -> Result<Signed, AuthorityError> {
        let mut c = self.connect().await?;
        let reply = c.retrieve(&self.s.ca, request_id).await;
        self.outcome(reply)
    }

    /// Health probe: connect, bind, and make one real call. With NTLM's
    /// three-leg bind the client's AUTH3 gets no reply, so bad credentials
    /// only show on a call. The call retrieves [`PROBE_REQUEST_ID`], which no
    /// CA holds: the CA answers "no such request" without recording
    /// anything (request id 0 would be a *new submission* and leave a
    /// denied request in the CA database at every probe).
    pub async fn probe(&self) -> Result<(), AuthorityError> {
        let mut c = self.connect().await?;
        match c.retrieve(&self.s.ca, PROBE_REQUEST_ID).await {
            Err(e) if is_access_denied(&e) => Err(self.error(e)),
            Ok(_) | Err(IcprError::Denied { .. }) => Ok(()),
            Err(e) => Err(self.error(e)),
        }
    }

    /// Longest a request may stay pending.
    pub fn default_timeout(&self) -> std::time::Duration {
        self.s.default_timeout
    }

    fn outcome(&self, reply: Result<IcprReply, IcprError>) -> Result<Signed, AuthorityError> {
        let r = reply.map_err(|e| self.error(e))?;
        match r.disposition {
            Disposition::Issued => {
                let leaf = r.cert_der.ok_or_else(|| {
                    AuthorityError::Transient(format!(
                        "CA {} reported request {} issued but sent no certificate",
                        self.s.ca_name, r.request_id
                    ))
                })?;
                let mut pool = match &r.chain_cms {
                    Some(cms) => pki::certs_from_pkcs7(cms).map_err(|e| {
                        AuthorityError::Refused(format!(
                            "CA {} sent an unreadable chain: {e}",
                            self.s.ca_name
                        ))
                    })?,
                    None => Vec::new(),
                };
                pool.extend(self.s.ca_chain.iter().cloned());
                let chain = pki::chain_above(&leaf, &pool).map_err(|e| {
                    AuthorityError::Refused(format!(
                        "CA {} sent an unreadable certificate: {e}",
                        self.s.ca_name
                    ))
                })?;
                Ok(Signed::Issued {
                    leaf_der: leaf,
                    chain_der: chain,
                })
            }
            Disposition::UnderSubmission => Ok(Signed::Pending {
                request_id: r.request_id,
                message: r.message,
            }),
            // Failed dispositions arrive as IcprError::Denied; keep a clear
            // message should a client version report them here.
            Disposition::Failed(code) => Err(AuthorityError::Refused(format!(
                "CA {} refused request {} (0x{code:08x}): {}",
                self.s.ca_name, r.request_id, r.message
            ))),
        }
    }

    /// Denials are final; everything else (unreachable, authentication,
    /// timeouts, faults) may heal and counts against the authority's health.
    fn error(&self, e: IcprError) -> AuthorityError {
        let hint = match self.privacy_hint(&e) {
            Some(h) => format!("; {h}"),
            None => String::new(),
        };
        match e {
            IcprError::Denied { .. } => AuthorityError::Refused(format!("{e}{hint}")),
            other => AuthorityError::Transient(format!(
                "CA {} ({}): {other}{hint}",
                self.s.ca_name, self.s.host
            )),
        }
    }

    /// [`PRIVACY_HINT`] for an access refusal below packet privacy.
    pub fn privacy_hint(&self, e: &IcprError) -> Option<&'static str> {
        (self.s.auth_level != AdcsAuthLevel::Privacy && is_access_denied(e)).then_some(PRIVACY_HINT)
    }
}
