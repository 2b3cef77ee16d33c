//! High-level async ICertPassage client.

use std::net::SocketAddr;

use crate::auth::{AuthError, ClientAuth};
use crate::client::{ept_map, ClientOptions, RpcClient};
use crate::error::RpcError;
use crate::icpr::{
    explain, CertServerRequest, CertServerResponse, Disposition, ICPR_INTERFACE,
    OPNUM_CERT_SERVER_REQUEST, RPC_S_ACCESS_DENIED, SEC_E_LOGON_DENIED,
};

/// How to find the ICertPassage endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndpointSelection {
    /// Ask the endpoint mapper on this port (135 on Windows).
    EndpointMapper {
        /// Endpoint mapper port.
        port: u16,
    },
    /// Connect straight to this port.
    Fixed(u16),
}

/// Outcome of a submission or retrieval that did not fail.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IcprReply {
    /// Request id assigned by the CA.
    pub request_id: u32,
    /// [`Disposition::Issued`] or [`Disposition::UnderSubmission`].
    pub disposition: Disposition,
    /// The CA's disposition message (in the CA's language).
    pub message: String,
    /// Issued certificate (DER) when issued.
    pub cert_der: Option<Vec<u8>>,
    /// PKCS #7 / CMS chain (DER) when issued.
    pub chain_cms: Option<Vec<u8>>,
}

/// ICertPassage failures, each with an actionable message.
#[derive(Debug, thiserror::Error)]
pub enum IcprError {
    /// Could not resolve or reach the CA.
    #[error("cannot reach the CA at {target}: {source}")]
    Connect {
        /// host:port tried.
        target: String,
        /// Cause.
        source: RpcError,
    },
    /// The endpoint mapper did not give an ICertPassage port.
    #[error("endpoint mapper lookup failed at {target}: {source} (is Certificate Services running? is TCP 135 reachable?)")]
    EndpointMapper {
        /// host:port of the endpoint mapper.
        target: String,
        /// Cause.
        source: RpcError,
    },
    /// Credentials refused.
    #[error(
        "authentication to the CA failed: {0} — check domain (or realm), user name and password or keytab"
    )]
    Authentication(String),
    /// The CA denied or failed the request (disposition carried an HRESULT).
    #[error("the CA denied request {request_id}: {symbol} (0x{hresult:08x}): {explanation}; CA message: {ca_message:?}")]
    Denied {
        /// Request id (0 when none was assigned).
        request_id: u32,
        /// HRESULT.
        hresult: u32,
        /// Symbolic name.
        symbol: &'static str,
        /// Actionable English explanation.
        explanation: &'static str,
        /// The CA's own message.
        ca_message: String,
    },
    /// RPC fault during the call.
    #[error("the CA returned RPC fault {symbol} (0x{status:08x}): {explanation}")]
    Fault {
        /// Fault status.
        status: u32,
        /// Symbolic name.
        symbol: &'static str,
        /// Explanation.
        explanation: &'static str,
    },
    /// Timeout of a phase.
    #[error("timed out during {0}")]
    Timeout(&'static str),
    /// Anything else (malformed reply, connection dropped…).
    #[error("RPC failure: {0}")]
    Rpc(RpcError),
}

impl From<RpcError> for IcprError {
    fn from(e: RpcError) -> Self {
        match e {
            RpcError::Timeout(p) => IcprError::Timeout(p),
            RpcError::Auth(AuthError::LogonDenied(m)) => IcprError::Authentication(m),
            RpcError::Fault { status }
                if status == RPC_S_ACCESS_DENIED || status == SEC_E_LOGON_DENIED =>
            {
                IcprError::Authentication(format!(
                    "the CA refused the call ({})",
                    explain(status).1
                ))
            }
            RpcError::Fault { status } => {
                let (symbol, explanation) = explain(status);
                IcprError::Fault {
                    status,
                    symbol,
                    explanation,
                }
            }
            other => IcprError::Rpc(other),
        }
    }
}

/// A connected, authenticated ICertPassage client.
#[derive(Debug)]
pub struct IcprClient {
    rpc: RpcClient,
}

async fn resolve(host: &str, port: u16) -> Result<SocketAddr, RpcError> {
    let mut it = tokio::net::lookup_host((host, port)).await?;
    it.next()
        .ok_or_else(|| RpcError::Protocol(format!("{host} did not resolve")))
}

impl IcprClient {
    /// Resolves the endpoint, connects, binds and authenticates.
    pub async fn connect(
        host: &str,
        endpoint: EndpointSelection,
        auth: &ClientAuth,
        opts: &ClientOptions,
    ) -> Result<IcprClient, IcprError> {
        let port = match endpoint {
            EndpointSelection::Fixed(p) => p,
            EndpointSelection::EndpointMapper { port } => {
                let target = format!("{host}:{port}");
                let addr = resolve(host, port)
                    .await
                    .map_err(|source| IcprError::Connect {
                        target: target.clone(),
                        source,
                    })?;
                ept_map(addr, ICPR_INTERFACE, opts)
                    .await
                    .map_err(|source| IcprError::EndpointMapper { target, source })?
            }
        };
        let target = format!("{host}:{port}");
        let addr = resolve(host, port)
            .await
            .map_err(|source| IcprError::Connect {
                target: target.clone(),
                source,
            })?;
        let rpc = RpcClient::connect(addr, ICPR_INTERFACE, Some(auth), opts)
            .await
            .map_err(|e| match e {
                RpcError::Io(_) | RpcError::ConnectionClosed(_) => {
                    IcprError::Connect { target, source: e }
                }
                other => IcprError::from(other),
            })?;
        Ok(IcprClient { rpc })
    }

    /// Submits a DER PKCS #10 for `template` to `ca_name`.
    pub async fn submit(
        &mut self,
        ca_name: &str,
        template: &str,
        csr_der: &[u8],
    ) -> Result<IcprReply, IcprError> {
        self.exchange(CertServerRequest::submit(ca_name, template, csr_der))
            .await
    }

    /// Retrieves the outcome of an earlier request.
    pub async fn retrieve(
        &mut self,
        ca_name: &str,
        request_id: u32,
    ) -> Result<IcprReply, IcprError> {
        self.exchange(CertServerRequest::retrieve(ca_name, request_id))
            .await
    }

    /// Sends a raw `CertServerRequest` and returns the raw response.
    pub async fn raw(&mut self, req: &CertServerRequest) -> Result<CertServerResponse, IcprError> {
        let stub = self
            .rpc
            .call(OPNUM_CERT_SERVER_REQUEST, &req.encode())
            .await?;
        CertServerResponse::decode(&stub).map_err(|e| IcprError::Rpc(RpcError::Ndr(e)))
    }

    async fn exchange(&mut self, req: CertServerRequest) -> Result<IcprReply, IcprError> {
        let resp = self.raw(&req).await?;
        if resp.status != 0 {
            let (symbol, explanation) = explain(resp.status);
            return Err(IcprError::Denied {
                request_id: resp.request_id,
                hresult: resp.status,
                symbol,
                explanation,
                ca_message: resp.message(),
            });
        }
        let message = resp.message();
        match Disposition::from_wire(resp.disposition) {
            Disposition::Issued => {
                if resp.encoded_cert.is_empty() {
                    return Err(IcprError::Rpc(RpcError::Protocol(
                        "issued without a certificate".into(),
                    )));
                }
                Ok(IcprReply {
                    request_id: resp.request_id,
                    disposition: Disposition::Issued,
                    message,
                    cert_der: Some(resp.encoded_cert),
                    chain_cms: if resp.cert_chain.is_empty() {
                        None
                    } else {
                        Some(resp.cert_chain)
                    },
                })
            }
            Disposition::UnderSubmission => Ok(IcprReply {
                request_id: resp.request_id,
                disposition: Disposition::UnderSubmission,
                message,
                cert_der: None,
                chain_cms: None,
            }),
            Disposition::Failed(code) => {
                let (symbol, explanation) = explain(code);
                Err(IcprError::Denied {
                    request_id: resp.request_id,
                    hresult: code,
                    symbol,
                    explanation,
                    ca_message: message,
                })
            }
        }
    }
}
