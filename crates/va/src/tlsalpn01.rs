//! tls-alpn-01 (RFC 8737).
//!
//! Connects to each permitted address of the domain on the profile's
//! tls-alpn-01 port (IPv6 first, falling over on connection failure only),
//! with SNI = domain and ALPN exactly `acme-tls/1`. Any certificate chain is
//! accepted (the handshake signature is still verified). The server must
//! negotiate `acme-tls/1` (else `Tls`). The leaf certificate must then carry
//! exactly one subjectAltName entry, a dNSName equal to the domain, and the
//! critical acmeIdentifier extension (`1.3.6.1.5.5.7.1.31`) holding an OCTET
//! STRING equal to SHA-256(key authorization); otherwise the failure is
//! `IncorrectResponse` (the detail says which requirement failed).

use const_oid::ObjectIdentifier;
use der::asn1::OctetString;
use der::Decode;
use x509_cert::ext::pkix::name::GeneralName;
use x509_cert::ext::pkix::SubjectAltName;
use x509_cert::Certificate;

use crate::error::{excerpt, FailureKind, ValidationFailure};
use crate::net::{dial_first, Deadline};
use crate::profile::normalise;
use crate::record::ValidationRecord;
use crate::validator::Validator;

/// The ALPN protocol of tls-alpn-01.
pub const ACME_TLS_ALPN_PROTOCOL: &[u8] = b"acme-tls/1";

/// The acmeIdentifier extension, `id-pe-acmeIdentifier` (RFC 8737 §6.1).
pub const ID_PE_ACME_IDENTIFIER: &str = "1.3.6.1.5.5.7.1.31";

const ACME_IDENTIFIER_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap(ID_PE_ACME_IDENTIFIER);
const SUBJECT_ALT_NAME_OID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.17");

impl Validator {
    /// Validates a tls-alpn-01 challenge (RFC 8737) on the profile's
    /// tls-alpn-01 port.
    pub async fn tls_alpn01(
        &self,
        domain: &str,
        key_authorization: &str,
    ) -> Result<ValidationRecord, ValidationFailure> {
        validate(self, domain, key_authorization).await
    }
}

pub(crate) async fn validate(
    va: &Validator,
    domain: &str,
    key_authorization: &str,
) -> Result<ValidationRecord, ValidationFailure> {
    let domain = normalise(domain);
    let profile = va.profile();
    let deadline = Deadline::after(profile.timeout);
    let (resolved, allowed) = va.resolve_checked(&domain, &deadline).await?;
    let port = profile.tls_alpn01_port;
    let (stream, ip) = dial_first(
        &profile.ip_policy,
        &profile.name,
        &domain,
        &allowed,
        port,
        &deadline,
    )
    .await?;
    let sni = crate::tls::server_name(&domain).ok_or_else(|| {
        ValidationFailure::internal(format!("{domain} is not a valid TLS server name"))
    })?;
    let connector = tokio_rustls::TlsConnector::from(va.alpn_tls.clone());
    let tls = deadline
        .run(
            FailureKind::Tls,
            || format!("in the TLS handshake with {ip}:{port} for {domain}"),
            async {
                connector.connect(sni, stream).await.map_err(|e| {
                    ValidationFailure::tls(format!(
                        "TLS handshake with {ip}:{port} for {domain} failed: {e}"
                    ))
                })
            },
        )
        .await?;
    let (_, session) = tls.get_ref();
    if session.alpn_protocol() != Some(ACME_TLS_ALPN_PROTOCOL) {
        return Err(ValidationFailure::tls(format!(
            "the TLS server at {ip}:{port} for {domain} did not negotiate the acme-tls/1 ALPN protocol"
        )));
    }
    let leaf = session
        .peer_certificates()
        .and_then(|chain| chain.first())
        .ok_or_else(|| {
            ValidationFailure::tls(format!(
                "the TLS server at {ip}:{port} for {domain} presented no certificate"
            ))
        })?;
    let digest = ring::digest::digest(&ring::digest::SHA256, key_authorization.as_bytes());
    check_certificate(leaf.as_ref(), &domain, digest.as_ref()).map_err(|problem| {
        ValidationFailure::incorrect(format!(
            "the certificate presented by {ip}:{port} for {domain} {problem}"
        ))
    })?;
    Ok(ValidationRecord {
        hostname: domain,
        port: Some(port),
        addresses_resolved: resolved,
        address_used: Some(ip),
        url: None,
    })
}

/// Checks the RFC 8737 §3 requirements on the leaf; the error completes the
/// sentence "the certificate presented by … for … ".
pub(crate) fn check_certificate(der: &[u8], domain: &str, digest: &[u8]) -> Result<(), String> {
    let cert = Certificate::from_der(der).map_err(|e| format!("cannot be parsed: {e}"))?;
    let extensions = cert
        .tbs_certificate()
        .extensions()
        .map(|e| e.as_slice())
        .unwrap_or_default();

    let sans: Vec<_> = extensions
        .iter()
        .filter(|e| e.extn_id == SUBJECT_ALT_NAME_OID)
        .collect();
    let [san] = sans.as_slice() else {
        return Err(format!(
            "must have exactly one subjectAltName extension (found {})",
            sans.len()
        ));
    };
    let names = SubjectAltName::from_der(san.extn_value.as_bytes())
        .map_err(|e| format!("has an unparsable subjectAltName: {e}"))?;
    let dns_names: Vec<String> = names
        .0
        .iter()
        .map(|n| match n {
            GeneralName::DnsName(d) => d.to_string(),
            other => format!("{other:?}"),
        })
        .collect();
    match names.0.as_slice() {
        [GeneralName::DnsName(d)] if d.to_string().eq_ignore_ascii_case(domain) => {}
        _ => {
            return Err(format!(
                "must have exactly one subjectAltName, the dNSName {domain} (found [{}])",
                excerpt(&dns_names.join(", "), 200)
            ))
        }
    }

    let ids: Vec<_> = extensions
        .iter()
        .filter(|e| e.extn_id == ACME_IDENTIFIER_OID)
        .collect();
    let [id] = ids.as_slice() else {
        return Err(format!(
            "must have exactly one acmeIdentifier extension ({ID_PE_ACME_IDENTIFIER}) (found {})",
            ids.len()
        ));
    };
    if !id.critical {
        return Err("has an acmeIdentifier extension that is not marked critical".into());
    }
    let value = OctetString::from_der(id.extn_value.as_bytes())
        .map_err(|e| format!("has an acmeIdentifier that is not a DER OCTET STRING: {e}"))?;
    if value.as_bytes() != digest {
        return Err(format!(
            "has an acmeIdentifier {} that does not match the SHA-256 of the key authorization {}",
            hex(value.as_bytes()),
            hex(digest)
        ));
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes.iter().take(64) {
        let _ = write!(out, "{b:02x}");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digest(text: &str) -> Vec<u8> {
        ring::digest::digest(&ring::digest::SHA256, text.as_bytes())
            .as_ref()
            .to_vec()
    }

    fn cert(names: &[&str], ext: Option<rcgen::CustomExtension>) -> Vec<u8> {
        let key = rcgen::KeyPair::generate().expect("key");
        let mut params = rcgen::CertificateParams::new(
            names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>(),
        )
        .expect("params");
        if let Some(ext) = ext {
            params.custom_extensions.push(ext);
        }
        params.self_signed(&key).expect("cert").der().to_vec()
    }

    #[test]
    fn accepts_a_correct_certificate() {
        let d = digest("token.thumb");
        let der = cert(
            &["x.test"],
            Some(rcgen::CustomExtension::new_acme_identifier(&d)),
        );
        assert_eq!(check_certificate(&der, "x.test", &d), Ok(()));
    }

    #[test]
    fn refuses_wrong_digest() {
        let der = cert(
            &["x.test"],
            Some(rcgen::CustomExtension::new_acme_identifier(&digest(
                "other",
            ))),
        );
        let err = check_certificate(&der, "x.test", &digest("token.thumb")).expect_err("digest");
        assert!(err.contains("does not match the SHA-256"), "{err}");
    }

    #[test]
    fn refuses_extra_or_wrong_names() {
        let d = digest("k");
        let ext = || Some(rcgen::CustomExtension::new_acme_identifier(&d));
        let err = check_certificate(&cert(&["x.test", "y.test"], ext()), "x.test", &d)
            .expect_err("two names");
        assert!(err.contains("exactly one subjectAltName"), "{err}");
        let err =
            check_certificate(&cert(&["y.test"], ext()), "x.test", &d).expect_err("wrong name");
        assert!(err.contains("found [y.test]"), "{err}");
    }

    #[test]
    fn refuses_missing_or_non_critical_extension() {
        let d = digest("k");
        let err = check_certificate(&cert(&["x.test"], None), "x.test", &d).expect_err("missing");
        assert!(err.contains("exactly one acmeIdentifier"), "{err}");
        let mut ext = rcgen::CustomExtension::new_acme_identifier(&d);
        ext.set_criticality(false);
        let err =
            check_certificate(&cert(&["x.test"], Some(ext)), "x.test", &d).expect_err("critical");
        assert!(err.contains("not marked critical"), "{err}");
    }

    #[test]
    fn refuses_garbage() {
        let err = check_certificate(b"not a certificate", "x.test", &digest("k")).expect_err("der");
        assert!(err.starts_with("cannot be parsed"), "{err}");
    }
}
