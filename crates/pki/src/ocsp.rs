//! OCSP (RFC 6960) on the wire: the ASN.1 structures of requests and
//! responses, the strict request parser, and the unsigned error responses.
//! The built-in CA signs the successful answers
//! ([`crate::BuiltinCa::sign_ocsp`]).
//!
//! RustCrypto's `x509-ocsp` 0.2 is built on `der` 0.7 / `x509-cert` 0.2,
//! while this crate is on `der` 0.8 / `x509-cert` 0.3 and no `x509-ocsp`
//! for that line is published; so the few structures of RFC 6960 §4 are
//! declared here with `der`'s derive macros (the DER encoding and decoding
//! are `der`'s own).

use der::asn1::{Any, BitString, GeneralizedTime, Null, OctetString};
use der::{Choice, Decode, Encode, Enumerated, Sequence};
use spki::AlgorithmIdentifierOwned;
use x509_cert::ext::pkix::CrlReason;
use x509_cert::ext::Extensions;
use x509_cert::serial_number::SerialNumber;

use crate::ObjectIdentifier;

/// id-pkix-ocsp-basic.
pub const OCSP_BASIC: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.1");
/// id-pkix-ocsp-nonce.
pub const OCSP_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");
/// id-sha1.
pub const SHA1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.14.3.2.26");
/// id-sha256.
pub const SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");

/// Largest OCSP request accepted (a request for a few certificates is a
/// few hundred bytes).
pub const MAX_REQUEST_BYTES: usize = 16 * 1024;

/// Most certificates asked about in one request.
pub const MAX_REQUESTS: usize = 16;

/// `CertID` (RFC 6960 §4.1.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct CertId {
    /// Hash algorithm of the two hashes.
    pub hash_algorithm: AlgorithmIdentifierOwned,
    /// Hash of the issuer's distinguished name (DER).
    pub issuer_name_hash: OctetString,
    /// Hash of the issuer's public key (the BIT STRING's bytes).
    pub issuer_key_hash: OctetString,
    /// Serial of the certificate asked about.
    pub serial_number: SerialNumber,
}

/// `Request` (RFC 6960 §4.1.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct Request {
    /// The certificate asked about.
    pub req_cert: CertId,
    /// singleRequestExtensions.
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub single_request_extensions: Option<Extensions>,
}

/// `TBSRequest` (RFC 6960 §4.1.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct TbsRequest {
    /// Version (v1 = 0, the default, absent in DER).
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub version: Option<u8>,
    /// requestorName (a GeneralName, kept undecoded).
    #[asn1(context_specific = "1", optional = "true", tag_mode = "EXPLICIT")]
    pub requestor_name: Option<Any>,
    /// The certificates asked about.
    pub request_list: Vec<Request>,
    /// requestExtensions (the nonce).
    #[asn1(context_specific = "2", optional = "true", tag_mode = "EXPLICIT")]
    pub request_extensions: Option<Extensions>,
}

/// `OCSPRequest` (RFC 6960 §4.1.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct OcspRequest {
    /// The request.
    pub tbs_request: TbsRequest,
    /// optionalSignature (not checked: the answers are public).
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub optional_signature: Option<Any>,
}

/// `OCSPResponseStatus` (RFC 6960 §4.2.1).
#[derive(Enumerated, Copy, Clone, Debug, Eq, PartialEq)]
#[repr(u32)]
pub enum ResponseStatus {
    /// Response has valid confirmations.
    Successful = 0,
    /// Illegal confirmation request.
    MalformedRequest = 1,
    /// Internal error in issuer.
    InternalError = 2,
    /// Try again later.
    TryLater = 3,
    /// Must sign the request.
    SigRequired = 5,
    /// Request unauthorized (not a CA this responder answers for).
    Unauthorized = 6,
}

/// `ResponseBytes` (RFC 6960 §4.2.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct ResponseBytes {
    /// id-pkix-ocsp-basic.
    pub response_type: ObjectIdentifier,
    /// The DER of a [`BasicOcspResponse`].
    pub response: OctetString,
}

/// `OCSPResponse` (RFC 6960 §4.2.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct OcspResponse {
    /// Status.
    pub response_status: ResponseStatus,
    /// Present when successful.
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub response_bytes: Option<ResponseBytes>,
}

/// `RevokedInfo` (RFC 6960 §4.2.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct RevokedInfo {
    /// When it was revoked.
    pub revocation_time: GeneralizedTime,
    /// Why (absent for unspecified).
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub revocation_reason: Option<CrlReason>,
}

/// `CertStatus` (RFC 6960 §4.2.1).
#[derive(Clone, Debug, Eq, PartialEq, Choice)]
pub enum CertStatus {
    /// Not revoked.
    #[asn1(context_specific = "0", tag_mode = "IMPLICIT")]
    Good(Null),
    /// Revoked.
    #[asn1(context_specific = "1", tag_mode = "IMPLICIT", constructed = "true")]
    Revoked(RevokedInfo),
    /// Not issued by this CA as far as the responder knows.
    #[asn1(context_specific = "2", tag_mode = "IMPLICIT")]
    Unknown(Null),
}

/// `SingleResponse` (RFC 6960 §4.2.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct SingleResponse {
    /// The CertID asked about, as asked.
    pub cert_id: CertId,
    /// Its status.
    pub cert_status: CertStatus,
    /// When the status was known to be correct.
    pub this_update: GeneralizedTime,
    /// When newer information will be available.
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub next_update: Option<GeneralizedTime>,
    /// singleExtensions.
    #[asn1(context_specific = "1", optional = "true", tag_mode = "EXPLICIT")]
    pub single_extensions: Option<Extensions>,
}

/// `ResponderID` (RFC 6960 §4.2.1); certeasy answers `byKey`.
#[derive(Clone, Debug, Eq, PartialEq, Choice)]
pub enum ResponderId {
    /// byName (kept undecoded).
    #[asn1(context_specific = "1", tag_mode = "EXPLICIT", constructed = "true")]
    ByName(Any),
    /// byKey: SHA-1 of the responder's public key (the BIT STRING's bytes).
    #[asn1(context_specific = "2", tag_mode = "EXPLICIT", constructed = "true")]
    ByKey(OctetString),
}

/// `ResponseData` (RFC 6960 §4.2.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct ResponseData {
    /// Version (v1, the default: absent).
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub version: Option<u8>,
    /// Who signed.
    pub responder_id: ResponderId,
    /// When it was signed.
    pub produced_at: GeneralizedTime,
    /// One answer per certificate asked about.
    pub responses: Vec<SingleResponse>,
    /// responseExtensions (the nonce, echoed).
    #[asn1(context_specific = "1", optional = "true", tag_mode = "EXPLICIT")]
    pub response_extensions: Option<Extensions>,
}

/// `BasicOCSPResponse` (RFC 6960 §4.2.1).
#[derive(Clone, Debug, Eq, PartialEq, Sequence)]
pub struct BasicOcspResponse {
    /// What is signed.
    pub tbs_response_data: ResponseData,
    /// Signature algorithm.
    pub signature_algorithm: AlgorithmIdentifierOwned,
    /// Signature over the DER of `tbs_response_data`.
    pub signature: BitString,
    /// Certificates that help verify the signature (none: the CA signs).
    #[asn1(context_specific = "0", optional = "true", tag_mode = "EXPLICIT")]
    pub certs: Option<Vec<Any>>,
}

/// Why an OCSP request cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OcspError {
    /// Not a well-formed request.
    #[error("malformed OCSP request: {0}")]
    Malformed(String),
}

/// A parsed OCSP request: the certificates asked about and the nonce
/// extension to echo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OcspQuery {
    /// The CertIDs, in request order.
    pub cert_ids: Vec<CertId>,
    /// The request's nonce extension, to echo in the response.
    pub nonce: Option<x509_cert::ext::Extension>,
}

impl CertId {
    /// The serial asked about as certeasy stores serials (lower-case hex
    /// without leading zero bytes).
    pub fn serial_hex(&self) -> String {
        crate::certs::serial_hex(self.serial_number.as_bytes())
    }
}

/// Parses a DER OCSP request strictly (all input consumed), with at most
/// [`MAX_REQUESTS`] certificates.
///
/// # Errors
/// [`OcspError::Malformed`] for anything else.
pub fn parse_request(der: &[u8]) -> Result<OcspQuery, OcspError> {
    if der.len() > MAX_REQUEST_BYTES {
        return Err(OcspError::Malformed(format!(
            "{} bytes, more than {MAX_REQUEST_BYTES}",
            der.len()
        )));
    }
    let req = OcspRequest::from_der(der).map_err(|e| OcspError::Malformed(e.to_string()))?;
    let tbs = req.tbs_request;
    if tbs.version.is_some_and(|v| v != 0) {
        return Err(OcspError::Malformed("only version 1 is known".into()));
    }
    if tbs.request_list.is_empty() || tbs.request_list.len() > MAX_REQUESTS {
        return Err(OcspError::Malformed(format!(
            "{} certificates asked about; give 1 to {MAX_REQUESTS}",
            tbs.request_list.len()
        )));
    }
    let nonce = tbs
        .request_extensions
        .iter()
        .flatten()
        .find(|e| e.extn_id == OCSP_NONCE)
        .cloned();
    if nonce
        .as_ref()
        .is_some_and(|n| n.extn_value.as_bytes().len() > 128)
    {
        return Err(OcspError::Malformed("nonce longer than 128 bytes".into()));
    }
    Ok(OcspQuery {
        cert_ids: tbs.request_list.into_iter().map(|r| r.req_cert).collect(),
        nonce,
    })
}

/// An unsigned OCSP response carrying only an error status
/// (`malformedRequest`, `internalError`, `tryLater`, `unauthorized`).
pub fn error_response(status: ResponseStatus) -> Vec<u8> {
    OcspResponse {
        response_status: status,
        response_bytes: None,
    }
    .to_der()
    // A two-field SEQUENCE of an ENUMERATED always encodes.
    .unwrap_or_else(|_| vec![0x30, 0x03, 0x0a, 0x01, status as u8])
}

/// The status of one certificate, as the server found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Issued by this CA and not revoked.
    Good,
    /// Revoked at `at` for RFC 5280 reason `reason`.
    Revoked {
        /// Revocation time.
        at: time::OffsetDateTime,
        /// Reason code.
        reason: u32,
    },
    /// Not known to have been issued by this CA.
    Unknown,
}

/// The `CRLReason` of a code (None for unspecified and unknown codes).
pub fn crl_reason(code: u32) -> Option<CrlReason> {
    Some(match code {
        1 => CrlReason::KeyCompromise,
        2 => CrlReason::CaCompromise,
        3 => CrlReason::AffiliationChanged,
        4 => CrlReason::Superseded,
        5 => CrlReason::CessationOfOperation,
        6 => CrlReason::CertificateHold,
        8 => CrlReason::RemoveFromCRL,
        9 => CrlReason::PrivilegeWithdrawn,
        10 => CrlReason::AaCompromise,
        _ => return None,
    })
}

/// A GeneralizedTime of `t`, to the second (DER forbids fractions here).
pub(crate) fn generalized_time(t: time::OffsetDateTime) -> Result<GeneralizedTime, der::Error> {
    let secs = u64::try_from(t.unix_timestamp()).unwrap_or(0);
    GeneralizedTime::from_unix_duration(std::time::Duration::from_secs(secs))
}
