//! PEM <-> DER for certificate chains, and small certificate accessors.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use der::{Decode, Encode};
use x509_cert::Certificate;

const BEGIN_CERT: &str = "-----BEGIN CERTIFICATE-----";
const END_CERT: &str = "-----END CERTIFICATE-----";

/// A PEM document is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PemError {
    /// No CERTIFICATE block at all.
    #[error("no \"-----BEGIN CERTIFICATE-----\" block found")]
    NoCertificates,
    /// A block other than CERTIFICATE (e.g. a private key) is present.
    #[error("unexpected PEM block {label:?}; only CERTIFICATE blocks are allowed")]
    UnexpectedBlock {
        /// The block's label.
        label: String,
    },
    /// A block is not terminated.
    #[error("certificate block {index} has no \"-----END CERTIFICATE-----\" line")]
    Unterminated {
        /// 0-based index of the block.
        index: usize,
    },
    /// A block's base64 is invalid.
    #[error("certificate block {index} is not valid base64: {reason}")]
    Base64 {
        /// 0-based index of the block.
        index: usize,
        /// Decoder message.
        reason: String,
    },
    /// A block does not hold a DER certificate.
    #[error("certificate block {index} is not a DER X.509 certificate: {reason}")]
    NotACertificate {
        /// 0-based index of the block.
        index: usize,
        /// Parser message.
        reason: String,
    },
}

/// A certificate could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("certificate is not a DER X.509 certificate: {0}")]
pub struct CertError(pub String);

/// Decodes every `CERTIFICATE` block of a PEM text, in order. Text outside
/// blocks (comments such as OpenSSL's `subject=` lines) is ignored; any other
/// PEM block is refused. Each block must hold a DER certificate.
///
/// # Errors
/// [`PemError`] naming the block.
pub fn pem_to_der_certs(pem: &str) -> Result<Vec<Vec<u8>>, PemError> {
    let mut out = Vec::new();
    let mut lines = pem.lines().map(str::trim);
    while let Some(line) = lines.next() {
        if line == BEGIN_CERT {
            let index = out.len();
            let mut b64 = String::new();
            let mut terminated = false;
            for body in lines.by_ref() {
                if body == END_CERT {
                    terminated = true;
                    break;
                }
                b64.push_str(body);
            }
            if !terminated {
                return Err(PemError::Unterminated { index });
            }
            let der = STANDARD
                .decode(b64.as_bytes())
                .map_err(|e| PemError::Base64 {
                    index,
                    reason: e.to_string(),
                })?;
            Certificate::from_der(&der).map_err(|e| PemError::NotACertificate {
                index,
                reason: e.to_string(),
            })?;
            out.push(der);
        } else if let Some(rest) = line.strip_prefix("-----BEGIN ") {
            return Err(PemError::UnexpectedBlock {
                label: rest.trim_end_matches('-').to_owned(),
            });
        }
    }
    if out.is_empty() {
        return Err(PemError::NoCertificates);
    }
    Ok(out)
}

/// PEM-encodes one DER document with the given label (64-column lines).
pub fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = STANDARD.encode(der);
    let mut out = String::with_capacity(b64.len() + b64.len() / 64 + 64);
    out.push_str(&format!("-----BEGIN {label}-----\n"));
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// The `application/pem-certificate-chain` body: the leaf, then the chain.
pub fn pem_chain(leaf_der: &[u8], chain_der: &[Vec<u8>]) -> String {
    std::iter::once(leaf_der)
        .chain(chain_der.iter().map(Vec::as_slice))
        .map(|der| pem_encode("CERTIFICATE", der))
        .collect()
}

pub(crate) fn parse_cert(cert_der: &[u8]) -> Result<Certificate, CertError> {
    Certificate::from_der(cert_der).map_err(|e| CertError(e.to_string()))
}

/// The DER SubjectPublicKeyInfo of a certificate (for revocation by
/// certificate key: compare with the JWS key's SPKI).
///
/// # Errors
/// [`CertError`] if the certificate does not parse.
pub fn spki_of_cert(cert_der: &[u8]) -> Result<Vec<u8>, CertError> {
    parse_cert(cert_der)?
        .tbs_certificate()
        .subject_public_key_info()
        .to_der()
        .map_err(|e| CertError(e.to_string()))
}

/// Lower-case hex of the serial number as an unsigned big-endian integer
/// (the DER sign byte `00` is dropped), e.g. `"1a2b3c"`. This is the form
/// ADCS and `openssl x509 -serial` show (modulo case).
pub(crate) fn serial_hex(content: &[u8]) -> String {
    let first_nonzero = content
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(content.len().saturating_sub(1));
    content
        .get(first_nonzero..)
        .unwrap_or(content)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Serial number of a certificate, see [`serial_hex`](self) rules: lower-case
/// hex without the DER sign byte.
///
/// # Errors
/// [`CertError`] if the certificate does not parse.
pub fn serial_hex_of_cert(cert_der: &[u8]) -> Result<String, CertError> {
    Ok(serial_hex(
        parse_cert(cert_der)?
            .tbs_certificate()
            .serial_number()
            .as_bytes(),
    ))
}

/// `notAfter` and the dNSName subject alternative names of a certificate,
/// in certificate order. Used to decide whether a cached certificate still
/// fits (certeasy's own listener certificate).
///
/// # Errors
/// [`CertError`] if the certificate or its SAN extension does not parse.
pub fn leaf_expiry_and_names(
    cert_der: &[u8],
) -> Result<(time::OffsetDateTime, Vec<String>), CertError> {
    use x509_cert::ext::pkix::name::GeneralName;
    use x509_cert::ext::pkix::SubjectAltName;
    let cert = parse_cert(cert_der)?;
    let tbs = cert.tbs_certificate();
    let secs = i64::try_from(tbs.validity().not_after.to_unix_duration().as_secs())
        .map_err(|_| CertError("notAfter out of range".into()))?;
    let not_after =
        time::OffsetDateTime::from_unix_timestamp(secs).map_err(|e| CertError(e.to_string()))?;
    let mut names = Vec::new();
    for ext in tbs.extensions().map(Vec::as_slice).unwrap_or_default() {
        if ext.extn_id == crate::oids::SUBJECT_ALT_NAME {
            let san = SubjectAltName::from_der(ext.extn_value.as_bytes())
                .map_err(|e| CertError(e.to_string()))?;
            for gn in san.0 {
                if let GeneralName::DnsName(d) = gn {
                    names.push(d.as_str().to_string());
                }
            }
        }
    }
    Ok((not_after, names))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn serial_hex_drops_sign_byte() {
        assert_eq!(serial_hex(&[0x00, 0x80, 0x01]), "8001");
        assert_eq!(serial_hex(&[0x7f]), "7f");
        assert_eq!(serial_hex(&[0x00]), "00");
        assert_eq!(serial_hex(&[0x01, 0x00]), "0100");
    }

    #[test]
    fn pem_errors() {
        assert_eq!(pem_to_der_certs(""), Err(PemError::NoCertificates));
        assert_eq!(pem_to_der_certs("hello"), Err(PemError::NoCertificates));
        assert!(matches!(
            pem_to_der_certs("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"),
            Err(PemError::UnexpectedBlock { label }) if label == "PRIVATE KEY"
        ));
        assert_eq!(
            pem_to_der_certs("-----BEGIN CERTIFICATE-----\nAAAA\n"),
            Err(PemError::Unterminated { index: 0 })
        );
        assert!(matches!(
            pem_to_der_certs("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----"),
            Err(PemError::Base64 { index: 0, .. })
        ));
        assert!(matches!(
            pem_to_der_certs("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----"),
            Err(PemError::NotACertificate { index: 0, .. })
        ));
    }

    #[test]
    fn pem_encode_wraps_at_64() {
        let pem = pem_encode("CERTIFICATE", &[0u8; 100]);
        let lines: Vec<&str> = pem.lines().collect();
        assert_eq!(lines[0], BEGIN_CERT);
        assert_eq!(lines[1].len(), 64);
        assert_eq!(*lines.last().unwrap(), END_CERT);
    }
}
