//! Connection-oriented DCE/RPC PDUs (DCE 1.1 chapter 12, MS-RPCE 2.2.2).
//!
//! Every PDU starts with the 16-octet common header; PDUs that carry an
//! authentication verifier end with `auth_pad` (inside the body), the 8-octet
//! `sec_trailer` and `auth_length` octets of security-provider token.
//! Only the little-endian / ASCII / IEEE data representation (`drep`
//! 10 00 00 00) is produced; a peer announcing big-endian integers is refused.

use crate::uuid::{SyntaxId, Uuid};

/// Length of the common header.
pub const HEADER_LEN: usize = 16;
/// Length of the `sec_trailer`.
pub const SEC_TRAILER_LEN: usize = 8;
/// Smallest `max_xmit_frag` / `max_recv_frag` a CO peer must accept (DCE 1.1 12.6.3.1).
pub const MIN_FRAG: u16 = 1432;
/// The `drep` this implementation writes: little-endian integers, ASCII, IEEE floats.
pub const DREP_LE: [u8; 4] = [0x10, 0, 0, 0];

/// `pfc_flags` bits.
pub mod pfc {
    /// First fragment of a call.
    pub const FIRST_FRAG: u8 = 0x01;
    /// Last fragment of a call.
    pub const LAST_FRAG: u8 = 0x02;
    /// Cancel pending (request/response) — in bind/bind_ack: `PFC_SUPPORT_HEADER_SIGN`.
    pub const PENDING_CANCEL: u8 = 0x04;
    /// In bind / bind_ack / alter_context: header signing supported (MS-RPCE 2.2.2.3).
    pub const SUPPORT_HEADER_SIGN: u8 = 0x04;
    /// Concurrent multiplexing supported.
    pub const CONC_MPX: u8 = 0x10;
    /// The call did not execute (fault).
    pub const DID_NOT_EXECUTE: u8 = 0x20;
    /// `maybe` semantics.
    pub const MAYBE: u8 = 0x40;
    /// A 16-octet object UUID follows the request header.
    pub const OBJECT_UUID: u8 = 0x80;
}

/// Errors decoding or encoding a PDU. Decoding never panics: every malformed
/// input maps to one of these.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PduError {
    /// Input shorter than a field requires.
    #[error("PDU truncated: needed {needed} octets at offset {offset}")]
    Truncated {
        /// Offset of the field.
        offset: usize,
        /// Octets needed.
        needed: usize,
    },
    /// Not RPC version 5.0.
    #[error("unsupported RPC version {0}.{1}")]
    Version(u8, u8),
    /// Big-endian or non-ASCII/IEEE data representation.
    #[error("unsupported data representation {0:02x?}")]
    DataRepresentation([u8; 4]),
    /// `frag_length` disagrees with the octets received.
    #[error("frag_length {declared} does not match {actual} octets")]
    FragLength {
        /// Value in the header.
        declared: usize,
        /// Octets present.
        actual: usize,
    },
    /// Unknown `PTYPE`.
    #[error("unknown PDU type {0}")]
    UnknownType(u8),
    /// `auth_length`/`auth_pad_length` inconsistent with the PDU size.
    #[error("inconsistent authentication verifier lengths")]
    AuthLength,
    /// Encoded PDU would exceed 65535 octets.
    #[error("PDU too large to encode ({0} octets)")]
    TooLarge(usize),
    /// Some other structural error.
    #[error("malformed PDU: {0}")]
    Malformed(&'static str),
}

/// PDU type codes (`PTYPE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum PduType {
    /// request
    Request = 0,
    /// response
    Response = 2,
    /// fault
    Fault = 3,
    /// bind
    Bind = 11,
    /// bind_ack
    BindAck = 12,
    /// bind_nak
    BindNak = 13,
    /// alter_context
    AlterContext = 14,
    /// alter_context_resp
    AlterContextResp = 15,
    /// auth3 (MS-RPCE 2.2.2.10; `rpc_auth_3`)
    Auth3 = 16,
    /// shutdown
    Shutdown = 17,
    /// co_cancel
    CoCancel = 18,
    /// orphaned
    Orphaned = 19,
}

impl PduType {
    /// Maps a wire value.
    pub fn from_u8(v: u8) -> Result<Self, PduError> {
        Ok(match v {
            0 => PduType::Request,
            2 => PduType::Response,
            3 => PduType::Fault,
            11 => PduType::Bind,
            12 => PduType::BindAck,
            13 => PduType::BindNak,
            14 => PduType::AlterContext,
            15 => PduType::AlterContextResp,
            16 => PduType::Auth3,
            17 => PduType::Shutdown,
            18 => PduType::CoCancel,
            19 => PduType::Orphaned,
            other => return Err(PduError::UnknownType(other)),
        })
    }
}

/// The common header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    /// PDU type.
    pub ptype: PduType,
    /// `pfc_flags`.
    pub flags: u8,
    /// Total length of this fragment.
    pub frag_len: u16,
    /// Length of the auth value (after the sec_trailer).
    pub auth_len: u16,
    /// Call identifier.
    pub call_id: u32,
}

impl Header {
    /// Parses and validates the first 16 octets.
    pub fn parse(b: &[u8]) -> Result<Header, PduError> {
        if b.len() < HEADER_LEN {
            return Err(PduError::Truncated {
                offset: 0,
                needed: HEADER_LEN,
            });
        }
        if b[0] != 5 || b[1] != 0 {
            return Err(PduError::Version(b[0], b[1]));
        }
        let drep = [b[4], b[5], b[6], b[7]];
        if drep[0] != 0x10 || drep[1] != 0 {
            return Err(PduError::DataRepresentation(drep));
        }
        let frag_len = u16::from_le_bytes([b[8], b[9]]);
        if usize::from(frag_len) < HEADER_LEN {
            return Err(PduError::Malformed("frag_length shorter than the header"));
        }
        Ok(Header {
            ptype: PduType::from_u8(b[2])?,
            flags: b[3],
            frag_len,
            auth_len: u16::from_le_bytes([b[10], b[11]]),
            call_id: u32::from_le_bytes([b[12], b[13], b[14], b[15]]),
        })
    }

    /// Writes the 16 octets.
    pub fn write(&self, out: &mut [u8; HEADER_LEN]) {
        out[0] = 5;
        out[1] = 0;
        out[2] = self.ptype as u8;
        out[3] = self.flags;
        out[4..8].copy_from_slice(&DREP_LE);
        out[8..10].copy_from_slice(&self.frag_len.to_le_bytes());
        out[10..12].copy_from_slice(&self.auth_len.to_le_bytes());
        out[12..16].copy_from_slice(&self.call_id.to_le_bytes());
    }
}

/// The `sec_trailer` plus the auth value that follows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthVerifier {
    /// `auth_type` (10 WINNT/NTLM, 9 GSS_NEGOTIATE, 16 GSS_KERBEROS).
    pub auth_type: u8,
    /// `auth_level` (2 connect … 5 integrity, 6 privacy).
    pub auth_level: u8,
    /// `auth_pad_length`: octets of padding at the end of the body.
    pub pad_len: u8,
    /// `auth_context_id`.
    pub context_id: u32,
    /// Security provider token or signature.
    pub value: Vec<u8>,
}

impl AuthVerifier {
    /// The 8-octet sec_trailer encoding.
    pub fn trailer_bytes(&self) -> [u8; SEC_TRAILER_LEN] {
        let c = self.context_id.to_le_bytes();
        [
            self.auth_type,
            self.auth_level,
            self.pad_len,
            0,
            c[0],
            c[1],
            c[2],
            c[3],
        ]
    }
}

/// One presentation context offered in bind / alter_context.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextElem {
    /// `p_cont_id`.
    pub id: u16,
    /// Interface.
    pub abstract_syntax: SyntaxId,
    /// Transfer syntaxes offered.
    pub transfer_syntaxes: Vec<SyntaxId>,
}

/// `p_cont_def_result_t`.
pub mod result {
    /// Accepted.
    pub const ACCEPTANCE: u16 = 0;
    /// Rejected by the user.
    pub const USER_REJECTION: u16 = 1;
    /// Rejected by the provider.
    pub const PROVIDER_REJECTION: u16 = 2;
    /// MS-RPCE bind time feature negotiation acknowledgement.
    pub const NEGOTIATE_ACK: u16 = 3;
    /// Reason: abstract syntax not supported.
    pub const REASON_ABSTRACT_SYNTAX_NOT_SUPPORTED: u16 = 1;
    /// Reason: proposed transfer syntaxes not supported.
    pub const REASON_TRANSFER_SYNTAXES_NOT_SUPPORTED: u16 = 2;
}

/// One result in bind_ack / alter_context_resp.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContextResult {
    /// `result` (see [`result`]).
    pub result: u16,
    /// `reason`.
    pub reason: u16,
    /// Accepted transfer syntax (nil when rejected).
    pub transfer_syntax: SyntaxId,
}

/// bind and alter_context body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bind {
    /// `max_xmit_frag`.
    pub max_xmit: u16,
    /// `max_recv_frag`.
    pub max_recv: u16,
    /// `assoc_group_id`.
    pub assoc_group: u32,
    /// Offered contexts.
    pub contexts: Vec<ContextElem>,
}

/// bind_ack and alter_context_resp body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindAck {
    /// `max_xmit_frag`.
    pub max_xmit: u16,
    /// `max_recv_frag`.
    pub max_recv: u16,
    /// `assoc_group_id`.
    pub assoc_group: u32,
    /// Secondary address (port as ASCII, e.g. `"49667"`), without the NUL.
    pub sec_addr: String,
    /// One result per offered context.
    pub results: Vec<ContextResult>,
}

/// bind_nak body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BindNak {
    /// `provider_reject_reason` (e.g. 0 unspecified, 4 protocol version not supported,
    /// 9 authentication type not recognised, 6 invalid checksum).
    pub reason: u16,
    /// Supported protocol versions (major, minor).
    pub versions: Vec<(u8, u8)>,
}

/// request body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Request {
    /// `alloc_hint`: stub octets remaining in the call from this fragment on.
    pub alloc_hint: u32,
    /// `p_cont_id`.
    pub context_id: u16,
    /// Operation number.
    pub opnum: u16,
    /// Object UUID (sets `PFC_OBJECT_UUID`; DCOM/ORPC needs it).
    pub object: Option<Uuid>,
    /// Stub data of this fragment (without auth padding).
    pub stub: Vec<u8>,
}

/// response body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    /// `alloc_hint`.
    pub alloc_hint: u32,
    /// `p_cont_id`.
    pub context_id: u16,
    /// `cancel_count`.
    pub cancel_count: u8,
    /// Stub data of this fragment (without auth padding).
    pub stub: Vec<u8>,
}

/// fault body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    /// `alloc_hint`.
    pub alloc_hint: u32,
    /// `p_cont_id`.
    pub context_id: u16,
    /// `cancel_count`.
    pub cancel_count: u8,
    /// Fault status (nca_s_* or a Win32 error).
    pub status: u32,
}

/// PDU body by type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Body {
    /// bind
    Bind(Bind),
    /// bind_ack
    BindAck(BindAck),
    /// bind_nak
    BindNak(BindNak),
    /// alter_context
    AlterContext(Bind),
    /// alter_context_resp
    AlterContextResp(BindAck),
    /// auth3 (4 octets of pad then the verifier)
    Auth3,
    /// request
    Request(Request),
    /// response
    Response(Response),
    /// fault
    Fault(Fault),
    /// shutdown
    Shutdown,
    /// co_cancel
    CoCancel,
    /// orphaned
    Orphaned,
}

impl Body {
    /// The PDU type of this body.
    pub fn ptype(&self) -> PduType {
        match self {
            Body::Bind(_) => PduType::Bind,
            Body::BindAck(_) => PduType::BindAck,
            Body::BindNak(_) => PduType::BindNak,
            Body::AlterContext(_) => PduType::AlterContext,
            Body::AlterContextResp(_) => PduType::AlterContextResp,
            Body::Auth3 => PduType::Auth3,
            Body::Request(_) => PduType::Request,
            Body::Response(_) => PduType::Response,
            Body::Fault(_) => PduType::Fault,
            Body::Shutdown => PduType::Shutdown,
            Body::CoCancel => PduType::CoCancel,
            Body::Orphaned => PduType::Orphaned,
        }
    }
}

/// A decoded (or to-be-encoded) PDU fragment.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Pdu {
    /// `pfc_flags`.
    pub flags: u8,
    /// Call identifier.
    pub call_id: u32,
    /// Body.
    pub body: Body,
    /// Authentication verifier, when present. On encode `pad_len` is taken
    /// from here and that many zero octets are appended to the body.
    pub auth: Option<AuthVerifier>,
}

/// Where the parts of an encoded fragment lie (for signing and sealing).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Start of the stub data (request/response), or of the body otherwise.
    pub stub_start: usize,
    /// Start of the sec_trailer (= end of stub + auth pad); frag_len when no verifier.
    pub trailer_start: usize,
    /// Start of the auth value; frag_len when no verifier.
    pub auth_value_start: usize,
    /// auth_pad_length (0 when no verifier).
    pub pad_len: usize,
}

/// Computes the [`Layout`] of a complete fragment, validating lengths.
pub fn layout(b: &[u8]) -> Result<Layout, PduError> {
    let h = Header::parse(b)?;
    let frag_len = usize::from(h.frag_len);
    if frag_len != b.len() {
        return Err(PduError::FragLength {
            declared: frag_len,
            actual: b.len(),
        });
    }
    let stub_start = match h.ptype {
        PduType::Request => {
            if h.flags & pfc::OBJECT_UUID != 0 {
                40
            } else {
                24
            }
        }
        PduType::Response | PduType::Fault => 24,
        _ => HEADER_LEN,
    };
    if h.ptype == PduType::Fault && frag_len < 32 {
        return Err(PduError::Truncated {
            offset: 24,
            needed: 8,
        });
    }
    if stub_start > frag_len {
        return Err(PduError::Truncated {
            offset: HEADER_LEN,
            needed: stub_start - HEADER_LEN,
        });
    }
    if h.auth_len == 0 {
        return Ok(Layout {
            stub_start,
            trailer_start: frag_len,
            auth_value_start: frag_len,
            pad_len: 0,
        });
    }
    let auth_len = usize::from(h.auth_len);
    let auth_value_start = frag_len.checked_sub(auth_len).ok_or(PduError::AuthLength)?;
    let trailer_start = auth_value_start
        .checked_sub(SEC_TRAILER_LEN)
        .ok_or(PduError::AuthLength)?;
    if trailer_start < stub_start {
        return Err(PduError::AuthLength);
    }
    let pad_len = usize::from(b[trailer_start + 2]);
    if trailer_start - stub_start < pad_len {
        return Err(PduError::AuthLength);
    }
    Ok(Layout {
        stub_start,
        trailer_start,
        auth_value_start,
        pad_len,
    })
}

struct Rd<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Rd<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], PduError> {
        let end = self.pos.checked_add(n).ok_or(PduError::Truncated {
            offset: self.pos,
            needed: n,
        })?;
        let s = self.b.get(self.pos..end).ok_or(PduError::Truncated {
            offset: self.pos,
            needed: n,
        })?;
        self.pos = end;
        Ok(s)
    }
    fn u8(&mut self) -> Result<u8, PduError> {
        Ok(self.take(1)?[0])
    }
    fn u16(&mut self) -> Result<u16, PduError> {
        let s = self.take(2)?;
        Ok(u16::from_le_bytes([s[0], s[1]]))
    }
    fn u32(&mut self) -> Result<u32, PduError> {
        let s = self.take(4)?;
        Ok(u32::from_le_bytes([s[0], s[1], s[2], s[3]]))
    }
    fn syntax(&mut self) -> Result<SyntaxId, PduError> {
        let s = self.take(SyntaxId::WIRE_LEN)?;
        let mut a = [0u8; 20];
        a.copy_from_slice(s);
        Ok(SyntaxId::read(&a))
    }
    fn uuid(&mut self) -> Result<Uuid, PduError> {
        let s = self.take(16)?;
        let mut a = [0u8; 16];
        a.copy_from_slice(s);
        Ok(Uuid::from_wire(&a))
    }
    fn align4(&mut self) -> Result<(), PduError> {
        let pad = (4 - self.pos % 4) % 4;
        self.take(pad).map(|_| ())
    }
}

impl Pdu {
    /// Decodes one complete fragment (exactly `frag_length` octets). For a
    /// sealed request/response the stub is returned as received (still
    /// encrypted); see [`crate::auth`] to unprotect the octets first.
    pub fn decode(b: &[u8]) -> Result<Pdu, PduError> {
        let h = Header::parse(b)?;
        let lay = layout(b)?;
        let auth = if h.auth_len > 0 {
            let t = &b[lay.trailer_start..lay.auth_value_start];
            Some(AuthVerifier {
                auth_type: t[0],
                auth_level: t[1],
                pad_len: t[2],
                context_id: u32::from_le_bytes([t[4], t[5], t[6], t[7]]),
                value: b[lay.auth_value_start..].to_vec(),
            })
        } else {
            None
        };
        // Body region (before the auth padding).
        let body_end = lay.trailer_start - lay.pad_len;
        let region = &b[..body_end];
        let mut rd = Rd {
            b: region,
            pos: HEADER_LEN,
        };
        let body = match h.ptype {
            PduType::Bind | PduType::AlterContext => {
                let max_xmit = rd.u16()?;
                let max_recv = rd.u16()?;
                let assoc_group = rd.u32()?;
                let n = rd.u8()?;
                rd.take(3)?;
                let mut contexts = Vec::with_capacity(usize::from(n));
                for _ in 0..n {
                    let id = rd.u16()?;
                    let nts = rd.u8()?;
                    rd.take(1)?;
                    let abstract_syntax = rd.syntax()?;
                    let mut transfer_syntaxes = Vec::with_capacity(usize::from(nts));
                    for _ in 0..nts {
                        transfer_syntaxes.push(rd.syntax()?);
                    }
                    contexts.push(ContextElem {
                        id,
                        abstract_syntax,
                        transfer_syntaxes,
                    });
                }
                let bind = Bind {
                    max_xmit,
                    max_recv,
                    assoc_group,
                    contexts,
                };
                if h.ptype == PduType::Bind {
                    Body::Bind(bind)
                } else {
                    Body::AlterContext(bind)
                }
            }
            PduType::BindAck | PduType::AlterContextResp => {
                let max_xmit = rd.u16()?;
                let max_recv = rd.u16()?;
                let assoc_group = rd.u32()?;
                let sl = rd.u16()?;
                let s = rd.take(usize::from(sl))?;
                let s = s.strip_suffix(&[0]).unwrap_or(s);
                let sec_addr = String::from_utf8_lossy(s).into_owned();
                rd.align4()?;
                let n = rd.u8()?;
                rd.take(3)?;
                let mut results = Vec::with_capacity(usize::from(n));
                for _ in 0..n {
                    let result = rd.u16()?;
                    let reason = rd.u16()?;
                    let transfer_syntax = rd.syntax()?;
                    results.push(ContextResult {
                        result,
                        reason,
                        transfer_syntax,
                    });
                }
                let ack = BindAck {
                    max_xmit,
                    max_recv,
                    assoc_group,
                    sec_addr,
                    results,
                };
                if h.ptype == PduType::BindAck {
                    Body::BindAck(ack)
                } else {
                    Body::AlterContextResp(ack)
                }
            }
            PduType::BindNak => {
                let reason = rd.u16()?;
                let mut versions = Vec::new();
                if let Ok(n) = rd.u8() {
                    for _ in 0..n {
                        let major = rd.u8()?;
                        let minor = rd.u8()?;
                        versions.push((major, minor));
                    }
                }
                Body::BindNak(BindNak { reason, versions })
            }
            PduType::Auth3 => Body::Auth3,
            PduType::Request => {
                let alloc_hint = rd.u32()?;
                let context_id = rd.u16()?;
                let opnum = rd.u16()?;
                let object = if h.flags & pfc::OBJECT_UUID != 0 {
                    Some(rd.uuid()?)
                } else {
                    None
                };
                let stub = region.get(rd.pos..).unwrap_or_default().to_vec();
                Body::Request(Request {
                    alloc_hint,
                    context_id,
                    opnum,
                    object,
                    stub,
                })
            }
            PduType::Response => {
                let alloc_hint = rd.u32()?;
                let context_id = rd.u16()?;
                let cancel_count = rd.u8()?;
                rd.take(1)?;
                let stub = region.get(rd.pos..).unwrap_or_default().to_vec();
                Body::Response(Response {
                    alloc_hint,
                    context_id,
                    cancel_count,
                    stub,
                })
            }
            PduType::Fault => {
                let alloc_hint = rd.u32()?;
                let context_id = rd.u16()?;
                let cancel_count = rd.u8()?;
                rd.take(1)?;
                let status = rd.u32()?;
                Body::Fault(Fault {
                    alloc_hint,
                    context_id,
                    cancel_count,
                    status,
                })
            }
            PduType::Shutdown => Body::Shutdown,
            PduType::CoCancel => Body::CoCancel,
            PduType::Orphaned => Body::Orphaned,
        };
        Ok(Pdu {
            flags: h.flags,
            call_id: h.call_id,
            body,
            auth,
        })
    }

    /// Encodes the fragment. `frag_length` and `auth_length` are computed;
    /// `PFC_OBJECT_UUID` is set when the request carries an object UUID.
    pub fn encode(&self) -> Result<Vec<u8>, PduError> {
        Ok(self.encode_with_layout()?.0)
    }

    /// Encodes and reports the [`Layout`] (for signing / sealing).
    pub fn encode_with_layout(&self) -> Result<(Vec<u8>, Layout), PduError> {
        let mut out = vec![0u8; HEADER_LEN];
        let mut flags = self.flags;
        let mut stub_start = HEADER_LEN;
        match &self.body {
            Body::Bind(b) | Body::AlterContext(b) => {
                out.extend_from_slice(&b.max_xmit.to_le_bytes());
                out.extend_from_slice(&b.max_recv.to_le_bytes());
                out.extend_from_slice(&b.assoc_group.to_le_bytes());
                let n = u8::try_from(b.contexts.len())
                    .map_err(|_| PduError::Malformed("too many contexts"))?;
                out.extend_from_slice(&[n, 0, 0, 0]);
                for c in &b.contexts {
                    out.extend_from_slice(&c.id.to_le_bytes());
                    let nts = u8::try_from(c.transfer_syntaxes.len())
                        .map_err(|_| PduError::Malformed("too many transfer syntaxes"))?;
                    out.extend_from_slice(&[nts, 0]);
                    c.abstract_syntax.write(&mut out);
                    for t in &c.transfer_syntaxes {
                        t.write(&mut out);
                    }
                }
            }
            Body::BindAck(a) | Body::AlterContextResp(a) => {
                out.extend_from_slice(&a.max_xmit.to_le_bytes());
                out.extend_from_slice(&a.max_recv.to_le_bytes());
                out.extend_from_slice(&a.assoc_group.to_le_bytes());
                if a.sec_addr.is_empty() {
                    out.extend_from_slice(&0u16.to_le_bytes());
                } else {
                    let len = u16::try_from(a.sec_addr.len() + 1)
                        .map_err(|_| PduError::Malformed("sec_addr"))?;
                    out.extend_from_slice(&len.to_le_bytes());
                    out.extend_from_slice(a.sec_addr.as_bytes());
                    out.push(0);
                }
                while out.len() % 4 != 0 {
                    out.push(0);
                }
                let n = u8::try_from(a.results.len())
                    .map_err(|_| PduError::Malformed("too many results"))?;
                out.extend_from_slice(&[n, 0, 0, 0]);
                for r in &a.results {
                    out.extend_from_slice(&r.result.to_le_bytes());
                    out.extend_from_slice(&r.reason.to_le_bytes());
                    r.transfer_syntax.write(&mut out);
                }
            }
            Body::BindNak(n) => {
                out.extend_from_slice(&n.reason.to_le_bytes());
                let cnt =
                    u8::try_from(n.versions.len()).map_err(|_| PduError::Malformed("versions"))?;
                out.push(cnt);
                for (ma, mi) in &n.versions {
                    out.push(*ma);
                    out.push(*mi);
                }
            }
            Body::Auth3 => out.extend_from_slice(&[0, 0, 0, 0]),
            Body::Request(r) => {
                out.extend_from_slice(&r.alloc_hint.to_le_bytes());
                out.extend_from_slice(&r.context_id.to_le_bytes());
                out.extend_from_slice(&r.opnum.to_le_bytes());
                if let Some(o) = r.object {
                    flags |= pfc::OBJECT_UUID;
                    out.extend_from_slice(&o.to_wire());
                } else {
                    flags &= !pfc::OBJECT_UUID;
                }
                stub_start = out.len();
                out.extend_from_slice(&r.stub);
            }
            Body::Response(r) => {
                out.extend_from_slice(&r.alloc_hint.to_le_bytes());
                out.extend_from_slice(&r.context_id.to_le_bytes());
                out.extend_from_slice(&[r.cancel_count, 0]);
                stub_start = out.len();
                out.extend_from_slice(&r.stub);
            }
            Body::Fault(f) => {
                out.extend_from_slice(&f.alloc_hint.to_le_bytes());
                out.extend_from_slice(&f.context_id.to_le_bytes());
                out.extend_from_slice(&[f.cancel_count, 0]);
                out.extend_from_slice(&f.status.to_le_bytes());
                out.extend_from_slice(&[0, 0, 0, 0]);
                stub_start = 24;
            }
            Body::Shutdown | Body::CoCancel | Body::Orphaned => {}
        }
        let mut auth_len = 0usize;
        let mut pad_len = 0usize;
        let trailer_start;
        if let Some(a) = &self.auth {
            pad_len = usize::from(a.pad_len);
            out.resize(out.len() + pad_len, 0);
            trailer_start = out.len();
            out.extend_from_slice(&a.trailer_bytes());
            out.extend_from_slice(&a.value);
            auth_len = a.value.len();
        } else {
            trailer_start = out.len();
        }
        let frag_len = u16::try_from(out.len()).map_err(|_| PduError::TooLarge(out.len()))?;
        let auth_len16 = u16::try_from(auth_len).map_err(|_| PduError::TooLarge(auth_len))?;
        let h = Header {
            ptype: self.body.ptype(),
            flags,
            frag_len,
            auth_len: auth_len16,
            call_id: self.call_id,
        };
        let mut hb = [0u8; HEADER_LEN];
        h.write(&mut hb);
        out[..HEADER_LEN].copy_from_slice(&hb);
        let auth_value_start = if self.auth.is_some() {
            trailer_start + SEC_TRAILER_LEN
        } else {
            trailer_start
        };
        Ok((
            out,
            Layout {
                stub_start,
                trailer_start,
                auth_value_start,
                pad_len,
            },
        ))
    }
}

/// Splits a call's stub into fragment-sized chunks.
///
/// `max_frag` is the negotiated maximum fragment size, `header_len` the
/// fixed part of the PDU before the stub (24 for request/response, 40 with
/// an object UUID) and `auth_overhead` the verifier size (sec_trailer +
/// signature, 0 when unauthenticated). With a verifier, chunks are
/// multiples of 16 so that the auth padding (to 16) always fits.
pub fn fragment_sizes(
    stub_len: usize,
    max_frag: u16,
    header_len: usize,
    auth_overhead: usize,
) -> Vec<usize> {
    let room = usize::from(max_frag).saturating_sub(header_len + auth_overhead);
    let chunk = if auth_overhead > 0 {
        room.saturating_sub(15) & !15
    } else {
        room & !7
    };
    let chunk = chunk.max(16);
    if stub_len == 0 {
        return vec![0];
    }
    let mut v = Vec::new();
    let mut left = stub_len;
    while left > 0 {
        let c = left.min(chunk);
        v.push(c);
        left -= c;
    }
    v
}

/// Auth padding so that the stub plus padding is a multiple of 16 octets.
pub fn auth_pad(stub_len: usize) -> u8 {
    // value in 0..=15, always fits
    ((16 - stub_len % 16) % 16) as u8
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::uuid::NDR20;

    const ICPR: SyntaxId = SyntaxId::new(
        Uuid::from_u128(0x91ae6020_9e3c_11cf_8d7c_00aa00c091be),
        0,
        0,
    );

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap_or(0))
            .collect()
    }

    fn bind_pdu() -> Pdu {
        Pdu {
            flags: pfc::FIRST_FRAG | pfc::LAST_FRAG,
            call_id: 1,
            body: Body::Bind(Bind {
                max_xmit: 4280,
                max_recv: 4280,
                assoc_group: 0,
                contexts: vec![ContextElem {
                    id: 0,
                    abstract_syntax: ICPR,
                    transfer_syntaxes: vec![NDR20],
                }],
            }),
            auth: None,
        }
    }

    // Layout per DCE 1.1 12.6.4.3 (bind): header, max_xmit, max_recv,
    // assoc_group, p_context_elem (n=1, 3 reserved), p_cont_elem.
    const BIND_VECTOR: &str = "05000b03 10000000 4800 0000 01000000
        b810 b810 00000000 01000000
        0000 01 00 2060ae91 3c9e cf11 8d7c00aa00c091be 0000 0000
        045d888a eb1c c911 9fe808002b104860 02000000";

    #[test]
    fn bind_exact_bytes() {
        let b = bind_pdu().encode().unwrap();
        assert_eq!(b, hex(BIND_VECTOR));
        assert_eq!(Pdu::decode(&b).unwrap(), bind_pdu());
    }

    #[test]
    fn bind_with_auth_and_pad() {
        let mut p = bind_pdu();
        p.auth = Some(AuthVerifier {
            auth_type: 10,
            auth_level: 6,
            pad_len: 0,
            context_id: 79231,
            value: vec![1, 2, 3],
        });
        let b = p.encode().unwrap();
        let mut expect = hex(BIND_VECTOR);
        expect[8] = 0x48 + 8 + 3;
        expect[10] = 3;
        expect.extend_from_slice(&hex("0a 06 00 00 7f350100 010203"));
        assert_eq!(b, expect);
        assert_eq!(Pdu::decode(&b).unwrap(), p);
    }

    #[test]
    fn bind_ack_exact_bytes() {
        let p = Pdu {
            flags: 3,
            call_id: 1,
            body: Body::BindAck(BindAck {
                max_xmit: 4280,
                max_recv: 4280,
                assoc_group: 0x1234,
                sec_addr: "49667".into(),
                results: vec![ContextResult {
                    result: 0,
                    reason: 0,
                    transfer_syntax: NDR20,
                }],
            }),
            auth: None,
        };
        let b = p.encode().unwrap();
        // sec_addr: len 6 "49667\0", then pad to 4 from PDU start (16+8+2+6=32: none)
        let expect = hex("05000c03 10000000 3c00 0000 01000000 b810 b810 34120000
             0600 343936363700 01000000 0000 0000 045d888a eb1c c911 9fe808002b104860 02000000");
        assert_eq!(b, expect);
        assert_eq!(Pdu::decode(&b).unwrap(), p);
    }

    #[test]
    fn alter_context_resp_empty_sec_addr() {
        let p = Pdu {
            flags: 3,
            call_id: 2,
            body: Body::AlterContextResp(BindAck {
                max_xmit: 4280,
                max_recv: 4280,
                assoc_group: 7,
                sec_addr: String::new(),
                results: vec![ContextResult {
                    result: 0,
                    reason: 0,
                    transfer_syntax: NDR20,
                }],
            }),
            auth: None,
        };
        let b = p.encode().unwrap();
        assert_eq!(&b[24..28], &[0, 0, 0, 0]); // port_spec length 0 + 2 pad
        assert_eq!(b.len(), 28 + 4 + 24);
        assert_eq!(Pdu::decode(&b).unwrap(), p);
    }

    #[test]
    fn bind_nak_roundtrip() {
        let p = Pdu {
            flags: 3,
            call_id: 9,
            body: Body::BindNak(BindNak {
                reason: 9,
                versions: vec![(5, 0)],
            }),
            auth: None,
        };
        let b = p.encode().unwrap();
        assert_eq!(b, hex("05000d03 10000000 1500 0000 09000000 0900 01 05 00"));
        assert_eq!(Pdu::decode(&b).unwrap(), p);
    }

    #[test]
    fn request_with_object_and_auth() {
        let p = Pdu {
            flags: 3 | pfc::OBJECT_UUID,
            call_id: 2,
            body: Body::Request(Request {
                alloc_hint: 4,
                context_id: 0,
                opnum: 3,
                object: Some(Uuid::from_u128(0x00112233_4455_6677_8899_aabbccddeeff)),
                stub: vec![0xde, 0xad, 0xbe, 0xef],
            }),
            auth: Some(AuthVerifier {
                auth_type: 10,
                auth_level: 5,
                pad_len: 12,
                context_id: 0,
                value: vec![0xaa; 16],
            }),
        };
        let (b, lay) = p.encode_with_layout().unwrap();
        let expect = hex("05000083 10000000 5000 1000 02000000 04000000 0000 0300
             33221100 5544 7766 8899aabbccddeeff deadbeef 000000000000000000000000
             0a 05 0c 00 00000000 aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        assert_eq!(b, expect);
        assert_eq!(
            lay,
            Layout {
                stub_start: 40,
                trailer_start: 56,
                auth_value_start: 64,
                pad_len: 12
            }
        );
        assert_eq!(Pdu::decode(&b).unwrap(), p);
    }

    #[test]
    fn response_and_fault() {
        let p = Pdu {
            flags: 3,
            call_id: 5,
            body: Body::Response(Response {
                alloc_hint: 2,
                context_id: 1,
                cancel_count: 0,
                stub: vec![1, 2],
            }),
            auth: None,
        };
        let b = p.encode().unwrap();
        assert_eq!(
            b,
            hex("05000203 10000000 1a00 0000 05000000 02000000 0100 00 00 0102")
        );
        assert_eq!(Pdu::decode(&b).unwrap(), p);
        let f = Pdu {
            flags: 3 | pfc::DID_NOT_EXECUTE,
            call_id: 5,
            body: Body::Fault(Fault {
                alloc_hint: 0,
                context_id: 0,
                cancel_count: 0,
                status: 0x1c010002,
            }),
            auth: None,
        };
        let b = f.encode().unwrap();
        assert_eq!(
            b,
            hex("05000323 10000000 2000 0000 05000000 00000000 0000 00 00 0200011c 00000000")
        );
        assert_eq!(Pdu::decode(&b).unwrap(), f);
    }

    #[test]
    fn auth3_layout() {
        let p = Pdu {
            flags: 3,
            call_id: 1,
            body: Body::Auth3,
            auth: Some(AuthVerifier {
                auth_type: 10,
                auth_level: 6,
                pad_len: 0,
                context_id: 1,
                value: vec![9; 4],
            }),
        };
        let b = p.encode().unwrap();
        assert_eq!(
            b,
            hex("05001003 10000000 2000 0400 01000000 00000000 0a060000 01000000 09090909")
        );
        assert_eq!(Pdu::decode(&b).unwrap(), p);
    }

    #[test]
    fn malformed_inputs_are_errors() {
        let good = bind_pdu().encode().unwrap();
        for n in 0..good.len() {
            assert!(Pdu::decode(&good[..n]).is_err(), "prefix {n}");
        }
        let mut bad = good.clone();
        bad[4] = 0; // big-endian drep
        assert!(matches!(
            Pdu::decode(&bad),
            Err(PduError::DataRepresentation(_))
        ));
        let mut bad = good.clone();
        bad[2] = 99;
        assert_eq!(Pdu::decode(&bad), Err(PduError::UnknownType(99)));
        let mut bad = good.clone();
        bad[10] = 0xff; // auth_len beyond the PDU
        assert_eq!(Pdu::decode(&bad), Err(PduError::AuthLength));
        let mut bad = good;
        bad[24] = 200; // 200 contexts announced
        assert!(Pdu::decode(&bad).is_err());
    }

    #[test]
    fn fragmentation_sizes() {
        assert_eq!(fragment_sizes(0, 4280, 24, 0), vec![0]);
        assert_eq!(fragment_sizes(10000, 4280, 24, 0), vec![4256, 4256, 1488]);
        let v = fragment_sizes(10000, 4280, 24, 24);
        assert!(v
            .iter()
            .take(v.len() - 1)
            .all(|c| c % 16 == 0 && c + 15 + 24 + 24 <= 4280));
        assert_eq!(v.iter().sum::<usize>(), 10000);
        assert_eq!(auth_pad(4), 12);
        assert_eq!(auth_pad(32), 0);
    }
}
