//! MS-ICPR `ICertPassage` (91ae6020-9e3c-11cf-8d7c-00aa00c091be v0.0):
//! `CertServerRequest` (opnum 0) marshalling, dispositions, request
//! attributes and a language-independent mapping of CA / RPC error codes.
//!
//! ```text
//! DWORD CertServerRequest(
//!   [in] handle_t h, [in] DWORD dwFlags,
//!   [in, string, unique] const wchar_t* pwszAuthority,
//!   [in, out, ref] DWORD* pdwRequestId, [out] DWORD* pdwDisposition,
//!   [in, ref] CERTTRANSBLOB* pctbAttribs, [in, ref] CERTTRANSBLOB* pctbRequest,
//!   [out, ref] CERTTRANSBLOB* pctbCert, [out, ref] CERTTRANSBLOB* pctbEncodedCert,
//!   [out, ref] CERTTRANSBLOB* pctbDispositionMessage);
//! ```

use crate::ndr::{NdrError, NdrReader, NdrWriter, Referent};
use crate::uuid::{SyntaxId, Uuid};

/// The ICertPassage interface, v0.0.
pub const ICPR_INTERFACE: SyntaxId = SyntaxId::new(
    Uuid::from_u128(0x91ae6020_9e3c_11cf_8d7c_00aa00c091be),
    0,
    0,
);
/// `CertServerRequest` operation number.
pub const OPNUM_CERT_SERVER_REQUEST: u16 = 0;

/// `CR_IN_BINARY`: the request blob is DER.
pub const CR_IN_BINARY: u32 = 0x0000_0002;
/// `CR_IN_PKCS10`: the request is a PKCS #10 CSR.
pub const CR_IN_PKCS10: u32 = 0x0000_0100;

/// `CR_DISP_ISSUED`.
pub const CR_DISP_ISSUED: u32 = 3;
/// `CR_DISP_UNDER_SUBMISSION` (pending CA manager approval).
pub const CR_DISP_UNDER_SUBMISSION: u32 = 5;
/// `CR_DISP_DENIED`.
pub const CR_DISP_DENIED: u32 = 2;
/// `CR_DISP_ERROR`.
pub const CR_DISP_ERROR: u32 = 1;

/// Largest blob accepted from the wire (request, certificate, chain).
pub const MAX_BLOB: usize = 1 << 20;
/// Largest authority name accepted (characters).
pub const MAX_AUTHORITY: usize = 1024;

/// Decoded `CertServerRequest` in-parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertServerRequest {
    /// `dwFlags` (request type and encoding, e.g. `CR_IN_PKCS10 | CR_IN_BINARY`).
    pub flags: u32,
    /// `pwszAuthority`: the CA name (`None` for a NULL pointer).
    pub authority: Option<String>,
    /// `pdwRequestId`: 0 for a new request, the id to retrieve otherwise.
    pub request_id: u32,
    /// `pctbAttribs`: UTF-16LE `Name:Value` lines (see [`encode_attributes`]).
    pub attributes: Vec<u8>,
    /// `pctbRequest`: the DER request; empty for a retrieval.
    pub request: Vec<u8>,
}

impl CertServerRequest {
    /// A new submission of a DER PKCS #10 with a template attribute.
    pub fn submit(ca_name: &str, template: &str, csr_der: &[u8]) -> Self {
        CertServerRequest {
            flags: CR_IN_PKCS10 | CR_IN_BINARY,
            authority: Some(ca_name.to_owned()),
            request_id: 0,
            attributes: encode_attributes(&[("CertificateTemplate", template)]),
            request: csr_der.to_vec(),
        }
    }

    /// A retrieval of request `id` (empty request blob, MS-ICPR 3.2.4.1.1).
    pub fn retrieve(ca_name: &str, id: u32) -> Self {
        CertServerRequest {
            flags: 0,
            authority: Some(ca_name.to_owned()),
            request_id: id,
            attributes: Vec::new(),
            request: Vec::new(),
        }
    }

    /// True when this is a retrieval of an earlier request.
    pub fn is_retrieval(&self) -> bool {
        self.request.is_empty() && self.request_id != 0
    }

    /// Stub data.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = NdrWriter::new();
        w.u32(self.flags);
        w.pointer(self.authority.clone().map(Referent::WString));
        w.flush();
        w.u32(self.request_id);
        w.cert_trans_blob(&self.attributes);
        w.cert_trans_blob(&self.request);
        w.into_bytes()
    }

    /// Parses stub data.
    pub fn decode(stub: &[u8]) -> Result<Self, NdrError> {
        let mut r = NdrReader::new(stub);
        let flags = r.u32()?;
        let authority = if r.pointer()? != 0 {
            Some(r.conformant_varying_wstring(MAX_AUTHORITY)?)
        } else {
            None
        };
        let request_id = r.u32()?;
        let attributes = r.cert_trans_blob(MAX_BLOB)?;
        let request = r.cert_trans_blob(MAX_BLOB)?;
        Ok(CertServerRequest {
            flags,
            authority,
            request_id,
            attributes,
            request,
        })
    }
}

/// Decoded `CertServerRequest` out-parameters and return value.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct CertServerResponse {
    /// `pdwRequestId`.
    pub request_id: u32,
    /// `pdwDisposition`: `CR_DISP_*` or, on failure, an HRESULT.
    pub disposition: u32,
    /// `pctbCert`: PKCS #7 / CMS certificate chain (DER).
    pub cert_chain: Vec<u8>,
    /// `pctbEncodedCert`: the issued certificate (DER).
    pub encoded_cert: Vec<u8>,
    /// `pctbDispositionMessage`: UTF-16LE, NUL-terminated text in the CA's language.
    pub disposition_message: Vec<u8>,
    /// Return value (HRESULT; 0 when the call itself succeeded).
    pub status: u32,
}

impl CertServerResponse {
    /// Stub data.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = NdrWriter::new();
        w.u32(self.request_id);
        w.u32(self.disposition);
        w.cert_trans_blob(&self.cert_chain);
        w.cert_trans_blob(&self.encoded_cert);
        w.cert_trans_blob(&self.disposition_message);
        w.u32(self.status);
        w.into_bytes()
    }

    /// Parses stub data.
    pub fn decode(stub: &[u8]) -> Result<Self, NdrError> {
        let mut r = NdrReader::new(stub);
        let request_id = r.u32()?;
        let disposition = r.u32()?;
        let cert_chain = r.cert_trans_blob(MAX_BLOB)?;
        let encoded_cert = r.cert_trans_blob(MAX_BLOB)?;
        let disposition_message = r.cert_trans_blob(MAX_BLOB)?;
        let status = r.u32()?;
        Ok(CertServerResponse {
            request_id,
            disposition,
            cert_chain,
            encoded_cert,
            disposition_message,
            status,
        })
    }

    /// The disposition message as text (UTF-16LE, trailing NULs dropped).
    pub fn message(&self) -> String {
        utf16le_to_string(&self.disposition_message)
    }
}

/// Interpreted disposition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    /// `CR_DISP_ISSUED` (3).
    Issued,
    /// `CR_DISP_UNDER_SUBMISSION` (5): pending; retrieve later by request id.
    UnderSubmission,
    /// Anything else: denied or failed, with the HRESULT (or raw `CR_DISP_*`).
    Failed(u32),
}

impl Disposition {
    /// Interprets `pdwDisposition`.
    pub fn from_wire(v: u32) -> Self {
        match v {
            CR_DISP_ISSUED => Disposition::Issued,
            CR_DISP_UNDER_SUBMISSION => Disposition::UnderSubmission,
            other => Disposition::Failed(other),
        }
    }
}

/// Encodes request attributes as `Name:Value` lines separated by `\n`,
/// UTF-16LE with a terminating NUL (as Windows clients send them).
pub fn encode_attributes(attrs: &[(&str, &str)]) -> Vec<u8> {
    let text = attrs
        .iter()
        .map(|(k, v)| format!("{k}:{v}"))
        .collect::<Vec<_>>()
        .join("\n");
    let mut out: Vec<u8> = text.encode_utf16().flat_map(|c| c.to_le_bytes()).collect();
    out.extend_from_slice(&[0, 0]);
    out
}

/// Parses request attributes (UTF-16LE; lines separated by `\n` or `\r\n`;
/// a trailing NUL is tolerated). Names are returned as sent.
pub fn decode_attributes(b: &[u8]) -> Result<Vec<(String, String)>, NdrError> {
    if b.len() % 2 != 0 {
        return Err(NdrError::Invalid("odd-length UTF-16 attributes"));
    }
    let w: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    let text =
        String::from_utf16(&w).map_err(|_| NdrError::Invalid("attributes are not UTF-16"))?;
    let mut out = Vec::new();
    for line in text.trim_end_matches('\0').split('\n') {
        let line = line.trim_end_matches('\r');
        if line.is_empty() {
            continue;
        }
        let (k, v) = line
            .split_once(':')
            .ok_or(NdrError::Invalid("attribute without ':'"))?;
        out.push((k.trim().to_owned(), v.trim().to_owned()));
    }
    Ok(out)
}

/// Decodes UTF-16LE, dropping trailing NULs and replacing invalid units.
pub fn utf16le_to_string(b: &[u8]) -> String {
    let w: Vec<u16> = b
        .chunks_exact(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&w)
        .trim_end_matches('\0')
        .to_owned()
}

/// Encodes text as UTF-16LE with a terminating NUL.
pub fn string_to_utf16le(s: &str) -> Vec<u8> {
    let mut v: Vec<u8> = s.encode_utf16().flat_map(|c| c.to_le_bytes()).collect();
    v.extend_from_slice(&[0, 0]);
    v
}

/// `CERTSRV_E_TEMPLATE_DENIED`.
pub const CERTSRV_E_TEMPLATE_DENIED: u32 = 0x8009_4012;
/// `CERTSRV_E_UNSUPPORTED_CERT_TYPE`.
pub const CERTSRV_E_UNSUPPORTED_CERT_TYPE: u32 = 0x8009_4800;
/// `CERTSRV_E_BAD_REQUESTSUBJECT`.
pub const CERTSRV_E_BAD_REQUESTSUBJECT: u32 = 0x8009_4001;
/// `CERTSRV_E_NO_REQUEST`.
pub const CERTSRV_E_NO_REQUEST: u32 = 0x8009_4002;
/// `CERTSRV_E_BAD_REQUESTSTATUS`.
pub const CERTSRV_E_BAD_REQUESTSTATUS: u32 = 0x8009_4003;
/// `CERTSRV_E_KEY_LENGTH`.
pub const CERTSRV_E_KEY_LENGTH: u32 = 0x8009_4811;
/// `E_ACCESSDENIED`.
pub const E_ACCESSDENIED: u32 = 0x8007_0005;
/// `E_INVALIDARG`.
pub const E_INVALIDARG: u32 = 0x8007_0057;
/// Win32 `ERROR_ACCESS_DENIED` / `RPC_S_ACCESS_DENIED` as a fault status.
pub const RPC_S_ACCESS_DENIED: u32 = 5;
/// `nca_s_op_rng_error`.
pub const NCA_S_OP_RNG_ERROR: u32 = 0x1c01_0002;
/// `nca_s_unk_if`.
pub const NCA_S_UNK_IF: u32 = 0x1c01_0003;
/// `nca_s_proto_error`.
pub const NCA_S_PROTO_ERROR: u32 = 0x1c01_000b;
/// `RPC_X_BAD_STUB_DATA` (`nca_s_fault_ndr`).
pub const RPC_X_BAD_STUB_DATA: u32 = 0x0000_06f7;
/// `RPC_S_UNKNOWN_AUTHN_SERVICE`.
pub const RPC_S_UNKNOWN_AUTHN_SERVICE: u32 = 0x0000_06d3;
/// `RPC_S_SEC_PKG_ERROR`.
pub const RPC_S_SEC_PKG_ERROR: u32 = 0x0000_0721;
/// `SEC_E_LOGON_DENIED`.
pub const SEC_E_LOGON_DENIED: u32 = 0x8009_030c;

/// Symbolic name and an actionable English explanation of a CA HRESULT or
/// RPC fault status, independent of the CA's display language.
pub fn explain(code: u32) -> (&'static str, &'static str) {
    match code {
        CERTSRV_E_TEMPLATE_DENIED => (
            "CERTSRV_E_TEMPLATE_DENIED",
            "the CA refused the template for this account: grant the service account Read and Enroll on the certificate template (and check the CA's enrollment agent restrictions)",
        ),
        CERTSRV_E_UNSUPPORTED_CERT_TYPE => (
            "CERTSRV_E_UNSUPPORTED_CERT_TYPE",
            "the CA does not issue this certificate template: publish it on the CA (Certificate Templates to Issue) or fix `certificate-template` (use the template's name, not its display name)",
        ),
        CERTSRV_E_BAD_REQUESTSUBJECT => (
            "CERTSRV_E_BAD_REQUESTSUBJECT",
            "the CA rejected the request's subject: the template must allow the subject to be supplied in the request",
        ),
        CERTSRV_E_NO_REQUEST => ("CERTSRV_E_NO_REQUEST", "the CA has no request with this request id"),
        CERTSRV_E_BAD_REQUESTSTATUS => (
            "CERTSRV_E_BAD_REQUESTSTATUS",
            "the request's current status does not allow this operation (it may have been denied or already processed)",
        ),
        0x8009_4004 => ("CERTSRV_E_PROPERTY_EMPTY", "the CA has no value for this request (unknown or incomplete request id)"),
        0x8009_4006 => ("CERTSRV_E_SERVER_SUSPENDED", "the CA service is suspended: ask the CA administrator to resume it"),
        0x8009_4011 => ("CERTSRV_E_ENROLL_DENIED", "the CA's policy module denied enrollment for this account"),
        0x8009_4801 => ("CERTSRV_E_NO_CERT_TYPE", "the request names no certificate template"),
        0x8009_4802 => ("CERTSRV_E_TEMPLATE_CONFLICT", "the request names conflicting certificate templates"),
        0x8009_4803 => (
            "CERTSRV_E_SUBJECT_ALT_NAME_REQUIRED",
            "the template requires a subject alternative name that the request does not carry",
        ),
        0x8009_4806 => ("CERTSRV_E_BAD_RENEWAL_SUBJECT", "the renewal request's subject differs from the certificate being renewed"),
        0x8009_4807 => ("CERTSRV_E_BAD_TEMPLATE_VERSION", "the template version is not supported by this CA"),
        0x8009_4808 => ("CERTSRV_E_TEMPLATE_POLICY_REQUIRED", "the template requires an issuance policy the request lacks"),
        0x8009_4809 => (
            "CERTSRV_E_SIGNATURE_POLICY_REQUIRED",
            "the template requires an authorised signature (enrollment agent): remove that requirement from the template",
        ),
        0x8009_480f => ("CERTSRV_E_SUBJECT_DNS_REQUIRED", "the template builds the subject from Active Directory and the account has no DNS name"),
        CERTSRV_E_KEY_LENGTH => ("CERTSRV_E_KEY_LENGTH", "the key is shorter than the template's minimum key size"),
        0x8009_4812 => ("CERTSRV_E_SUBJECT_EMAIL_REQUIRED", "the template builds the subject from Active Directory and requires an e-mail address"),
        0x8009_4813 => ("CERTSRV_E_UNKNOWN_CERT_TYPE", "the certificate template is unknown to Active Directory: check `certificate-template`"),
        E_ACCESSDENIED => (
            "E_ACCESSDENIED",
            "access denied by the CA: the account needs the 'Request Certificates' permission on the CA and Enroll on the template",
        ),
        E_INVALIDARG => ("E_INVALIDARG", "the CA rejected an argument (wrong CA name, malformed request or unknown request id)"),
        0x8009_3004 | 0x8009_2002 | 0x8009_3102 => ("CRYPT_E_ASN1", "the CA could not parse the request: send a DER PKCS #10"),
        0x8009_0006 => ("NTE_BAD_SIGNATURE", "the request's signature is invalid"),
        RPC_S_ACCESS_DENIED => (
            "RPC_S_ACCESS_DENIED",
            "access denied: the credentials were refused or the account may not use this interface (check user, domain, password and the authentication level)",
        ),
        SEC_E_LOGON_DENIED => ("SEC_E_LOGON_DENIED", "logon denied: wrong user name, domain or password"),
        NCA_S_OP_RNG_ERROR => ("nca_s_op_rng_error", "the server does not implement this operation"),
        NCA_S_UNK_IF => ("nca_s_unk_if", "the server does not offer the ICertPassage interface on this endpoint"),
        NCA_S_PROTO_ERROR => ("nca_s_proto_error", "RPC protocol error reported by the server"),
        RPC_X_BAD_STUB_DATA => ("RPC_X_BAD_STUB_DATA", "the server could not unmarshal the request"),
        RPC_S_UNKNOWN_AUTHN_SERVICE => (
            "RPC_S_UNKNOWN_AUTHN_SERVICE",
            "the server does not support the requested authentication type (try NTLM or Negotiate)",
        ),
        RPC_S_SEC_PKG_ERROR => ("RPC_S_SEC_PKG_ERROR", "security package error on the server (signature or sealing failure)"),
        0x1c00_001a => ("nca_s_fault_context_mismatch", "the server lost the RPC context"),
        _ => ("UNKNOWN", "unrecognised error code; see the CA's message"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn submit_request_vector() {
        let req = CertServerRequest {
            flags: CR_IN_PKCS10 | CR_IN_BINARY,
            authority: Some("CA".into()),
            request_id: 0,
            attributes: encode_attributes(&[("CertificateTemplate", "W")]),
            request: vec![0x30, 0x03, 0x02, 0x01, 0x01],
        };
        let b = req.encode();
        let mut expect: Vec<u8> = vec![
            0x02, 0x01, 0, 0, // dwFlags
            0, 0, 2, 0, // pwszAuthority referent
            3, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, b'C', 0, b'A', 0, 0, 0, 0,
            0, // "CA\0" + align
            0, 0, 0, 0, // pdwRequestId
        ];
        let attrs = "CertificateTemplate:W\0"
            .encode_utf16()
            .flat_map(|c| c.to_le_bytes())
            .collect::<Vec<u8>>();
        assert_eq!(attrs.len(), 44);
        expect.extend_from_slice(&[44, 0, 0, 0, 4, 0, 2, 0, 44, 0, 0, 0]);
        expect.extend_from_slice(&attrs);
        expect.extend_from_slice(&[
            5, 0, 0, 0, 8, 0, 2, 0, 5, 0, 0, 0, 0x30, 0x03, 0x02, 0x01, 0x01,
        ]);
        assert_eq!(b, expect);
        assert_eq!(CertServerRequest::decode(&b).unwrap(), req);
        assert!(!req.is_retrieval());
    }

    #[test]
    fn retrieve_request() {
        let req = CertServerRequest::retrieve("LAB-CA", 42);
        let b = req.encode();
        let d = CertServerRequest::decode(&b).unwrap();
        assert_eq!(d, req);
        assert!(d.is_retrieval());
        // the two empty CERTTRANSBLOBs at the end: cb 0, pb NULL
        assert_eq!(&b[b.len() - 16..], &[0u8; 16]);
    }

    #[test]
    fn response_vector() {
        let resp = CertServerResponse {
            request_id: 7,
            disposition: CR_DISP_ISSUED,
            cert_chain: vec![1],
            encoded_cert: vec![2, 3],
            disposition_message: string_to_utf16le("OK"),
            status: 0,
        };
        let b = resp.encode();
        let expect: Vec<u8> = vec![
            7, 0, 0, 0, 3, 0, 0, 0, // id, disposition
            1, 0, 0, 0, 0, 0, 2, 0, 1, 0, 0, 0, 1, 0, 0, 0, // chain + align
            2, 0, 0, 0, 4, 0, 2, 0, 2, 0, 0, 0, 2, 3, 0, 0, // cert + align
            6, 0, 0, 0, 8, 0, 2, 0, 6, 0, 0, 0, b'O', 0, b'K', 0, 0, 0, 0,
            0, // message + align
            0, 0, 0, 0, // return value
        ];
        assert_eq!(b, expect);
        let d = CertServerResponse::decode(&b).unwrap();
        assert_eq!(d, resp);
        assert_eq!(d.message(), "OK");
        for n in 0..b.len() {
            assert!(CertServerResponse::decode(&b[..n]).is_err());
        }
    }

    #[test]
    fn attributes() {
        let a = encode_attributes(&[
            ("CertificateTemplate", "WebServer"),
            ("SAN", "dns=a.example"),
        ]);
        assert_eq!(
            decode_attributes(&a).unwrap(),
            vec![
                ("CertificateTemplate".into(), "WebServer".into()),
                ("SAN".into(), "dns=a.example".into())
            ]
        );
        assert!(decode_attributes(&[0x41]).is_err());
        assert!(decode_attributes(&string_to_utf16le("no-colon")).is_err());
        let crlf = string_to_utf16le("CertificateTemplate:T\r\n");
        assert_eq!(
            decode_attributes(&crlf).unwrap(),
            vec![("CertificateTemplate".into(), "T".into())]
        );
    }

    #[test]
    fn dispositions_and_errors() {
        assert_eq!(Disposition::from_wire(3), Disposition::Issued);
        assert_eq!(Disposition::from_wire(5), Disposition::UnderSubmission);
        assert_eq!(
            Disposition::from_wire(0x80094012),
            Disposition::Failed(0x80094012)
        );
        assert_eq!(explain(0x80094012).0, "CERTSRV_E_TEMPLATE_DENIED");
        assert!(explain(0x80094800).1.contains("publish"));
        assert_eq!(explain(5).0, "RPC_S_ACCESS_DENIED");
        assert_eq!(explain(0x12345678).0, "UNKNOWN");
    }
}
