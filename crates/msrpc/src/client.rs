//! Async DCE/RPC client over `ncacn_ip_tcp`: bind (with authentication),
//! fragmented calls, endpoint mapper lookup.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::timeout;

use crate::auth::{AuthLevel, AuthMethod, ClientAuth, ClientContext, KdcTransport, Protection};
use crate::epm::{
    EptMapRequest, EptMapResponse, TcpTower, EPM_INTERFACE, EPT_S_NOT_REGISTERED, OPNUM_EPT_MAP,
};
use crate::error::RpcError;
use crate::pdu::{self, pfc, AuthVerifier, Bind, Body, ContextElem, Pdu, Request, SEC_TRAILER_LEN};
use crate::transport::{read_fragment, write_fragment};
use crate::uuid::{SyntaxId, Uuid, NDR20};

/// Largest reassembled response accepted.
pub const MAX_CALL_SIZE: usize = 16 << 20;
/// Default `max_xmit_frag` / `max_recv_frag` offered.
pub const DEFAULT_MAX_FRAG: u16 = 4280;
/// Upper bound for a fragment read before negotiation.
const PRE_BIND_MAX: usize = 65535;

/// Timeouts of the client phases.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    /// TCP connect.
    pub connect: Duration,
    /// Bind, including the authentication legs.
    pub bind: Duration,
    /// One call (request sent → last response fragment).
    pub call: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            connect: Duration::from_secs(10),
            bind: Duration::from_secs(15),
            call: Duration::from_secs(60),
        }
    }
}

/// Client options.
#[derive(Clone)]
pub struct ClientOptions {
    /// Phase timeouts.
    pub timeouts: Timeouts,
    /// `max_recv_frag` to offer (≥ 1432).
    pub max_recv_frag: u16,
    /// `max_xmit_frag` to offer (≥ 1432).
    pub max_xmit_frag: u16,
    /// KDC access for Kerberos (None: Kerberos fails with a clear error).
    pub kdc: Option<Arc<dyn KdcTransport>>,
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("timeouts", &self.timeouts)
            .field("max_recv_frag", &self.max_recv_frag)
            .field("max_xmit_frag", &self.max_xmit_frag)
            .finish()
    }
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            timeouts: Timeouts::default(),
            max_recv_frag: DEFAULT_MAX_FRAG,
            max_xmit_frag: DEFAULT_MAX_FRAG,
            kdc: None,
        }
    }
}

/// A bound, optionally authenticated, connection to one interface.
#[derive(Debug)]
pub struct RpcClient {
    stream: TcpStream,
    max_xmit: u16,
    max_recv: u16,
    next_call_id: u32,
    context_id: u16,
    protection: Option<Protection>,
    timeouts: Timeouts,
    broken: bool,
}

/// Connects a TCP stream with the connect timeout.
pub async fn connect_tcp(addr: SocketAddr, t: &Timeouts) -> Result<TcpStream, RpcError> {
    let s = timeout(t.connect, TcpStream::connect(addr))
        .await
        .map_err(|_| RpcError::Timeout("TCP connect"))??;
    s.set_nodelay(true)?;
    Ok(s)
}

impl RpcClient {
    /// Connects and binds to `interface`, authenticating when `auth` is given.
    pub async fn connect(
        addr: SocketAddr,
        interface: SyntaxId,
        auth: Option<&ClientAuth>,
        opts: &ClientOptions,
    ) -> Result<RpcClient, RpcError> {
        let stream = connect_tcp(addr, &opts.timeouts).await?;
        Self::bind(stream, interface, auth, opts).await
    }

    /// Binds on an existing stream.
    pub async fn bind(
        stream: TcpStream,
        interface: SyntaxId,
        auth: Option<&ClientAuth>,
        opts: &ClientOptions,
    ) -> Result<RpcClient, RpcError> {
        let t = opts.timeouts;
        timeout(t.bind, Self::bind_inner(stream, interface, auth, opts))
            .await
            .map_err(|_| RpcError::Timeout("bind"))?
    }

    async fn bind_inner(
        mut stream: TcpStream,
        interface: SyntaxId,
        auth: Option<&ClientAuth>,
        opts: &ClientOptions,
    ) -> Result<RpcClient, RpcError> {
        let max_recv = opts.max_recv_frag.max(pdu::MIN_FRAG);
        let max_xmit = opts.max_xmit_frag.max(pdu::MIN_FRAG);
        let context_id = 0u16;
        let call_id = 1u32;
        let mut sec = match auth {
            Some(a) => {
                if a.level == AuthLevel::Connect || a.level == AuthLevel::None {
                    return Err(RpcError::Protocol(
                        "only packet integrity and packet privacy are supported for authenticated binds".into(),
                    ));
                }
                Some(ClientContext::new(a, opts.kdc.clone())?)
            }
            None => None,
        };
        let auth_context_id = 0u32;
        let elem = ContextElem {
            id: context_id,
            abstract_syntax: interface,
            transfer_syntaxes: vec![NDR20],
        };
        let verifier = |ctx: &ClientContext, token: Vec<u8>| AuthVerifier {
            auth_type: ctx.auth_type(),
            auth_level: ctx.level().to_wire(),
            pad_len: 0,
            context_id: auth_context_id,
            value: token,
        };
        let first = match sec.as_mut() {
            Some(c) => {
                let s = c.step(None)?;
                Some(verifier(c, s.token))
            }
            None => None,
        };
        // Offer header signing for GSS mechanisms (Kerberos distinguishes it;
        // NTLM always signs the whole PDU).
        let want_header_sign = sec
            .as_ref()
            .is_some_and(|c| c.auth_type() != crate::auth::RPC_C_AUTHN_WINNT);
        let bind = Pdu {
            flags: pfc::FIRST_FRAG
                | pfc::LAST_FRAG
                | if want_header_sign {
                    pfc::SUPPORT_HEADER_SIGN
                } else {
                    0
                },
            call_id,
            body: Body::Bind(Bind {
                max_xmit,
                max_recv,
                assoc_group: 0,
                contexts: vec![elem.clone()],
            }),
            auth: first,
        };
        write_fragment(&mut stream, &bind.encode()?).await?;
        let reply = Pdu::decode(&read_fragment(&mut stream, PRE_BIND_MAX).await?)?;
        let ack = match reply.body {
            Body::BindAck(a) => a,
            Body::BindNak(n) => return Err(RpcError::BindRejected(n.reason)),
            Body::Fault(f) => return Err(RpcError::Fault { status: f.status }),
            other => {
                return Err(RpcError::Protocol(format!(
                    "expected bind_ack, got {:?}",
                    other.ptype()
                )))
            }
        };
        if reply.call_id != call_id {
            return Err(RpcError::Protocol("bind_ack for another call id".into()));
        }
        let res = ack
            .results
            .first()
            .ok_or_else(|| RpcError::Protocol("bind_ack without results".into()))?;
        if res.result != pdu::result::ACCEPTANCE {
            return Err(RpcError::ContextRejected {
                result: res.result,
                reason: res.reason,
            });
        }
        // Our transmit size is bounded by what the server can receive, and conversely.
        let neg_xmit = max_xmit.min(ack.max_recv).max(pdu::MIN_FRAG);
        let neg_recv = max_recv.min(ack.max_xmit).max(pdu::MIN_FRAG);
        let mut protection = None;
        if let Some(mut ctx) = sec {
            let mut server_token = reply.auth.map(|a| a.value).ok_or_else(|| {
                RpcError::Auth(crate::auth::AuthError::InvalidToken(
                    "bind_ack carries no authentication token".into(),
                ))
            })?;
            let method_is_ntlm = ctx.auth_type() == crate::auth::RPC_C_AUTHN_WINNT;
            let mut legs = 0;
            loop {
                legs += 1;
                if legs > 6 {
                    return Err(RpcError::Protocol("authentication did not converge".into()));
                }
                let step = ctx.step(Some(&server_token))?;
                if method_is_ntlm {
                    let auth3 = Pdu {
                        flags: pfc::FIRST_FRAG | pfc::LAST_FRAG,
                        call_id,
                        body: Body::Auth3,
                        auth: Some(verifier(&ctx, step.token)),
                    };
                    write_fragment(&mut stream, &auth3.encode()?).await?;
                    break;
                }
                if step.token.is_empty() && step.complete {
                    break;
                }
                let alter = Pdu {
                    flags: pfc::FIRST_FRAG | pfc::LAST_FRAG,
                    call_id,
                    body: Body::AlterContext(Bind {
                        max_xmit,
                        max_recv,
                        assoc_group: ack.assoc_group,
                        contexts: vec![elem.clone()],
                    }),
                    auth: Some(verifier(&ctx, step.token)),
                };
                write_fragment(&mut stream, &alter.encode()?).await?;
                let r = Pdu::decode(&read_fragment(&mut stream, PRE_BIND_MAX).await?)?;
                match r.body {
                    Body::AlterContextResp(_) => {}
                    Body::Fault(f) => return Err(RpcError::Fault { status: f.status }),
                    other => {
                        return Err(RpcError::Protocol(format!(
                            "expected alter_context_resp, got {:?}",
                            other.ptype()
                        )))
                    }
                }
                match r.auth {
                    Some(a) if !a.value.is_empty() && !ctx.is_complete() => server_token = a.value,
                    Some(a) if !a.value.is_empty() => {
                        // final SPNEGO token (mechListMIC): let the client check it
                        let s = ctx.step(Some(&a.value))?;
                        if !s.token.is_empty() {
                            return Err(RpcError::Protocol(
                                "unexpected extra authentication leg".into(),
                            ));
                        }
                        break;
                    }
                    _ => {
                        if ctx.is_complete() {
                            break;
                        }
                        return Err(RpcError::Protocol(
                            "alter_context_resp without a token".into(),
                        ));
                    }
                }
            }
            let mut prot = ctx.into_protection(auth_context_id)?;
            if want_header_sign {
                prot.set_header_sign(reply.flags & pfc::SUPPORT_HEADER_SIGN != 0);
            }
            protection = Some(prot);
        }
        Ok(RpcClient {
            stream,
            max_xmit: neg_xmit,
            max_recv: neg_recv,
            next_call_id: call_id + 1,
            context_id,
            protection,
            timeouts: opts.timeouts,
            broken: false,
        })
    }

    /// Negotiated `max_xmit_frag` (what we send).
    pub fn max_xmit_frag(&self) -> u16 {
        self.max_xmit
    }

    /// Negotiated `max_recv_frag` (what we accept).
    pub fn max_recv_frag(&self) -> u16 {
        self.max_recv
    }

    /// Authentication level in force.
    pub fn auth_level(&self) -> AuthLevel {
        self.protection
            .as_ref()
            .map_or(AuthLevel::None, |p| p.level())
    }

    /// Performs one call and returns the response stub.
    pub async fn call(&mut self, opnum: u16, stub: &[u8]) -> Result<Vec<u8>, RpcError> {
        self.call_object(opnum, None, stub).await
    }

    /// Performs one call carrying an object UUID in the request header
    /// (`PFC_OBJECT_UUID`; DCOM puts the interface pointer's IPID there).
    pub async fn call_object(
        &mut self,
        opnum: u16,
        object: Option<Uuid>,
        stub: &[u8],
    ) -> Result<Vec<u8>, RpcError> {
        if self.broken {
            return Err(RpcError::Protocol(
                "connection unusable after an earlier failure".into(),
            ));
        }
        let t = self.timeouts.call;
        let r = timeout(t, self.call_inner(opnum, object, stub))
            .await
            .map_err(|_| RpcError::Timeout("call"));
        let r = r.and_then(|x| x);
        if let Err(e) = &r {
            if !matches!(e, RpcError::Fault { .. }) {
                self.broken = true;
            }
        }
        r
    }

    async fn call_inner(
        &mut self,
        opnum: u16,
        object: Option<Uuid>,
        stub: &[u8],
    ) -> Result<Vec<u8>, RpcError> {
        let call_id = self.next_call_id;
        self.next_call_id = self.next_call_id.wrapping_add(1);
        let overhead = self
            .protection
            .as_ref()
            .map_or(0, |p| SEC_TRAILER_LEN + p.signature_len());
        let header_len = if object.is_some() { 40 } else { 24 };
        let sizes = pdu::fragment_sizes(stub.len(), self.max_xmit, header_len, overhead);
        let mut offset = 0usize;
        let last = sizes.len() - 1;
        for (i, n) in sizes.iter().enumerate() {
            let chunk = &stub[offset..offset + n];
            let mut flags = 0;
            if i == 0 {
                flags |= pfc::FIRST_FRAG;
            }
            if i == last {
                flags |= pfc::LAST_FRAG;
            }
            let p = Pdu {
                flags,
                call_id,
                body: Body::Request(Request {
                    alloc_hint: u32::try_from(stub.len() - offset).unwrap_or(u32::MAX),
                    context_id: self.context_id,
                    opnum,
                    object,
                    stub: chunk.to_vec(),
                }),
                auth: self.protection.as_ref().map(|pr| AuthVerifier {
                    auth_type: pr.auth_type(),
                    auth_level: pr.level().to_wire(),
                    pad_len: pdu::auth_pad(chunk.len()),
                    context_id: pr.context_id(),
                    value: vec![0; pr.signature_len()],
                }),
            };
            let (mut bytes, lay) = p.encode_with_layout()?;
            if let Some(pr) = self.protection.as_mut() {
                pr.protect(&mut bytes, lay)?;
            }
            write_fragment(&mut self.stream, &bytes).await?;
            offset += n;
        }
        let mut out = Vec::new();
        let mut first = true;
        loop {
            let mut frag = read_fragment(&mut self.stream, usize::from(self.max_recv)).await?;
            let lay = pdu::layout(&frag)?;
            let h = pdu::Header::parse(&frag)?;
            if h.ptype == pdu::PduType::Fault {
                let p = Pdu::decode(&frag)?;
                if let Body::Fault(f) = p.body {
                    return Err(RpcError::Fault { status: f.status });
                }
            }
            if h.call_id != call_id {
                return Err(RpcError::Protocol(format!(
                    "response for call {} while waiting for {call_id}",
                    h.call_id
                )));
            }
            if let Some(pr) = self.protection.as_mut() {
                if h.auth_len == 0 {
                    return Err(RpcError::Auth(crate::auth::AuthError::Integrity(
                        "unsigned response on a protected connection".into(),
                    )));
                }
                pr.unprotect(&mut frag, lay)?;
            }
            let p = Pdu::decode(&frag)?;
            match p.body {
                Body::Response(r) => {
                    if first && p.flags & pfc::FIRST_FRAG == 0 {
                        return Err(RpcError::Protocol(
                            "first response fragment lacks PFC_FIRST_FRAG".into(),
                        ));
                    }
                    first = false;
                    if out.len() + r.stub.len() > MAX_CALL_SIZE {
                        return Err(RpcError::Protocol("response larger than allowed".into()));
                    }
                    out.extend_from_slice(&r.stub);
                    if p.flags & pfc::LAST_FRAG != 0 {
                        return Ok(out);
                    }
                }
                other => {
                    return Err(RpcError::Protocol(format!(
                        "expected response, got {:?}",
                        other.ptype()
                    )))
                }
            }
        }
    }
}

/// Asks the endpoint mapper at `epm` for the TCP port of `interface`.
pub async fn ept_map(
    epm: SocketAddr,
    interface: SyntaxId,
    opts: &ClientOptions,
) -> Result<u16, RpcError> {
    let mut c = RpcClient::connect(epm, EPM_INTERFACE, None, opts).await?;
    let req = EptMapRequest {
        object: None,
        tower: TcpTower::lookup(interface).encode(),
        entry_handle: [0; 20],
        max_towers: 4,
    };
    let stub = c.call(OPNUM_EPT_MAP, &req.encode()).await?;
    let resp = EptMapResponse::decode(&stub)
        .map_err(|e| RpcError::Protocol(format!("ept_map reply: {e}")))?;
    if resp.status == EPT_S_NOT_REGISTERED || resp.towers.is_empty() {
        return Err(RpcError::Protocol(format!(
            "interface {} is not registered with the endpoint mapper",
            interface.uuid
        )));
    }
    if resp.status != 0 {
        return Err(RpcError::Fault {
            status: resp.status,
        });
    }
    for t in &resp.towers {
        if let Ok(tower) = TcpTower::decode(t) {
            if tower.interface.uuid == interface.uuid && tower.port != 0 {
                return Ok(tower.port);
            }
        }
    }
    Err(RpcError::Protocol(
        "the endpoint mapper returned no usable TCP tower".into(),
    ))
}

/// Convenience: the [`AuthMethod`] for an RPC auth type number.
pub fn method_for_auth_type(t: u8) -> Option<AuthMethod> {
    match t {
        crate::auth::RPC_C_AUTHN_WINNT => Some(AuthMethod::Ntlm),
        crate::auth::RPC_C_AUTHN_GSS_NEGOTIATE => Some(AuthMethod::NegotiateNtlm),
        _ => None,
    }
}
