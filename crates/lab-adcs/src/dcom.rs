//! The CA's DCOM interfaces: MS-CSRA `ICertAdminD` / `ICertAdminD2`
//! (`CCertAdminD`) and MS-WCCE `ICertRequestD` / `ICertRequestD2`
//! (`CCertRequestD`), served on the object exporter's port and activated
//! through `IRemoteSCMActivator` on the endpoint mapper's port.
//!
//! Admin calls need the account's `manager: true` (the CA permission "Issue
//! and Manage Certificates"); without it they answer `E_ACCESSDENIED` as
//! the call's HRESULT, as ADCS does.

use std::sync::Arc;

use msrpc::auth::AuthLevel;
use msrpc::csra::{
    self, decode_request_ref, encode_property_reply, encode_resubmit_reply, format_templates,
    EnrollReply, EnrollRequest, GetCaProperty, Revoke, CLSID_CCERTADMIND, CLSID_CCERTREQUESTD,
    CR_PROP_TEMPLATES, IID_ICERTADMIND, IID_ICERTADMIND2, IID_ICERTREQUESTD, IID_ICERTREQUESTD2,
};
use msrpc::dcom::server::{hresult_reply, DcomClass};
use msrpc::dcom::{iface, E_NOTIMPL};
use msrpc::icpr::{
    self, encode_attributes, CertServerRequest, CR_DISP_ISSUED, E_ACCESSDENIED, E_INVALIDARG,
};
use msrpc::server::{CallContext, RpcService};
use msrpc::uuid::SyntaxId;

/// What the DCOM interfaces need from the CA (implemented by
/// [`crate::service::Lab`]); failures carry the HRESULT to answer and a
/// message for the log.
pub trait CaOps: Send + Sync + 'static {
    /// The CA's common name.
    fn ca_name(&self) -> &str;
    /// Whether `DOMAIN\user` holds "Issue and Manage Certificates".
    fn is_manager(&self, domain: &str, user: &str) -> bool;
    /// Issues a pending (or denied) request.
    fn resubmit(&self, id: u32) -> Result<(), (u32, String)>;
    /// Denies a pending request.
    fn deny(&self, id: u32) -> Result<(), (u32, String)>;
    /// Revokes by serial number; returns the request id.
    fn revoke(
        &self,
        serial_hex: &str,
        reason: u32,
        effective: Option<std::time::SystemTime>,
        by: &str,
    ) -> Result<u32, (u32, String)>;
    /// (name, OID) of the templates the CA issues.
    fn templates(&self) -> Vec<(String, String)>;
    /// Serves an enrollment the way ICertPassage does.
    fn enroll(&self, req: &CertServerRequest, requester: &str) -> icpr::CertServerResponse;
}

/// The classes the lab exports and their interfaces.
pub fn classes() -> Vec<DcomClass> {
    vec![
        DcomClass {
            clsid: CLSID_CCERTADMIND,
            interfaces: vec![IID_ICERTADMIND, IID_ICERTADMIND2],
        },
        DcomClass {
            clsid: CLSID_CCERTREQUESTD,
            interfaces: vec![IID_ICERTREQUESTD, IID_ICERTREQUESTD2],
        },
    ]
}

fn who(ctx: &CallContext) -> String {
    ctx.user
        .as_ref()
        .map(|u| format!("{}\\{}", u.domain, u.user))
        .unwrap_or_default()
}

fn is_manager<L: CaOps>(lab: &L, ctx: &CallContext) -> bool {
    ctx.user
        .as_ref()
        .is_some_and(|u| lab.is_manager(&u.domain, &u.user))
}

fn authority_ok<L: CaOps>(lab: &L, authority: Option<&str>) -> bool {
    let a = authority.unwrap_or("");
    let name = a.rsplit('\\').next().unwrap_or(a);
    name.eq_ignore_ascii_case(lab.ca_name())
}

/// `ICertAdminD` (v2 = false) or `ICertAdminD2` (which includes ICertAdminD's methods).
pub struct AdminService<L> {
    lab: Arc<L>,
    level: AuthLevel,
    v2: bool,
}

impl<L: CaOps> AdminService<L> {
    /// The service for one of the two interface ids.
    pub fn new(lab: Arc<L>, level: AuthLevel, v2: bool) -> Self {
        AdminService { lab, level, v2 }
    }

    fn admin(&self, ctx: &CallContext, opnum: u16, stub: &[u8]) -> Result<Vec<u8>, u32> {
        let bad = |_| icpr::RPC_X_BAD_STUB_DATA;
        let caller = who(ctx);
        let manager = is_manager(self.lab.as_ref(), ctx);
        match opnum {
            csra::OPNUM_RESUBMIT_REQUEST => {
                let r = decode_request_ref(stub).map_err(bad)?;
                if !authority_ok(self.lab.as_ref(), r.authority.as_deref()) {
                    return Ok(encode_resubmit_reply(0, E_INVALIDARG));
                }
                if !manager {
                    tracing::info!(
                        caller,
                        id = r.request_id,
                        "resubmit refused: not a CA manager"
                    );
                    return Ok(encode_resubmit_reply(0, E_ACCESSDENIED));
                }
                Ok(match self.lab.resubmit(r.request_id) {
                    Ok(()) => {
                        tracing::info!(caller, id = r.request_id, "request resubmitted and issued");
                        encode_resubmit_reply(CR_DISP_ISSUED, 0)
                    }
                    Err((hr, e)) => {
                        tracing::info!(caller, id = r.request_id, error = %e, "resubmit failed");
                        encode_resubmit_reply(0, hr)
                    }
                })
            }
            csra::OPNUM_DENY_REQUEST => {
                let r = decode_request_ref(stub).map_err(bad)?;
                if !authority_ok(self.lab.as_ref(), r.authority.as_deref()) {
                    return Ok(hresult_reply(E_INVALIDARG));
                }
                if !manager {
                    tracing::info!(caller, id = r.request_id, "deny refused: not a CA manager");
                    return Ok(hresult_reply(E_ACCESSDENIED));
                }
                Ok(match self.lab.deny(r.request_id) {
                    Ok(()) => {
                        tracing::info!(caller, id = r.request_id, "request denied");
                        hresult_reply(0)
                    }
                    Err((hr, e)) => {
                        tracing::info!(caller, id = r.request_id, error = %e, "deny failed");
                        hresult_reply(hr)
                    }
                })
            }
            csra::OPNUM_REVOKE_CERTIFICATE => {
                let r = Revoke::decode(stub).map_err(bad)?;
                if !authority_ok(self.lab.as_ref(), r.authority.as_deref()) {
                    return Ok(hresult_reply(E_INVALIDARG));
                }
                if !manager {
                    tracing::info!(caller, "revoke refused: not a CA manager");
                    return Ok(hresult_reply(E_ACCESSDENIED));
                }
                let Some(serial) = r.serial.as_deref().filter(|s| !s.is_empty()) else {
                    return Ok(hresult_reply(E_INVALIDARG));
                };
                Ok(
                    match self.lab.revoke(
                        serial,
                        r.reason,
                        csra::from_filetime(r.filetime),
                        &caller,
                    ) {
                        Ok(id) => {
                            tracing::info!(
                                caller,
                                id,
                                serial,
                                reason = r.reason,
                                "certificate revoked"
                            );
                            hresult_reply(0)
                        }
                        Err((hr, e)) => {
                            tracing::info!(caller, serial, error = %e, "revoke failed");
                            hresult_reply(hr)
                        }
                    },
                )
            }
            csra::OPNUM_ADMIN2_GET_CA_PROPERTY if self.v2 => {
                let g = GetCaProperty::decode(stub).map_err(bad)?;
                if !authority_ok(self.lab.as_ref(), g.authority.as_deref()) {
                    return Ok(encode_property_reply(&[], E_INVALIDARG));
                }
                if !manager {
                    return Ok(encode_property_reply(&[], E_ACCESSDENIED));
                }
                Ok(property(self.lab.as_ref(), &g))
            }
            o if o < 3 => Err(icpr::NCA_S_OP_RNG_ERROR),
            o if o <= 30 || (self.v2 && o <= 49) => Ok(hresult_reply(E_NOTIMPL)),
            _ => Err(icpr::NCA_S_OP_RNG_ERROR),
        }
    }
}

fn property<L: CaOps>(lab: &L, g: &GetCaProperty) -> Vec<u8> {
    match g.prop_id {
        CR_PROP_TEMPLATES => encode_property_reply(&format_templates(&lab.templates()), 0),
        csra::CR_PROP_CANAME => encode_property_reply(&icpr::string_to_utf16le(lab.ca_name()), 0),
        _ => encode_property_reply(&[], E_INVALIDARG),
    }
}

impl<L: CaOps> RpcService for AdminService<L> {
    fn interface(&self) -> SyntaxId {
        iface(if self.v2 {
            IID_ICERTADMIND2
        } else {
            IID_ICERTADMIND
        })
    }

    fn required_level(&self) -> AuthLevel {
        self.level
    }

    fn call(&self, ctx: &CallContext, opnum: u16, stub: &[u8]) -> Result<Vec<u8>, u32> {
        self.admin(ctx, opnum, stub)
    }
}

/// `ICertRequestD` (v2 = false) or `ICertRequestD2`.
pub struct RequestService<L> {
    lab: Arc<L>,
    level: AuthLevel,
    v2: bool,
}

impl<L: CaOps> RequestService<L> {
    /// The service for one of the two interface ids.
    pub fn new(lab: Arc<L>, level: AuthLevel, v2: bool) -> Self {
        RequestService { lab, level, v2 }
    }

    fn enroll(&self, ctx: &CallContext, req: &EnrollRequest, v2: bool) -> EnrollReply {
        if req.serial.is_some() && req.request_id == 0 {
            // Retrieval by serial number is not implemented by the lab.
            return EnrollReply {
                status: E_NOTIMPL,
                ..Default::default()
            };
        }
        let attrs: Vec<(String, String)> = req.attribute_pairs();
        let pairs: Vec<(&str, &str)> = attrs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let icpr_req = CertServerRequest {
            flags: req.flags,
            authority: req.authority.clone(),
            request_id: req.request_id,
            attributes: if pairs.is_empty() {
                Vec::new()
            } else {
                encode_attributes(&pairs)
            },
            request: req.request.clone(),
        };
        let r = self.lab.enroll(&icpr_req, &who(ctx));
        tracing::debug!(
            v2,
            id = r.request_id,
            disposition = r.disposition,
            "DCOM enrollment"
        );
        EnrollReply {
            request_id: r.request_id,
            disposition: r.disposition,
            chain: r.cert_chain,
            encoded_cert: r.encoded_cert,
            message: r.disposition_message,
            status: r.status,
        }
    }
}

impl<L: CaOps> RpcService for RequestService<L> {
    fn interface(&self) -> SyntaxId {
        iface(if self.v2 {
            IID_ICERTREQUESTD2
        } else {
            IID_ICERTREQUESTD
        })
    }

    fn required_level(&self) -> AuthLevel {
        self.level
    }

    fn call(&self, ctx: &CallContext, opnum: u16, stub: &[u8]) -> Result<Vec<u8>, u32> {
        let bad = |_| icpr::RPC_X_BAD_STUB_DATA;
        match opnum {
            csra::OPNUM_REQUEST => {
                let req = EnrollRequest::decode(stub, false).map_err(bad)?;
                Ok(self.enroll(ctx, &req, false).encode())
            }
            csra::OPNUM_REQUEST2 if self.v2 => {
                let req = EnrollRequest::decode(stub, true).map_err(bad)?;
                Ok(self.enroll(ctx, &req, true).encode())
            }
            csra::OPNUM_REQUEST2_GET_CA_PROPERTY if self.v2 => {
                let g = GetCaProperty::decode(stub).map_err(bad)?;
                if !authority_ok(self.lab.as_ref(), g.authority.as_deref()) {
                    return Ok(encode_property_reply(&[], E_INVALIDARG));
                }
                Ok(property(self.lab.as_ref(), &g))
            }
            o if o < 3 => Err(icpr::NCA_S_OP_RNG_ERROR),
            o if o <= 5 || (self.v2 && o <= 9) => Ok(hresult_reply(E_NOTIMPL)),
            _ => Err(icpr::NCA_S_OP_RNG_ERROR),
        }
    }
}
