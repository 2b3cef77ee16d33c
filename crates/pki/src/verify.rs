//! Public keys and signatures: SPKI classification and signature checks with
//! ring, shared by the CSR model, the issued-certificate check and chain
//! linking.
//!
//! Supported (what ring 0.17 verifies):
//! * RSA PKCS#1 v1.5 with SHA-256/384/512, 2048 to 8192-bit moduli;
//! * ECDSA P-256 and P-384 with SHA-256 or SHA-384 (ASN.1 signatures);
//! * Ed25519.
//!
//! Refused with an explicit message: MD2/MD5/SHA-1/SHA-224 signatures,
//! RSASSA-PSS, ECDSA with SHA-512 and any P-521 key (ring has no P-521
//! verification, so P-521 keys are refused as "curve not allowed" even when
//! the policy lists P-521), DSA, Ed448 and unknown algorithms.

use der::asn1::{AnyRef, BitStringRef, UintRef};
use der::{Decode, Reader, SliceReader, Tag, Tagged};
use ring::signature as rs;
use spki::{AlgorithmIdentifierRef, SubjectPublicKeyInfoRef};

use crate::oids;
use crate::policy::{EcCurve, SignatureAlgorithm};

/// The kind and size of a public key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PublicKeyKind {
    /// RSA with the modulus size in bits.
    Rsa {
        /// Modulus size in bits.
        bits: u32,
    },
    /// ECDSA on a named curve.
    Ec(EcCurve),
    /// Ed25519.
    Ed25519,
}

impl std::fmt::Display for PublicKeyKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PublicKeyKind::Rsa { bits } => write!(f, "RSA {bits}-bit"),
            PublicKeyKind::Ec(c) => write!(f, "ECDSA {c}"),
            PublicKeyKind::Ed25519 => f.write_str("Ed25519"),
        }
    }
}

/// A key or signature problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The public key is malformed or of an unsupported type.
    #[error("{0}")]
    Key(String),
    /// The signature algorithm is unsupported, forbidden or does not fit the key.
    #[error("{0}")]
    Algorithm(String),
    /// The signature does not verify.
    #[error("{0}")]
    BadSignature(String),
    /// The signed structure is not DER.
    #[error("{0}")]
    Structure(String),
}

/// A classified public key borrowed from an SPKI.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ParsedKey<'a> {
    pub kind: PublicKeyKind,
    /// The subjectPublicKey BIT STRING contents (RSAPublicKey DER, EC point,
    /// or raw Ed25519 key).
    pub key: &'a [u8],
}

fn key_err(s: impl Into<String>) -> VerifyError {
    VerifyError::Key(s.into())
}

fn is_null(any: &AnyRef<'_>) -> bool {
    any.tag() == Tag::Null && any.value().is_empty()
}

/// Modulus size of a DER RSAPublicKey.
fn rsa_bits(key: &[u8]) -> Result<u32, VerifyError> {
    let mut reader = SliceReader::new(key).map_err(|e| key_err(format!("RSA public key: {e}")))?;
    let (n, _e) = reader
        .sequence(|r| Ok::<_, der::Error>((r.decode::<UintRef<'_>>()?, r.decode::<UintRef<'_>>()?)))
        .map_err(|e| key_err(format!("RSA public key is not DER: {e}")))?;
    reader
        .finish()
        .map_err(|e| key_err(format!("RSA public key has trailing data: {e}")))?;
    let bytes = n.as_bytes();
    let Some(first) = bytes.first() else {
        return Err(key_err("RSA modulus is zero"));
    };
    let bits = (bytes.len() - 1) * 8 + (8 - first.leading_zeros() as usize);
    u32::try_from(bits).map_err(|_| key_err("RSA modulus is absurdly large"))
}

/// Classifies a DER SubjectPublicKeyInfo.
pub(crate) fn parse_spki(spki_der: &[u8]) -> Result<ParsedKey<'_>, VerifyError> {
    let spki = SubjectPublicKeyInfoRef::from_der(spki_der)
        .map_err(|e| key_err(format!("SubjectPublicKeyInfo is not DER: {e}")))?;
    parse_spki_ref(&spki)
}

pub(crate) fn parse_spki_ref<'a>(
    spki: &SubjectPublicKeyInfoRef<'a>,
) -> Result<ParsedKey<'a>, VerifyError> {
    let alg = &spki.algorithm;
    let key = spki
        .subject_public_key
        .as_bytes()
        .ok_or_else(|| key_err("subjectPublicKey BIT STRING has unused bits"))?;
    let kind = if alg.oid == oids::RSA_ENCRYPTION {
        if !alg.parameters.as_ref().is_some_and(is_null) {
            return Err(key_err("rsaEncryption key parameters must be NULL"));
        }
        PublicKeyKind::Rsa {
            bits: rsa_bits(key)?,
        }
    } else if alg.oid == oids::EC_PUBLIC_KEY {
        let curve_oid = alg
            .parameters
            .as_ref()
            .and_then(|p| p.decode_as::<const_oid::ObjectIdentifier>().ok())
            .ok_or_else(|| key_err("EC public key parameters must be a namedCurve OID"))?;
        let curve = EcCurve::from_oid(&curve_oid).ok_or_else(|| {
            key_err(format!(
                "EC curve {} is not supported; use P-256 or P-384",
                oids::describe(&curve_oid)
            ))
        })?;
        let coord = match curve {
            EcCurve::P256 => 32,
            EcCurve::P384 => 48,
            EcCurve::P521 => 66,
        };
        if key.len() != 1 + 2 * coord || key.first() != Some(&0x04) {
            return Err(key_err(format!(
                "EC public key on {curve} must be an uncompressed point of {} bytes",
                1 + 2 * coord
            )));
        }
        PublicKeyKind::Ec(curve)
    } else if alg.oid == oids::ED25519 {
        if alg.parameters.is_some() {
            return Err(key_err("Ed25519 key must not have parameters"));
        }
        if key.len() != 32 {
            return Err(key_err("Ed25519 public key must be 32 bytes"));
        }
        PublicKeyKind::Ed25519
    } else {
        return Err(key_err(format!(
            "public key algorithm {} is not supported; use RSA, ECDSA P-256/P-384 or Ed25519",
            oids::describe(&alg.oid)
        )));
    };
    Ok(ParsedKey { kind, key })
}

/// Maps an AlgorithmIdentifier to a supported [`SignatureAlgorithm`], with a
/// precise message for the refused ones.
pub(crate) fn signature_algorithm(
    alg: &AlgorithmIdentifierRef<'_>,
) -> Result<SignatureAlgorithm, VerifyError> {
    let oid = &alg.oid;
    let Some(sa) = SignatureAlgorithm::from_oid(oid) else {
        let what = oids::describe(oid);
        let msg = if [
            oids::MD2_WITH_RSA,
            oids::MD5_WITH_RSA,
            oids::SHA1_WITH_RSA,
            oids::ECDSA_WITH_SHA1,
        ]
        .contains(oid)
        {
            format!("signature algorithm {what} is refused: MD2, MD5 and SHA-1 are broken; sign with SHA-256 or better")
        } else if *oid == oids::RSASSA_PSS {
            format!("signature algorithm {what} is not supported; sign with RSA PKCS#1 v1.5 (sha256WithRSAEncryption), ECDSA or Ed25519")
        } else if [oids::SHA224_WITH_RSA, oids::ECDSA_WITH_SHA224].contains(oid) {
            format!("signature algorithm {what} is refused; sign with SHA-256 or better")
        } else {
            format!("signature algorithm {what} is not supported")
        };
        return Err(VerifyError::Algorithm(msg));
    };
    let params_ok = match sa {
        SignatureAlgorithm::RsaSha256
        | SignatureAlgorithm::RsaSha384
        | SignatureAlgorithm::RsaSha512 => alg.parameters.as_ref().is_none_or(is_null),
        _ => alg.parameters.is_none(),
    };
    if !params_ok {
        return Err(VerifyError::Algorithm(format!(
            "signature algorithm {} has invalid parameters",
            oids::describe(oid)
        )));
    }
    Ok(sa)
}

/// Verifies `sig` over `msg` with `key` using `alg`.
pub(crate) fn verify(
    key: &ParsedKey<'_>,
    alg: SignatureAlgorithm,
    msg: &[u8],
    sig: &BitStringRef<'_>,
) -> Result<(), VerifyError> {
    let (ring_alg, sig) = verification(key, alg, sig)?;
    rs::UnparsedPublicKey::new(ring_alg, key.key)
        .verify(msg, sig)
        .map_err(|_| {
            VerifyError::BadSignature(format!(
                "{alg} signature does not verify with the {} key",
                key.kind
            ))
        })
}

/// Every check of [`verify`] but the cryptographic one: the signature's
/// encoding, and whether `alg` fits `key` and can be verified at all.
pub(crate) fn check_verifiable(
    key: &ParsedKey<'_>,
    alg: SignatureAlgorithm,
    sig: &BitStringRef<'_>,
) -> Result<(), VerifyError> {
    verification(key, alg, sig).map(|_| ())
}

/// The ring algorithm and the signature bytes for [`verify`].
fn verification<'s>(
    key: &ParsedKey<'_>,
    alg: SignatureAlgorithm,
    sig: &'s BitStringRef<'_>,
) -> Result<(&'static dyn rs::VerificationAlgorithm, &'s [u8]), VerifyError> {
    use SignatureAlgorithm as A;
    let sig = sig
        .as_bytes()
        .ok_or_else(|| VerifyError::BadSignature("signature BIT STRING has unused bits".into()))?;
    let mismatch = || {
        VerifyError::Algorithm(format!(
            "signature algorithm {alg} does not fit the {} key",
            key.kind
        ))
    };
    let ring_alg: &'static dyn rs::VerificationAlgorithm = match (key.kind, alg) {
        (PublicKeyKind::Rsa { .. }, A::RsaSha256) => &rs::RSA_PKCS1_2048_8192_SHA256,
        (PublicKeyKind::Rsa { .. }, A::RsaSha384) => &rs::RSA_PKCS1_2048_8192_SHA384,
        (PublicKeyKind::Rsa { .. }, A::RsaSha512) => &rs::RSA_PKCS1_2048_8192_SHA512,
        (PublicKeyKind::Ec(EcCurve::P256), A::EcdsaSha256) => &rs::ECDSA_P256_SHA256_ASN1,
        (PublicKeyKind::Ec(EcCurve::P256), A::EcdsaSha384) => &rs::ECDSA_P256_SHA384_ASN1,
        (PublicKeyKind::Ec(EcCurve::P384), A::EcdsaSha256) => &rs::ECDSA_P384_SHA256_ASN1,
        (PublicKeyKind::Ec(EcCurve::P384), A::EcdsaSha384) => &rs::ECDSA_P384_SHA384_ASN1,
        (PublicKeyKind::Ec(EcCurve::P521), _) => {
            return Err(VerifyError::Key(
                "EC curve P-521 is not allowed: P-521 signatures cannot be verified".into(),
            ))
        }
        (PublicKeyKind::Ec(_), A::EcdsaSha512) => {
            return Err(VerifyError::Algorithm(
                "signature algorithm ECDSA-SHA512 cannot be verified; sign with ECDSA-SHA256 or ECDSA-SHA384".into(),
            ))
        }
        (PublicKeyKind::Ed25519, A::Ed25519) => &rs::ED25519,
        _ => return Err(mismatch()),
    };
    Ok((ring_alg, sig))
}

/// The three parts of a signed structure (CSR, certificate), borrowed from
/// the input. The whole input must be one DER SEQUENCE with nothing after it.
#[derive(Debug)]
pub(crate) struct Signed<'a> {
    /// The to-be-signed structure, exactly as it appears in the input.
    pub tbs: &'a [u8],
    pub alg: AlgorithmIdentifierRef<'a>,
    pub sig: BitStringRef<'a>,
}

pub(crate) fn split_signed(der: &[u8]) -> Result<Signed<'_>, der::Error> {
    let mut reader = SliceReader::new(der)?;
    let signed = reader.sequence(|r| {
        let tbs = r.tlv_bytes()?;
        let alg = r.decode()?;
        let sig = r.decode()?;
        Ok::<_, der::Error>(Signed { tbs, alg, sig })
    })?;
    reader.finish()?;
    // The tbs must itself be a SEQUENCE.
    let mut tbs_reader = SliceReader::new(signed.tbs)?;
    der::Header::decode(&mut tbs_reader)?
        .tag()
        .assert_eq(Tag::Sequence)?;
    Ok(signed)
}

/// Verifies a signed structure (certificate or CSR) with the given key.
pub(crate) fn verify_signed(signed: &Signed<'_>, key: &ParsedKey<'_>) -> Result<(), VerifyError> {
    let alg = signature_algorithm(&signed.alg)?;
    verify(key, alg, signed.tbs, &signed.sig)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn split_signed_refuses_trailing_and_ber() {
        // SEQUENCE { SEQUENCE {}, SEQUENCE { OID 1.3.101.112 }, BIT STRING 00 }
        let good = [
            0x30, 0x0c, 0x30, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x01, 0x00,
        ];
        assert!(split_signed(&good).is_ok());
        let mut trailing = good.to_vec();
        trailing.push(0);
        assert!(split_signed(&trailing).is_err());
        // Non-minimal length on the outer SEQUENCE.
        let mut long = vec![0x30, 0x81, 0x0c];
        long.extend_from_slice(&good[2..]);
        assert!(split_signed(&long).is_err());
        // Indefinite length.
        let mut indef = vec![0x30, 0x80];
        indef.extend_from_slice(&good[2..]);
        indef.extend_from_slice(&[0, 0]);
        assert!(split_signed(&indef).is_err());
        // tbs not a SEQUENCE.
        let not_seq = [
            0x30, 0x0c, 0x31, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x01, 0x00,
        ];
        assert!(split_signed(&not_seq).is_err());
    }

    #[test]
    fn rsa_bits_counts_the_modulus() {
        // SEQUENCE { INTEGER 0x00 0x80 0x00.., INTEGER 3 } -> 16 bits.
        let key = [0x30, 0x08, 0x02, 0x03, 0x00, 0x80, 0x01, 0x02, 0x01, 0x03];
        assert_eq!(rsa_bits(&key).unwrap(), 16);
        let key = [0x30, 0x07, 0x02, 0x02, 0x01, 0x01, 0x02, 0x01, 0x03];
        assert_eq!(rsa_bits(&key).unwrap(), 9);
        assert!(rsa_bits(&[0x30, 0x00]).is_err());
    }
}
