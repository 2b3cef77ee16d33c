//! Async DCE/RPC server over `ncacn_ip_tcp`.
//!
//! One tokio task per connection runs the association state machine: bind
//! (NTLM acceptor over a [`CredentialStore`]), auth3, alter_context,
//! request reassembly, dispatch to an [`RpcService`], fragmented (and
//! protected) responses, faults. Services are synchronous functions of the
//! reassembled stub; they run on the connection task.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

use crate::auth::{
    AuthLevel, AuthenticatedUser, CredentialStore, Protection, ServerNegotiate, ServerNtlm,
    RPC_C_AUTHN_GSS_NEGOTIATE, RPC_C_AUTHN_WINNT,
};
use crate::epm::{
    EptMapRequest, EptMapResponse, TcpTower, EPM_INTERFACE, EPT_S_NOT_REGISTERED, OPNUM_EPT_MAP,
};
use crate::error::RpcError;
use crate::icpr::{
    NCA_S_OP_RNG_ERROR, NCA_S_PROTO_ERROR, NCA_S_UNK_IF, RPC_S_ACCESS_DENIED, RPC_S_SEC_PKG_ERROR,
    RPC_X_BAD_STUB_DATA,
};
use crate::pdu::{
    self, pfc, result, AuthVerifier, Bind, BindAck, BindNak, Body, ContextResult, Fault, Pdu,
    PduType, Response, SEC_TRAILER_LEN,
};
use crate::transport::{read_fragment, write_fragment};
use crate::uuid::{SyntaxId, Uuid, NDR20};

/// Who is calling.
#[derive(Clone, Debug)]
pub struct CallContext {
    /// Peer address.
    pub peer: SocketAddr,
    /// Authenticated account, if any.
    pub user: Option<AuthenticatedUser>,
    /// Protection level of the connection.
    pub level: AuthLevel,
}

/// An interface implementation.
pub trait RpcService: Send + Sync + 'static {
    /// Interface served.
    fn interface(&self) -> SyntaxId;
    /// Minimum level required for calls (`AuthLevel::None` = anonymous allowed).
    fn required_level(&self) -> AuthLevel;
    /// Executes `opnum` on the reassembled stub; `Err` is a fault status.
    fn call(&self, ctx: &CallContext, opnum: u16, stub: &[u8]) -> Result<Vec<u8>, u32>;
}

/// Server configuration.
pub struct ServerConfig {
    /// Services offered on this listener.
    pub services: Vec<Arc<dyn RpcService>>,
    /// Accounts for NTLM.
    pub credentials: Option<Arc<dyn CredentialStore>>,
    /// Largest fragment we send or accept.
    pub max_frag: u16,
    /// Idle timeout between PDUs.
    pub idle_timeout: Duration,
    /// Largest reassembled request.
    pub max_request: usize,
}

impl std::fmt::Debug for ServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerConfig")
            .field("services", &self.services.len())
            .field("max_frag", &self.max_frag)
            .finish()
    }
}

impl ServerConfig {
    /// Configuration with defaults (4280-octet fragments, 5-minute idle timeout, 4 MiB requests).
    pub fn new(
        services: Vec<Arc<dyn RpcService>>,
        credentials: Option<Arc<dyn CredentialStore>>,
    ) -> Self {
        ServerConfig {
            services,
            credentials,
            max_frag: crate::client::DEFAULT_MAX_FRAG,
            idle_timeout: Duration::from_secs(300),
            max_request: 4 << 20,
        }
    }
}

/// Accepts connections forever (abort the task to stop).
pub async fn serve(listener: TcpListener, config: Arc<ServerConfig>) -> std::io::Result<()> {
    loop {
        let (sock, peer) = listener.accept().await?;
        let cfg = config.clone();
        tokio::spawn(async move {
            if let Err(e) = handle_connection(sock, peer, cfg).await {
                tracing::debug!(%peer, error = %e, "RPC connection ended");
            }
        });
    }
}

/// Bind time feature negotiation (MS-RPCE 3.3.1.5.3): the offered transfer
/// syntax is 6cb71c2c-9812-4540-xxxx-xxxxxxxxxxxx.
fn is_btfn(s: &SyntaxId) -> bool {
    s.uuid.to_string().starts_with("6cb71c2c-9812-4540-")
}

enum AuthState {
    None,
    Pending(Box<ServerNtlm>),
    PendingNegotiate(Box<ServerNegotiate>),
    Established(Box<Protection>, AuthenticatedUser),
    Failed,
}

struct Conn {
    peer: SocketAddr,
    cfg: Arc<ServerConfig>,
    contexts: Vec<(u16, Arc<dyn RpcService>)>,
    auth: AuthState,
    max_xmit: u16,
    max_recv: u16,
    bound: bool,
    assoc_group: u32,
    header_sign: bool,
}

fn fault(call_id: u32, context_id: u16, status: u32) -> Pdu {
    Pdu {
        flags: pfc::FIRST_FRAG | pfc::LAST_FRAG | pfc::DID_NOT_EXECUTE,
        call_id,
        body: Body::Fault(Fault {
            alloc_hint: 0,
            context_id,
            cancel_count: 0,
            status,
        }),
        auth: None,
    }
}

async fn handle_connection(
    mut sock: TcpStream,
    peer: SocketAddr,
    cfg: Arc<ServerConfig>,
) -> Result<(), RpcError> {
    sock.set_nodelay(true)?;
    let local_port = sock.local_addr()?.port();
    let mut c = Conn {
        peer,
        max_xmit: cfg.max_frag,
        max_recv: cfg.max_frag,
        cfg,
        contexts: Vec::new(),
        auth: AuthState::None,
        bound: false,
        assoc_group: 0x1000 + u32::from(local_port),
        header_sign: false,
    };
    // Reassembly state: (call_id, opnum, context id, stub)
    let mut pending: Option<(u32, u16, u16, Vec<u8>)> = None;
    loop {
        let limit = if c.bound {
            usize::from(c.max_recv)
        } else {
            65535
        };
        let mut frag = match timeout(c.cfg.idle_timeout, read_fragment(&mut sock, limit)).await {
            Err(_) => return Err(RpcError::Timeout("idle")),
            Ok(Err(RpcError::ConnectionClosed(""))) => return Ok(()),
            Ok(r) => r?,
        };
        let h = pdu::Header::parse(&frag)?;
        match h.ptype {
            PduType::Bind | PduType::AlterContext => {
                let p = Pdu::decode(&frag)?;
                let reply = c.on_bind(p, local_port)?;
                write_fragment(&mut sock, &reply.encode()?).await?;
            }
            PduType::Auth3 => {
                let p = Pdu::decode(&frag)?;
                c.on_auth3(p);
            }
            PduType::Request => {
                let lay = pdu::layout(&frag)?;
                // Verify / unseal before anything else.
                let verified = match &mut c.auth {
                    AuthState::Established(prot, _) if prot.level().protects_packets() => {
                        if h.auth_len == 0 {
                            Err(())
                        } else {
                            prot.unprotect(&mut frag, lay).map_err(|e| {
                                tracing::warn!(%peer, error = %e, "request failed verification");
                            })
                        }
                    }
                    _ => Ok(()),
                };
                if verified.is_err() {
                    write_fragment(
                        &mut sock,
                        &fault(h.call_id, 0, RPC_S_SEC_PKG_ERROR).encode()?,
                    )
                    .await?;
                    return Err(RpcError::Auth(crate::auth::AuthError::Integrity(
                        "request signature".into(),
                    )));
                }
                let p = Pdu::decode(&frag)?;
                let Body::Request(r) = p.body else {
                    return Err(RpcError::Protocol(
                        "request PDU without request body".into(),
                    ));
                };
                if p.flags & pfc::FIRST_FRAG != 0 {
                    pending = Some((p.call_id, r.opnum, r.context_id, Vec::new()));
                }
                let Some((cid, opnum, ctx_id, buf)) = pending.as_mut() else {
                    return Err(RpcError::Protocol(
                        "request fragment without PFC_FIRST_FRAG".into(),
                    ));
                };
                if *cid != p.call_id {
                    return Err(RpcError::Protocol(
                        "interleaved calls are not supported".into(),
                    ));
                }
                if buf.len() + r.stub.len() > c.cfg.max_request {
                    write_fragment(
                        &mut sock,
                        &fault(p.call_id, *ctx_id, NCA_S_PROTO_ERROR).encode()?,
                    )
                    .await?;
                    return Err(RpcError::Protocol("request too large".into()));
                }
                buf.extend_from_slice(&r.stub);
                if p.flags & pfc::LAST_FRAG == 0 {
                    continue;
                }
                let (call_id, opnum, ctx_id, stub) = (*cid, *opnum, *ctx_id, std::mem::take(buf));
                pending = None;
                let frags = c.dispatch(call_id, ctx_id, opnum, &stub)?;
                for f in frags {
                    write_fragment(&mut sock, &f).await?;
                }
            }
            PduType::Shutdown | PduType::Orphaned | PduType::CoCancel => {}
            other => {
                return Err(RpcError::Protocol(format!(
                    "unexpected {other:?} from client"
                )))
            }
        }
    }
}

impl Conn {
    fn on_bind(&mut self, p: Pdu, local_port: u16) -> Result<Pdu, RpcError> {
        let is_bind = matches!(p.body, Body::Bind(_));
        let b: Bind = match p.body {
            Body::Bind(b) | Body::AlterContext(b) => b,
            _ => return Err(RpcError::Protocol("bind expected".into())),
        };
        let nak = |reason: u16| Pdu {
            flags: pfc::FIRST_FRAG | pfc::LAST_FRAG,
            call_id: p.call_id,
            body: Body::BindNak(BindNak {
                reason,
                versions: vec![(5, 0)],
            }),
            auth: None,
        };
        if is_bind {
            if self.bound {
                return Ok(nak(0));
            }
            if b.max_xmit < pdu::MIN_FRAG || b.max_recv < pdu::MIN_FRAG {
                return Ok(nak(0));
            }
            self.max_xmit = self.cfg.max_frag.min(b.max_recv);
            self.max_recv = self.cfg.max_frag.min(b.max_xmit).max(pdu::MIN_FRAG);
            self.bound = true;
        }
        let mut results = Vec::with_capacity(b.contexts.len());
        for ce in &b.contexts {
            if is_btfn(ce.transfer_syntaxes.first().unwrap_or(&ce.abstract_syntax)) {
                results.push(ContextResult {
                    result: result::NEGOTIATE_ACK,
                    reason: 0,
                    transfer_syntax: SyntaxId::new(Uuid::NIL, 0, 0),
                });
                continue;
            }
            let svc = self.cfg.services.iter().find(|s| {
                let i = s.interface();
                i.uuid == ce.abstract_syntax.uuid && i.major == ce.abstract_syntax.major
            });
            match svc {
                None => results.push(ContextResult {
                    result: result::PROVIDER_REJECTION,
                    reason: result::REASON_ABSTRACT_SYNTAX_NOT_SUPPORTED,
                    transfer_syntax: SyntaxId::new(Uuid::NIL, 0, 0),
                }),
                Some(s) if ce.transfer_syntaxes.contains(&NDR20) => {
                    self.contexts.retain(|(id, _)| *id != ce.id);
                    self.contexts.push((ce.id, s.clone()));
                    results.push(ContextResult {
                        result: result::ACCEPTANCE,
                        reason: 0,
                        transfer_syntax: NDR20,
                    });
                }
                Some(_) => results.push(ContextResult {
                    result: result::PROVIDER_REJECTION,
                    reason: result::REASON_TRANSFER_SYNTAXES_NOT_SUPPORTED,
                    transfer_syntax: SyntaxId::new(Uuid::NIL, 0, 0),
                }),
            }
        }
        if is_bind {
            self.header_sign = p.flags & pfc::SUPPORT_HEADER_SIGN != 0;
        }
        let mut auth_out = None;
        if let Some(a) = p.auth {
            let reply_verifier = |value: Vec<u8>| AuthVerifier {
                auth_type: a.auth_type,
                auth_level: a.auth_level,
                pad_len: 0,
                context_id: a.context_id,
                value,
            };
            let Some(store) = self.cfg.credentials.clone() else {
                return Ok(nak(9));
            };
            if !is_bind {
                let state = std::mem::replace(&mut self.auth, AuthState::Failed);
                match state {
                    AuthState::PendingNegotiate(neg)
                        if a.auth_type == RPC_C_AUTHN_GSS_NEGOTIATE =>
                    {
                        let mech = if neg.is_kerberos() {
                            "Kerberos"
                        } else {
                            "NTLM"
                        };
                        match neg.accept_continue(&a.value, store.as_ref(), self.header_sign) {
                            Ok((out, Ok((user, prot)))) => {
                                tracing::info!(peer = %self.peer, domain = %user.domain, user = %user.user, mech, "SPNEGO authenticated");
                                self.auth = AuthState::Established(Box::new(prot), user);
                                auth_out = Some(reply_verifier(out));
                            }
                            Ok((out, Err(pending))) => {
                                self.auth = AuthState::PendingNegotiate(Box::new(pending));
                                auth_out = Some(reply_verifier(out));
                            }
                            Err(e) => {
                                tracing::warn!(peer = %self.peer, error = %e, "SPNEGO authentication failed");
                                return Ok(fault(p.call_id, 0, RPC_S_ACCESS_DENIED));
                            }
                        }
                    }
                    other @ AuthState::Established(..) => {
                        // Re-sent verifier on an established association: ignore it.
                        self.auth = other;
                    }
                    _ => return Ok(nak(9)),
                }
            } else {
                let Some(level) =
                    AuthLevel::from_wire(a.auth_level).filter(|l| l.protects_packets())
                else {
                    return Ok(nak(0));
                };
                match a.auth_type {
                    RPC_C_AUTHN_WINNT => {
                        match ServerNtlm::accept_negotiate(&a.value, level, a.context_id) {
                            Ok((srv, challenge)) => {
                                self.auth = AuthState::Pending(Box::new(srv));
                                auth_out = Some(reply_verifier(challenge));
                            }
                            Err(e) => {
                                tracing::info!(peer = %self.peer, error = %e, "NTLM negotiate refused");
                                return Ok(nak(0));
                            }
                        }
                    }
                    RPC_C_AUTHN_GSS_NEGOTIATE => {
                        match ServerNegotiate::accept_init(
                            &a.value,
                            level,
                            a.context_id,
                            store.as_ref(),
                        ) {
                            Ok((srv, out)) => {
                                self.auth = AuthState::PendingNegotiate(Box::new(srv));
                                auth_out = Some(reply_verifier(out));
                            }
                            Err(e) => {
                                tracing::info!(peer = %self.peer, error = %e, "SPNEGO negotiate refused");
                                return Ok(nak(9));
                            }
                        }
                    }
                    // reason 9: authentication type not recognized (MS-RPCE 2.2.2.5)
                    _ => return Ok(nak(9)),
                }
            }
        }
        let ack = BindAck {
            max_xmit: self.max_xmit,
            max_recv: self.max_recv,
            assoc_group: if b.assoc_group != 0 {
                b.assoc_group
            } else {
                self.assoc_group
            },
            sec_addr: if is_bind {
                local_port.to_string()
            } else {
                String::new()
            },
            results,
        };
        // The bind_ack body is a multiple of 4 octets: no auth padding needed.
        let sign_flag = if self.header_sign {
            pfc::SUPPORT_HEADER_SIGN
        } else {
            0
        };
        Ok(Pdu {
            flags: pfc::FIRST_FRAG | pfc::LAST_FRAG | sign_flag,
            call_id: p.call_id,
            body: if is_bind {
                Body::BindAck(ack)
            } else {
                Body::AlterContextResp(ack)
            },
            auth: auth_out,
        })
    }

    fn on_auth3(&mut self, p: Pdu) {
        let state = std::mem::replace(&mut self.auth, AuthState::Failed);
        let (AuthState::Pending(srv), Some(a)) = (state, p.auth) else {
            tracing::info!(peer = %self.peer, "auth3 without a pending NTLM exchange");
            return;
        };
        let Some(store) = self.cfg.credentials.clone() else {
            return;
        };
        match srv.accept_authenticate(&a.value, store.as_ref()) {
            Ok((user, prot)) => {
                tracing::info!(peer = %self.peer, domain = %user.domain, user = %user.user, "NTLM authenticated");
                self.auth = AuthState::Established(Box::new(prot), user);
            }
            Err(e) => {
                tracing::warn!(peer = %self.peer, error = %e, "NTLM authentication failed");
                self.auth = AuthState::Failed;
            }
        }
    }

    fn dispatch(
        &mut self,
        call_id: u32,
        ctx_id: u16,
        opnum: u16,
        stub: &[u8],
    ) -> Result<Vec<Vec<u8>>, RpcError> {
        let Some(svc) = self
            .contexts
            .iter()
            .find(|(id, _)| *id == ctx_id)
            .map(|(_, s)| s.clone())
        else {
            return Ok(vec![fault(call_id, ctx_id, NCA_S_UNK_IF).encode()?]);
        };
        let (level, user) = match &self.auth {
            AuthState::Established(p, u) => (p.level(), Some(u.clone())),
            AuthState::Failed | AuthState::Pending(_) | AuthState::PendingNegotiate(_) => {
                return Ok(vec![fault(call_id, ctx_id, RPC_S_ACCESS_DENIED).encode()?]);
            }
            AuthState::None => (AuthLevel::None, None),
        };
        if level < svc.required_level() {
            return Ok(vec![fault(call_id, ctx_id, RPC_S_ACCESS_DENIED).encode()?]);
        }
        let ctx = CallContext {
            peer: self.peer,
            user,
            level,
        };
        let out = match svc.call(&ctx, opnum, stub) {
            Ok(o) => o,
            Err(status) => return Ok(vec![fault(call_id, ctx_id, status).encode()?]),
        };
        let prot = match &mut self.auth {
            AuthState::Established(p, _) if p.level().protects_packets() => Some(p.as_mut()),
            _ => None,
        };
        let overhead = prot
            .as_ref()
            .map_or(0, |p| SEC_TRAILER_LEN + p.signature_len());
        let sizes = pdu::fragment_sizes(out.len(), self.max_xmit, 24, overhead);
        let mut frags = Vec::with_capacity(sizes.len());
        let mut off = 0;
        let last = sizes.len() - 1;
        let mut prot = prot;
        for (i, n) in sizes.iter().enumerate() {
            let chunk = &out[off..off + n];
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
                body: Body::Response(Response {
                    alloc_hint: u32::try_from(out.len() - off).unwrap_or(u32::MAX),
                    context_id: ctx_id,
                    cancel_count: 0,
                    stub: chunk.to_vec(),
                }),
                auth: prot.as_ref().map(|pr| AuthVerifier {
                    auth_type: pr.auth_type(),
                    auth_level: pr.level().to_wire(),
                    pad_len: pdu::auth_pad(chunk.len()),
                    context_id: pr.context_id(),
                    value: vec![0; pr.signature_len()],
                }),
            };
            let (mut bytes, lay) = p.encode_with_layout()?;
            if let Some(pr) = prot.as_mut() {
                pr.protect(&mut bytes, lay)?;
            }
            frags.push(bytes);
            off += n;
        }
        Ok(frags)
    }
}

/// A minimal endpoint mapper: answers `ept_map` for registered interfaces.
#[derive(Debug, Clone)]
pub struct EndpointMapper {
    entries: Vec<(SyntaxId, u16)>,
    ip: std::net::Ipv4Addr,
}

impl EndpointMapper {
    /// Mapper announcing `entries` (interface → TCP port) at address `ip`.
    pub fn new(entries: Vec<(SyntaxId, u16)>, ip: std::net::Ipv4Addr) -> Self {
        EndpointMapper { entries, ip }
    }
}

impl RpcService for EndpointMapper {
    fn interface(&self) -> SyntaxId {
        EPM_INTERFACE
    }

    fn required_level(&self) -> AuthLevel {
        AuthLevel::None
    }

    fn call(&self, _ctx: &CallContext, opnum: u16, stub: &[u8]) -> Result<Vec<u8>, u32> {
        if opnum != OPNUM_EPT_MAP {
            return Err(NCA_S_OP_RNG_ERROR);
        }
        let req = EptMapRequest::decode(stub).map_err(|_| RPC_X_BAD_STUB_DATA)?;
        let towers: Vec<Vec<u8>> = match TcpTower::decode(&req.tower) {
            Ok(t) => self
                .entries
                .iter()
                .filter(|(i, _)| i.uuid == t.interface.uuid && i.major == t.interface.major)
                .map(|(i, port)| {
                    TcpTower {
                        interface: *i,
                        transfer: NDR20,
                        port: *port,
                        ip: self.ip,
                    }
                    .encode()
                })
                .take(usize::try_from(req.max_towers).unwrap_or(usize::MAX))
                .collect(),
            Err(_) => Vec::new(),
        };
        let status = if towers.is_empty() {
            EPT_S_NOT_REGISTERED
        } else {
            0
        };
        Ok(EptMapResponse {
            entry_handle: [0; 20],
            towers,
            status,
        }
        .encode(req.max_towers))
    }
}
