//! The CA's DCOM interfaces, in process:
//!
//! - MS-CSRA `ICertAdminD` (`CCertAdminD`): `RevokeCertificate`,
//!   `ResubmitRequest` (approve a pending request), `DenyRequest`;
//! - MS-CSRA `ICertAdminD2::GetCAProperty` (`CR_PROP_TEMPLATES`);
//! - MS-WCCE `ICertRequestD2::Request2` (`CCertRequestD`): enrollment when
//!   the CA does not offer ICertPassage.
//!
//! Each operation activates its object through the endpoint mapper's port
//! (135), calls it on the CA's dynamic DCOM port with the target's
//! credentials at its authentication level, and releases it. HRESULTs that
//! an operator can act on are explained (see [`explain_admin`]).

use std::time::SystemTime;

use msrpc::csra::{
    self, EnrollReply, EnrollRequest, GetCaProperty, Revoke, CLSID_CCERTADMIND,
    CLSID_CCERTREQUESTD, CR_PROP_TEMPLATES, IID_ICERTADMIND, IID_ICERTADMIND2, IID_ICERTREQUESTD2,
    PROPTYPE_STRING,
};
use msrpc::dcom::client::{activate, DcomObject};
use msrpc::dcom::orpc::OrpcThis;
use msrpc::icpr::{self, explain, Disposition, E_ACCESSDENIED};
use msrpc::uuid::Uuid;
use msrpc::{ClientAuth, ClientOptions, IcprError, IcprReply, RpcError};

use crate::target::PROBE_REQUEST_ID;
use crate::{AdcsTarget, Error};

/// `HRESULT_FROM_WIN32(ERROR_FILE_NOT_FOUND)`: no certificate with this serial.
pub const ERROR_FILE_NOT_FOUND_HR: u32 = 0x8007_0002;

/// Symbol and an actionable explanation of an HRESULT returned by an
/// administrative call; falls back to [`explain`].
pub fn explain_admin(op: &str, code: u32) -> (&'static str, &'static str) {
    match code {
        E_ACCESSDENIED if op.starts_with("ICertAdminD") => (
            "E_ACCESSDENIED",
            "the service account lacks the CA permission \"Issue and Manage Certificates\" (CA console → CA properties → Security), or the CA's certificate manager restrictions exclude this template or requester; grant it to revoke, approve or deny",
        ),
        E_ACCESSDENIED if op.starts_with("RemoteCreateInstance") => (
            "E_ACCESSDENIED",
            "DCOM activation refused: the service account needs Remote Activation on the CA (membership of the CA server's \"Certificate Service DCOM Access\" group, which Authenticated Users normally have)",
        ),
        ERROR_FILE_NOT_FOUND_HR => (
            "ERROR_FILE_NOT_FOUND",
            "the CA has no certificate with this serial number: check it (hexadecimal, as in the certificate) and that this CA issued it",
        ),
        0x8004_0154 => (
            "REGDB_E_CLASSNOTREG",
            "the host does not register the Certificate Services DCOM classes: is this the CA server, and is Certificate Services running?",
        ),
        0x8000_4002 => (
            "E_NOINTERFACE",
            "the CA does not offer this DCOM interface (Windows Server 2003 or older lacks ICertAdminD2/ICertRequestD2)",
        ),
        icpr::CERTSRV_E_BAD_REQUESTSTATUS => (
            "CERTSRV_E_BAD_REQUESTSTATUS",
            "the request is not in a state that allows this (only pending requests can be approved or denied)",
        ),
        _ => explain(code),
    }
}

/// Normalises a serial number for `RevokeCertificate`: hexadecimal digits
/// (colons and spaces allowed in the input), lower case, even length.
pub fn serial_for_ca(serial_hex: &str) -> Result<String, Error> {
    let s: String = serial_hex
        .chars()
        .filter(|c| !matches!(c, ':' | ' '))
        .collect::<String>()
        .to_ascii_lowercase();
    let s = s.strip_prefix("0x").unwrap_or(&s).to_owned();
    if s.is_empty() || s.len() > csra::MAX_SERIAL || !s.chars().all(|c| c.is_ascii_hexdigit()) {
        return Err(Error::InvalidArgument(format!(
            "serial number {serial_hex:?} is not hexadecimal"
        )));
    }
    Ok(if s.len() % 2 == 1 { format!("0{s}") } else { s })
}

fn exchange_error(t: &AdcsTarget, e: RpcError) -> Error {
    match e {
        RpcError::Hresult { op, status } => {
            let (symbol, explanation) = explain_admin(op, status);
            Error::AdminRefused {
                ca_name: t.ca_name.clone(),
                op,
                hresult: status,
                symbol,
                explanation,
            }
        }
        other => Error::Exchange {
            ca_name: t.ca_name.clone(),
            host: t.host.clone(),
            source: Box::new(IcprError::from(other)),
            hint: None,
        },
    }
}

async fn object(
    t: &AdcsTarget,
    auth: &ClientAuth,
    opts: &ClientOptions,
    clsid: Uuid,
    iid: Uuid,
) -> Result<DcomObject, RpcError> {
    activate(&t.host, t.endpoint_mapper_port, clsid, iid, auth, opts).await
}

async fn release(o: DcomObject) {
    if let Err(e) = o.release().await {
        tracing::debug!(error = %e, "RemRelease failed (the CA collects the reference itself)");
    }
}

/// One call on a fresh object: activate, call `opnum`, release.
async fn call_once(
    t: &AdcsTarget,
    auth: &ClientAuth,
    opts: &ClientOptions,
    clsid: Uuid,
    iid: Uuid,
    opnum: u16,
    stub: impl FnOnce(&OrpcThis) -> Vec<u8>,
) -> Result<Vec<u8>, RpcError> {
    let mut o = object(t, auth, opts, clsid, iid).await?;
    let this = OrpcThis::new();
    // The stub encoders write ORPCTHIS themselves: hand them a fresh one.
    let mut w = msrpc::ndr::NdrWriter::new();
    w.raw(&stub(&this));
    let r = o.call(opnum, w).await;
    release(o).await;
    r
}

/// `ICertRequestD2::Request2` (enrollment over DCOM).
pub async fn request2(
    t: &AdcsTarget,
    auth: &ClientAuth,
    opts: &ClientOptions,
    req: &EnrollRequest,
) -> Result<EnrollReply, RpcError> {
    let stub = call_once(
        t,
        auth,
        opts,
        CLSID_CCERTREQUESTD,
        IID_ICERTREQUESTD2,
        csra::OPNUM_REQUEST2,
        |this| req.encode(this, true),
    )
    .await?;
    Ok(EnrollReply::decode(&stub)?)
}

/// Interprets a `Request2` reply the way [`msrpc::IcprClient`] interprets a
/// `CertServerRequest` reply (same dispositions, same errors).
pub fn reply_to_icpr(r: EnrollReply) -> Result<IcprReply, IcprError> {
    let message = icpr::utf16le_to_string(&r.message);
    if r.status != 0 {
        let (symbol, explanation) = explain(r.status);
        return Err(IcprError::Denied {
            request_id: r.request_id,
            hresult: r.status,
            symbol,
            explanation,
            ca_message: message,
        });
    }
    match Disposition::from_wire(r.disposition) {
        Disposition::Issued if !r.encoded_cert.is_empty() => Ok(IcprReply {
            request_id: r.request_id,
            disposition: Disposition::Issued,
            message,
            cert_der: Some(r.encoded_cert),
            chain_cms: (!r.chain.is_empty()).then_some(r.chain),
        }),
        Disposition::Issued => Err(IcprError::Rpc(RpcError::Protocol(
            "issued without a certificate".into(),
        ))),
        Disposition::UnderSubmission => Ok(IcprReply {
            request_id: r.request_id,
            disposition: Disposition::UnderSubmission,
            message,
            cert_der: None,
            chain_cms: None,
        }),
        Disposition::Failed(code) => {
            let (symbol, explanation) = explain(code);
            Err(IcprError::Denied {
                request_id: r.request_id,
                hresult: code,
                symbol,
                explanation,
                ca_message: message,
            })
        }
    }
}

/// What `adcs check` learns about the service account's management rights.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManageVerdict {
    /// The CA accepted an administrative call (a deny of a request id no CA
    /// holds, answered with the given HRESULT rather than `E_ACCESSDENIED`):
    /// the account holds "Issue and Manage Certificates", unless manager
    /// restrictions limit it to some templates.
    CanManage(u32),
    /// The CA answered `E_ACCESSDENIED`.
    Denied,
}

/// MS-CSRA client for one CA.
pub struct CaAdmin {
    t: AdcsTarget,
    auth: ClientAuth,
    opts: ClientOptions,
}

impl CaAdmin {
    /// Prepares the client (no I/O).
    pub fn new(t: &AdcsTarget) -> Self {
        CaAdmin {
            t: t.clone(),
            auth: t.client_auth(),
            opts: t.client_options(),
        }
    }

    async fn admin_call(
        &self,
        iid: Uuid,
        opnum: u16,
        stub: impl FnOnce(&OrpcThis) -> Vec<u8>,
    ) -> Result<Vec<u8>, Error> {
        call_once(
            &self.t,
            &self.auth,
            &self.opts,
            CLSID_CCERTADMIND,
            iid,
            opnum,
            stub,
        )
        .await
        .map_err(|e| exchange_error(&self.t, e))
    }

    fn refused(&self, op: &'static str, hresult: u32) -> Error {
        let (symbol, explanation) = explain_admin(op, hresult);
        Error::AdminRefused {
            ca_name: self.t.ca_name.clone(),
            op,
            hresult,
            symbol,
            explanation,
        }
    }

    fn malformed(&self, e: msrpc::ndr::NdrError) -> Error {
        exchange_error(&self.t, RpcError::Ndr(e))
    }

    /// `ICertAdminD::RevokeCertificate`: revokes the certificate with
    /// `serial_hex` for RFC 5280 `reason`, effective `at`.
    pub async fn revoke(&self, serial_hex: &str, reason: u32, at: SystemTime) -> Result<(), Error> {
        let serial = serial_for_ca(serial_hex)?;
        let req = Revoke {
            authority: Some(self.t.ca.clone()),
            serial: Some(serial),
            reason,
            filetime: csra::filetime(at),
        };
        let stub = self
            .admin_call(IID_ICERTADMIND, csra::OPNUM_REVOKE_CERTIFICATE, |this| {
                req.encode(this)
            })
            .await?;
        match csra::decode_hresult_reply(&stub).map_err(|e| self.malformed(e))? {
            0 => Ok(()),
            hr => Err(self.refused("ICertAdminD::RevokeCertificate", hr)),
        }
    }

    /// `ICertAdminD::ResubmitRequest`: approves a pending request; returns
    /// the new disposition (`CR_DISP_ISSUED` = 3 when issued).
    pub async fn resubmit(&self, request_id: u32) -> Result<u32, Error> {
        let ca = self.t.ca.clone();
        let stub = self
            .admin_call(IID_ICERTADMIND, csra::OPNUM_RESUBMIT_REQUEST, |this| {
                csra::encode_request_ref(this, &ca, request_id)
            })
            .await?;
        match csra::decode_resubmit_reply(&stub).map_err(|e| self.malformed(e))? {
            (d, 0) => Ok(d),
            (_, hr) => Err(self.refused("ICertAdminD::ResubmitRequest", hr)),
        }
    }

    /// `ICertAdminD::DenyRequest`: denies a pending request.
    pub async fn deny(&self, request_id: u32) -> Result<(), Error> {
        match self.deny_raw(request_id).await? {
            0 => Ok(()),
            hr => Err(self.refused("ICertAdminD::DenyRequest", hr)),
        }
    }

    async fn deny_raw(&self, request_id: u32) -> Result<u32, Error> {
        let ca = self.t.ca.clone();
        let stub = self
            .admin_call(IID_ICERTADMIND, csra::OPNUM_DENY_REQUEST, |this| {
                csra::encode_request_ref(this, &ca, request_id)
            })
            .await?;
        csra::decode_hresult_reply(&stub).map_err(|e| self.malformed(e))
    }

    /// `ICertAdminD2::GetCAProperty(CR_PROP_TEMPLATES)`: the templates the
    /// CA issues, as (name, OID) pairs.
    pub async fn templates(&self) -> Result<Vec<(String, String)>, Error> {
        let req = GetCaProperty {
            authority: Some(self.t.ca.clone()),
            prop_id: CR_PROP_TEMPLATES,
            prop_index: 0,
            prop_type: PROPTYPE_STRING,
        };
        let stub = self
            .admin_call(
                IID_ICERTADMIND2,
                csra::OPNUM_ADMIN2_GET_CA_PROPERTY,
                |this| req.encode(this),
            )
            .await?;
        match csra::decode_property_reply(&stub).map_err(|e| self.malformed(e))? {
            (v, 0) => Ok(csra::parse_templates(&v)),
            (_, hr) => Err(self.refused("ICertAdminD2::GetCAProperty", hr)),
        }
    }

    /// Whether the service account may revoke, approve and deny: denies
    /// request [`PROBE_REQUEST_ID`], which no CA holds, so nothing changes;
    /// the CA checks the caller's rights before looking the request up.
    pub async fn management_check(&self) -> Result<ManageVerdict, Error> {
        match self.deny_raw(PROBE_REQUEST_ID).await? {
            E_ACCESSDENIED => Ok(ManageVerdict::Denied),
            hr => Ok(ManageVerdict::CanManage(hr)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_normalised_or_refused() {
        assert_eq!(serial_for_ca("01:AB:cd").unwrap(), "01abcd");
        assert_eq!(serial_for_ca("0x1abcd").unwrap(), "01abcd");
        assert!(serial_for_ca("").is_err());
        assert!(serial_for_ca("12g4").is_err());
    }

    #[test]
    fn access_denied_names_the_permission() {
        let (s, e) = explain_admin("ICertAdminD::RevokeCertificate", E_ACCESSDENIED);
        assert_eq!(s, "E_ACCESSDENIED");
        assert!(e.contains("Issue and Manage Certificates"));
        assert!(explain_admin("RemoteCreateInstance", E_ACCESSDENIED)
            .1
            .contains("DCOM"));
    }
}
