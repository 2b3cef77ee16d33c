//! Checks on what an authority returned, before it is stored or served
//! (SPEC §5, last rule). A CA may be misconfigured (template adding EKUs,
//! overriding SANs, long lifetimes); certeasy refuses to hand such a
//! certificate to the client.
//!
//! [`check_issued`] refuses a leaf that:
//! * does not parse as strict DER, or repeats an extension;
//! * has no SAN, a SAN with anything but dNSNames, or a SAN set different
//!   from the order's names;
//! * has no extKeyUsage (that means "any purpose"), lacks serverAuth, or has
//!   an EKU beyond serverAuth and the policy's extras; the Microsoft
//!   application-policies extension (ESC15) is held to the same rule;
//! * is a CA (basicConstraints cA=true) or may sign certificates/CRLs
//!   (keyUsage keyCertSign/cRLSign);
//! * has notAfter before notBefore, or a lifetime (notAfter − notBefore)
//!   above `max_validity`.
//!
//! [`chain_links`] checks each link of leaf → chain: issuer name equals the
//! next certificate's subject (DER bytes) and the signature verifies with
//! the next certificate's key.

use std::collections::BTreeSet;
use std::time::Duration;

use der::{Decode, Encode};
use x509_cert::ext::pkix::{
    AuthorityKeyIdentifier, BasicConstraints, CertificatePolicies, ExtendedKeyUsage, KeyUsage,
};
use x509_cert::Certificate;

use crate::certs::serial_hex;
use crate::csr::{allowed_ekus, ApprovedCsr};
use crate::dnsname::DnsName;
use crate::ext::{check_san_names, SanCheck};
use crate::oids;
use crate::policy::CsrPolicy;
use crate::verify;

/// Facts about an accepted issued certificate, for storage.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IssuedInfo {
    /// Lower-case hex serial without the DER sign byte.
    pub serial_hex: String,
    /// Start of validity.
    pub not_before: time::OffsetDateTime,
    /// End of validity.
    pub not_after: time::OffsetDateTime,
    /// The authorityKeyIdentifier keyIdentifier, if present.
    pub aki: Option<Vec<u8>>,
    /// The DER SubjectPublicKeyInfo.
    pub spki_der: Vec<u8>,
}

/// Why an issued certificate (or chain) is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IssuedRefusal {
    /// Not a strict-DER certificate.
    #[error("issued certificate does not parse: {0}")]
    Unparsable(String),
    /// SAN problem (missing, non-DNS entries, set differs from the order).
    #[error("{0}")]
    Names(String),
    /// EKU / application policy beyond the policy.
    #[error("{0}")]
    Eku(String),
    /// Lifetime problem.
    #[error("{0}")]
    Lifetime(String),
    /// CA certificate or CA key usages.
    #[error("{0}")]
    Ca(String),
    /// Another extension problem (duplicates).
    #[error("{0}")]
    Extension(String),
    /// The key is not the one of the CSR.
    #[error("{0}")]
    Key(String),
    /// A chain link is broken.
    #[error("{0}")]
    Chain(String),
}

fn to_offset(t: &x509_cert::time::Time) -> Result<time::OffsetDateTime, IssuedRefusal> {
    let secs = i64::try_from(t.to_unix_duration().as_secs())
        .map_err(|_| IssuedRefusal::Unparsable("validity time out of range".into()))?;
    time::OffsetDateTime::from_unix_timestamp(secs)
        .map_err(|e| IssuedRefusal::Unparsable(format!("validity time out of range: {e}")))
}

fn check_eku_list(
    what: &str,
    ekus: &[const_oid::ObjectIdentifier],
    policy: &CsrPolicy,
) -> Result<(), IssuedRefusal> {
    if let Some(bad) = ekus.iter().find(|e| !policy.allows_eku(e)) {
        return Err(IssuedRefusal::Eku(format!(
            "issued certificate {what} contains {}, beyond the policy (allowed: {})",
            oids::describe(bad),
            allowed_ekus(policy)
        )));
    }
    Ok(())
}

/// Checks a leaf returned by an authority against the order and policy.
///
/// # Errors
/// An [`IssuedRefusal`] describing the first violated rule.
pub fn check_issued(
    leaf_der: &[u8],
    order_names: &[DnsName],
    policy: &CsrPolicy,
    max_validity: Duration,
) -> Result<IssuedInfo, IssuedRefusal> {
    let cert =
        Certificate::from_der(leaf_der).map_err(|e| IssuedRefusal::Unparsable(e.to_string()))?;
    let tbs = cert.tbs_certificate();
    let extensions = tbs.extensions().map(Vec::as_slice).unwrap_or_default();

    let mut seen = BTreeSet::new();
    if let Some(dup) = extensions.iter().find(|e| !seen.insert(e.extn_id)) {
        return Err(IssuedRefusal::Extension(format!(
            "issued certificate repeats the extension {}",
            oids::describe(&dup.extn_id)
        )));
    }
    let find = |oid| extensions.iter().find(|e| e.extn_id == oid);
    let bad_ext = |oid, e: der::Error| {
        IssuedRefusal::Unparsable(format!("extension {}: {e}", oids::describe(&oid)))
    };

    // Names.
    let san = find(oids::SUBJECT_ALT_NAME).ok_or_else(|| {
        IssuedRefusal::Names("issued certificate has no subjectAltName extension".into())
    })?;
    if let SanCheck::Refused(detail) =
        check_san_names("issued certificate", san.extn_value.as_bytes(), order_names)
    {
        return Err(IssuedRefusal::Names(detail));
    }

    // EKU and Microsoft application policies.
    let eku = find(oids::EXT_KEY_USAGE).ok_or_else(|| {
        IssuedRefusal::Eku(
            "issued certificate has no extKeyUsage extension, which makes it valid for any purpose"
                .into(),
        )
    })?;
    let ekus = ExtendedKeyUsage::from_der(eku.extn_value.as_bytes())
        .map_err(|e| bad_ext(oids::EXT_KEY_USAGE, e))?;
    check_eku_list("extKeyUsage", &ekus.0, policy)?;
    if !ekus.0.contains(&oids::KP_SERVER_AUTH) {
        return Err(IssuedRefusal::Eku(
            "issued certificate extKeyUsage lacks serverAuth".into(),
        ));
    }
    if let Some(app) = find(oids::MS_APPLICATION_POLICIES) {
        let policies = CertificatePolicies::from_der(app.extn_value.as_bytes())
            .map_err(|e| bad_ext(oids::MS_APPLICATION_POLICIES, e))?;
        let ids: Vec<_> = policies.0.iter().map(|p| p.policy_identifier).collect();
        check_eku_list("Microsoft application policies (ESC15)", &ids, policy)?;
    }

    // Not a CA.
    if let Some(bc) = find(oids::BASIC_CONSTRAINTS) {
        let bc = BasicConstraints::from_der(bc.extn_value.as_bytes())
            .map_err(|e| bad_ext(oids::BASIC_CONSTRAINTS, e))?;
        if bc.ca {
            return Err(IssuedRefusal::Ca(
                "issued certificate has basicConstraints cA=true".into(),
            ));
        }
    }
    if let Some(ku) = find(oids::KEY_USAGE) {
        let ku = KeyUsage::from_der(ku.extn_value.as_bytes())
            .map_err(|e| bad_ext(oids::KEY_USAGE, e))?;
        if ku.key_cert_sign() || ku.crl_sign() {
            return Err(IssuedRefusal::Ca(
                "issued certificate keyUsage allows keyCertSign or cRLSign".into(),
            ));
        }
    }

    // Lifetime.
    let validity = tbs.validity();
    let not_before = to_offset(&validity.not_before)?;
    let not_after = to_offset(&validity.not_after)?;
    if not_after < not_before {
        return Err(IssuedRefusal::Lifetime(format!(
            "issued certificate notAfter {not_after} is before notBefore {not_before}"
        )));
    }
    let lifetime = (not_after - not_before).unsigned_abs();
    if lifetime > max_validity {
        return Err(IssuedRefusal::Lifetime(format!(
            "issued certificate lifetime of {}s exceeds max-validity of {}s",
            lifetime.as_secs(),
            max_validity.as_secs()
        )));
    }

    let aki = match find(oids::AUTHORITY_KEY_IDENTIFIER) {
        Some(ext) => AuthorityKeyIdentifier::from_der(ext.extn_value.as_bytes())
            .map_err(|e| bad_ext(oids::AUTHORITY_KEY_IDENTIFIER, e))?
            .key_identifier
            .map(|k| k.as_bytes().to_vec()),
        None => None,
    };
    let spki_der = tbs
        .subject_public_key_info()
        .to_der()
        .map_err(|e| IssuedRefusal::Unparsable(e.to_string()))?;
    Ok(IssuedInfo {
        serial_hex: serial_hex(tbs.serial_number().as_bytes()),
        not_before,
        not_after,
        aki,
        spki_der,
    })
}

/// [`check_issued`] for the names of an approved CSR, plus: the certificate
/// carries the CSR's public key.
///
/// # Errors
/// As [`check_issued`], and [`IssuedRefusal::Key`] when the key differs.
pub fn check_issued_for_csr(
    leaf_der: &[u8],
    csr: &ApprovedCsr,
    policy: &CsrPolicy,
    max_validity: Duration,
) -> Result<IssuedInfo, IssuedRefusal> {
    let info = check_issued(leaf_der, &csr.names, policy, max_validity)?;
    if info.spki_der != csr.spki_der {
        return Err(IssuedRefusal::Key(
            "issued certificate's public key is not the CSR's public key".into(),
        ));
    }
    Ok(info)
}

/// Checks every link of `leaf → chain[0] → chain[1] → …`: each
/// certificate's issuer equals the next one's subject and its signature
/// verifies with the next one's key. The last certificate is not checked
/// against anything (it may be a root or an intermediate); an empty chain is
/// accepted (nothing to link).
///
/// # Errors
/// [`IssuedRefusal::Chain`] naming the broken link (0 = leaf).
pub fn chain_links(leaf_der: &[u8], chain_der: &[Vec<u8>]) -> Result<(), IssuedRefusal> {
    let all: Vec<&[u8]> = std::iter::once(leaf_der)
        .chain(chain_der.iter().map(Vec::as_slice))
        .collect();
    let chain_err = |s: String| IssuedRefusal::Chain(s);
    for (i, pair) in all.windows(2).enumerate() {
        let [child_der, parent_der] = pair else {
            continue;
        };
        let child = Certificate::from_der(child_der)
            .map_err(|e| chain_err(format!("certificate {i} does not parse: {e}")))?;
        let parent = Certificate::from_der(parent_der)
            .map_err(|e| chain_err(format!("certificate {} does not parse: {e}", i + 1)))?;
        let issuer = child.tbs_certificate().issuer();
        let subject = parent.tbs_certificate().subject();
        if issuer.to_der().ok() != subject.to_der().ok() {
            return Err(chain_err(format!(
                "certificate {i} was issued by \"{issuer}\" but certificate {} is \"{subject}\"",
                i + 1
            )));
        }
        if child.tbs_certificate().signature() != child.signature_algorithm() {
            return Err(chain_err(format!(
                "certificate {i} has different inner and outer signature algorithms"
            )));
        }
        let signed = verify::split_signed(child_der)
            .map_err(|e| chain_err(format!("certificate {i} is not DER: {e}")))?;
        let parent_spki = parent
            .tbs_certificate()
            .subject_public_key_info()
            .to_der()
            .map_err(|e| chain_err(format!("certificate {} key: {e}", i + 1)))?;
        let key = verify::parse_spki(&parent_spki)
            .map_err(|e| chain_err(format!("certificate {} key: {e}", i + 1)))?;
        verify::verify_signed(&signed, &key).map_err(|e| {
            chain_err(format!(
                "certificate {i} signature does not verify with certificate {}'s key: {e}",
                i + 1
            ))
        })?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
