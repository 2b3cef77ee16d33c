//! The CSR security model (SPEC §5). **This module is audited**: every rule
//! below is enforced by [`check_csr`], in this order, and each refusal names
//! the exact element that broke it.
//!
//! ACME proves control of DNS names and nothing else, so a CSR may ask for
//! those names and a key, and nothing more. The rules are an **allow-list**:
//! anything not explicitly allowed is refused.
//!
//! 1. **Strict DER.** The input is exactly one DER `CertificationRequest`:
//!    definite minimal lengths (BER long-form or indefinite lengths are
//!    refused by `der`), nothing after it, nothing after any inner element.
//!    Version must be v1 (0).
//! 2. **Public key** ([`RefusalKind::BadPublicKey`]): RSA (2048..=8192 bits
//!    and at least `min_rsa_bits`), ECDSA on an allowed curve (P-256/P-384 —
//!    P-521 cannot be verified with ring and is always refused), Ed25519.
//! 3. **Signature algorithm**: RSA PKCS#1 v1.5 with SHA-256/384/512, ECDSA
//!    with SHA-256/384, Ed25519, and within the policy's
//!    `allowed_algorithms`. MD2/MD5/SHA-1/SHA-224, RSA-PSS and ECDSA-SHA512
//!    are refused by name.
//! 4. **Self-signature** verifies over the exact request bytes.
//! 5. **Subject**: empty, or exactly one RDN holding exactly one CN whose
//!    value (UTF8String, PrintableString or IA5String) normalises to one of
//!    the order's names. Any other attribute (O, OU, DC, C, L, ST, emailAddress,
//!    UID, custom OIDs…) is refused by name.
//! 6. **Attributes**: exactly one, the PKCS#9 `extensionRequest`, with
//!    exactly one value. `challengePassword`, Microsoft enrollment attributes
//!    (1.3.6.1.4.1.311.13.2.x, 1.3.6.1.4.1.311.21.20) and anything else are
//!    refused by name.
//! 7. **Extensions**: no OID twice. Allowed, and nothing else:
//!    * `subjectAltName` — required; dNSName entries only (otherName/UPN,
//!      rfc822Name, URI, iPAddress, directoryName, … are refused by kind)
//!      and equal, as a set after normalisation, to the order's names;
//!    * `extKeyUsage` — optional; must contain serverAuth, and otherwise only
//!      clientAuth or the policy's `allowed_extra_eku` (anyExtendedKeyUsage,
//!      enrollment agent, smartcard logon, PKINIT, code signing, e-mail
//!      protection, Microsoft application policies are refused even if
//!      configured). The CSR's EKU is a request, not a demand: common ACME
//!      clients put serverAuth + clientAuth into every CSR, so clientAuth is
//!      accepted whatever the policy, and granted
//!      ([`ApprovedCsr::extra_eku`]) only when the policy allows it — the
//!      certificate is then issued with the policy's EKUs;
//!    * `keyUsage` — optional; keyCertSign and cRLSign are refused;
//!    * `basicConstraints` — optional; only cA=false without pathLen.
//!
//!    Everything else is refused, naming it: Microsoft application
//!    policies 1.3.6.1.4.1.311.21.10 (ESC15), certificate template name
//!    1.3.6.1.4.1.311.20.2 and template information 1.3.6.1.4.1.311.21.7,
//!    the SID extension 1.3.6.1.4.1.311.25.2, nameConstraints, AIA, CRL
//!    distribution points, SKI/AKI, certificate policies, must-staple….

use std::collections::BTreeSet;
use std::fmt;

use der::asn1::AnyRef;
use der::{Decode, Encode, Header, Reader, SliceReader, Tag, TagNumber, Tagged};
use x509_cert::ext::pkix::{BasicConstraints, ExtendedKeyUsage, KeyUsage};
use x509_cert::ext::Extension;
use x509_cert::name::Name;

use crate::dnsname::DnsName;
use crate::ext::{check_san_names, SanCheck};
use crate::oids;
use crate::policy::{forbidden_eku_reason, CsrPolicy, KeyPolicy};
use crate::verify::{self, ParsedKey, PublicKeyKind, VerifyError};

/// Which ACME error a refusal maps to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RefusalKind {
    /// `urn:ietf:params:acme:error:badCSR`.
    BadCsr,
    /// `urn:ietf:params:acme:error:badPublicKey` (key type or size).
    BadPublicKey,
}

/// Why a CSR was refused. `Display` is the detail, for the problem document.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CsrRefusal {
    /// The ACME error type.
    pub kind: RefusalKind,
    /// Human-readable reason naming the offending element.
    pub detail: String,
}

impl fmt::Display for CsrRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.detail)
    }
}

impl std::error::Error for CsrRefusal {}

/// A CSR that passed every rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovedCsr {
    /// The DER SubjectPublicKeyInfo exactly as in the CSR.
    pub spki_der: Vec<u8>,
    /// The key type and size.
    pub key: PublicKeyKind,
    /// The requested names: equal to the order's, sorted, de-duplicated.
    pub names: Vec<DnsName>,
    /// The EKUs to grant beyond serverAuth: those the CSR requested that
    /// the policy allows, in the CSR's order (clientAuth requested under a
    /// policy that does not allow it is accepted and not granted).
    pub extra_eku: Vec<const_oid::ObjectIdentifier>,
}

fn bad_csr(detail: impl Into<String>) -> CsrRefusal {
    CsrRefusal {
        kind: RefusalKind::BadCsr,
        detail: detail.into(),
    }
}

fn bad_key(detail: impl Into<String>) -> CsrRefusal {
    CsrRefusal {
        kind: RefusalKind::BadPublicKey,
        detail: detail.into(),
    }
}

fn not_der(what: &str) -> impl Fn(der::Error) -> CsrRefusal + '_ {
    move |e| bad_csr(format!("CSR {what} is not valid DER: {e}"))
}

/// The parts of a CertificationRequestInfo, borrowed from the input.
struct Info<'a> {
    version: u8,
    subject: Name,
    spki: &'a [u8],
    /// Contents of the `[0] IMPLICIT SET OF Attribute`.
    attributes: &'a [u8],
}

fn parse_info(tbs: &[u8]) -> Result<Info<'_>, CsrRefusal> {
    let mut r = SliceReader::new(tbs).map_err(not_der("request info"))?;
    let info = r
        .sequence(|r| {
            let version = r.decode()?;
            let subject_der = r.tlv_bytes()?;
            let subject = Name::from_der(subject_der)?;
            if subject.to_der()? != subject_der {
                return Err(der::ErrorKind::Noncanonical { tag: Tag::Sequence }.into());
            }
            let spki = r.tlv_bytes()?;
            let header = Header::decode(r)?;
            header.tag().assert_eq(Tag::ContextSpecific {
                constructed: true,
                number: TagNumber(0),
            })?;
            let attributes = r.read_slice(header.length())?;
            Ok::<_, der::Error>(Info {
                version,
                subject,
                spki,
                attributes,
            })
        })
        .map_err(not_der("request info"))?;
    r.finish().map_err(not_der("request info"))?;
    Ok(info)
}

/// One attribute: its type and the TLVs of its values.
struct RawAttribute<'a> {
    oid: const_oid::ObjectIdentifier,
    values: Vec<&'a [u8]>,
}

fn parse_attributes(set: &[u8]) -> Result<Vec<RawAttribute<'_>>, CsrRefusal> {
    let mut r = SliceReader::new(set).map_err(not_der("attribute set"))?;
    let mut out = Vec::new();
    while !r.is_finished() {
        let attr = r
            .sequence(|r| {
                let oid = r.decode()?;
                let header = Header::decode(r)?;
                header.tag().assert_eq(Tag::Set)?;
                let values = r.read_nested(header.length(), |r| {
                    let mut values = Vec::new();
                    while !r.is_finished() {
                        values.push(r.tlv_bytes()?);
                    }
                    Ok::<_, der::Error>(values)
                })?;
                Ok::<_, der::Error>(RawAttribute { oid, values })
            })
            .map_err(not_der("attribute set"))?;
        out.push(attr);
    }
    Ok(out)
}

fn describe_attribute(oid: &const_oid::ObjectIdentifier) -> String {
    if oids::under(
        oid,
        &const_oid::ObjectIdentifier::new_unwrap("1.3.6.1.4.1.311.13.2"),
    ) && oids::name_of(oid).is_none()
    {
        return format!("Microsoft enrollment attribute ({oid})");
    }
    oids::describe(oid)
}

/// Rule 2: key type, size and curve against the policy.
fn check_key(key: &ParsedKey<'_>, policy: &KeyPolicy) -> Result<(), CsrRefusal> {
    match key.kind {
        PublicKeyKind::Rsa { bits } => {
            let min = policy.min_rsa_bits.max(2048);
            if bits < min {
                return Err(bad_key(format!(
                    "RSA key is {bits} bits; the policy requires at least {min} bits"
                )));
            }
            if bits > 8192 {
                return Err(bad_key(format!(
                    "RSA key is {bits} bits; at most 8192 bits are supported"
                )));
            }
        }
        PublicKeyKind::Ec(curve) => {
            if !policy.allowed_ec_curves.contains(&curve) {
                let allowed: Vec<&str> =
                    policy.allowed_ec_curves.iter().map(|c| c.name()).collect();
                return Err(bad_key(format!(
                    "EC curve {curve} is not allowed by the policy (allowed: {})",
                    if allowed.is_empty() {
                        "none".to_owned()
                    } else {
                        allowed.join(", ")
                    }
                )));
            }
        }
        PublicKeyKind::Ed25519 => {}
    }
    Ok(())
}

/// Whether [`check_signature`] verifies the self-signature itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum SelfSignature {
    /// Verify it (a CSR that arrives from a client).
    Verify,
    /// Check all but the cryptographic verification (algorithm allowed,
    /// fitting the key, signature encoding): the CSR passed [`check_csr`],
    /// self-signature included, before it was stored.
    VerifiedBefore,
}

/// Rules 3 and 4: signature algorithm and self-signature.
fn check_signature(
    signed: &verify::Signed<'_>,
    key: &ParsedKey<'_>,
    policy: &KeyPolicy,
    self_signature: SelfSignature,
) -> Result<(), CsrRefusal> {
    let map = |e: VerifyError| match e {
        VerifyError::Key(d) => bad_key(d),
        VerifyError::Algorithm(d) | VerifyError::BadSignature(d) | VerifyError::Structure(d) => {
            bad_csr(format!("CSR {d}"))
        }
    };
    let alg = verify::signature_algorithm(&signed.alg).map_err(map)?;
    if !policy.allows_algorithm(alg) {
        let allowed: Vec<&str> = policy.allowed_algorithms.iter().map(|a| a.name()).collect();
        return Err(bad_csr(format!(
            "CSR signature algorithm {alg} is not allowed by the policy (allowed: {})",
            allowed.join(", ")
        )));
    }
    if self_signature == SelfSignature::VerifiedBefore {
        return verify::check_verifiable(key, alg, &signed.sig).map_err(map);
    }
    verify::verify(key, alg, signed.tbs, &signed.sig).map_err(|e| match e {
        VerifyError::BadSignature(_) => bad_csr(format!(
            "CSR self-signature does not verify ({alg} with the {} key)",
            key.kind
        )),
        other => map(other),
    })
}

/// "a" or "an" for an abbreviation read letter by letter ("an OU", "a C").
fn article(name: &str) -> &'static str {
    match name.chars().next() {
        Some('A' | 'E' | 'F' | 'H' | 'I' | 'L' | 'M' | 'N' | 'O' | 'R' | 'S' | 'X' | 'e') => "an",
        _ => "a",
    }
}

fn directory_string(value: &AnyRef<'_>) -> Option<String> {
    match value.tag() {
        Tag::Utf8String | Tag::PrintableString | Tag::Ia5String => {
            std::str::from_utf8(value.value()).ok().map(str::to_owned)
        }
        _ => None,
    }
}

/// Rule 5: the subject.
fn check_subject(subject: &Name, order: &BTreeSet<&DnsName>) -> Result<(), CsrRefusal> {
    const ONLY: &str = "only a single CN equal to one of the order's names is allowed";
    let mut cns = Vec::new();
    for rdn in subject.iter_rdn() {
        if rdn.is_empty() {
            return Err(bad_csr(format!(
                "CSR subject contains an empty RDN; {ONLY}"
            )));
        }
        for atv in rdn.iter() {
            if atv.oid != oids::CN {
                let what = match oids::name_of(&atv.oid) {
                    Some(name) => format!("{} {name} attribute", article(name)),
                    None => format!("an attribute {}", atv.oid),
                };
                return Err(bad_csr(format!(
                    "CSR subject contains {what}; {ONLY} (attribute type {})",
                    atv.oid
                )));
            }
            cns.push(atv);
        }
    }
    if subject.iter_rdn().count() > 1 || cns.len() > 1 {
        return Err(bad_csr(format!(
            "CSR subject contains {} CN attributes in {} RDNs; {ONLY}",
            cns.len(),
            subject.iter_rdn().count()
        )));
    }
    let Some(cn) = cns.first() else {
        return Ok(());
    };
    let any = AnyRef::from(&cn.value);
    let Some(text) = directory_string(&any) else {
        return Err(bad_csr(format!(
            "CSR subject CN is encoded as {}; only UTF8String, PrintableString or IA5String are accepted",
            any.tag()
        )));
    };
    let name = DnsName::parse(&text)
        .map_err(|e| bad_csr(format!("CSR subject CN {text:?} is not a DNS name: {e}")))?;
    if !order.contains(&name) {
        return Err(bad_csr(format!(
            "CSR subject CN {text:?} is not one of the order's names; {ONLY}"
        )));
    }
    Ok(())
}

/// Rule 6: exactly one extensionRequest attribute with exactly one value;
/// returns that value (the DER `Extensions`).
fn extension_request<'a>(attributes: &[RawAttribute<'a>]) -> Result<&'a [u8], CsrRefusal> {
    const ONLY: &str = "only a single extensionRequest attribute is allowed";
    if let Some(other) = attributes.iter().find(|a| a.oid != oids::EXTENSION_REQUEST) {
        return Err(bad_csr(format!(
            "CSR contains the attribute {}; {ONLY}",
            describe_attribute(&other.oid)
        )));
    }
    match attributes {
        [] => Err(bad_csr(
            "CSR has no extensionRequest attribute; the names must be requested in a subjectAltName extension",
        )),
        [one] => match one.values.as_slice() {
            [value] => Ok(value),
            values => Err(bad_csr(format!(
                "CSR extensionRequest attribute has {} values; exactly one is required",
                values.len()
            ))),
        },
        many => Err(bad_csr(format!(
            "CSR contains {} extensionRequest attributes; {ONLY}",
            many.len()
        ))),
    }
}

/// Rule 7: the requested extensions. Returns the approved names.
fn check_extensions(
    value: &[u8],
    order_names: &[DnsName],
    policy: &CsrPolicy,
) -> Result<(Vec<DnsName>, Vec<const_oid::ObjectIdentifier>), CsrRefusal> {
    let extensions = Vec::<Extension>::from_der(value).map_err(not_der("extensionRequest"))?;
    // `der` accepts a few BER-isms inside derived types (e.g. an explicitly
    // encoded DEFAULT critical=FALSE); strict DER means the value must be
    // exactly its canonical re-encoding.
    if extensions.to_der().ok().as_deref() != Some(value) {
        return Err(bad_csr(
            "CSR extensionRequest is not canonical DER (e.g. an explicitly encoded DEFAULT value)",
        ));
    }
    let mut seen = BTreeSet::new();
    for ext in &extensions {
        if !seen.insert(ext.extn_id) {
            return Err(bad_csr(format!(
                "CSR requests the extension {} more than once; duplicate extensions are not allowed",
                oids::describe(&ext.extn_id)
            )));
        }
    }
    let mut names = None;
    let mut extra_eku = Vec::new();
    for ext in &extensions {
        let id = ext.extn_id;
        let value = ext.extn_value.as_bytes();
        let ext_der = |e: der::Error| {
            bad_csr(format!(
                "CSR extension {} is not valid DER: {e}",
                oids::describe(&id)
            ))
        };
        if id == oids::SUBJECT_ALT_NAME {
            match check_san_names("CSR", value, order_names) {
                SanCheck::Equal(n) => names = Some(n),
                SanCheck::Refused(detail) => return Err(bad_csr(detail)),
            }
        } else if id == oids::EXT_KEY_USAGE {
            let eku = ExtendedKeyUsage::from_der(value).map_err(ext_der)?;
            extra_eku = check_eku(&eku.0, policy)?;
        } else if id == oids::KEY_USAGE {
            let ku = KeyUsage::from_der(value).map_err(ext_der)?;
            if ku.key_cert_sign() || ku.crl_sign() {
                return Err(bad_csr(
                    "CSR keyUsage requests keyCertSign or cRLSign; a leaf certificate cannot sign certificates or CRLs",
                ));
            }
        } else if id == oids::BASIC_CONSTRAINTS {
            let bc = BasicConstraints::from_der(value).map_err(ext_der)?;
            if bc.ca {
                return Err(bad_csr(
                    "CSR basicConstraints requests cA=true; only cA=false is allowed",
                ));
            }
            if bc.path_len_constraint.is_some() {
                return Err(bad_csr(
                    "CSR basicConstraints has a pathLenConstraint; only cA=false is allowed",
                ));
            }
        } else {
            return Err(bad_csr(format!(
                "CSR requests the extension {}, which is not allowed; only subjectAltName, extKeyUsage, keyUsage and basicConstraints (cA=false) may be requested",
                oids::describe(&id)
            )));
        }
    }
    let names = names.ok_or_else(|| {
        bad_csr("CSR has no subjectAltName extension; the order's names must be requested as dNSName SAN entries")
    })?;
    Ok((names, extra_eku))
}

/// Checks the requested EKUs; returns those to grant beyond serverAuth.
fn check_eku(
    ekus: &[const_oid::ObjectIdentifier],
    policy: &CsrPolicy,
) -> Result<Vec<const_oid::ObjectIdentifier>, CsrRefusal> {
    if ekus.is_empty() {
        return Err(bad_csr("CSR extKeyUsage is empty"));
    }
    let mut granted = Vec::new();
    for eku in ekus {
        if *eku == oids::KP_SERVER_AUTH {
            continue;
        }
        if policy.allows_eku(eku) {
            if !granted.contains(eku) {
                granted.push(*eku);
            }
            continue;
        }
        if *eku == oids::KP_CLIENT_AUTH {
            // A request, not a demand (certbot, acme.sh and others ask for
            // it in every CSR): accepted, not granted.
            continue;
        }
        let what = oids::describe(eku);
        let detail = match forbidden_eku_reason(eku) {
            Some(why) => format!("CSR extKeyUsage contains {what}, which is never allowed: {why}"),
            None => format!(
                "CSR extKeyUsage contains {what}, which the policy does not allow (allowed: {})",
                allowed_ekus(policy)
            ),
        };
        return Err(bad_csr(detail));
    }
    if !ekus.contains(&oids::KP_SERVER_AUTH) {
        return Err(bad_csr(
            "CSR extKeyUsage lacks serverAuth (1.3.6.1.5.5.7.3.1)",
        ));
    }
    Ok(granted)
}

pub(crate) fn allowed_ekus(policy: &CsrPolicy) -> String {
    std::iter::once("serverAuth".to_owned())
        .chain(policy.allowed_extra_eku.iter().map(ToString::to_string))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Applies the security model to a DER CSR for an order with `order_names`.
///
/// # Errors
/// A [`CsrRefusal`] whose detail names the offending element; see the
/// module documentation for the rules and their order.
pub fn check_csr(
    der: &[u8],
    order_names: &[DnsName],
    policy: &CsrPolicy,
) -> Result<ApprovedCsr, CsrRefusal> {
    check(der, order_names, policy, SelfSignature::Verify)
}

/// [`check_csr`] again, for a CSR that passed it before and was stored since
/// (the issuance job re-checks under the policy of the day): every rule
/// except the cryptographic verification of the self-signature, whose
/// algorithm is still checked. That verification proves possession of the
/// key, which the stored bytes cannot lose, and is the one costly step.
///
/// # Errors
/// As [`check_csr`].
pub fn recheck_stored_csr(
    der: &[u8],
    order_names: &[DnsName],
    policy: &CsrPolicy,
) -> Result<ApprovedCsr, CsrRefusal> {
    check(der, order_names, policy, SelfSignature::VerifiedBefore)
}

fn check(
    der: &[u8],
    order_names: &[DnsName],
    policy: &CsrPolicy,
    self_signature: SelfSignature,
) -> Result<ApprovedCsr, CsrRefusal> {
    if order_names.is_empty() {
        return Err(bad_csr("the order has no identifiers"));
    }
    // 1. Strict DER.
    let signed = verify::split_signed(der).map_err(not_der("structure"))?;
    let info = parse_info(signed.tbs)?;
    if info.version != 0 {
        return Err(bad_csr(format!(
            "CSR version is {}; only version 1 (0) exists",
            u32::from(info.version) + 1
        )));
    }
    // 2. Key.
    let key = verify::parse_spki(info.spki).map_err(|e| bad_key(format!("CSR {e}")))?;
    check_key(&key, &policy.key)?;
    // 3, 4. Signature.
    check_signature(&signed, &key, &policy.key, self_signature)?;
    // 5. Subject.
    let order: BTreeSet<&DnsName> = order_names.iter().collect();
    check_subject(&info.subject, &order)?;
    // 6. Attributes.
    let attributes = parse_attributes(info.attributes)?;
    let extensions = extension_request(&attributes)?;
    // 7. Extensions.
    let (names, extra_eku) = check_extensions(extensions, order_names, policy)?;
    Ok(ApprovedCsr {
        spki_der: info.spki.to_vec(),
        key: key.kind,
        names,
        extra_eku,
    })
}

#[cfg(test)]
mod tests;
