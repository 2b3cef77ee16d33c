//! Authentication and per-PDU protection with the `sspi` crate.
//!
//! * Client: NTLM (`auth_type` 10, RPC_C_AUTHN_WINNT) with the 3-leg bind
//!   (bind + NEGOTIATE → bind_ack + CHALLENGE → auth3 + AUTHENTICATE), or
//!   SPNEGO (`auth_type` 9, RPC_C_AUTHN_GSS_NEGOTIATE) whose further legs
//!   travel in alter_context / alter_context_resp. Kerberos is reached
//!   through Negotiate when the caller supplies a KDC ([`KdcTransport`]).
//! * Server: NTLM acceptor over a credentials table ([`CredentialStore`]).
//!   The NTLMv2 proof (`NTProofStr`) is verified here against the table
//!   entry of the user named in AUTHENTICATE before sspi derives the session
//!   keys, so a wrong password fails at auth3 rather than at the first call.
//! * Protection: at `PKT_INTEGRITY` every request/response fragment is
//!   signed, at `PKT_PRIVACY` also sealed. The signature covers the whole
//!   PDU — header, stub and auth padding, sec_trailer — (MS-RPCE 3.3.1.5.2.2
//!   header signing; what Windows and impacket do for NTLM); only the stub
//!   and padding are encrypted. Every received fragment's signature is
//!   verified.

use hmac::{KeyInit, Mac};
use sspi::credssp::SspiContext;
use sspi::{
    AuthIdentity, BufferType, ClientRequestFlags, CredentialUse, Credentials as SspiCredentials,
    CredentialsBuffers, DataRepresentation, EncryptionFlags, Negotiate, NegotiateConfig, Ntlm,
    Secret, SecurityBuffer, SecurityBufferFlags, SecurityBufferRef, SecurityStatus,
    ServerRequestFlags, Sspi, SspiEx, SspiImpl, Username,
};

use crate::pdu::Layout;

/// `RPC_C_AUTHN_GSS_NEGOTIATE`.
pub const RPC_C_AUTHN_GSS_NEGOTIATE: u8 = 9;
/// `RPC_C_AUTHN_WINNT` (NTLM).
pub const RPC_C_AUTHN_WINNT: u8 = 10;
/// `RPC_C_AUTHN_GSS_KERBEROS`.
pub const RPC_C_AUTHN_GSS_KERBEROS: u8 = 16;
/// NTLM signature size.
pub const NTLM_SIGNATURE_LEN: usize = 16;

pub use crate::auth_error::AuthError;

/// The first sentence of an sspi error (without the hex dump of e-data).
fn short(d: &str) -> &str {
    d.split(". Additional error data").next().unwrap_or(d)
}

/// Actionable text for the Kerberos errors an operator can fix (RFC 4120
/// error codes as sspi words them); None for anything else.
pub fn kerberos_hint(description: &str) -> Option<&'static str> {
    let d = description.to_ascii_lowercase();
    let table: [(&str, &str); 9] = [
        ("pre-authentication information was invalid", "the KDC refused the password or key (pre-authentication failed): check the password file, or re-export the keytab after a password change (its kvno must match)"),
        ("client not found in kerberos database", "the account is unknown to the KDC: check auth.username and auth.realm (the realm is the AD DNS domain in upper case)"),
        ("server not found in kerberos database", "the KDC has no service principal for the CA's SPN: check auth.spn (default host/<ca host>) and the SPNs of the CA's computer account (setspn -L)"),
        ("clock skew too great", "the clocks of certeasy's host and the domain differ by more than the KDC allows (5 minutes by default): synchronise time with the domain (NTP)"),
        ("password has expired", "the account's password has expired: set a new one in AD and update the password file or keytab"),
        ("clients credentials have been revoked", "the account is disabled or locked out in AD"),
        ("kdc has no support for encryption type", "no common encryption type: the account must allow AES (msDS-SupportedEncryptionTypes); RC4 and DES are not supported here"),
        ("the ticket isn't for us", "the CA answered for another principal than auth.spn: check auth.spn and the CA's SPNs"),
        ("integrity check on decrypted field failed", "the CA could not decrypt the ticket: its keytab or the account's key is out of date"),
    ];
    table
        .iter()
        .find(|(needle, _)| d.contains(needle))
        .map(|(_, hint)| *hint)
}

impl From<sspi::Error> for AuthError {
    fn from(e: sspi::Error) -> Self {
        use sspi::ErrorKind as K;
        if let Some(hint) = kerberos_hint(&e.description) {
            return AuthError::Kerberos(format!("{hint} (KDC said: {})", short(&e.description)));
        }
        if e.error_type == K::NoAuthenticatingAuthority {
            return AuthError::Kerberos(format!(
                "the KDC is unreachable: {}; check auth.kdc and that TCP port 88 of the domain controller is open",
                e.description
            ));
        }
        match e.error_type {
            K::LogonDenied | K::NoCredentials | K::UnknownCredentials => {
                AuthError::LogonDenied(e.description)
            }
            K::MessageAltered | K::DecryptFailure | K::OutOfSequence => {
                AuthError::Integrity(e.description)
            }
            K::InvalidToken => AuthError::InvalidToken(e.description),
            _ => AuthError::Provider(format!("{:?}: {}", e.error_type, e.description)),
        }
    }
}

/// RPC authentication level.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum AuthLevel {
    /// `RPC_C_AUTHN_LEVEL_NONE` (1).
    None,
    /// `RPC_C_AUTHN_LEVEL_CONNECT` (2): authenticate at bind only.
    Connect,
    /// `RPC_C_AUTHN_LEVEL_PKT_INTEGRITY` (5): sign every PDU.
    Integrity,
    /// `RPC_C_AUTHN_LEVEL_PKT_PRIVACY` (6): sign and seal every PDU.
    Privacy,
}

impl AuthLevel {
    /// Wire value.
    pub fn to_wire(self) -> u8 {
        match self {
            AuthLevel::None => 1,
            AuthLevel::Connect => 2,
            AuthLevel::Integrity => 5,
            AuthLevel::Privacy => 6,
        }
    }

    /// From the wire. Levels 3 (call) and 4 (packet) are not supported and
    /// map to `None`, as do unknown values.
    pub fn from_wire(v: u8) -> Option<AuthLevel> {
        match v {
            1 => Some(AuthLevel::None),
            2 => Some(AuthLevel::Connect),
            5 => Some(AuthLevel::Integrity),
            6 => Some(AuthLevel::Privacy),
            _ => None,
        }
    }

    /// True when request/response PDUs carry a verifier.
    pub fn protects_packets(self) -> bool {
        matches!(self, AuthLevel::Integrity | AuthLevel::Privacy)
    }
}

/// Account credentials.
#[derive(Clone)]
pub struct Credentials {
    /// NetBIOS or DNS domain (may be empty).
    pub domain: String,
    /// Account name.
    pub username: String,
    /// Password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("domain", &self.domain)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// Client authentication mechanism.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthMethod {
    /// NTLMv2, auth type 10.
    Ntlm,
    /// SPNEGO, auth type 9, NTLM only.
    NegotiateNtlm,
    /// SPNEGO, auth type 9: Kerberos when a KDC answers, NTLM otherwise
    /// (what Windows' Negotiate package does).
    Negotiate,
    /// SPNEGO, auth type 9, Kerberos only. Needs [`ClientAuth::kdc`] (or a
    /// [`KdcTransport`]) and the CA's SPN; not testable end to end here.
    Kerberos,
}

impl AuthMethod {
    /// RPC auth type sent in the sec_trailer.
    pub fn auth_type(self) -> u8 {
        match self {
            AuthMethod::Ntlm => RPC_C_AUTHN_WINNT,
            AuthMethod::NegotiateNtlm | AuthMethod::Negotiate | AuthMethod::Kerberos => {
                RPC_C_AUTHN_GSS_NEGOTIATE
            }
        }
    }
}

/// Everything a client needs to authenticate a connection.
#[derive(Clone, Debug)]
pub struct ClientAuth {
    /// Mechanism.
    pub method: AuthMethod,
    /// Level.
    pub level: AuthLevel,
    /// Credentials.
    pub credentials: Credentials,
    /// Service principal name for Kerberos (e.g. `host/ca.corp.example`).
    pub spn: Option<String>,
    /// KDC URL for Kerberos, e.g. `tcp://dc.corp.example:88`.
    pub kdc: Option<String>,
    /// Kerberos long-term keys of the account (from a keytab): used instead
    /// of the password, which may then be empty. The account is
    /// `credentials.username@credentials.domain`.
    pub keytab: Option<std::sync::Arc<crate::keytab::Keytab>>,
}

/// Hook for Kerberos: resolves sspi's network requests (KDC traffic).
/// Without one, a Kerberos step that needs the network fails with
/// [`AuthError::Unsupported`].
pub trait KdcTransport: Send + Sync {
    /// Sends `data` to the KDC at `url` and returns its reply.
    fn send(&self, url: &str, data: &[u8]) -> Result<Vec<u8>, String>;
}

/// Security context state shared by client and server: protects and
/// unprotects PDUs once established.
pub struct Protection {
    ctx: ProtCtx,
    level: AuthLevel,
    auth_type: u8,
    context_id: u32,
    sig_len: usize,
    header_sign: bool,
}

enum ProtCtx {
    Client(Box<SspiContext>),
    ServerNtlm(Box<Ntlm>),
    ServerNegotiate(Box<SspiContext>),
    /// SPNEGO acceptor that negotiated Kerberos.
    ServerKerberos(Box<SspiContext>),
}

impl std::fmt::Debug for Protection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Protection")
            .field("level", &self.level)
            .field("auth_type", &self.auth_type)
            .finish()
    }
}

impl Protection {
    /// Level in force.
    pub fn level(&self) -> AuthLevel {
        self.level
    }
    /// Auth type in force.
    pub fn auth_type(&self) -> u8 {
        self.auth_type
    }
    /// `auth_context_id`.
    pub fn context_id(&self) -> u32 {
        self.context_id
    }
    /// Size of the auth value (signature) on protected PDUs.
    pub fn signature_len(&self) -> usize {
        self.sig_len
    }

    /// Whether header and sec_trailer are passed as `SECBUFFER_READONLY_WITH_CHECKSUM`
    /// (negotiated `PFC_SUPPORT_HEADER_SIGN`) or as plain `SECBUFFER_READONLY`.
    /// NTLM signs both kinds (what Windows does); Kerberos only the former.
    pub fn header_sign(&self) -> bool {
        self.header_sign
    }

    /// Sets header signing (from the bind_ack's `PFC_SUPPORT_HEADER_SIGN`).
    pub fn set_header_sign(&mut self, on: bool) {
        self.header_sign = on;
    }

    fn ro_flags(&self) -> SecurityBufferFlags {
        if self.header_sign {
            SecurityBufferFlags::SECBUFFER_READONLY_WITH_CHECKSUM
        } else {
            SecurityBufferFlags::SECBUFFER_READONLY
        }
    }

    /// Whether the PDU header and sec_trailer go to sspi (read-only) with
    /// the stub. Always for NTLM, which signs them even without header
    /// signing (what Windows and impacket do; sspi's NTLM MACs read-only
    /// buffers). For the Kerberos acceptor only with header signing:
    /// sspi's Kerberos folds every data buffer, read-only or not, into the
    /// checksum, and a client that does not sign the header (impacket)
    /// checksums the stub alone (MS-RPCE 3.3.1.5.2.2).
    fn passes_header(&self) -> bool {
        self.header_sign || !matches!(self.ctx, ProtCtx::ServerKerberos(_))
    }

    fn sspi(&mut self) -> &mut dyn SspiLike {
        match &mut self.ctx {
            ProtCtx::Client(c) => c.as_mut(),
            ProtCtx::ServerNtlm(n) => n.as_mut(),
            ProtCtx::ServerNegotiate(c) | ProtCtx::ServerKerberos(c) => c.as_mut(),
        }
    }

    /// Signs (and at privacy seals) an encoded fragment in place. The
    /// fragment must already contain a placeholder auth value of
    /// [`signature_len`](Self::signature_len) octets; `lay` is its layout.
    pub fn protect(&mut self, pdu: &mut [u8], lay: Layout) -> Result<(), AuthError> {
        let level = self.level;
        let ro = self.ro_flags();
        let (head, rest) = pdu.split_at_mut(lay.stub_start);
        let (stub, rest) = rest.split_at_mut(lay.trailer_start - lay.stub_start);
        let (trailer, token) = rest.split_at_mut(lay.auth_value_start - lay.trailer_start);
        let mut head_c = head.to_vec();
        let mut trailer_c = trailer.to_vec();
        let stub_flags = stub_flags(level);
        let with_header = self.passes_header();
        let mut bufs = Vec::with_capacity(4);
        if with_header {
            bufs.push(SecurityBufferRef::data_buf(&mut head_c).with_flags(ro));
        }
        bufs.push(SecurityBufferRef::data_buf(stub).with_flags(stub_flags));
        if with_header {
            bufs.push(SecurityBufferRef::data_buf(&mut trailer_c).with_flags(ro));
        }
        bufs.push(SecurityBufferRef::token_buf(token));
        self.sspi().encrypt(&mut bufs)?;
        let produced = bufs.last().map_or(0, |b| b.data().len());
        if produced != self.sig_len {
            return Err(AuthError::Provider(format!(
                "signature of {produced} octets, expected {}",
                self.sig_len
            )));
        }
        Ok(())
    }

    /// Verifies (and at privacy unseals) a received fragment in place.
    pub fn unprotect(&mut self, pdu: &mut [u8], lay: Layout) -> Result<(), AuthError> {
        if lay.auth_value_start == lay.trailer_start {
            return Err(AuthError::Integrity("PDU carries no verifier".into()));
        }
        let t = &pdu[lay.trailer_start..lay.auth_value_start];
        if t[0] != self.auth_type || AuthLevel::from_wire(t[1]) != Some(self.level) {
            return Err(AuthError::Integrity(format!(
                "verifier with auth type {} level {} on a connection using type {} level {}",
                t[0],
                t[1],
                self.auth_type,
                self.level.to_wire()
            )));
        }
        let level = self.level;
        let ro = self.ro_flags();
        let (head, rest) = pdu.split_at_mut(lay.stub_start);
        let (stub, rest) = rest.split_at_mut(lay.trailer_start - lay.stub_start);
        let (trailer, token) = rest.split_at_mut(lay.auth_value_start - lay.trailer_start);
        let mut head_c = head.to_vec();
        let mut trailer_c = trailer.to_vec();
        let mut token_c = token.to_vec();
        let stub_flags = stub_flags(level);
        let mut stub_c = stub.to_vec();
        {
            // header and trailer as in `protect`
            let header_sign = self.passes_header();
            let mut bufs = Vec::with_capacity(4);
            if header_sign {
                bufs.push(SecurityBufferRef::data_buf(&mut head_c).with_flags(ro));
            }
            bufs.push(SecurityBufferRef::data_buf(&mut stub_c).with_flags(stub_flags));
            if header_sign {
                bufs.push(SecurityBufferRef::data_buf(&mut trailer_c).with_flags(ro));
            }
            bufs.push(SecurityBufferRef::token_buf(&mut token_c));
            self.sspi().decrypt(&mut bufs)?;
            if level == AuthLevel::Privacy {
                let d = bufs[usize::from(header_sign)].data();
                if d.len() != stub.len() {
                    return Err(AuthError::Integrity("decrypted length mismatch".into()));
                }
                stub.copy_from_slice(d);
            }
        }
        Ok(())
    }
}

/// Object-safe slice of the `Sspi` trait used for protection.
trait SspiLike {
    fn encrypt(&mut self, bufs: &mut [SecurityBufferRef<'_>]) -> Result<(), AuthError>;
    fn decrypt(&mut self, bufs: &mut [SecurityBufferRef<'_>]) -> Result<(), AuthError>;
}

impl<T: Sspi> SspiLike for T {
    fn encrypt(&mut self, bufs: &mut [SecurityBufferRef<'_>]) -> Result<(), AuthError> {
        self.encrypt_message(EncryptionFlags::empty(), bufs)
            .map_err(|e| match AuthError::from(e) {
                AuthError::Integrity(m) => AuthError::Provider(m),
                o => o,
            })?;
        Ok(())
    }
    fn decrypt(&mut self, bufs: &mut [SecurityBufferRef<'_>]) -> Result<(), AuthError> {
        self.decrypt_message(bufs)
            .map_err(|e| AuthError::Integrity(e.description))?;
        Ok(())
    }
}

/// Client side of the authentication exchange.
pub struct ClientContext {
    ctx: Box<SspiContext>,
    handle: Option<CredentialsBuffers>,
    flags: ClientRequestFlags,
    spn: Option<String>,
    method: AuthMethod,
    level: AuthLevel,
    complete: bool,
    kdc: Option<std::sync::Arc<dyn KdcTransport>>,
}

impl std::fmt::Debug for ClientContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientContext")
            .field("method", &self.method)
            .field("complete", &self.complete)
            .finish()
    }
}

/// Output of one client step.
#[derive(Debug)]
pub struct ClientStep {
    /// Token to send (may be empty when nothing is left to send).
    pub token: Vec<u8>,
    /// True once the context is established on the client side.
    pub complete: bool,
}

impl ClientContext {
    /// Prepares a client context.
    pub fn new(
        auth: &ClientAuth,
        kdc: Option<std::sync::Arc<dyn KdcTransport>>,
    ) -> Result<Self, AuthError> {
        if !auth.level.protects_packets() && auth.level != AuthLevel::Connect {
            return Err(AuthError::Unsupported(
                "authentication level must be connect, integrity or privacy".into(),
            ));
        }
        if auth.method == AuthMethod::Kerberos && auth.level != AuthLevel::Privacy {
            return Err(AuthError::Unsupported(
                "Kerberos is supported at packet privacy only (the sspi crate has no sign-only Kerberos tokens); set auth-level: privacy".into(),
            ));
        }
        if auth.keytab.is_some() && auth.method == AuthMethod::Ntlm {
            return Err(AuthError::Unsupported(
                "a keytab holds Kerberos keys; NTLM needs the password".into(),
            ));
        }
        let mut ctx = match auth.method {
            AuthMethod::Ntlm => SspiContext::Ntlm(Ntlm::new()),
            AuthMethod::NegotiateNtlm => {
                let config = NegotiateConfig::new(
                    Box::new(sspi::ntlm::NtlmConfig::default()),
                    Some("ntlm,!kerberos".to_owned()),
                    "certeasy".to_owned(),
                );
                SspiContext::Negotiate(Negotiate::new_client(config)?)
            }
            AuthMethod::Negotiate | AuthMethod::Kerberos => {
                let packages = if auth.method == AuthMethod::Kerberos {
                    "kerberos,!ntlm"
                } else {
                    "kerberos,ntlm"
                };
                let krb = kerberos_config(auth);
                let config = NegotiateConfig::new(
                    Box::new(krb),
                    Some(packages.to_owned()),
                    "certeasy".to_owned(),
                );
                SspiContext::Negotiate(Negotiate::new_client(config)?)
            }
        };
        let kdc = kdc_transport(kdc, auth);
        let creds = client_credentials(auth)?;
        let acq = ctx
            .acquire_credentials_handle()
            .with_credential_use(CredentialUse::Outbound)
            .with_auth_data(&creds);
        let handle = acq.execute(&mut ctx)?.credentials_handle;
        // No USE_SESSION_KEY: for Kerberos it asks sspi for user-to-user
        // (a TGT-REQ first), which RPC servers (Samba, Windows) refuse.
        let mut flags = ClientRequestFlags::MUTUAL_AUTH;
        match auth.level {
            AuthLevel::Privacy => {
                flags |= ClientRequestFlags::INTEGRITY
                    | ClientRequestFlags::CONFIDENTIALITY
                    | ClientRequestFlags::USE_DCE_STYLE
            }
            AuthLevel::Integrity => flags |= ClientRequestFlags::INTEGRITY,
            _ => {}
        }
        Ok(ClientContext {
            ctx: Box::new(ctx),
            handle,
            flags,
            spn: auth.spn.clone(),
            method: auth.method,
            level: auth.level,
            complete: false,
            kdc,
        })
    }

    /// Prepares a plain GSS-API Kerberos client context (RFC 4121 tokens
    /// framed as in RFC 2743 §3.1, not SPNEGO, not DCE style) for SASL
    /// GSSAPI (RFC 4752), e.g. an LDAP bind: mutual authentication with
    /// integrity and confidentiality, so that the established context can
    /// wrap and unwrap through `msrpc::gss::GssWrap::new`.
    /// `auth.spn` names the service (`ldap/dc01.corp.example`).
    pub fn new_gss_api(
        auth: &ClientAuth,
        kdc: Option<std::sync::Arc<dyn KdcTransport>>,
    ) -> Result<Self, AuthError> {
        if auth.method == AuthMethod::Ntlm || auth.method == AuthMethod::NegotiateNtlm {
            return Err(AuthError::Unsupported(
                "SASL GSSAPI is Kerberos: set auth.method to kerberos or negotiate".into(),
            ));
        }
        let mut ctx = SspiContext::Kerberos(sspi::Kerberos::new_client_from_config(
            kerberos_config(auth),
        )?);
        let creds = client_credentials(auth)?;
        let acq = ctx
            .acquire_credentials_handle()
            .with_credential_use(CredentialUse::Outbound)
            .with_auth_data(&creds);
        let handle = acq.execute(&mut ctx)?.credentials_handle;
        Ok(ClientContext {
            ctx: Box::new(ctx),
            handle,
            flags: ClientRequestFlags::MUTUAL_AUTH
                | ClientRequestFlags::INTEGRITY
                | ClientRequestFlags::CONFIDENTIALITY,
            spn: auth.spn.clone(),
            method: AuthMethod::Kerberos,
            level: AuthLevel::Privacy,
            complete: false,
            kdc: kdc_transport(kdc, auth),
        })
    }

    /// The established sspi context (for `msrpc::gss::GssWrap::new`).
    pub(crate) fn into_established(self) -> Result<Box<SspiContext>, AuthError> {
        if !self.complete {
            return Err(AuthError::InvalidToken(
                "the security context is not established yet".into(),
            ));
        }
        Ok(self.ctx)
    }

    /// Processes the peer's token (None for the first call) and returns the next one.
    pub fn step(&mut self, input: Option<&[u8]>) -> Result<ClientStep, AuthError> {
        let mut in_buf = [SecurityBuffer::new(
            input.unwrap_or_default().to_vec(),
            BufferType::Token,
        )];
        let mut out_buf = [SecurityBuffer::new(Vec::new(), BufferType::Token)];
        let spn = self.spn.clone();
        let ctx = self.ctx.as_mut();
        let mut builder = ctx
            .initialize_security_context()
            .with_credentials_handle(&mut self.handle)
            .with_context_requirements(self.flags)
            .with_target_data_representation(DataRepresentation::Native)
            .with_output(&mut out_buf);
        // sspi's Kerberos client wants an input buffer on every call, empty
        // on the first; NTLM wants none on the first.
        if input.is_some() || matches!(self.method, AuthMethod::Kerberos | AuthMethod::Negotiate) {
            builder = builder.with_input(&mut in_buf);
        }
        if let Some(s) = spn.as_deref() {
            builder = builder.with_target_name(s);
        }
        let result = {
            let mut generator = SspiImpl::initialize_security_context_impl(ctx, &mut builder)?;
            match &self.kdc {
                Some(kdc) => generator.resolve_with_client(&KdcAdapter(kdc.clone()))?,
                None => generator.resolve_to_result().map_err(|e| {
                    if self.method == AuthMethod::Kerberos {
                        AuthError::Unsupported(format!(
                            "Kerberos needs a reachable KDC: {}",
                            e.description
                        ))
                    } else {
                        AuthError::from(e)
                    }
                })?,
            }
        };
        let mut complete = result.status == SecurityStatus::Ok;
        if matches!(
            result.status,
            SecurityStatus::CompleteNeeded | SecurityStatus::CompleteAndContinue
        ) {
            self.ctx.complete_auth_token(&mut out_buf)?;
            complete = result.status == SecurityStatus::CompleteNeeded;
        }
        self.complete = complete;
        Ok(ClientStep {
            token: std::mem::take(&mut out_buf[0].buffer),
            complete,
        })
    }

    /// True once established.
    pub fn is_complete(&self) -> bool {
        self.complete
    }

    /// Auth type for the sec_trailer.
    pub fn auth_type(&self) -> u8 {
        self.method.auth_type()
    }

    /// Level requested.
    pub fn level(&self) -> AuthLevel {
        self.level
    }

    /// Turns the established context into a [`Protection`].
    pub fn into_protection(mut self, context_id: u32) -> Result<Protection, AuthError> {
        let sig_len = match self.method {
            AuthMethod::Ntlm => NTLM_SIGNATURE_LEN,
            _ => self.ctx.query_context_sizes()?.security_trailer as usize,
        };
        Ok(Protection {
            ctx: ProtCtx::Client(self.ctx),
            level: self.level,
            auth_type: self.method.auth_type(),
            context_id,
            sig_len,
            header_sign: true,
        })
    }
}

/// sspi's Kerberos configuration for a client: the KDC URL when given.
pub(crate) fn kerberos_config(auth: &ClientAuth) -> sspi::KerberosConfig {
    match &auth.kdc {
        Some(url) => sspi::KerberosConfig::new_with_kdc_url(url, "certeasy".to_owned()),
        None => sspi::KerberosConfig {
            kdc_resolution: sspi::KdcResolution::KdcUrl(None),
            client_computer_name: "certeasy".to_owned(),
        },
    }
}

/// The KDC transport: the caller's, else TCP for a `tcp://` KDC URL.
pub(crate) fn kdc_transport(
    kdc: Option<std::sync::Arc<dyn KdcTransport>>,
    auth: &ClientAuth,
) -> Option<std::sync::Arc<dyn KdcTransport>> {
    match (kdc, &auth.kdc) {
        (Some(k), _) => Some(k),
        (None, Some(url)) if url.starts_with("tcp://") => {
            Some(std::sync::Arc::new(TcpKdc) as std::sync::Arc<dyn KdcTransport>)
        }
        (None, _) => None,
    }
}

/// The client's sspi credentials: the keytab's keys of the account when a
/// keytab is given, else username and password.
pub(crate) fn client_credentials(auth: &ClientAuth) -> Result<SspiCredentials, AuthError> {
    let c = &auth.credentials;
    let domain = if c.domain.is_empty() {
        None
    } else {
        Some(c.domain.as_str())
    };
    let username =
        Username::new(&c.username, domain).map_err(|e| AuthError::InvalidToken(e.to_string()))?;
    let identity = AuthIdentity {
        username,
        password: Secret::new(c.password.clone()),
    };
    Ok(match &auth.keytab {
        Some(kt) => {
            let principal = if c.domain.is_empty() {
                c.username.clone()
            } else {
                format!("{}@{}", c.username, c.domain)
            };
            let id = kt.identity(Some(&principal)).ok_or_else(|| {
                AuthError::LogonDenied(format!(
                    "the keytab has no AES key for {principal} (keys for: {})",
                    kt.entries
                        .iter()
                        .map(|e| e.principal())
                        .collect::<std::collections::BTreeSet<_>>()
                        .into_iter()
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
            SspiCredentials::Keytab(id)
        }
        None => SspiCredentials::AuthIdentity(identity),
    })
}

/// Kerberos over TCP (RFC 4120 7.2.2: 4-octet big-endian length prefix),
/// blocking, with a 10-second timeout per exchange.
#[derive(Debug, Default)]
pub struct TcpKdc;

impl KdcTransport for TcpKdc {
    fn send(&self, url: &str, data: &[u8]) -> Result<Vec<u8>, String> {
        use std::io::{Read, Write};
        use std::net::ToSocketAddrs;
        let hostport = url.trim_start_matches("tcp://").trim_end_matches('/');
        let addr = hostport
            .to_socket_addrs()
            .map_err(|e| format!("KDC {hostport}: {e}"))?
            .next()
            .ok_or_else(|| format!("KDC {hostport} did not resolve"))?;
        let t = std::time::Duration::from_secs(10);
        let mut s = std::net::TcpStream::connect_timeout(&addr, t)
            .map_err(|e| format!("KDC {addr}: {e}"))?;
        let _ = s.set_read_timeout(Some(t));
        let _ = s.set_write_timeout(Some(t));
        // sspi's KDC messages already carry the length prefix for TCP.
        s.write_all(data).map_err(|e| format!("KDC {addr}: {e}"))?;
        let mut len = [0u8; 4];
        s.read_exact(&mut len)
            .map_err(|e| format!("KDC {addr}: {e}"))?;
        let n = u32::from_be_bytes(len) as usize;
        if n > 1 << 20 {
            return Err(format!("KDC {addr}: reply of {n} octets refused"));
        }
        let mut body = vec![0u8; n];
        s.read_exact(&mut body)
            .map_err(|e| format!("KDC {addr}: {e}"))?;
        let mut out = len.to_vec();
        out.extend_from_slice(&body);
        Ok(out)
    }
}

pub(crate) struct KdcAdapter(pub(crate) std::sync::Arc<dyn KdcTransport>);

impl sspi::network_client::NetworkClient for KdcAdapter {
    fn send(&self, request: &sspi::generator::NetworkRequest) -> sspi::Result<Vec<u8>> {
        self.0
            .send(request.url.as_str(), &request.data)
            .map_err(|e| sspi::Error::new(sspi::ErrorKind::NoAuthenticatingAuthority, e))
    }
}

/// Where the server looks up accounts.
pub trait CredentialStore: Send + Sync {
    /// The password of `user` in `domain` (compare case-insensitively), if
    /// the account exists. `domain` may be empty when the client sent none.
    fn password(&self, domain: &str, user: &str) -> Option<String>;

    /// Every account, for the SPNEGO acceptor (sspi's Negotiate server
    /// needs its candidate list up front). Stores that return nothing
    /// support NTLM (auth type 10) only.
    fn accounts(&self) -> Vec<Credentials> {
        Vec::new()
    }

    /// The service's Kerberos keys (a keytab with its SPNs' AES keys): with
    /// them the SPNEGO acceptor takes Kerberos AP-REQs. None: NTLM only.
    fn kerberos_keys(&self) -> Option<std::sync::Arc<crate::keytab::Keytab>> {
        None
    }
}

/// OIDs of Kerberos in SPNEGO (RFC 4121 and Microsoft's legacy one), DER.
const KRB5_OIDS: [&[u8]; 2] = [
    &[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02,
    ],
    &[
        0x06, 0x09, 0x2a, 0x86, 0x48, 0x82, 0xf7, 0x12, 0x01, 0x02, 0x02,
    ],
];
/// NTLMSSP's OID, DER.
const NTLM_OID: &[u8] = &[
    0x06, 0x0a, 0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37, 0x02, 0x02, 0x0a,
];

/// In DCE style (what DCE/RPC at packet privacy uses) sspi's acceptor wants
/// the AP-REQ bare, as Windows and sspi's own client send it; impacket
/// (Certipy) frames it (RFC 2743 3.1: `0x60`, the Kerberos OID, token id
/// `01 00`). Windows accepts both. Returns the negTokenInit with the AP-REQ
/// unframed, or None when there is nothing to change.
fn unframe_ap_req(token: &[u8]) -> Option<Vec<u8>> {
    use picky_krb::gss_api::ApplicationTag0;
    let mut init = ApplicationTag0(crate::dce_kerberos::decode_neg_token_init(token)?);
    let mech = init.0.neg_token_init.0.mech_token.0.as_ref()?.0 .0.clone();
    if mech.first() != Some(&0x60) {
        return None;
    }
    // skip the 0x60 tag and its length
    let len_octets = match *mech.get(1)? {
        n if n < 0x80 => 1,
        n => 1 + usize::from(n & 0x7f),
    };
    let rest = mech.get(1 + len_octets..)?;
    let oid = KRB5_OIDS.iter().find(|o| rest.starts_with(o))?;
    let rest = rest.get(oid.len()..)?;
    let bare = rest.strip_prefix(&[0x01, 0x00][..])?;
    if bare.first() != Some(&0x6e) {
        return None;
    }
    init.0.neg_token_init.0.mech_token =
        picky_asn1::wrapper::Optional::from(Some(picky_asn1::wrapper::ExplicitContextTag2::from(
            picky_asn1::wrapper::OctetStringAsn1::from(bare.to_vec()),
        )));
    picky_asn1_der::to_vec(&init).ok()
}

/// True when the client's negTokenInit lists Kerberos before NTLM.
fn prefers_kerberos(token: &[u8]) -> bool {
    let pos = |oid: &[u8]| token.windows(oid.len()).position(|w| w == oid);
    let krb = KRB5_OIDS.iter().filter_map(|o| pos(o)).min();
    match (krb, pos(NTLM_OID)) {
        (Some(k), Some(n)) => k < n,
        (Some(_), None) => true,
        _ => false,
    }
}

/// sspi's Kerberos acceptor configured with every AES key of `kt`, one
/// service principal per keytab principal (the newest kvno, AES-256 first).
fn kerberos_server_config(
    kt: &crate::keytab::Keytab,
) -> Result<sspi::KerberosServerConfig, AuthError> {
    let mut principals: Vec<&Vec<String>> = Vec::new();
    for e in &kt.entries {
        if !principals.contains(&&e.components) {
            principals.push(&e.components);
        }
    }
    let mut props: Option<sspi::kerberos::ServerProperties> = None;
    for comps in principals {
        let name = comps.join("/");
        let Some(e) = kt.client_key(Some(&name)) else {
            continue;
        };
        let sname: Vec<&str> = comps.iter().map(String::as_str).collect();
        let key = Secret::new(e.key.clone());
        match props.as_mut() {
            None => {
                props = Some(sspi::kerberos::ServerProperties::new(
                    &sname,
                    None,
                    std::time::Duration::from_secs(300),
                    Some(key),
                )?)
            }
            Some(p) => p.add_service_key(&sname, key)?,
        }
    }
    let server_properties =
        props.ok_or_else(|| AuthError::Unsupported("the keytab holds no AES key".into()))?;
    Ok(sspi::KerberosServerConfig {
        kerberos_config: sspi::KerberosConfig {
            kdc_resolution: sspi::KdcResolution::KdcUrl(None),
            client_computer_name: "lab".to_owned(),
        },
        server_properties,
    })
}

/// Identity established by the server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthenticatedUser {
    /// Domain as sent by the client.
    pub domain: String,
    /// User as sent by the client.
    pub user: String,
}

/// NTLM acceptor.
pub struct ServerNtlm {
    ntlm: Box<Ntlm>,
    challenge: Vec<u8>,
    level: AuthLevel,
    context_id: u32,
}

impl std::fmt::Debug for ServerNtlm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerNtlm")
            .field("level", &self.level)
            .finish()
    }
}

impl ServerNtlm {
    /// Processes NEGOTIATE (from bind) and returns CHALLENGE (for bind_ack).
    pub fn accept_negotiate(
        negotiate: &[u8],
        level: AuthLevel,
        context_id: u32,
    ) -> Result<(Self, Vec<u8>), AuthError> {
        if !level.protects_packets() && level != AuthLevel::Connect {
            return Err(AuthError::Unsupported(format!(
                "authentication level {}",
                level.to_wire()
            )));
        }
        let mut ntlm = Box::new(Ntlm::new());
        let mut handle: Option<sspi::AuthIdentityBuffers> = None;
        let mut input = [SecurityBuffer::new(negotiate.to_vec(), BufferType::Token)];
        let mut output = [SecurityBuffer::new(Vec::new(), BufferType::Token)];
        let builder = ntlm
            .accept_security_context()
            .with_credentials_handle(&mut handle)
            .with_context_requirements(ServerRequestFlags::ALLOCATE_MEMORY)
            .with_target_data_representation(DataRepresentation::Native)
            .with_input(&mut input)
            .with_output(&mut output);
        ntlm.accept_security_context_impl(builder)?
            .resolve_to_result()?;
        let challenge = std::mem::take(&mut output[0].buffer);
        if challenge.len() < 32 {
            return Err(AuthError::Provider("short CHALLENGE message".into()));
        }
        Ok((
            ServerNtlm {
                ntlm,
                challenge: challenge.clone(),
                level,
                context_id,
            },
            challenge,
        ))
    }

    /// Processes AUTHENTICATE (from auth3): checks the NTLMv2 proof against
    /// the store, then derives the session keys.
    pub fn accept_authenticate(
        mut self,
        authenticate: &[u8],
        store: &dyn CredentialStore,
    ) -> Result<(AuthenticatedUser, Protection), AuthError> {
        let msg = parse_authenticate(authenticate)?;
        let password = store.password(&msg.domain, &msg.user).ok_or_else(|| {
            AuthError::LogonDenied(format!("unknown account {}\\{}", msg.domain, msg.user))
        })?;
        let mut server_challenge = [0u8; 8];
        server_challenge.copy_from_slice(&self.challenge[24..32]);
        if !verify_ntlmv2(&msg, &password, &server_challenge) {
            return Err(AuthError::LogonDenied(format!(
                "wrong password for {}\\{}",
                msg.domain, msg.user
            )));
        }
        let mut handle: Option<sspi::AuthIdentityBuffers> = None;
        let mut input = [SecurityBuffer::new(
            authenticate.to_vec(),
            BufferType::Token,
        )];
        let mut output = [SecurityBuffer::new(Vec::new(), BufferType::Token)];
        let builder = self
            .ntlm
            .accept_security_context()
            .with_credentials_handle(&mut handle)
            .with_context_requirements(ServerRequestFlags::ALLOCATE_MEMORY)
            .with_target_data_representation(DataRepresentation::Native)
            .with_input(&mut input)
            .with_output(&mut output);
        let r = self
            .ntlm
            .accept_security_context_impl(builder)?
            .resolve_to_result()?;
        let domain = if msg.domain.is_empty() {
            None
        } else {
            Some(msg.domain.as_str())
        };
        let username =
            Username::new(&msg.user, domain).map_err(|e| AuthError::InvalidToken(e.to_string()))?;
        self.ntlm.custom_set_auth_identity(AuthIdentity {
            username,
            password: Secret::new(password),
        })?;
        if matches!(
            r.status,
            SecurityStatus::CompleteNeeded | SecurityStatus::CompleteAndContinue
        ) {
            self.ntlm.complete_auth_token(&mut [])?;
        }
        let user = AuthenticatedUser {
            domain: msg.domain,
            user: msg.user,
        };
        let prot = Protection {
            ctx: ProtCtx::ServerNtlm(self.ntlm),
            level: self.level,
            auth_type: RPC_C_AUTHN_WINNT,
            context_id: self.context_id,
            sig_len: NTLM_SIGNATURE_LEN,
            header_sign: true,
        };
        Ok((user, prot))
    }
}

/// SPNEGO acceptor (auth type 9), NTLM inside SPNEGO only: the legs are
/// bind (negTokenInit) → bind_ack (negTokenResp + CHALLENGE) →
/// alter_context (negTokenResp + AUTHENTICATE + mechListMIC) →
/// alter_context_resp (accept-completed + mechListMIC). The embedded
/// AUTHENTICATE is checked against the store exactly like [`ServerNtlm`].
pub struct ServerNegotiate {
    ctx: Box<SspiContext>,
    kerberos: bool,
    /// Kerberos: the session key of the client's ticket, to verify the
    /// DCE-style third leg ([`crate::dce_kerberos`]).
    session_key: Option<crate::dce_kerberos::SessionKey>,
    /// Kerberos was the first mechanism of the client's negTokenInit.
    krb_first: bool,
    /// Kerberos: the principals allowed (every account as user@REALM).
    allowed: Vec<Username>,
    challenge: [u8; 8],
    level: AuthLevel,
    context_id: u32,
}

impl std::fmt::Debug for ServerNegotiate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerNegotiate")
            .field("level", &self.level)
            .finish()
    }
}

fn find_ntlm(token: &[u8], msg_type: u8) -> Option<usize> {
    let sig = [
        b'N', b'T', b'L', b'M', b'S', b'S', b'P', 0, msg_type, 0, 0, 0,
    ];
    token.windows(sig.len()).position(|w| w == sig)
}

fn accept_step(
    ctx: &mut SspiContext,
    token: &[u8],
    dce_style: bool,
) -> Result<(SecurityStatus, Vec<u8>), AuthError> {
    let flags = if dce_style {
        ServerRequestFlags::USE_DCE_STYLE
            | ServerRequestFlags::MUTUAL_AUTH
            | ServerRequestFlags::CONFIDENTIALITY
            | ServerRequestFlags::INTEGRITY
    } else {
        ServerRequestFlags::empty()
    };
    let mut handle: Option<CredentialsBuffers> = None;
    let mut input = [SecurityBuffer::new(token.to_vec(), BufferType::Token)];
    let mut output = [SecurityBuffer::new(Vec::new(), BufferType::Token)];
    let builder = ctx
        .accept_security_context()
        .with_credentials_handle(&mut handle)
        .with_context_requirements(flags)
        .with_target_data_representation(DataRepresentation::Native)
        .with_input(&mut input)
        .with_output(&mut output);
    let r = SspiImpl::accept_security_context_impl(ctx, builder)?.resolve_to_result()?;
    Ok((r.status, std::mem::take(&mut output[0].buffer)))
}

impl ServerNegotiate {
    /// True when the client chose Kerberos (else NTLM inside SPNEGO).
    pub fn is_kerberos(&self) -> bool {
        self.kerberos
    }

    /// Processes negTokenInit (from bind) and returns the reply token (for bind_ack).
    pub fn accept_init(
        token: &[u8],
        level: AuthLevel,
        context_id: u32,
        store: &dyn CredentialStore,
    ) -> Result<(Self, Vec<u8>), AuthError> {
        if !level.protects_packets() {
            return Err(AuthError::Unsupported(format!(
                "authentication level {}",
                level.to_wire()
            )));
        }
        // picky's decoder, which sspi runs on this token, panics on some
        // malformed ones: only a token that decodes goes on.
        if crate::dce_kerberos::decode_neg_token_init(token).is_none() {
            return Err(AuthError::InvalidToken(
                "the first SPNEGO token is not a negTokenInit".into(),
            ));
        }
        if let Some(kt) = store.kerberos_keys().filter(|_| prefers_kerberos(token)) {
            let config = NegotiateConfig::new(
                Box::new(kerberos_server_config(&kt)?),
                Some("kerberos,!ntlm".to_owned()),
                "lab".to_owned(),
            );
            // sspi's SPNEGO acceptor looks the authenticated principal up in
            // its identity list before it checks the mechListMIC (a step
            // written for NTLM): list every account as user@REALM for each
            // realm of the keytab. Only these accounts are accepted.
            let mut realms: Vec<&str> = kt.entries.iter().map(|e| e.realm.as_str()).collect();
            realms.sort_unstable();
            realms.dedup();
            let mut identities = Vec::new();
            for c in store.accounts() {
                for r in &realms {
                    if let Ok(username) = Username::new_upn(&c.username, r) {
                        identities.push(AuthIdentity {
                            username,
                            password: Secret::new(String::new()),
                        });
                    }
                }
            }
            let allowed = identities.iter().map(|i| i.username.clone()).collect();
            let mut ctx = Box::new(SspiContext::Negotiate(Negotiate::new_server(
                config, identities,
            )?));
            let bare = unframe_ap_req(token);
            let init = bare.as_deref().unwrap_or(token);
            // When the AP-REQ is for the client's first mechanism sspi
            // takes it: recover the ticket's session key (which sspi keeps
            // to itself) for the third leg, checking on the way that what
            // sspi will decode of the AP-REQ is well-formed DER.
            let krb_first = crate::dce_kerberos::first_mech_is_kerberos(init);
            let session_key = match crate::dce_kerberos::mech_token(init) {
                Some(ap_req) if krb_first => {
                    Some(crate::dce_kerberos::SessionKey::from_ap_req(&ap_req, &kt)?)
                }
                _ => None,
            };
            let (_, out) = accept_step(&mut ctx, init, true)?;
            return Ok((
                ServerNegotiate {
                    ctx,
                    kerberos: true,
                    session_key,
                    krb_first,
                    allowed,
                    challenge: [0; 8],
                    level,
                    context_id,
                },
                out,
            ));
        }
        let mut identities = Vec::new();
        for c in store.accounts() {
            let domain = if c.domain.is_empty() {
                None
            } else {
                Some(c.domain.as_str())
            };
            if let Ok(username) = Username::new(&c.username, domain) {
                identities.push(AuthIdentity {
                    username,
                    password: Secret::new(c.password),
                });
            }
        }
        if identities.is_empty() {
            return Err(AuthError::Unsupported("no accounts for SPNEGO".into()));
        }
        let config = NegotiateConfig::new(
            Box::new(sspi::ntlm::NtlmConfig::default()),
            Some("ntlm,!kerberos".to_owned()),
            "lab".to_owned(),
        );
        let mut ctx = Box::new(SspiContext::Negotiate(Negotiate::new_server(
            config, identities,
        )?));
        let (_, out) = accept_step(&mut ctx, token, false)?;
        let at = find_ntlm(&out, 2)
            .ok_or_else(|| AuthError::Unsupported("SPNEGO did not select NTLM".into()))?;
        let mut challenge = [0u8; 8];
        challenge.copy_from_slice(
            out.get(at + 24..at + 32)
                .ok_or_else(|| AuthError::Provider("short CHALLENGE message".into()))?,
        );
        Ok((
            ServerNegotiate {
                ctx,
                kerberos: false,
                session_key: None,
                krb_first: false,
                allowed: Vec::new(),
                challenge,
                level,
                context_id,
            },
            out,
        ))
    }

    /// Processes the client's next token (from alter_context). Returns the
    /// reply token and, once complete, the identity and [`Protection`].
    #[allow(clippy::type_complexity)]
    pub fn accept_continue(
        mut self,
        token: &[u8],
        store: &dyn CredentialStore,
        header_sign: bool,
    ) -> Result<(Vec<u8>, Result<(AuthenticatedUser, Protection), Self>), AuthError> {
        // sspi decodes this token with picky (see `der_well_formed`)
        if !crate::dce_kerberos::der_well_formed(token) {
            return Err(AuthError::InvalidToken(
                "SPNEGO token: malformed DER".into(),
            ));
        }
        if self.kerberos {
            // The third leg, verified against the session key (and made
            // readable to sspi when impacket sent its EncAPRepPart bare).
            // Without a session key (Kerberos was not the client's first
            // mechanism, so this leg carries its AP-REQ) sspi alone decides.
            let leg = match self.session_key.take() {
                Some(sk) => crate::dce_kerberos::ThirdLeg::verify(token, &sk)?,
                None => crate::dce_kerberos::ThirdLeg {
                    token: token.to_vec(),
                    has_mic: true,
                },
            };
            let (status, mut out) = accept_step(&mut self.ctx, &leg.token, true)?;
            // sspi's DCE-style Kerberos is complete after the third leg
            // (it returns an error otherwise); what it may still want is
            // the SPNEGO mechListMIC, which RFC 4178 section 5 makes
            // optional when Kerberos was the client's first choice and
            // which impacket never sends.
            let mic_optional =
                status == SecurityStatus::ContinueNeeded && !leg.has_mic && self.krb_first;
            if status != SecurityStatus::Ok && !mic_optional {
                return Ok((out, Err(self)));
            }
            if mic_optional {
                out = crate::dce_kerberos::ACCEPT_COMPLETED.to_vec();
            }
            let name = self.ctx.query_context_names()?.username;
            // sspi checks the principal against its identity list only when
            // it verifies a mechListMIC: check it here in every case.
            if !self.allowed.iter().any(|a| a.eq_ignore_ascii_case(&name)) {
                return Err(AuthError::LogonDenied(format!(
                    "{} is not an account of this server",
                    name.inner()
                )));
            }
            let (domain, user) = match name.parts() {
                sspi::UsernameParts::UserPrincipalName(p) => (p.suffix(), p.account_name()),
                sspi::UsernameParts::DownLevelLogonName(p) => {
                    (p.netbios_domain().unwrap_or_default(), p.account_name())
                }
            };
            let user = AuthenticatedUser {
                domain: domain.to_owned(),
                user: user.to_owned(),
            };
            let sig_len = self.ctx.query_context_sizes()?.security_trailer as usize;
            let prot = Protection {
                ctx: ProtCtx::ServerKerberos(self.ctx),
                level: self.level,
                auth_type: RPC_C_AUTHN_GSS_NEGOTIATE,
                context_id: self.context_id,
                sig_len,
                header_sign,
            };
            return Ok((out, Ok((user, prot))));
        }
        let mut user = None;
        if let Some(at) = find_ntlm(token, 3) {
            let msg = parse_authenticate(&token[at..])?;
            let password = store.password(&msg.domain, &msg.user).ok_or_else(|| {
                AuthError::LogonDenied(format!("unknown account {}\\{}", msg.domain, msg.user))
            })?;
            if !verify_ntlmv2(&msg, &password, &self.challenge) {
                return Err(AuthError::LogonDenied(format!(
                    "wrong password for {}\\{}",
                    msg.domain, msg.user
                )));
            }
            user = Some(AuthenticatedUser {
                domain: msg.domain,
                user: msg.user,
            });
        }
        let (status, out) = accept_step(&mut self.ctx, token, false)?;
        if status != SecurityStatus::Ok {
            return Ok((out, Err(self)));
        }
        let user = user.ok_or_else(|| {
            AuthError::InvalidToken("SPNEGO completed without NTLM AUTHENTICATE".into())
        })?;
        let prot = Protection {
            ctx: ProtCtx::ServerNegotiate(self.ctx),
            level: self.level,
            auth_type: RPC_C_AUTHN_GSS_NEGOTIATE,
            context_id: self.context_id,
            sig_len: NTLM_SIGNATURE_LEN,
            header_sign,
        };
        Ok((out, Ok((user, prot))))
    }
}

/// Fields of an NTLM AUTHENTICATE message that the acceptor checks.
#[derive(Debug, Clone)]
pub struct AuthenticateFields {
    /// Domain.
    pub domain: String,
    /// User.
    pub user: String,
    /// NtChallengeResponse (NTProofStr followed by the client blob).
    pub nt_response: Vec<u8>,
}

fn field(m: &[u8], at: usize) -> Result<&[u8], AuthError> {
    let bad = || AuthError::InvalidToken("AUTHENTICATE field out of bounds".into());
    let h = m.get(at..at + 8).ok_or_else(bad)?;
    let len = usize::from(u16::from_le_bytes([h[0], h[1]]));
    let off = u32::from_le_bytes([h[4], h[5], h[6], h[7]]) as usize;
    m.get(off..off.checked_add(len).ok_or_else(bad)?)
        .ok_or_else(bad)
}

fn utf16(b: &[u8]) -> Result<String, AuthError> {
    if b.len() % 2 != 0 {
        return Err(AuthError::InvalidToken("odd-length UTF-16 name".into()));
    }
    let w: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16(&w).map_err(|_| AuthError::InvalidToken("invalid UTF-16 name".into()))
}

/// Parses an NTLM AUTHENTICATE message (MS-NLMP 2.2.1.3); Unicode only.
pub fn parse_authenticate(m: &[u8]) -> Result<AuthenticateFields, AuthError> {
    if m.len() < 64 || &m[..8] != b"NTLMSSP\0" || m[8..12] != [3, 0, 0, 0] {
        return Err(AuthError::InvalidToken(
            "not an NTLM AUTHENTICATE message".into(),
        ));
    }
    let flags = u32::from_le_bytes([m[60], m[61], m[62], m[63]]);
    if flags & 0x1 == 0 {
        return Err(AuthError::Unsupported(
            "NTLM OEM (non-Unicode) strings".into(),
        ));
    }
    let nt_response = field(m, 20)?.to_vec();
    if nt_response.len() <= 24 {
        return Err(AuthError::Unsupported(
            "NTLMv1 responses are refused; NTLMv2 is required".into(),
        ));
    }
    Ok(AuthenticateFields {
        domain: utf16(field(m, 28)?)?,
        user: utf16(field(m, 36)?)?,
        nt_response,
    })
}

type HmacMd5 = hmac::Hmac<md5::Md5>;

fn hmac_md5(key: &[u8], parts: &[&[u8]]) -> [u8; 16] {
    // HMAC accepts keys of any length.
    let mut mac = match <HmacMd5 as KeyInit>::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return [0; 16],
    };
    for p in parts {
        mac.update(p);
    }
    let out = mac.finalize().into_bytes();
    let mut r = [0u8; 16];
    r.copy_from_slice(&out);
    r
}

/// NTOWFv2 (MS-NLMP 3.3.2).
pub fn ntowf_v2(password: &str, user: &str, domain: &str) -> [u8; 16] {
    use md4::Digest;
    let pw: Vec<u8> = password
        .encode_utf16()
        .flat_map(|c| c.to_le_bytes())
        .collect();
    let nt_hash = md4::Md4::digest(&pw);
    let ud: Vec<u8> = format!("{}{}", user.to_uppercase(), domain)
        .encode_utf16()
        .flat_map(|c| c.to_le_bytes())
        .collect();
    hmac_md5(&nt_hash, &[&ud])
}

/// Checks `NTProofStr = HMAC_MD5(NTOWFv2, ServerChallenge ‖ temp)`.
pub fn verify_ntlmv2(msg: &AuthenticateFields, password: &str, server_challenge: &[u8; 8]) -> bool {
    let key = ntowf_v2(password, &msg.user, &msg.domain);
    let (proof, temp) = msg.nt_response.split_at(16);
    let expect = hmac_md5(&key, &[server_challenge, temp]);
    // constant-time comparison
    expect
        .iter()
        .zip(proof)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

/// Buffer flags of the stub: sealed at privacy, signed only at integrity.
fn stub_flags(level: AuthLevel) -> SecurityBufferFlags {
    if level == AuthLevel::Privacy {
        SecurityBufferFlags::NONE
    } else {
        SecurityBufferFlags::SECBUFFER_READONLY_WITH_CHECKSUM
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct One;
    impl CredentialStore for One {
        fn password(&self, d: &str, u: &str) -> Option<String> {
            (d.eq_ignore_ascii_case("CORP") && u.eq_ignore_ascii_case("alice"))
                .then(|| "pw".to_owned())
        }
        fn accounts(&self) -> Vec<Credentials> {
            vec![Credentials {
                domain: "CORP".into(),
                username: "alice".into(),
                password: "pw".into(),
            }]
        }
    }

    fn client(method: AuthMethod, pw: &str) -> ClientContext {
        let a = ClientAuth {
            method,
            level: AuthLevel::Privacy,
            credentials: Credentials {
                domain: "CORP".into(),
                username: "alice".into(),
                password: pw.into(),
            },
            spn: None,
            kdc: None,
            keytab: None,
        };
        ClientContext::new(&a, None).unwrap()
    }

    #[test]
    fn ntowf_v2_ms_nlmp_vector() {
        // MS-NLMP 4.2.4.1.1
        let expect = [
            0x0c, 0x86, 0x8a, 0x40, 0x3b, 0xfd, 0x7a, 0x93, 0xa3, 0x00, 0x1e, 0xf2, 0x2e, 0xf0,
            0x2e, 0x3f,
        ];
        assert_eq!(ntowf_v2("Password", "User", "Domain"), expect);
    }

    fn ntlm_pair(level: AuthLevel, pw: &str) -> Result<(Protection, Protection), AuthError> {
        let a = ClientAuth {
            method: AuthMethod::Ntlm,
            level,
            credentials: Credentials {
                domain: "CORP".into(),
                username: "alice".into(),
                password: pw.into(),
            },
            spn: None,
            kdc: None,
            keytab: None,
        };
        let mut c = ClientContext::new(&a, None)?;
        let t1 = c.step(None)?;
        let (srv, t2) = ServerNtlm::accept_negotiate(&t1.token, level, 7)?;
        let t3 = c.step(Some(&t2))?;
        let (user, sp) = srv.accept_authenticate(&t3.token, &One)?;
        assert_eq!(user.user, "alice");
        Ok((c.into_protection(7)?, sp))
    }

    fn request(level: AuthLevel, sig: usize, stub: &[u8]) -> (Vec<u8>, crate::pdu::Layout) {
        use crate::pdu::{auth_pad, AuthVerifier, Body, Pdu, Request};
        Pdu {
            flags: 3,
            call_id: 2,
            body: Body::Request(Request {
                alloc_hint: 0,
                context_id: 0,
                opnum: 0,
                object: None,
                stub: stub.to_vec(),
            }),
            auth: Some(AuthVerifier {
                auth_type: RPC_C_AUTHN_WINNT,
                auth_level: level.to_wire(),
                pad_len: auth_pad(stub.len()),
                context_id: 7,
                value: vec![0; sig],
            }),
        }
        .encode_with_layout()
        .unwrap()
    }

    #[test]
    fn ntlm_privacy_seals_and_detects_tampering() {
        let (mut cp, mut sp) = ntlm_pair(AuthLevel::Privacy, "pw").unwrap();
        let stub = b"a secret certificate request....".to_vec();
        let (mut pdu, lay) = request(AuthLevel::Privacy, cp.signature_len(), &stub);
        cp.protect(&mut pdu, lay).unwrap();
        assert_ne!(
            &pdu[lay.stub_start..lay.stub_start + stub.len()],
            &stub[..],
            "stub is sealed"
        );
        let mut ok = pdu.clone();
        sp.unprotect(&mut ok, lay).unwrap();
        assert_eq!(&ok[lay.stub_start..lay.stub_start + stub.len()], &stub[..]);
        // replay of the same PDU: sequence number mismatch
        let mut replay = pdu.clone();
        assert!(matches!(
            sp.unprotect(&mut replay, lay),
            Err(AuthError::Integrity(_))
        ));
        // header tampering (opnum) is detected: the header is signed
        let (mut pdu2, lay2) = request(AuthLevel::Privacy, cp.signature_len(), &stub);
        cp.protect(&mut pdu2, lay2).unwrap();
        pdu2[22] ^= 1;
        assert!(matches!(
            sp.unprotect(&mut pdu2, lay2),
            Err(AuthError::Integrity(_))
        ));
    }

    #[test]
    fn ntlm_integrity_signs_in_clear() {
        let (mut cp, mut sp) = ntlm_pair(AuthLevel::Integrity, "pw").unwrap();
        let stub = b"visible".to_vec();
        let (mut pdu, lay) = request(AuthLevel::Integrity, cp.signature_len(), &stub);
        cp.protect(&mut pdu, lay).unwrap();
        assert_eq!(
            &pdu[lay.stub_start..lay.stub_start + stub.len()],
            &stub[..],
            "not sealed"
        );
        sp.unprotect(&mut pdu, lay).unwrap();
        let (mut bad, lay2) = request(AuthLevel::Integrity, cp.signature_len(), &stub);
        cp.protect(&mut bad, lay2).unwrap();
        bad[lay2.stub_start] ^= 0x20;
        assert!(matches!(
            sp.unprotect(&mut bad, lay2),
            Err(AuthError::Integrity(_))
        ));
        // level mismatch in the trailer is refused
        let (mut p3, l3) = request(AuthLevel::Privacy, cp.signature_len(), &stub);
        assert!(sp.unprotect(&mut p3, l3).is_err());
    }

    /// A KDC transport that never reaches a KDC (no SRV record, all down).
    struct NoKdc;

    impl KdcTransport for NoKdc {
        fn send(&self, url: &str, _data: &[u8]) -> Result<Vec<u8>, String> {
            Err(format!("no KDC for {url}"))
        }
    }

    /// `negotiate` with a KDC to be discovered: when no KDC answers, the
    /// first token is NTLM's (sspi falls back on NoAuthenticatingAuthority);
    /// `kerberos` with the same transport fails with the KDC named.
    #[test]
    fn negotiate_falls_back_to_ntlm_when_no_kdc_answers() {
        let auth = |method| ClientAuth {
            method,
            level: AuthLevel::Privacy,
            credentials: Credentials {
                domain: "CORP.TEST".into(),
                username: "alice".into(),
                password: "Passw0rd!".into(),
            },
            spn: Some("host/ca.corp.test".into()),
            kdc: Some("tcp://_kerberos._tcp.corp.test".into()),
            keytab: None,
        };
        let transport = || Some(std::sync::Arc::new(NoKdc) as std::sync::Arc<dyn KdcTransport>);
        let mut c = ClientContext::new(&auth(AuthMethod::Negotiate), transport()).unwrap();
        let first = c.step(None).unwrap();
        assert!(
            find_ntlm(&first.token, 1).is_some(),
            "no NTLM NEGOTIATE_MESSAGE in the first token"
        );
        let mut k = ClientContext::new(&auth(AuthMethod::Kerberos), transport()).unwrap();
        let Err(e) = k.step(None) else {
            panic!("Kerberos without a KDC must fail")
        };
        assert!(e.to_string().contains("no KDC for"), "{e}");
    }

    #[test]
    fn ntlm_wrong_password_and_unknown_user() {
        assert!(
            matches!(ntlm_pair(AuthLevel::Privacy, "bad"), Err(AuthError::LogonDenied(m)) if m.contains("wrong password"))
        );
    }

    #[test]
    fn authenticate_parser_rejects_garbage() {
        assert!(parse_authenticate(b"NTLMSSP\0").is_err());
        let mut m = b"NTLMSSP\0\x03\0\0\0".to_vec();
        m.resize(64, 0);
        m[60] = 1;
        assert!(
            parse_authenticate(&m).is_err(),
            "empty NT response (NTLMv1/anonymous) refused"
        );
    }

    #[test]
    fn spnego_handshake() {
        let mut c = client(AuthMethod::NegotiateNtlm, "pw");
        let t1 = c.step(None).unwrap();
        let (srv, t2) =
            ServerNegotiate::accept_init(&t1.token, AuthLevel::Privacy, 0, &One).unwrap();
        let t3 = c.step(Some(&t2)).unwrap();
        let (t4, done) = srv.accept_continue(&t3.token, &One, true).unwrap();
        let (user, _prot) = done.map_err(|_| "not done").unwrap();
        assert_eq!(user.user, "alice");
        let t5 = c.step(Some(&t4)).unwrap();
        assert!(t5.complete);
        assert!(t5.token.is_empty());
    }
}
