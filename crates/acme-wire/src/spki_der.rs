//! `SubjectPublicKeyInfo` (RFC 5280 §4.1.2.7) to [`Jwk`].

use der::asn1::{ObjectIdentifier, UintRef};
use der::Decode;
use spki::SubjectPublicKeyInfoRef;

use crate::{EcCurve, Jwk, WireError};

const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const ED25519: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.101.112");
const SECP256R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const SECP384R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.34");
const SECP521R1: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.132.0.35");

/// PKCS#1 `RSAPublicKey`.
#[derive(der::Sequence)]
struct RsaPublicKey<'a> {
    modulus: UintRef<'a>,
    public_exponent: UintRef<'a>,
}

pub(crate) fn jwk_from_spki(der: &[u8]) -> Result<Jwk, WireError> {
    let spki = SubjectPublicKeyInfoRef::from_der(der)
        .map_err(|e| WireError::malformed(format!("SubjectPublicKeyInfo is not valid DER: {e}")))?;
    let key = spki.subject_public_key.as_bytes().ok_or_else(|| {
        WireError::malformed("SubjectPublicKeyInfo key BIT STRING has unused bits")
    })?;
    let params = spki.algorithm.parameters;
    match spki.algorithm.oid {
        RSA_ENCRYPTION => {
            if params.is_some_and(|p| !p.is_null()) {
                return Err(WireError::malformed(
                    "rsaEncryption parameters must be NULL or absent",
                ));
            }
            let rsa = RsaPublicKey::from_der(key).map_err(|e| {
                WireError::malformed(format!("RSAPublicKey is not valid DER: {e}"))
            })?;
            Jwk::rsa(
                rsa.modulus.as_bytes().to_vec(),
                rsa.public_exponent.as_bytes().to_vec(),
            )
        }
        EC_PUBLIC_KEY => {
            let oid: ObjectIdentifier = params
                .ok_or_else(|| WireError::malformed("id-ecPublicKey without curve parameters"))?
                .decode_as()
                .map_err(|_| {
                    WireError::bad_key("EC parameters must name a curve (explicit curves are not supported)")
                })?;
            let curve = match oid {
                SECP256R1 => EcCurve::P256,
                SECP384R1 => EcCurve::P384,
                SECP521R1 => EcCurve::P521,
                other => {
                    return Err(WireError::bad_key(format!(
                        "unsupported EC curve {other}; supported: P-256, P-384, P-521"
                    )))
                }
            };
            let len = curve.coordinate_len();
            match key.split_first() {
                Some((0x04, xy)) if xy.len() == 2 * len => {
                    let (x, y) = xy.split_at(len);
                    Jwk::ec(curve, x.to_vec(), y.to_vec())
                }
                Some((0x02 | 0x03, _)) => Err(WireError::bad_key(
                    "compressed EC points are not supported",
                )),
                _ => Err(WireError::bad_key(format!(
                    "EC {curve} public key is not an uncompressed point of {} bytes",
                    1 + 2 * len
                ))),
            }
        }
        ED25519 => {
            if params.is_some() {
                return Err(WireError::malformed("Ed25519 parameters must be absent"));
            }
            Jwk::ed25519(key.to_vec())
        }
        other => Err(WireError::bad_key(format!(
            "unsupported public key algorithm {other}; supported: RSA, EC (P-256, P-384, P-521), Ed25519"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_keys;

    #[test]
    fn round_trips_every_key_type() {
        for k in test_keys::all() {
            let from_spki = Jwk::from_spki_der(&k.spki).unwrap();
            assert_eq!(from_spki, k.public, "{}", k.public.describe());
            assert_eq!(from_spki.thumbprint(), k.public.thumbprint());
            let from_json = Jwk::from_json(&k.public.to_json()).unwrap();
            assert_eq!(from_spki.thumbprint(), from_json.thumbprint());
        }
    }

    #[test]
    fn rsa_spki_from_openssl() {
        let jwk = Jwk::from_spki_der(test_keys::RSA2048_SPKI).unwrap();
        assert_eq!(jwk.describe(), "RSA-2048");
        let Jwk::Rsa { n, e } = &jwk else {
            unreachable!()
        };
        assert_eq!(n.len(), 256);
        assert_ne!(n[0], 0);
        assert_eq!(e, &[1, 0, 1]);
    }

    #[test]
    fn rejects_garbage_and_trailing_data() {
        assert!(matches!(
            Jwk::from_spki_der(b""),
            Err(WireError::Malformed(_))
        ));
        assert!(matches!(
            Jwk::from_spki_der(b"\x30\x00"),
            Err(WireError::Malformed(_))
        ));
        let mut spki = test_keys::RSA2048_SPKI.to_vec();
        spki.push(0);
        assert!(matches!(
            Jwk::from_spki_der(&spki),
            Err(WireError::Malformed(_))
        ));
        let truncated = &test_keys::RSA2048_SPKI[..test_keys::RSA2048_SPKI.len() - 1];
        assert!(matches!(
            Jwk::from_spki_der(truncated),
            Err(WireError::Malformed(_))
        ));
    }

    #[test]
    fn rejects_tampered_ec_point() {
        let mut spki = test_keys::p256().spki;
        let last = spki.len() - 1;
        spki[last] ^= 1;
        assert!(
            matches!(Jwk::from_spki_der(&spki), Err(WireError::BadPublicKey(m)) if m.contains("not on curve"))
        );
    }

    #[test]
    fn rejects_compressed_point() {
        // Rewrite a P-256 SPKI with a compressed point by hand.
        let Jwk::Ec { x, y, .. } = test_keys::p256().public else {
            unreachable!()
        };
        let mut point = vec![0x02 | (y[31] & 1)];
        point.extend_from_slice(&x);
        let mut spki = vec![0x30, 0x39, 0x30, 0x13, 0x06, 0x07];
        spki.extend_from_slice(&[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01]);
        spki.extend_from_slice(&[0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07]);
        spki.extend_from_slice(&[0x03, 0x22, 0x00]);
        spki.extend_from_slice(&point);
        assert!(
            matches!(Jwk::from_spki_der(&spki), Err(WireError::BadPublicKey(m)) if m.contains("compressed"))
        );
    }

    #[test]
    fn rejects_unsupported_algorithm() {
        // X25519 (1.3.101.110) SPKI.
        let mut spki = vec![
            0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00,
        ];
        spki.extend_from_slice(&[9u8; 32]);
        assert!(
            matches!(Jwk::from_spki_der(&spki), Err(WireError::BadPublicKey(m)) if m.contains("1.3.101.110"))
        );
    }
}
