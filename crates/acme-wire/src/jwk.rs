//! JSON Web Keys (RFC 7517 / RFC 7518 §6) restricted to public signing keys
//! usable for ACME account keys, and their RFC 7638 thumbprints.

use std::fmt;

use ring::digest::{digest, SHA256};
use serde_json::{json, Map, Value};

use crate::b64::{b64u_encode, decode_member};
use crate::json::type_name;
use crate::{Algorithm, WireError};

/// Smallest accepted RSA modulus, in bits.
pub const MIN_RSA_BITS: usize = 2048;
/// Largest accepted RSA modulus, in bits (the limit of the verifier).
pub const MAX_RSA_BITS: usize = 8192;

/// JWK members that only a private (or symmetric) key carries.
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "k", "oth"];

const SUPPORTED_KEYS: &str = "RSA, EC (P-256, P-384, P-521), OKP (Ed25519)";

/// A NIST elliptic curve supported for ECDSA account keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EcCurve {
    /// NIST P-256 (secp256r1), used with ES256.
    P256,
    /// NIST P-384 (secp384r1), used with ES384.
    P384,
    /// NIST P-521 (secp521r1), used with ES512.
    P521,
}

impl EcCurve {
    /// The JWK `crv` name: "P-256", "P-384" or "P-521".
    pub fn name(self) -> &'static str {
        match self {
            Self::P256 => "P-256",
            Self::P384 => "P-384",
            Self::P521 => "P-521",
        }
    }

    /// Parses a JWK `crv` name (exact, case-sensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "P-256" => Some(Self::P256),
            "P-384" => Some(Self::P384),
            "P-521" => Some(Self::P521),
            _ => None,
        }
    }

    /// Length in bytes of one coordinate (and of `r` / `s` in a signature).
    pub fn coordinate_len(self) -> usize {
        match self {
            Self::P256 => 32,
            Self::P384 => 48,
            Self::P521 => 66,
        }
    }

    /// The JWS algorithm that signs with this curve.
    pub fn algorithm(self) -> Algorithm {
        match self {
            Self::P256 => Algorithm::Es256,
            Self::P384 => Algorithm::Es384,
            Self::P521 => Algorithm::Es512,
        }
    }
}

impl fmt::Display for EcCurve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A public key from a JWK, in a normalised form: two encodings of the same key
/// (member order, extra members, leading zero bytes in RSA integers) give equal
/// values and equal thumbprints.
///
/// Values built by [`Jwk::from_json`], [`Jwk::from_spki_der`] and the
/// validating constructors ([`Jwk::rsa`], [`Jwk::ec`], [`Jwk::ed25519`]) are
/// always acceptable account keys. The variants are public for matching; a
/// value built directly from them is not validated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Jwk {
    /// RSA public key: big-endian modulus and exponent, no leading zero bytes.
    Rsa {
        /// Modulus, big-endian, no leading zero byte.
        n: Vec<u8>,
        /// Public exponent, big-endian, no leading zero byte.
        e: Vec<u8>,
    },
    /// ECDSA public key: affine coordinates, each exactly
    /// [`EcCurve::coordinate_len`] bytes.
    Ec {
        /// The curve.
        curve: EcCurve,
        /// X coordinate, big-endian, fixed length.
        x: Vec<u8>,
        /// Y coordinate, big-endian, fixed length.
        y: Vec<u8>,
    },
    /// Ed25519 public key (`kty` "OKP", `crv` "Ed25519").
    Ed25519 {
        /// The 32-byte public key.
        x: Vec<u8>,
    },
}

impl Jwk {
    /// Parses a public JWK strictly.
    ///
    /// - `kty` must be "RSA", "EC" (`crv` P-256/P-384/P-521) or "OKP"
    ///   (`crv` Ed25519); anything else is [`WireError::BadPublicKey`].
    /// - Private members (`d`, `p`, `q`, `dp`, `dq`, `qi`, `k`, `oth`) are
    ///   refused ([`WireError::BadPublicKey`]).
    /// - Required members must be strict base64url strings
    ///   ([`WireError::Malformed`] otherwise).
    /// - EC coordinates must be exactly the curve size and the point on the
    ///   curve; RSA `n` is normalised (leading zero bytes stripped), must be
    ///   odd and 2048 to 8192 bits; `e` must be odd, ≥ 3 and < 2^33.
    ///
    /// Other members (`alg`, `use`, `kid`, ...) are ignored.
    pub fn from_json(v: &Value) -> Result<Jwk, WireError> {
        let obj = v.as_object().ok_or_else(|| {
            WireError::malformed(format!("JWK must be a JSON object, got {}", type_name(v)))
        })?;
        let kty = str_member(obj, "kty")?;
        match kty {
            "RSA" | "EC" | "OKP" => {}
            "oct" => {
                return Err(WireError::bad_key(
                    "symmetric keys (kty \"oct\") cannot be used as account keys",
                ))
            }
            other => {
                return Err(WireError::bad_key(format!(
                    "unsupported key type (kty) \"{other}\"; supported: {SUPPORTED_KEYS}"
                )))
            }
        }
        if let Some(m) = PRIVATE_MEMBERS.iter().find(|m| obj.contains_key(**m)) {
            return Err(WireError::bad_key(format!(
                "JWK contains the private key member \"{m}\"; send only the public key"
            )));
        }
        match kty {
            "RSA" => Jwk::rsa(b64_member(obj, "n")?, b64_member(obj, "e")?),
            "EC" => {
                let crv = str_member(obj, "crv")?;
                let curve = EcCurve::from_name(crv).ok_or_else(|| {
                    WireError::bad_key(format!(
                        "unsupported EC curve \"{crv}\"; supported: P-256, P-384, P-521"
                    ))
                })?;
                Jwk::ec(curve, b64_member(obj, "x")?, b64_member(obj, "y")?)
            }
            _ => {
                let crv = str_member(obj, "crv")?;
                if crv != "Ed25519" {
                    return Err(WireError::bad_key(format!(
                        "unsupported OKP curve \"{crv}\"; supported: Ed25519"
                    )));
                }
                Jwk::ed25519(b64_member(obj, "x")?)
            }
        }
    }

    /// Extracts the key of a DER `SubjectPublicKeyInfo` (RSA, EC P-256/P-384/
    /// P-521 with an uncompressed point, Ed25519), applying the same checks as
    /// [`Jwk::from_json`]. Used to compare a certificate's key with a JWS key.
    pub fn from_spki_der(spki: &[u8]) -> Result<Jwk, WireError> {
        crate::spki_der::jwk_from_spki(spki)
    }

    /// Validating constructor for an RSA key. Leading zero bytes of `n` and
    /// `e` are stripped.
    pub fn rsa(n: Vec<u8>, e: Vec<u8>) -> Result<Jwk, WireError> {
        let n = strip_leading_zeros(n);
        let e = strip_leading_zeros(e);
        if n.is_empty() {
            return Err(WireError::bad_key("RSA modulus n is empty or zero"));
        }
        let bits = bit_len(&n);
        if bits < MIN_RSA_BITS {
            return Err(WireError::bad_key(format!(
                "RSA modulus is {bits} bits; at least {MIN_RSA_BITS} bits are required"
            )));
        }
        if bits > MAX_RSA_BITS {
            return Err(WireError::bad_key(format!(
                "RSA modulus is {bits} bits; at most {MAX_RSA_BITS} bits are supported"
            )));
        }
        if n.last().is_some_and(|b| b & 1 == 0) {
            return Err(WireError::bad_key("RSA modulus n is even"));
        }
        if e.is_empty() {
            return Err(WireError::bad_key("RSA exponent e is empty or zero"));
        }
        if bit_len(&e) > 33 {
            return Err(WireError::bad_key(
                "RSA exponent e is too large (at most 33 bits are supported)",
            ));
        }
        if e.last().is_some_and(|b| b & 1 == 0) || e == [1] {
            return Err(WireError::bad_key(
                "RSA exponent e must be odd and at least 3",
            ));
        }
        Ok(Jwk::Rsa { n, e })
    }

    /// Validating constructor for an EC key: coordinates of exactly the curve
    /// size, point on the curve.
    pub fn ec(curve: EcCurve, x: Vec<u8>, y: Vec<u8>) -> Result<Jwk, WireError> {
        let len = curve.coordinate_len();
        for (name, c) in [("x", &x), ("y", &y)] {
            if c.len() != len {
                return Err(WireError::bad_key(format!(
                    "EC {curve} coordinate {name} is {} bytes; exactly {len} are required",
                    c.len()
                )));
            }
        }
        let mut point = Vec::with_capacity(1 + 2 * len);
        point.push(0x04);
        point.extend_from_slice(&x);
        point.extend_from_slice(&y);
        let on_curve = match curve {
            EcCurve::P256 => p256::PublicKey::from_sec1_bytes(&point).is_ok(),
            EcCurve::P384 => p384::PublicKey::from_sec1_bytes(&point).is_ok(),
            EcCurve::P521 => p521::PublicKey::from_sec1_bytes(&point).is_ok(),
        };
        if !on_curve {
            return Err(WireError::bad_key(format!(
                "EC point is not on curve {curve}"
            )));
        }
        Ok(Jwk::Ec { curve, x, y })
    }

    /// Validating constructor for an Ed25519 key (32 bytes).
    pub fn ed25519(x: Vec<u8>) -> Result<Jwk, WireError> {
        if x.len() != 32 {
            return Err(WireError::bad_key(format!(
                "Ed25519 public key is {} bytes; exactly 32 are required",
                x.len()
            )));
        }
        Ok(Jwk::Ed25519 { x })
    }

    /// RFC 7638 thumbprint: base64url(SHA-256(canonical JSON of the required
    /// members in lexicographic order)). Identical for every encoding of the
    /// same key.
    pub fn thumbprint(&self) -> String {
        b64u_encode(digest(&SHA256, self.canonical_json().as_bytes()).as_ref())
    }

    /// The canonical public JWK (only the required members).
    pub fn to_json(&self) -> Value {
        match self {
            Jwk::Rsa { n, e } => json!({"kty": "RSA", "n": b64u_encode(n), "e": b64u_encode(e)}),
            Jwk::Ec { curve, x, y } => json!({
                "kty": "EC",
                "crv": curve.name(),
                "x": b64u_encode(x),
                "y": b64u_encode(y),
            }),
            Jwk::Ed25519 { x } => json!({"kty": "OKP", "crv": "Ed25519", "x": b64u_encode(x)}),
        }
    }

    /// A short description for messages and logs: "RSA-3072", "EC P-256",
    /// "Ed25519".
    pub fn describe(&self) -> String {
        match self {
            Jwk::Rsa { n, .. } => format!("RSA-{}", bit_len(n)),
            Jwk::Ec { curve, .. } => format!("EC {curve}"),
            Jwk::Ed25519 { .. } => "Ed25519".to_owned(),
        }
    }

    /// The JWS algorithm that goes with this key (RS256 for RSA).
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Jwk::Rsa { .. } => Algorithm::Rs256,
            Jwk::Ec { curve, .. } => curve.algorithm(),
            Jwk::Ed25519 { .. } => Algorithm::EdDsa,
        }
    }

    /// The RFC 7638 input: required members, lexicographic order, no
    /// whitespace. Values are base64url or fixed names, so need no escaping.
    fn canonical_json(&self) -> String {
        match self {
            Jwk::Rsa { n, e } => format!(
                r#"{{"e":"{}","kty":"RSA","n":"{}"}}"#,
                b64u_encode(e),
                b64u_encode(n)
            ),
            Jwk::Ec { curve, x, y } => format!(
                r#"{{"crv":"{}","kty":"EC","x":"{}","y":"{}"}}"#,
                curve.name(),
                b64u_encode(x),
                b64u_encode(y)
            ),
            Jwk::Ed25519 { x } => {
                format!(
                    r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                    b64u_encode(x)
                )
            }
        }
    }
}

fn str_member<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<&'a str, WireError> {
    match obj.get(name) {
        Some(Value::String(s)) => Ok(s),
        Some(other) => Err(WireError::malformed(format!(
            "JWK member \"{name}\" must be a string, got {}",
            type_name(other)
        ))),
        None => Err(WireError::malformed(format!(
            "JWK lacks the required member \"{name}\""
        ))),
    }
}

fn b64_member(obj: &Map<String, Value>, name: &str) -> Result<Vec<u8>, WireError> {
    let s = str_member(obj, name)?;
    decode_member(&format!("JWK member {name}"), s)
}

fn strip_leading_zeros(mut v: Vec<u8>) -> Vec<u8> {
    let zeros = v.iter().take_while(|b| **b == 0).count();
    v.drain(..zeros);
    v
}

/// Bit length of a big-endian unsigned integer without leading zero bytes.
fn bit_len(v: &[u8]) -> usize {
    match v.first() {
        Some(first) => (v.len() - 1) * 8 + (8 - first.leading_zeros() as usize),
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::b64::b64u_decode;
    use crate::test_keys;

    /// RFC 7638 §3.1 example key.
    const RFC7638_N: &str = "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw";

    fn rfc7638_json() -> Value {
        json!({"kty": "RSA", "n": RFC7638_N, "e": "AQAB", "alg": "RS256", "kid": "2011-04-29"})
    }

    #[test]
    fn rfc7638_vector() {
        let jwk = Jwk::from_json(&rfc7638_json()).unwrap();
        assert_eq!(
            jwk.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        assert_eq!(jwk.describe(), "RSA-2048");
        assert_eq!(jwk.algorithm(), Algorithm::Rs256);
    }

    #[test]
    fn rfc7638_canonical_json() {
        let jwk = Jwk::from_json(&rfc7638_json()).unwrap();
        assert_eq!(
            jwk.canonical_json(),
            format!(r#"{{"e":"AQAB","kty":"RSA","n":"{RFC7638_N}"}}"#)
        );
    }

    #[test]
    fn leading_zero_and_member_order_do_not_change_thumbprint() {
        let mut n = vec![0u8];
        n.extend(b64u_decode(RFC7638_N).unwrap());
        let padded: Value = serde_json::from_str(&format!(
            r#"{{"n":"{}","e":"AAEAAQ","kty":"RSA","use":"sig"}}"#,
            b64u_encode(&n)
        ))
        .unwrap();
        let a = Jwk::from_json(&padded).unwrap();
        let b = Jwk::from_json(&rfc7638_json()).unwrap();
        assert_eq!(a, b);
        assert_eq!(
            a.thumbprint(),
            "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs"
        );
        assert_eq!(
            a.to_json(),
            json!({"kty": "RSA", "n": RFC7638_N, "e": "AQAB"})
        );
    }

    #[test]
    fn to_json_round_trips() {
        for key in test_keys::all_public_jwks() {
            let again = Jwk::from_json(&key.to_json()).unwrap();
            assert_eq!(again, key);
            assert_eq!(again.thumbprint(), key.thumbprint());
        }
    }

    #[test]
    fn describe_each_type() {
        let names: Vec<String> = test_keys::all_public_jwks()
            .iter()
            .map(Jwk::describe)
            .collect();
        assert_eq!(
            names,
            ["RSA-2048", "EC P-256", "EC P-384", "EC P-521", "Ed25519"]
        );
        let mut n3072 = vec![0xc5u8; 384];
        n3072[383] = 0x01;
        assert_eq!(
            Jwk::rsa(n3072, vec![1, 0, 1]).unwrap().describe(),
            "RSA-3072"
        );
    }

    #[test]
    fn ec_members_and_thumbprint_format() {
        let key = test_keys::p256().public;
        let v = key.to_json();
        assert_eq!(v["kty"], "EC");
        assert_eq!(v["crv"], "P-256");
        assert_eq!(v.as_object().unwrap().len(), 4);
        let tp = key.thumbprint();
        assert_eq!(tp.len(), 43);
        assert_eq!(b64u_decode(&tp).unwrap().len(), 32);
    }

    fn expect_bad_key(v: Value, needle: &str) {
        match Jwk::from_json(&v) {
            Err(WireError::BadPublicKey(m)) => assert!(m.contains(needle), "{m}"),
            other => panic!("expected BadPublicKey containing {needle:?}, got {other:?}"),
        }
    }

    fn expect_malformed(v: Value, needle: &str) {
        match Jwk::from_json(&v) {
            Err(WireError::Malformed(m)) => assert!(m.contains(needle), "{m}"),
            other => panic!("expected Malformed containing {needle:?}, got {other:?}"),
        }
    }

    #[test]
    fn refuses_private_members() {
        for member in PRIVATE_MEMBERS {
            let mut v = rfc7638_json();
            v[member] = json!("AQAB");
            expect_bad_key(v, &format!("private key member \"{member}\""));
        }
        let mut ec = test_keys::p256().public.to_json();
        ec["d"] = json!("AQAB");
        expect_bad_key(ec, "\"d\"");
    }

    #[test]
    fn refuses_unknown_kty_and_curves() {
        expect_bad_key(json!({"kty": "oct", "k": "AQAB"}), "symmetric");
        expect_bad_key(
            json!({"kty": "RSA-PSS", "n": "AQAB", "e": "AQAB"}),
            "RSA-PSS",
        );
        let mut ec = test_keys::p256().public.to_json();
        ec["crv"] = json!("secp256k1");
        expect_bad_key(ec, "secp256k1");
        expect_bad_key(
            json!({"kty": "OKP", "crv": "X25519", "x": "AQAB"}),
            "X25519",
        );
        expect_bad_key(json!({"kty": "OKP", "crv": "Ed448", "x": "AQAB"}), "Ed448");
    }

    #[test]
    fn refuses_structural_errors() {
        expect_malformed(json!("string"), "JSON object");
        expect_malformed(json!({"n": RFC7638_N, "e": "AQAB"}), "\"kty\"");
        expect_malformed(json!({"kty": 1}), "must be a string");
        expect_malformed(json!({"kty": "RSA", "e": "AQAB"}), "\"n\"");
        expect_malformed(json!({"kty": "EC", "x": "AQAB", "y": "AQAB"}), "\"crv\"");
        expect_malformed(
            json!({"kty": "RSA", "n": RFC7638_N, "e": "AQAB="}),
            "padding",
        );
        let with_plus = RFC7638_N.replace('-', "+");
        expect_malformed(
            json!({"kty": "RSA", "n": with_plus, "e": "AQAB"}),
            "standard",
        );
    }

    #[test]
    fn refuses_small_or_odd_rsa() {
        let mut n1024 = vec![0xc1u8; 128];
        n1024[127] = 0x01;
        expect_bad_key(
            json!({"kty": "RSA", "n": b64u_encode(&n1024), "e": "AQAB"}),
            "1024 bits",
        );
        // A 2047-bit modulus (256 bytes but top bit clear).
        let mut n2047 = vec![0xffu8; 256];
        n2047[0] = 0x7f;
        expect_bad_key(
            json!({"kty": "RSA", "n": b64u_encode(&n2047), "e": "AQAB"}),
            "2047",
        );
        let mut even = b64u_decode(RFC7638_N).unwrap();
        *even.last_mut().unwrap() &= 0xfe;
        expect_bad_key(
            json!({"kty": "RSA", "n": b64u_encode(&even), "e": "AQAB"}),
            "even",
        );
        expect_bad_key(json!({"kty": "RSA", "n": "", "e": "AQAB"}), "empty");
        for bad_e in ["", "AA", "AQ", "Ag", "AQAAAAAB"] {
            expect_bad_key(
                json!({"kty": "RSA", "n": RFC7638_N, "e": bad_e}),
                "exponent",
            );
        }
        let n9000 = vec![0xffu8; 1125];
        expect_bad_key(
            json!({"kty": "RSA", "n": b64u_encode(&n9000), "e": "AQAB"}),
            "at most",
        );
    }

    #[test]
    fn refuses_bad_ec_points() {
        let key = test_keys::p256().public;
        let Jwk::Ec { x, y, .. } = &key else {
            unreachable!()
        };
        // Point not on the curve.
        let mut y2 = y.clone();
        y2[31] ^= 1;
        expect_bad_key(
            json!({"kty": "EC", "crv": "P-256", "x": b64u_encode(x), "y": b64u_encode(&y2)}),
            "not on curve P-256",
        );
        // Short coordinate (leading zero stripped): refused, not padded.
        expect_bad_key(
            json!({"kty": "EC", "crv": "P-256", "x": b64u_encode(&x[1..]), "y": b64u_encode(y)}),
            "exactly 32",
        );
        // Coordinates of the wrong curve.
        expect_bad_key(
            json!({"kty": "EC", "crv": "P-384", "x": b64u_encode(x), "y": b64u_encode(y)}),
            "exactly 48",
        );
        for k in [test_keys::p384().public, test_keys::p521().public] {
            let Jwk::Ec { curve, x, mut y } = k else {
                unreachable!()
            };
            let last = y.len() - 1;
            y[last] ^= 1;
            assert!(matches!(
                Jwk::ec(curve, x, y),
                Err(WireError::BadPublicKey(_))
            ));
        }
    }

    #[test]
    fn refuses_bad_ed25519() {
        expect_bad_key(
            json!({"kty": "OKP", "crv": "Ed25519", "x": b64u_encode(&[7u8; 31])}),
            "exactly 32",
        );
    }

    #[test]
    fn curve_names() {
        for c in [EcCurve::P256, EcCurve::P384, EcCurve::P521] {
            assert_eq!(EcCurve::from_name(c.name()), Some(c));
            assert_eq!(c.to_string(), c.name());
        }
        assert_eq!(EcCurve::from_name("p-256"), None);
        assert_eq!(EcCurve::P521.algorithm(), Algorithm::Es512);
    }
}
