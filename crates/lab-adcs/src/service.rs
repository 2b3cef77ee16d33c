//! The ICertPassage service and the listeners (endpoint mapper + ICPR).

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use msrpc::auth::{AuthLevel, CredentialStore};
use msrpc::dcom::server::{Exporter, OxidResolver, RemUnknown, ScmActivator};
use msrpc::icpr::{
    self, decode_attributes, string_to_utf16le, CertServerRequest, CertServerResponse,
    CERTSRV_E_NO_REQUEST, CERTSRV_E_UNSUPPORTED_CERT_TYPE, CR_DISP_ISSUED,
    CR_DISP_UNDER_SUBMISSION, E_INVALIDARG, ICPR_INTERFACE,
};
use msrpc::server::{serve, CallContext, EndpointMapper, RpcService, ServerConfig};

use crate::dcom::{AdminService, RequestService};
use tokio::net::TcpListener;
use tokio::task::JoinSet;

use crate::ca::{certs_only_pkcs7, Ca, CaError, CsrRefusal, IssueError};
use crate::config::{Config, Level, Policy, User};
use crate::state::{
    b64, normalize_serial, reason_name, RequestRecord, Revocation, StateError, StateFile, Status,
};

/// `CRYPT_E_ASN1_BADTAG`-style HRESULT used for unparseable requests (`CRYPT_E_ASN1_*` family).
pub const CRYPT_E_ASN1_BADTAG: u32 = 0x8009_3102;
/// HRESULT recorded by `lab-adcs deny` unless another is given.
pub const DENIED_BY_MANAGER: u32 = icpr::E_ACCESSDENIED;

/// Lab errors.
#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// CA.
    #[error(transparent)]
    Ca(#[from] CaError),
    /// State file.
    #[error(transparent)]
    State(#[from] StateError),
    /// Unknown request or wrong status.
    #[error("{0}")]
    Request(String),
    /// No such request id.
    #[error("no request {0}")]
    NoRequest(u32),
    /// The request is not in a state that allows the operation.
    #[error("request {id} is {status:?}, not {wanted}")]
    BadStatus {
        /// Request id.
        id: u32,
        /// Its status.
        status: Status,
        /// What the operation needs.
        wanted: &'static str,
    },
    /// No issued certificate has this serial number.
    #[error("no certificate with serial number {0}")]
    NoCertificate(String),
    /// The arguments are invalid (e.g. an unsupported reason code).
    #[error("{0}")]
    Invalid(String),
}

impl LabError {
    /// The HRESULT a Windows CA answers for this failure.
    pub fn hresult(&self) -> u32 {
        match self {
            LabError::NoRequest(_) => CERTSRV_E_NO_REQUEST,
            LabError::BadStatus { .. } => icpr::CERTSRV_E_BAD_REQUESTSTATUS,
            LabError::NoCertificate(_) => ERROR_FILE_NOT_FOUND_HR,
            LabError::Invalid(_) => E_INVALIDARG,
            LabError::Ca(_) | LabError::State(_) | LabError::Request(_) => E_INVALIDARG,
        }
    }
}

/// `HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND)`: what `certutil -revoke` reports
/// for an unknown serial number.
pub const ERROR_FILE_NOT_FOUND_HR: u32 = 0x8007_0002;

/// Accounts from the configuration.
#[derive(Debug, Clone)]
pub struct Users(pub Vec<User>, pub Option<Arc<msrpc::keytab::Keytab>>);

impl CredentialStore for Users {
    fn password(&self, domain: &str, user: &str) -> Option<String> {
        let first_label = domain.split('.').next().unwrap_or("");
        self.0
            .iter()
            .find(|u| {
                u.name.eq_ignore_ascii_case(user)
                    && (domain.is_empty()
                        || u.domain.eq_ignore_ascii_case(domain)
                        || u.domain.eq_ignore_ascii_case(first_label))
            })
            .map(|u| u.password.clone())
    }

    fn accounts(&self) -> Vec<msrpc::auth::Credentials> {
        self.0
            .iter()
            .map(|u| msrpc::auth::Credentials {
                domain: u.domain.clone(),
                username: u.name.clone(),
                password: u.password.clone(),
            })
            .collect()
    }

    fn kerberos_keys(&self) -> Option<Arc<msrpc::keytab::Keytab>> {
        self.1.clone()
    }
}

/// The lab CA: configuration, CA key, request database.
pub struct Lab {
    cfg: Config,
    ca: Ca,
    state: StateFile,
    lock: Mutex<()>,
}

impl std::fmt::Debug for Lab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Lab")
            .field("ca", &self.cfg.ca.name)
            .finish()
    }
}

impl Lab {
    /// Opens (creating the CA on first use).
    pub fn open(cfg: Config) -> Result<Lab, LabError> {
        let dir = cfg.state_dir();
        let ca = Ca::load_or_create(&dir, &cfg.ca.name)?;
        Ok(Lab {
            state: StateFile::new(&dir),
            ca,
            cfg,
            lock: Mutex::new(()),
        })
    }

    /// Configuration.
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The CA.
    pub fn ca(&self) -> &Ca {
        &self.ca
    }

    /// State file handle.
    pub fn state(&self) -> &StateFile {
        &self.state
    }

    fn issued_response(&self, rec: &RequestRecord) -> CertServerResponse {
        let cert = rec.cert_der().unwrap_or_default();
        CertServerResponse {
            request_id: rec.id,
            disposition: CR_DISP_ISSUED,
            cert_chain: certs_only_pkcs7(&[&cert, self.ca.cert_der()]),
            encoded_cert: cert,
            disposition_message: string_to_utf16le("Issued"),
            status: 0,
        }
    }

    fn response_for(&self, rec: &RequestRecord) -> CertServerResponse {
        match rec.status {
            Status::Issued => self.issued_response(rec),
            Status::Pending => CertServerResponse {
                request_id: rec.id,
                disposition: CR_DISP_UNDER_SUBMISSION,
                disposition_message: string_to_utf16le(&rec.message),
                ..Default::default()
            },
            Status::Denied => CertServerResponse {
                request_id: rec.id,
                disposition: rec.hresult.unwrap_or(icpr::E_ACCESSDENIED),
                disposition_message: string_to_utf16le(&rec.message),
                ..Default::default()
            },
        }
    }

    /// Serves one `CertServerRequest`.
    pub fn handle(&self, req: &CertServerRequest, requester: &str) -> CertServerResponse {
        let fail = |id: u32, code: u32, msg: &str| CertServerResponse {
            request_id: id,
            disposition: code,
            disposition_message: string_to_utf16le(msg),
            ..Default::default()
        };
        let authority = req.authority.as_deref().unwrap_or("");
        let ca_name = authority.rsplit('\\').next().unwrap_or(authority);
        if !ca_name.eq_ignore_ascii_case(&self.cfg.ca.name) {
            return fail(
                0,
                E_INVALIDARG,
                &format!(
                    "Unknown CA name {authority:?}; this CA is {:?}",
                    self.cfg.ca.name
                ),
            );
        }
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        if req.is_retrieval() {
            return match self
                .state
                .view(|s| s.requests.get(&req.request_id).cloned())
            {
                Ok(found) => match found {
                    Some(rec) => self.response_for(&rec),
                    None => fail(req.request_id, CERTSRV_E_NO_REQUEST, "No such request"),
                },
                Err(e) => fail(
                    req.request_id,
                    icpr::E_INVALIDARG,
                    &format!("state error: {e}"),
                ),
            };
        }
        let attrs = decode_attributes(&req.attributes).unwrap_or_default();
        let template_name = attrs
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("CertificateTemplate"))
            .map(|(_, v)| v.clone())
            .unwrap_or_default();
        let template = self.cfg.template(&template_name).cloned();
        let csr_b64 = b64(&req.request);
        let outcome: Result<RequestRecord, StateError> = self
            .state
            .update(|s| -> Result<RequestRecord, std::convert::Infallible> {
            s.last_id += 1;
            let id = s.last_id;
            let mut rec = RequestRecord {
                id,
                template: template_name.clone(),
                requester: requester.to_owned(),
                status: Status::Denied,
                csr: csr_b64.clone(),
                cert: None,
                hresult: None,
                message: String::new(),
                revocation: None,
            };
            let deny = |rec: &mut RequestRecord, code: u32, msg: String| {
                rec.status = Status::Denied;
                rec.hresult = Some(code);
                rec.message = msg;
            };
            match &template {
                None => deny(
                    &mut rec,
                    CERTSRV_E_UNSUPPORTED_CERT_TYPE,
                    format!("Denied by Policy Module: the template {template_name:?} is not supported by this CA"),
                ),
                Some(t) => match Ca::check(&req.request, t) {
                    Err(CsrRefusal::Malformed(m)) => deny(&mut rec, CRYPT_E_ASN1_BADTAG, format!("Error Parsing Request: {m}")),
                    Err(CsrRefusal::Key(m)) => deny(&mut rec, icpr::CERTSRV_E_KEY_LENGTH, format!("Denied by Policy Module: {m}")),
                    Ok(_) => match t.disposition {
                        Policy::Deny => deny(
                            &mut rec,
                            t.deny_hresult.unwrap_or(icpr::CERTSRV_E_TEMPLATE_DENIED),
                            "Denied by Policy Module".into(),
                        ),
                        Policy::Pend => {
                            rec.status = Status::Pending;
                            rec.message = "Taken Under Submission".into();
                        }
                        Policy::Issue => match self.ca.issue(&req.request, t, id) {
                            Ok(der) => {
                                rec.status = Status::Issued;
                                rec.cert = Some(b64(&der));
                                rec.message = "Issued".into();
                            }
                            Err(IssueError::Refused(r)) => deny(&mut rec, CRYPT_E_ASN1_BADTAG, r.to_string()),
                            Err(IssueError::Ca(e)) => deny(&mut rec, icpr::E_INVALIDARG, format!("CA error: {e}")),
                        },
                    },
                },
            }
            s.requests.insert(id, rec.clone());
            Ok(rec)
        })
            .map(|r| match r {
                Ok(rec) => rec,
                Err(never) => match never {},
            });
        match outcome {
            Ok(rec) => {
                tracing::info!(id = rec.id, template = %rec.template, status = ?rec.status, requester, "request");
                self.response_for(&rec)
            }
            Err(e) => fail(0, icpr::E_INVALIDARG, &format!("state error: {e}")),
        }
    }

    /// The request that issued the certificate with this serial number.
    pub fn find_by_serial(&self, serial_hex: &str) -> Result<Option<RequestRecord>, LabError> {
        let want = normalize_serial(serial_hex);
        Ok(self.state.view(|s| {
            s.requests
                .values()
                .find(|r| r.status == Status::Issued && r.serial_hex().as_deref() == Some(&want))
                .cloned()
        })?)
    }

    /// Revokes the certificate with serial number `serial_hex` (MS-CSRA
    /// `RevokeCertificate`): `reason` is an RFC 5280 code (0–6, 8–10) or
    /// 0xffffffff to release a certificate from hold; `effective` `None` = now.
    pub fn revoke(
        &self,
        serial_hex: &str,
        reason: u32,
        effective: Option<std::time::SystemTime>,
        by: &str,
    ) -> Result<RequestRecord, LabError> {
        if !matches!(reason, 0..=6 | 8..=10 | 0xffff_ffff) {
            return Err(LabError::Invalid(format!(
                "unsupported revocation reason {reason}"
            )));
        }
        let want = normalize_serial(serial_hex);
        let when = effective.unwrap_or_else(std::time::SystemTime::now);
        let secs = match when.duration_since(std::time::UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            Err(e) => -i64::try_from(e.duration().as_secs()).unwrap_or(i64::MAX),
        };
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let r = self.state.update(|s| -> Result<RequestRecord, LabError> {
            let rec = s
                .requests
                .values_mut()
                .find(|r| r.status == Status::Issued && r.serial_hex().as_deref() == Some(&want))
                .ok_or_else(|| LabError::NoCertificate(want.clone()))?;
            if reason == 0xffff_ffff {
                match &rec.revocation {
                    Some(r) if r.reason == 6 => rec.revocation = None,
                    _ => {
                        return Err(LabError::Invalid(format!(
                            "certificate {want} is not on hold"
                        )))
                    }
                }
            } else {
                if let Some(r) = &rec.revocation {
                    if r.reason != 6 {
                        // Windows lets the reason and date change; keep the lab simple and precise.
                        tracing::info!(serial = %want, old = r.reason, new = reason, "revocation updated");
                    }
                }
                rec.revocation = Some(Revocation {
                    reason,
                    effective: secs,
                    by: by.to_owned(),
                });
            }
            Ok(rec.clone())
        })?;
        r
    }

    /// The templates this CA issues as (name, OID) pairs, the way
    /// `CR_PROP_TEMPLATES` lists them (the lab's OIDs are synthetic).
    pub fn templates(&self) -> Vec<(String, String)> {
        self.cfg
            .templates
            .iter()
            .enumerate()
            .map(|(i, t)| {
                (
                    t.name.clone(),
                    format!("1.3.6.1.4.1.311.21.8.9999.{}", i + 1),
                )
            })
            .collect()
    }

    /// One-line status of a request: `issued`, `pending`, `denied` or
    /// `revoked <reason>`.
    pub fn status_line(rec: &RequestRecord) -> String {
        match (&rec.status, &rec.revocation) {
            (Status::Issued, Some(r)) => format!("revoked {}", reason_name(r.reason)),
            (Status::Issued, None) => "issued".into(),
            (Status::Pending, _) => "pending".into(),
            (Status::Denied, _) => "denied".into(),
        }
    }

    /// Issues a pending request.
    pub fn approve(&self, id: u32) -> Result<RequestRecord, LabError> {
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let r = self.state.update(|s| -> Result<RequestRecord, LabError> {
            let rec = s.requests.get_mut(&id).ok_or(LabError::NoRequest(id))?;
            if rec.status != Status::Pending && rec.status != Status::Denied {
                return Err(LabError::BadStatus {
                    id,
                    status: rec.status,
                    wanted: "pending or denied",
                });
            }
            let t = self.cfg.template(&rec.template).ok_or_else(|| {
                LabError::Request(format!("template {} no longer configured", rec.template))
            })?;
            let der = self
                .ca
                .issue(&rec.csr_der(), t, id)
                .map_err(|e| LabError::Request(e.to_string()))?;
            rec.status = Status::Issued;
            rec.cert = Some(b64(&der));
            rec.hresult = None;
            rec.message = "Issued".into();
            Ok(rec.clone())
        })?;
        r
    }

    /// Denies a pending request with `hresult`.
    pub fn deny(&self, id: u32, hresult: u32) -> Result<RequestRecord, LabError> {
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let r = self.state.update(|s| -> Result<RequestRecord, LabError> {
            let rec = s.requests.get_mut(&id).ok_or(LabError::NoRequest(id))?;
            if rec.status != Status::Pending {
                return Err(LabError::BadStatus {
                    id,
                    status: rec.status,
                    wanted: "pending",
                });
            }
            rec.status = Status::Denied;
            rec.hresult = Some(hresult);
            rec.message = "Denied by the CA administrator".into();
            Ok(rec.clone())
        })?;
        r
    }
}

impl crate::dcom::CaOps for Lab {
    fn ca_name(&self) -> &str {
        &self.cfg.ca.name
    }

    fn is_manager(&self, domain: &str, user: &str) -> bool {
        let first = domain.split('.').next().unwrap_or("");
        self.cfg.users.iter().any(|c| {
            c.manager
                && c.name.eq_ignore_ascii_case(user)
                && (c.domain.eq_ignore_ascii_case(domain) || c.domain.eq_ignore_ascii_case(first))
        })
    }

    fn resubmit(&self, id: u32) -> Result<(), (u32, String)> {
        self.approve(id)
            .map(|_| ())
            .map_err(|e| (e.hresult(), e.to_string()))
    }

    fn deny(&self, id: u32) -> Result<(), (u32, String)> {
        Lab::deny(self, id, DENIED_BY_MANAGER)
            .map(|_| ())
            .map_err(|e| (e.hresult(), e.to_string()))
    }

    fn revoke(
        &self,
        serial_hex: &str,
        reason: u32,
        effective: Option<std::time::SystemTime>,
        by: &str,
    ) -> Result<u32, (u32, String)> {
        Lab::revoke(self, serial_hex, reason, effective, by)
            .map(|r| r.id)
            .map_err(|e| (e.hresult(), e.to_string()))
    }

    fn templates(&self) -> Vec<(String, String)> {
        Lab::templates(self)
    }

    fn enroll(&self, req: &CertServerRequest, requester: &str) -> CertServerResponse {
        self.handle(req, requester)
    }
}

/// The ICertPassage RPC service.
pub struct IcprService {
    lab: Arc<Lab>,
    level: AuthLevel,
}

impl RpcService for IcprService {
    fn interface(&self) -> msrpc::uuid::SyntaxId {
        ICPR_INTERFACE
    }

    /// Packet integrity at least; `auth-level: privacy` is enforced per
    /// call like a CA with `IF_ENFORCEENCRYPTICERTREQUEST` does (see
    /// [`IcprService::call`]).
    fn required_level(&self) -> AuthLevel {
        AuthLevel::Integrity.min(self.level)
    }

    /// A call below the configured level gets `E_ACCESSDENIED` as the
    /// call's HRESULT, the way ADCS answers an unencrypted request when
    /// `IF_ENFORCEENCRYPTICERTREQUEST` is set, rather than an RPC fault.
    fn call(&self, ctx: &CallContext, opnum: u16, stub: &[u8]) -> Result<Vec<u8>, u32> {
        if opnum != icpr::OPNUM_CERT_SERVER_REQUEST {
            return Err(icpr::NCA_S_OP_RNG_ERROR);
        }
        let req = CertServerRequest::decode(stub).map_err(|_| icpr::RPC_X_BAD_STUB_DATA)?;
        if !self.lab.config().icpr_enabled {
            tracing::info!(peer = %ctx.peer, "ICertPassage request refused: icpr-enabled is false (IF_NORPCICERTREQUEST)");
            return Ok(CertServerResponse {
                request_id: 0,
                disposition: icpr::E_ACCESSDENIED,
                status: icpr::E_ACCESSDENIED,
                disposition_message: string_to_utf16le(
                    "Denied: the CA does not accept ICertPassage (RPC) requests",
                ),
                ..Default::default()
            }
            .encode());
        }
        if ctx.level < self.level {
            return Ok(CertServerResponse {
                request_id: req.request_id,
                status: icpr::E_ACCESSDENIED,
                disposition_message: string_to_utf16le(
                    "Denied: the CA requires encrypted (packet privacy) requests",
                ),
                ..Default::default()
            }
            .encode());
        }
        let who = ctx
            .user
            .as_ref()
            .map(|u| format!("{}\\{}", u.domain, u.user))
            .unwrap_or_default();
        Ok(self.lab.handle(&req, &who).encode())
    }
}

/// Running listeners; dropping stops them.
#[derive(Debug)]
pub struct Running {
    /// Endpoint mapper address.
    pub epm_addr: SocketAddr,
    /// ICertPassage address.
    pub icpr_addr: SocketAddr,
    /// DCOM object exporter address (ICertAdminD, ICertRequestD…).
    pub dcom_addr: SocketAddr,
    tasks: JoinSet<std::io::Result<()>>,
}

impl Running {
    /// Serves until one of the listeners fails.
    pub async fn wait(mut self) -> std::io::Result<()> {
        match self.tasks.join_next().await {
            None => Ok(()),
            Some(r) => r.map_err(|e| std::io::Error::other(e.to_string()))?,
        }
    }
}

/// Binds the listeners on `address` and starts serving: the endpoint mapper
/// port (EPM, DCOM activation, OXID resolver), ICertPassage, and the DCOM
/// object exporter (`listen.dcom-port`).
pub async fn start(
    lab: Arc<Lab>,
    address: Ipv4Addr,
    epm_port: u16,
    icpr_port: u16,
) -> std::io::Result<Running> {
    let icpr_l = TcpListener::bind((address, icpr_port)).await?;
    let icpr_addr = icpr_l.local_addr()?;
    let epm_l = TcpListener::bind((address, epm_port)).await?;
    let epm_addr = epm_l.local_addr()?;
    let level = match lab.config().auth_level {
        Level::Privacy => AuthLevel::Privacy,
        Level::Integrity => AuthLevel::Integrity,
    };
    let users: Arc<dyn CredentialStore> = Arc::new(Users(
        lab.config().users.clone(),
        lab.config().keytab.clone(),
    ));
    let icpr_cfg = ServerConfig::new(
        vec![Arc::new(IcprService {
            lab: lab.clone(),
            level,
        })],
        Some(users.clone()),
    );
    let announce = if address.is_unspecified() {
        Ipv4Addr::LOCALHOST
    } else {
        address
    };
    let dcom_l = TcpListener::bind((address, lab.config().listen.dcom_port)).await?;
    let dcom_addr = dcom_l.local_addr()?;
    let exporter = Arc::new(Exporter::new(
        crate::dcom::classes(),
        &[announce.to_string()],
        dcom_addr.port(),
        level,
    ));
    let dcom_cfg = ServerConfig::new(
        vec![
            Arc::new(AdminService::new(lab.clone(), level, false)),
            Arc::new(AdminService::new(lab.clone(), level, true)),
            Arc::new(RequestService::new(lab.clone(), level, false)),
            Arc::new(RequestService::new(lab.clone(), level, true)),
            Arc::new(RemUnknown::new(exporter.clone(), true)),
            Arc::new(RemUnknown::new(exporter.clone(), false)),
        ],
        Some(users.clone()),
    );
    let epm = EndpointMapper::new(vec![(ICPR_INTERFACE, icpr_addr.port())], announce);
    let epm_cfg = ServerConfig::new(
        vec![
            Arc::new(epm),
            Arc::new(ScmActivator(exporter.clone())),
            Arc::new(OxidResolver(exporter)),
        ],
        Some(users.clone()),
    );
    let mut tasks = JoinSet::new();
    tasks.spawn(serve(icpr_l, Arc::new(icpr_cfg)));
    tasks.spawn(serve(epm_l, Arc::new(epm_cfg)));
    tasks.spawn(serve(dcom_l, Arc::new(dcom_cfg)));
    Ok(Running {
        epm_addr,
        icpr_addr,
        dcom_addr,
        tasks,
    })
}
