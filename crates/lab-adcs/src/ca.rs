//! The lab CA: an ECDSA P-256 root (generated once, kept in the state
//! directory) that signs PKCS #10 requests with rcgen.

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName,
    DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PublicKeyData,
    SerialNumber, PKCS_ECDSA_P256_SHA256,
};
use time::{Duration, OffsetDateTime};

use crate::config::{eku_oid, Template};

/// CA errors.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// File I/O.
    #[error("{path}: {source}")]
    Io {
        /// File.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// rcgen failure.
    #[error("certificate generation: {0}")]
    Rcgen(#[from] rcgen::Error),
}

/// Reasons a CSR is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CsrRefusal {
    /// Not a parseable / validly signed PKCS #10.
    #[error("the request is not a valid PKCS #10: {0}")]
    Malformed(String),
    /// Key too small or of a refused type.
    #[error("{0}")]
    Key(String),
}

/// The loaded CA.
pub struct Ca {
    issuer: Issuer<'static, KeyPair>,
    cert_der: Vec<u8>,
    cert_pem: String,
    cert_path: PathBuf,
}

impl std::fmt::Debug for Ca {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ca")
            .field("cert_path", &self.cert_path)
            .finish()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CaError + '_ {
    move |source| CaError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl Ca {
    /// Loads the CA from `dir`, creating key and self-signed certificate on first use.
    pub fn load_or_create(dir: &Path, common_name: &str) -> Result<Ca, CaError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        let key_path = dir.join("ca-key.pem");
        let cert_path = dir.join("ca-cert.pem");
        if key_path.exists() && cert_path.exists() {
            let key_pem = std::fs::read_to_string(&key_path).map_err(io(&key_path))?;
            let cert_pem = std::fs::read_to_string(&cert_path).map_err(io(&cert_path))?;
            let key = KeyPair::from_pem(&key_pem)?;
            let cert_der = pem_to_der(&cert_pem).ok_or(rcgen::Error::CouldNotParseCertificate)?;
            let issuer = Issuer::from_ca_cert_der(&cert_der.clone().into(), key)?;
            return Ok(Ca {
                issuer,
                cert_der,
                cert_pem,
                cert_path,
            });
        }
        let key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, common_name);
        dn.push(DnType::OrganizationName, "lab-adcs (NOT FOR PRODUCTION)");
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::hours(1);
        params.not_after = now + Duration::days(3650);
        let cert = params.self_signed(&key)?;
        let cert_pem = cert.pem();
        std::fs::write(&key_path, key.serialize_pem()).map_err(io(&key_path))?;
        std::fs::write(&cert_path, &cert_pem).map_err(io(&cert_path))?;
        let cert_der = cert.der().to_vec();
        let issuer = Issuer::new(params, key);
        Ok(Ca {
            issuer,
            cert_der,
            cert_pem,
            cert_path,
        })
    }

    /// Root certificate (DER).
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// Root certificate (PEM).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Where the root certificate was written.
    pub fn cert_path(&self) -> &Path {
        &self.cert_path
    }

    /// Checks a CSR against a template without issuing.
    pub fn check(
        csr_der: &[u8],
        template: &Template,
    ) -> Result<CertificateSigningRequestParams, CsrRefusal> {
        let csr = CertificateSigningRequestParams::from_der(&csr_der.to_vec().into())
            .map_err(|e| CsrRefusal::Malformed(e.to_string()))?;
        let alg = csr.public_key.algorithm();
        if alg == &PKCS_ECDSA_P256_SHA256 || alg == &rcgen::PKCS_ECDSA_P384_SHA384 {
            if !template.allow_ecdsa {
                return Err(CsrRefusal::Key("template requires an RSA key".into()));
            }
        } else if alg == &rcgen::PKCS_RSA_SHA256
            || alg == &rcgen::PKCS_RSA_SHA384
            || alg == &rcgen::PKCS_RSA_SHA512
        {
            let bits = rsa_modulus_bits(csr.public_key.der_bytes())
                .ok_or_else(|| CsrRefusal::Malformed("unparseable RSA public key".into()))?;
            if bits < template.min_rsa_bits {
                return Err(CsrRefusal::Key(format!(
                    "RSA key of {bits} bits is below the template minimum of {}",
                    template.min_rsa_bits
                )));
            }
        } else {
            return Err(CsrRefusal::Key("unsupported key type".into()));
        }
        Ok(csr)
    }

    /// Issues a certificate for a CSR under `template`; `serial_seed` makes
    /// the serial unique (request id).
    pub fn issue(
        &self,
        csr_der: &[u8],
        template: &Template,
        serial_seed: u32,
    ) -> Result<Vec<u8>, IssueError> {
        let mut csr = Self::check(csr_der, template).map_err(IssueError::Refused)?;
        let now = OffsetDateTime::now_utc();
        let p = &mut csr.params;
        p.not_before = now - Duration::minutes(5);
        p.not_after = now + Duration::days(i64::from(template.validity_days));
        p.is_ca = IsCa::ExplicitNoCa;
        p.use_authority_key_identifier_extension = true;
        let nanos = now.unix_timestamp_nanos().to_be_bytes();
        let mut serial = vec![0x01];
        serial.extend_from_slice(&nanos[8..]);
        serial.extend_from_slice(&serial_seed.to_be_bytes());
        p.serial_number = Some(SerialNumber::from_slice(&serial));
        p.extended_key_usages = template
            .eku
            .iter()
            .filter_map(|e| match e.as_str() {
                "serverAuth" => Some(ExtendedKeyUsagePurpose::ServerAuth),
                "clientAuth" => Some(ExtendedKeyUsagePurpose::ClientAuth),
                other => eku_oid(other).map(ExtendedKeyUsagePurpose::Other),
            })
            .collect();
        if p.key_usages.is_empty() {
            p.key_usages = vec![
                KeyUsagePurpose::DigitalSignature,
                KeyUsagePurpose::KeyEncipherment,
            ];
        }
        let cert = if template.substitute_key {
            // Lab misbehaviour: certify a key of the CA's own making instead
            // of the request's (a broken or hostile CA).
            let other = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)
                .map_err(|e| IssueError::Ca(CaError::Rcgen(e)))?;
            csr.params.signed_by(&other, &self.issuer)
        } else {
            csr.signed_by(&self.issuer)
        }
        .map_err(|e| IssueError::Ca(CaError::Rcgen(e)))?;
        Ok(cert.der().to_vec())
    }
}

/// Issuance failure.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The request does not meet the template.
    #[error(transparent)]
    Refused(CsrRefusal),
    /// CA failure.
    #[error(transparent)]
    Ca(CaError),
}

/// Bit length of an RSAPublicKey's modulus (DER `SEQUENCE { INTEGER n, INTEGER e }`).
fn rsa_modulus_bits(der: &[u8]) -> Option<u32> {
    fn tlv(b: &[u8]) -> Option<(u8, &[u8], &[u8])> {
        let tag = *b.first()?;
        let l0 = *b.get(1)?;
        let (len, hdr) = if l0 < 0x80 {
            (usize::from(l0), 2)
        } else {
            let n = usize::from(l0 & 0x7f);
            if n == 0 || n > 4 {
                return None;
            }
            let mut len = 0usize;
            for i in 0..n {
                len = (len << 8) | usize::from(*b.get(2 + i)?);
            }
            (len, 2 + n)
        };
        let body = b.get(hdr..hdr.checked_add(len)?)?;
        Some((tag, body, &b[hdr + len..]))
    }
    let (t, seq, _) = tlv(der)?;
    if t != 0x30 {
        return None;
    }
    let (t, n, _) = tlv(seq)?;
    if t != 0x02 {
        return None;
    }
    let n = match n.iter().position(|&x| x != 0) {
        Some(i) => &n[i..],
        None => return Some(0),
    };
    let lead = 8 - n[0].leading_zeros();
    u32::try_from(n.len() - 1).ok().map(|l| l * 8 + lead)
}

/// Extracts the DER of the first PEM block.
pub fn pem_to_der(pem: &str) -> Option<Vec<u8>> {
    use base64::Engine;
    let mut inside = false;
    let mut b64 = String::new();
    for line in pem.lines() {
        let l = line.trim();
        if l.starts_with("-----BEGIN") {
            inside = true;
            continue;
        }
        if l.starts_with("-----END") {
            break;
        }
        if inside {
            b64.push_str(l);
        }
    }
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// PEM-encodes DER.
pub fn der_to_pem(label: &str, der: &[u8]) -> String {
    use base64::Engine;
    let b = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

fn der_tlv(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![tag];
    let n = body.len();
    if n < 0x80 {
        v.push(n as u8);
    } else {
        let bytes = n.to_be_bytes();
        let skip = bytes.iter().take_while(|&&b| b == 0).count();
        v.push(0x80 | (bytes.len() - skip) as u8);
        v.extend_from_slice(&bytes[skip..]);
    }
    v.extend_from_slice(body);
    v
}

/// A degenerate ("certs-only") PKCS #7 SignedData carrying `certs`, as
/// ADCS returns in `pctbCert`.
pub fn certs_only_pkcs7(certs: &[&[u8]]) -> Vec<u8> {
    const OID_SIGNED_DATA: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
    const OID_DATA: [u8; 9] = [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x01];
    let mut sd = Vec::new();
    sd.extend(der_tlv(0x02, &[1])); // version 1
    sd.extend(der_tlv(0x31, &[])); // digestAlgorithms
    sd.extend(der_tlv(0x30, &der_tlv(0x06, &OID_DATA))); // encapContentInfo
    let all: Vec<u8> = certs.iter().flat_map(|c| c.to_vec()).collect();
    sd.extend(der_tlv(0xa0, &all)); // [0] IMPLICIT certificates
    sd.extend(der_tlv(0x31, &[])); // signerInfos
    let signed_data = der_tlv(0x30, &sd);
    let mut ci = der_tlv(0x06, &OID_SIGNED_DATA);
    ci.extend(der_tlv(0xa0, &signed_data));
    der_tlv(0x30, &ci)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modulus_bits() {
        // SEQUENCE { INTEGER 0x00 0x80 .. (2 octets → 16 bits), INTEGER 3 }
        assert_eq!(
            rsa_modulus_bits(&[0x30, 0x08, 0x02, 0x03, 0x00, 0x80, 0x01, 0x02, 0x01, 0x03]),
            Some(16)
        );
        assert_eq!(rsa_modulus_bits(&[0x31, 0x00]), None);
        assert_eq!(rsa_modulus_bits(&[]), None);
    }

    #[test]
    fn pkcs7_shape() {
        let p = certs_only_pkcs7(&[&[0x30, 0x00], &[0x30, 0x00]]);
        assert_eq!(p[0], 0x30);
        assert_eq!(
            &p[2..13],
            &[0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02]
        );
        assert_eq!(der_tlv(0x04, &[0u8; 200])[..3], [0x04, 0x81, 200]);
    }
}
