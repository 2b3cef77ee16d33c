//! ACME Renewal Information (RFC 9773) certificate identifiers.
//!
//! `CertID = base64url(AKI keyIdentifier) "." base64url(serial)`, where the
//! serial is the content octets of the DER INTEGER (so it keeps a leading
//! `00` when the high bit is set), both without padding.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use der::Decode;
use x509_cert::ext::pkix::AuthorityKeyIdentifier;
use x509_cert::Certificate;

use crate::oids;

/// A CertID could not be built or parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AriError {
    /// The certificate does not parse.
    #[error("certificate does not parse: {0}")]
    Certificate(String),
    /// The certificate has no AKI keyIdentifier.
    #[error(
        "certificate has no authorityKeyIdentifier keyIdentifier; an ARI CertID cannot be built"
    )]
    NoAki,
    /// The CertID is not `aki.serial`.
    #[error("renewal-info CertID {0:?} is not of the form base64url(AKI) \".\" base64url(serial)")]
    Format(String),
    /// A part is not strict unpadded base64url.
    #[error("renewal-info CertID {part} is not unpadded base64url: {reason}")]
    Base64 {
        /// `AKI` or `serial`.
        part: &'static str,
        /// Decoder message.
        reason: String,
    },
    /// The serial is not the content of a positive, minimally encoded DER INTEGER.
    #[error("renewal-info CertID serial is not a positive minimal DER INTEGER")]
    Serial,
}

/// The RFC 9773 CertID of a certificate.
///
/// # Errors
/// [`AriError::Certificate`] or [`AriError::NoAki`].
pub fn ari_cert_id(leaf_der: &[u8]) -> Result<String, AriError> {
    let cert = Certificate::from_der(leaf_der).map_err(|e| AriError::Certificate(e.to_string()))?;
    let tbs = cert.tbs_certificate();
    let key_id = aki_key_id(&cert)?;
    Ok(format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(&key_id),
        URL_SAFE_NO_PAD.encode(tbs.serial_number().as_bytes())
    ))
}

/// The AKI keyIdentifier of a certificate (the first half of its CertID).
///
/// # Errors
/// [`AriError::Certificate`] or [`AriError::NoAki`].
pub fn aki_key_id_of(leaf_der: &[u8]) -> Result<Vec<u8>, AriError> {
    let cert = Certificate::from_der(leaf_der).map_err(|e| AriError::Certificate(e.to_string()))?;
    aki_key_id(&cert)
}

/// The serial of a CertID (DER INTEGER content) as certeasy stores
/// serials: lower-case hex without leading zero bytes.
pub fn ari_serial_hex(serial_content: &[u8]) -> String {
    crate::certs::serial_hex(serial_content)
}

fn aki_key_id(cert: &Certificate) -> Result<Vec<u8>, AriError> {
    let tbs = cert.tbs_certificate();
    let aki_ext = tbs
        .extensions()
        .and_then(|exts| {
            exts.iter()
                .find(|e| e.extn_id == oids::AUTHORITY_KEY_IDENTIFIER)
        })
        .ok_or(AriError::NoAki)?;
    let aki = AuthorityKeyIdentifier::from_der(aki_ext.extn_value.as_bytes())
        .map_err(|e| AriError::Certificate(e.to_string()))?;
    let key_id = aki.key_identifier.ok_or(AriError::NoAki)?;
    if key_id.as_bytes().is_empty() {
        return Err(AriError::NoAki);
    }
    Ok(key_id.as_bytes().to_vec())
}

/// Parses a CertID into `(aki keyIdentifier, serial INTEGER content bytes)`.
/// Padding, `+`/`/`, non-canonical trailing bits, empty parts and
/// non-minimal or negative serials are refused.
///
/// # Errors
/// An [`AriError`] naming the problem.
pub fn parse_ari_cert_id(s: &str) -> Result<(Vec<u8>, Vec<u8>), AriError> {
    let Some((aki, serial)) = s.split_once('.') else {
        return Err(AriError::Format(s.to_owned()));
    };
    if aki.is_empty() || serial.is_empty() || serial.contains('.') {
        return Err(AriError::Format(s.to_owned()));
    }
    let decode = |part: &'static str, text: &str| {
        URL_SAFE_NO_PAD
            .decode(text.as_bytes())
            .map_err(|e| AriError::Base64 {
                part,
                reason: e.to_string(),
            })
    };
    let aki = decode("AKI", aki)?;
    let serial = decode("serial", serial)?;
    match serial.as_slice() {
        [] => return Err(AriError::Serial),
        [first, ..] if first & 0x80 != 0 => return Err(AriError::Serial),
        [0, second, ..] if second & 0x80 == 0 => return Err(AriError::Serial),
        _ => {}
    }
    Ok((aki, serial))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parse_strict() {
        // RFC 9773 example: aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE
        let (aki, serial) = parse_ari_cert_id("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE").unwrap();
        assert_eq!(aki.len(), 20);
        assert_eq!(serial, vec![0x00, 0x87, 0x65, 0x43, 0x21]);
        for bad in [
            "",
            ".",
            "abc",
            "abc.",
            ".abc",
            "a.b.c",
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ=.AIdlQyE",
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE=",
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdl+yE",
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdl/yE",
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyF", // non-zero trailing bits
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ.gA",      // 0x80: negative
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ.AAE",     // 00 01: not minimal
            "aYhba4dGQEHhs3uEe6CuLN4ByNQ. AIdlQyE",
        ] {
            assert!(parse_ari_cert_id(bad).is_err(), "{bad:?}");
        }
        assert_eq!(parse_ari_cert_id("AQ.AA").unwrap(), (vec![1], vec![0]));
        assert_eq!(
            parse_ari_cert_id("AQ.AIA").unwrap(),
            (vec![1], vec![0, 0x80])
        );
    }

    #[test]
    fn cert_without_aki() {
        assert!(matches!(
            ari_cert_id(b"junk"),
            Err(AriError::Certificate(_))
        ));
    }
}
