//! Flattened JWS (RFC 7515 §7.2.2) as RFC 8555 §6.2 restricts it: parsing of
//! the protected header and signature verification.

use ring::signature::{
    RsaPublicKeyComponents, UnparsedPublicKey, ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA384_FIXED,
    ED25519, RSA_PKCS1_2048_8192_SHA256,
};
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::b64::decode_member;
use crate::json::{check_no_duplicates, parse_strict, type_name};
use crate::{Algorithm, EcCurve, Jwk, WireError};

/// How the JWS names its signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRef {
    /// An embedded public key (`jwk`): new-account, revocation by certificate
    /// key, the inner JWS of a key change.
    Jwk(Jwk),
    /// An account URL (`kid`): every other request.
    Kid(String),
}

/// The decoded JWS Protected Header.
#[derive(Debug, Clone, PartialEq)]
pub struct ProtectedHeader {
    /// The signature algorithm.
    pub alg: Algorithm,
    /// The anti-replay nonce (`nonce`), if present. RFC 8555 requires it on
    /// every request but the inner JWS of a key change; the server checks.
    pub nonce: Option<String>,
    /// The request URL (`url`), if present; the server checks it equals the
    /// URL the request was sent to.
    pub url: Option<String>,
    /// `jwk` or `kid` (exactly one is present).
    pub key: KeyRef,
    /// The whole header as decoded, for members not modelled above.
    pub raw: Map<String, Value>,
}

impl ProtectedHeader {
    /// The embedded key, when the header uses `jwk`.
    pub fn jwk(&self) -> Option<&Jwk> {
        match &self.key {
            KeyRef::Jwk(jwk) => Some(jwk),
            KeyRef::Kid(_) => None,
        }
    }

    /// The account URL, when the header uses `kid`.
    pub fn kid(&self) -> Option<&str> {
        match &self.key {
            KeyRef::Kid(kid) => Some(kid),
            KeyRef::Jwk(_) => None,
        }
    }

    fn from_map(raw: Map<String, Value>) -> Result<Self, WireError> {
        let alg = match raw.get("alg") {
            None => return Err(WireError::malformed("JWS protected header lacks \"alg\"")),
            Some(Value::String(name)) => Algorithm::from_name(name).ok_or_else(|| {
                WireError::BadSignatureAlgorithm(format!(
                    "JWS algorithm \"{name}\" is not supported; supported algorithms: {}",
                    Algorithm::supported_list()
                ))
            })?,
            Some(other) => {
                return Err(WireError::malformed(format!(
                    "JWS header \"alg\" must be a string, got {}",
                    type_name(other)
                )))
            }
        };
        refuse_extensions(&raw)?;
        let key = match (raw.get("jwk"), raw.get("kid")) {
            (Some(_), Some(_)) => {
                return Err(WireError::malformed(
                    "JWS protected header must contain exactly one of \"jwk\" and \"kid\", not both",
                ))
            }
            (None, None) => {
                return Err(WireError::malformed(
                    "JWS protected header must contain exactly one of \"jwk\" and \"kid\", found neither",
                ))
            }
            (Some(jwk), None) => KeyRef::Jwk(Jwk::from_json(jwk)?),
            (None, Some(_)) => KeyRef::Kid(non_empty_string(&raw, "kid")?),
        };
        let nonce = optional_string(&raw, "nonce")?;
        let url = optional_string(&raw, "url")?;
        Ok(Self {
            alg,
            nonce,
            url,
            key,
            raw,
        })
    }
}

/// Refuses `crit` (no extension is understood) and the RFC 7797 unencoded
/// payload option.
pub(crate) fn refuse_extensions(raw: &Map<String, Value>) -> Result<(), WireError> {
    if raw.contains_key("crit") {
        return Err(WireError::malformed(
            "JWS header \"crit\" is not supported: no JWS extensions are understood",
        ));
    }
    match raw.get("b64") {
        None | Some(Value::Bool(true)) => Ok(()),
        Some(Value::Bool(false)) => Err(WireError::malformed(
            "unencoded JWS payloads (\"b64\": false, RFC 7797) are not supported",
        )),
        Some(other) => Err(WireError::malformed(format!(
            "JWS header \"b64\" must be a boolean, got {}",
            type_name(other)
        ))),
    }
}

pub(crate) fn optional_string(
    raw: &Map<String, Value>,
    name: &str,
) -> Result<Option<String>, WireError> {
    match raw.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(WireError::malformed(format!(
            "JWS header \"{name}\" must be a string, got {}",
            type_name(other)
        ))),
    }
}

pub(crate) fn non_empty_string(raw: &Map<String, Value>, name: &str) -> Result<String, WireError> {
    match optional_string(raw, name)? {
        Some(s) if !s.is_empty() => Ok(s),
        Some(_) => Err(WireError::malformed(format!(
            "JWS header \"{name}\" must not be empty"
        ))),
        None => Err(WireError::malformed(format!(
            "JWS protected header lacks \"{name}\""
        ))),
    }
}

/// The structural parts of a flattened JWS, before header interpretation.
/// `signature` may be empty: see [`refuse_empty_signature`].
pub(crate) struct Flattened {
    pub(crate) header: Map<String, Value>,
    pub(crate) payload: Vec<u8>,
    pub(crate) signing_input: Vec<u8>,
    pub(crate) signature: Vec<u8>,
}

/// Parses the flattened JSON serialization: an object with exactly
/// "protected", "payload" and "signature", all strings.
pub(crate) fn parse_flattened(body: &[u8], what: &str) -> Result<Flattened, WireError> {
    if looks_compact(body) {
        return Err(WireError::malformed(format!(
            "{what} uses the compact serialization; ACME requires the flattened JSON serialization (RFC 8555 §6.2)"
        )));
    }
    let value = parse_strict(body, what)?;
    let Value::Object(obj) = value else {
        return Err(WireError::malformed(format!(
            "{what} must be a JSON object (flattened serialization), got {}",
            type_name(&value)
        )));
    };
    if obj.contains_key("signatures") {
        return Err(WireError::malformed(format!(
            "{what} uses the general JSON serialization (\"signatures\"); ACME requires the flattened serialization (RFC 8555 §6.2)"
        )));
    }
    if obj.contains_key("header") {
        return Err(WireError::malformed(format!(
            "{what} has an unprotected header (\"header\"); ACME forbids it (RFC 8555 §6.2)"
        )));
    }
    if let Some(extra) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "protected" | "payload" | "signature"))
    {
        return Err(WireError::malformed(format!(
            "{what} has the unexpected member \"{extra}\"; only \"protected\", \"payload\" and \"signature\" are allowed"
        )));
    }
    let member = |name: &str| -> Result<&str, WireError> {
        match obj.get(name) {
            Some(Value::String(s)) => Ok(s),
            Some(other) => Err(WireError::malformed(format!(
                "{what} member \"{name}\" must be a string, got {}",
                type_name(other)
            ))),
            None => Err(WireError::malformed(format!(
                "{what} lacks the member \"{name}\""
            ))),
        }
    };
    let protected_b64 = member("protected")?;
    let payload_b64 = member("payload")?;
    let signature_b64 = member("signature")?;
    if protected_b64.is_empty() {
        return Err(WireError::malformed(format!(
            "{what} protected header is empty"
        )));
    }
    let protected = decode_member("protected", protected_b64)?;
    let header = match parse_strict(&protected, "JWS protected header")? {
        Value::Object(map) => map,
        other => {
            return Err(WireError::malformed(format!(
                "JWS protected header must be a JSON object, got {}",
                type_name(&other)
            )))
        }
    };
    let payload = decode_member("payload", payload_b64)?;
    // An empty signature is refused by the caller once it has read "alg":
    // an unsecured JWS (`"alg": "none"`) must be answered with the
    // algorithm refusal (RFC 8555 §6.2), not with a structural error.
    let signature = decode_member("signature", signature_b64)?;
    let mut signing_input = Vec::with_capacity(protected_b64.len() + 1 + payload_b64.len());
    signing_input.extend_from_slice(protected_b64.as_bytes());
    signing_input.push(b'.');
    signing_input.extend_from_slice(payload_b64.as_bytes());
    Ok(Flattened {
        header,
        payload,
        signing_input,
        signature,
    })
}

/// Refuses an empty signature; called after the algorithm was accepted.
pub(crate) fn refuse_empty_signature(signature: &[u8], what: &str) -> Result<(), WireError> {
    if signature.is_empty() {
        return Err(WireError::malformed(format!("{what} signature is empty")));
    }
    Ok(())
}

/// `xxx.yyy.zzz` with base64url segments: a compact serialization.
fn looks_compact(body: &[u8]) -> bool {
    let body = body.trim_ascii();
    body.split(|b| *b == b'.').count() == 3
        && body
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A parsed flattened JWS (RFC 8555 §6.2). Parsing does not verify the
/// signature: call [`Jws::verify`] with the key the header designates.
#[derive(Debug, Clone, PartialEq)]
pub struct Jws {
    /// The decoded protected header.
    pub protected: ProtectedHeader,
    /// The decoded payload; empty for POST-as-GET.
    pub payload: Vec<u8>,
    signing_input: Vec<u8>,
    signature: Vec<u8>,
}

impl Jws {
    /// Parses a request body. Only the flattened JSON serialization is
    /// accepted: an object with exactly "protected", "payload" and
    /// "signature" (no unprotected "header", no "signatures", no compact
    /// form). Duplicate JSON member names are refused.
    ///
    /// The protected header must hold a supported "alg" (otherwise
    /// [`WireError::BadSignatureAlgorithm`], naming the supported list) and
    /// exactly one of "jwk" / "kid"; "crit" and `"b64": false` are refused.
    /// An empty payload (POST-as-GET) is allowed.
    pub fn parse(body: &[u8]) -> Result<Jws, WireError> {
        let f = parse_flattened(body, "JWS")?;
        let protected = ProtectedHeader::from_map(f.header)?;
        refuse_empty_signature(&f.signature, "JWS")?;
        Ok(Jws {
            protected,
            payload: f.payload,
            signing_input: f.signing_input,
            signature: f.signature,
        })
    }

    /// Parses a JWS embedded as a JSON value (the inner JWS of a key change).
    pub fn from_value(value: &Value) -> Result<Jws, WireError> {
        let body = serde_json::to_vec(value)
            .map_err(|e| WireError::malformed(format!("JWS cannot be serialized: {e}")))?;
        Self::parse(&body)
    }

    /// Verifies the signature with `key`.
    ///
    /// The header's algorithm must match the key (RS256↔RSA, ES256↔P-256,
    /// ES384↔P-384, ES512↔P-521, EdDSA↔Ed25519), otherwise
    /// [`WireError::BadSignatureAlgorithm`]. ECDSA signatures are in the JWS
    /// fixed-width `r || s` form. A signature that does not verify is
    /// [`WireError::BadSignature`].
    pub fn verify(&self, key: &Jwk) -> Result<(), WireError> {
        let alg = self.protected.alg;
        if key.algorithm() != alg {
            return Err(WireError::BadSignatureAlgorithm(format!(
                "JWS algorithm {alg} does not match the {} key, which requires {}; supported algorithms: {}",
                key.describe(),
                key.algorithm(),
                Algorithm::supported_list()
            )));
        }
        verify_signature(key, &self.signing_input, &self.signature)
    }

    /// True when the payload is empty (POST-as-GET, RFC 8555 §6.3).
    pub fn is_post_as_get(&self) -> bool {
        self.payload.is_empty()
    }

    /// Deserializes the payload as JSON. Errors are
    /// [`WireError::Malformed`] carrying serde's message (which names the
    /// offending field). Duplicate member names are refused.
    pub fn payload_json<T: DeserializeOwned>(&self) -> Result<T, WireError> {
        if self.payload.is_empty() {
            return Err(WireError::malformed(
                "the payload is empty (POST-as-GET) but this request requires a JSON object",
            ));
        }
        let value = serde_json::from_slice(&self.payload)
            .map_err(|e| WireError::malformed(format!("invalid request payload: {e}")))?;
        check_no_duplicates(&self.payload)
            .map_err(|e| WireError::malformed(format!("invalid request payload: {e}")))?;
        Ok(value)
    }

    /// The payload as a JSON value (convenience for [`Jws::payload_json`]).
    pub fn payload_value(&self) -> Result<Value, WireError> {
        self.payload_json()
    }

    /// The JWS signing input: `base64url(protected) "." base64url(payload)`.
    pub fn signing_input(&self) -> &[u8] {
        &self.signing_input
    }

    /// The raw signature bytes.
    pub fn signature(&self) -> &[u8] {
        &self.signature
    }
}

/// Verifies `signature` over `message` with `key`, using the algorithm the
/// key implies.
fn verify_signature(key: &Jwk, message: &[u8], signature: &[u8]) -> Result<(), WireError> {
    let ok = match key {
        Jwk::Rsa { n, e } => RsaPublicKeyComponents { n, e }
            .verify(&RSA_PKCS1_2048_8192_SHA256, message, signature)
            .is_ok(),
        Jwk::Ec { curve, x, y } => {
            let mut point = Vec::with_capacity(1 + x.len() + y.len());
            point.push(0x04);
            point.extend_from_slice(x);
            point.extend_from_slice(y);
            match curve {
                EcCurve::P256 => UnparsedPublicKey::new(&ECDSA_P256_SHA256_FIXED, &point)
                    .verify(message, signature)
                    .is_ok(),
                EcCurve::P384 => UnparsedPublicKey::new(&ECDSA_P384_SHA384_FIXED, &point)
                    .verify(message, signature)
                    .is_ok(),
                EcCurve::P521 => verify_p521(&point, message, signature),
            }
        }
        Jwk::Ed25519 { x } => UnparsedPublicKey::new(&ED25519, x)
            .verify(message, signature)
            .is_ok(),
    };
    if ok {
        Ok(())
    } else {
        Err(WireError::BadSignature)
    }
}

fn verify_p521(point: &[u8], message: &[u8], signature: &[u8]) -> bool {
    use p521::ecdsa::signature::Verifier as _;
    use p521::ecdsa::{Signature, VerifyingKey};

    let Ok(key) = VerifyingKey::from_sec1_bytes(point) else {
        return false;
    };
    let Ok(sig) = Signature::from_slice(signature) else {
        return false;
    };
    key.verify(message, &sig).is_ok()
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;
    use crate::b64::b64u_encode;
    use crate::test_keys::{self, flattened, jws_body, TestKey};

    const URL: &str = "https://acme.example/acme/new-order";

    fn header_jwk(key: &TestKey) -> Value {
        json!({"alg": key.alg.name(), "jwk": key.public.to_json(), "nonce": "bm9uY2U", "url": URL})
    }

    fn header_kid(key: &TestKey) -> Value {
        json!({"alg": key.alg.name(), "kid": "https://acme.example/acme/acct/1", "nonce": "bm9uY2U", "url": URL})
    }

    fn malformed(body: &[u8], needle: &str) {
        match Jws::parse(body) {
            Err(WireError::Malformed(m)) => assert!(m.contains(needle), "{m:?} lacks {needle:?}"),
            other => panic!("expected Malformed containing {needle:?}, got {other:?}"),
        }
    }

    fn bad_alg(body: &[u8]) -> String {
        match Jws::parse(body) {
            Err(WireError::BadSignatureAlgorithm(m)) => m,
            other => panic!("expected BadSignatureAlgorithm, got {other:?}"),
        }
    }

    #[test]
    fn every_algorithm_verifies() {
        for key in test_keys::all() {
            let body = jws_body(&key, &header_jwk(&key), br#"{"identifiers":[]}"#);
            let jws = Jws::parse(&body).unwrap();
            assert_eq!(jws.protected.alg, key.alg);
            assert_eq!(jws.protected.jwk(), Some(&key.public));
            assert_eq!(jws.protected.url.as_deref(), Some(URL));
            assert_eq!(jws.protected.nonce.as_deref(), Some("bm9uY2U"));
            jws.verify(&key.public).unwrap();
            // kid form, POST-as-GET.
            let body = jws_body(&key, &header_kid(&key), b"");
            let jws = Jws::parse(&body).unwrap();
            assert!(jws.is_post_as_get());
            assert_eq!(
                jws.protected.kid(),
                Some("https://acme.example/acme/acct/1")
            );
            jws.verify(&key.public).unwrap();
        }
    }

    /// Flips one bit in the base64url member `name` (in its decoded form).
    fn tamper(body: &[u8], name: &str, index: usize) -> Vec<u8> {
        let mut v: Value = serde_json::from_slice(body).unwrap();
        let mut bytes = crate::b64u_decode(v[name].as_str().unwrap()).unwrap();
        let i = index % bytes.len();
        bytes[i] ^= 0x01;
        v[name] = json!(b64u_encode(&bytes));
        serde_json::to_vec(&v).unwrap()
    }

    /// Where `needle` sits in the decoded protected header of `body`.
    fn protected_index(body: &[u8], needle: &[u8]) -> usize {
        let v: Value = serde_json::from_slice(body).unwrap();
        let h = crate::b64u_decode(v["protected"].as_str().unwrap()).unwrap();
        h.windows(needle.len()).position(|w| w == needle).unwrap()
    }

    #[test]
    fn tampering_is_detected() {
        for key in test_keys::all() {
            let body = jws_body(&key, &header_kid(&key), br#"{"csr":"AAAA"}"#);
            for (member, index) in [
                ("signature", 0),
                ("signature", 1000),
                ("payload", 3),
                ("protected", protected_index(&body, b"new-order")),
            ] {
                let bad = tamper(&body, member, index);
                let jws = Jws::parse(&bad).unwrap();
                assert_eq!(
                    jws.verify(&key.public),
                    Err(WireError::BadSignature),
                    "{} {member}",
                    key.alg
                );
            }
        }
    }

    #[test]
    fn wrong_key_same_type_is_bad_signature() {
        let a = test_keys::p256();
        let b = test_keys::p256();
        let jws = Jws::parse(&jws_body(&a, &header_kid(&a), b"{}")).unwrap();
        assert_eq!(jws.verify(&b.public), Err(WireError::BadSignature));
    }

    #[test]
    fn alg_key_mismatch_is_bad_signature_algorithm() {
        let keys = test_keys::all();
        for signer in &keys {
            let jws = Jws::parse(&jws_body(signer, &header_kid(signer), b"{}")).unwrap();
            for other in keys.iter().filter(|k| k.alg != signer.alg) {
                match jws.verify(&other.public) {
                    Err(WireError::BadSignatureAlgorithm(m)) => {
                        assert!(m.contains(signer.alg.name()), "{m}");
                        assert!(m.contains(&other.public.describe()), "{m}");
                    }
                    r => panic!("{} with {}: {r:?}", signer.alg, other.alg),
                }
            }
        }
    }

    #[test]
    fn header_alg_lying_about_key() {
        // An ES256 signature presented as ES384 over a P-256 key.
        let key = test_keys::p256();
        let mut h = header_kid(&key);
        h["alg"] = json!("ES384");
        let jws = Jws::parse(&jws_body(&key, &h, b"{}")).unwrap();
        assert!(matches!(
            jws.verify(&key.public),
            Err(WireError::BadSignatureAlgorithm(_))
        ));
    }

    #[test]
    fn ecdsa_der_signature_is_refused() {
        // A DER-encoded ECDSA signature (as OpenSSL would produce) is not the
        // JWS r||s form.
        let key = test_keys::p256();
        let body = jws_body(&key, &header_kid(&key), b"{}");
        let mut v: Value = serde_json::from_slice(&body).unwrap();
        let raw = crate::b64u_decode(v["signature"].as_str().unwrap()).unwrap();
        let (r, s) = raw.split_at(32);
        let mut der = vec![0x30, 0x46, 0x02, 0x21, 0x00];
        der.extend_from_slice(r);
        der.extend_from_slice(&[0x02, 0x21, 0x00]);
        der.extend_from_slice(s);
        v["signature"] = json!(b64u_encode(&der));
        let jws = Jws::parse(&serde_json::to_vec(&v).unwrap()).unwrap();
        assert_eq!(jws.verify(&key.public), Err(WireError::BadSignature));
    }

    #[test]
    fn signing_input_is_exact() {
        let key = test_keys::ed25519();
        let body = jws_body(&key, &header_kid(&key), b"{}");
        let v: Value = serde_json::from_slice(&body).unwrap();
        let jws = Jws::parse(&body).unwrap();
        let expected = format!(
            "{}.{}",
            v["protected"].as_str().unwrap(),
            v["payload"].as_str().unwrap()
        );
        assert_eq!(jws.signing_input(), expected.as_bytes());
        assert_eq!(jws.signature().len(), 64);
        assert_eq!(jws.protected.raw["url"], URL);
    }

    #[test]
    fn from_value_parses_inner_jws() {
        let key = test_keys::p384();
        let h = json!({"alg": "ES384", "jwk": key.public.to_json(), "url": "https://acme.example/acme/key-change"});
        let body = jws_body(&key, &h, br#"{"account":"x","oldKey":{}}"#);
        let v: Value = serde_json::from_slice(&body).unwrap();
        let jws = Jws::from_value(&v).unwrap();
        assert_eq!(jws.protected.nonce, None);
        jws.verify(&key.public).unwrap();
    }

    #[test]
    fn compact_serialization_refused() {
        let key = test_keys::p256();
        let body = jws_body(&key, &header_kid(&key), b"{}");
        let v: Value = serde_json::from_slice(&body).unwrap();
        let compact = format!(
            "{}.{}.{}",
            v["protected"].as_str().unwrap(),
            v["payload"].as_str().unwrap(),
            v["signature"].as_str().unwrap()
        );
        malformed(compact.as_bytes(), "compact serialization");
        malformed(format!("{compact}\n").as_bytes(), "compact serialization");
    }

    #[test]
    fn general_serialization_refused() {
        let body = json!({
            "payload": "e30",
            "signatures": [{"protected": "e30", "signature": "AAAA"}]
        });
        malformed(
            &serde_json::to_vec(&body).unwrap(),
            "general JSON serialization",
        );
    }

    #[test]
    fn unprotected_header_refused() {
        let key = test_keys::p256();
        let mut v: Value =
            serde_json::from_slice(&jws_body(&key, &header_kid(&key), b"{}")).unwrap();
        v["header"] = json!({"kid": "x"});
        malformed(&serde_json::to_vec(&v).unwrap(), "unprotected header");
    }

    #[test]
    fn extra_and_missing_members_refused() {
        let key = test_keys::p256();
        let body = jws_body(&key, &header_kid(&key), b"{}");
        let mut v: Value = serde_json::from_slice(&body).unwrap();
        v["extra"] = json!(1);
        malformed(
            &serde_json::to_vec(&v).unwrap(),
            "unexpected member \"extra\"",
        );
        for m in ["protected", "payload", "signature"] {
            let mut v: Value = serde_json::from_slice(&body).unwrap();
            v.as_object_mut().unwrap().remove(m);
            malformed(&serde_json::to_vec(&v).unwrap(), &format!("\"{m}\""));
            let mut v: Value = serde_json::from_slice(&body).unwrap();
            v[m] = json!(42);
            malformed(&serde_json::to_vec(&v).unwrap(), "must be a string");
        }
    }

    #[test]
    fn not_an_object_refused() {
        malformed(b"[]", "must be a JSON object");
        malformed(b"\"x\"", "must be a JSON object");
        malformed(b"", "not valid JSON");
        malformed(b"{\"protected\":", "not valid JSON");
    }

    #[test]
    fn duplicate_members_refused() {
        let key = test_keys::p256();
        let body = String::from_utf8(jws_body(&key, &header_kid(&key), b"{}")).unwrap();
        let dup = body.replacen("{", "{\"payload\":\"\",", 1);
        malformed(dup.as_bytes(), "duplicate member \"payload\"");
        // Duplicate inside the protected header: the second "url" would win
        // in serde_json, so the whole header is refused.
        let protected = b64u_encode(
            format!(r#"{{"alg":"ES256","kid":"k","url":"{URL}","url":"https://evil"}}"#).as_bytes(),
        );
        let body = json!({"protected": protected, "payload": "", "signature": "AAAA"});
        malformed(
            &serde_json::to_vec(&body).unwrap(),
            "duplicate member \"url\"",
        );
    }

    fn with_header(h: Value) -> Vec<u8> {
        flattened(&serde_json::to_vec(&h).unwrap(), b"{}", b"sig")
    }

    #[test]
    fn protected_header_must_be_an_object() {
        for h in [&b"[]"[..], b"\"ES256\"", b"null", b"1"] {
            malformed(&flattened(h, b"{}", b"sig"), "must be a JSON object");
        }
        malformed(&flattened(b"{not json", b"{}", b"sig"), "not valid JSON");
        let body = json!({"protected": "", "payload": "", "signature": "AAAA"});
        malformed(
            &serde_json::to_vec(&body).unwrap(),
            "protected header is empty",
        );
    }

    #[test]
    fn missing_or_non_string_alg() {
        malformed(&with_header(json!({"kid": "k"})), "lacks \"alg\"");
        malformed(
            &with_header(json!({"alg": 256, "kid": "k"})),
            "\"alg\" must be a string",
        );
    }

    #[test]
    fn unsupported_algorithms() {
        for alg in [
            "none", "HS256", "PS256", "RS384", "RS512", "ES256K", "Ed25519", "es256",
        ] {
            let m = bad_alg(&with_header(json!({"alg": alg, "kid": "k"})));
            assert!(m.contains(alg), "{m}");
            assert!(m.contains("RS256, ES256, ES384, ES512, EdDSA"), "{m}");
        }
    }

    #[test]
    fn jwk_and_kid_exactly_one() {
        let key = test_keys::p256();
        let both = json!({"alg": "ES256", "kid": "k", "jwk": key.public.to_json()});
        malformed(&with_header(both), "not both");
        malformed(&with_header(json!({"alg": "ES256"})), "found neither");
        malformed(
            &with_header(json!({"alg": "ES256", "kid": ""})),
            "must not be empty",
        );
        malformed(
            &with_header(json!({"alg": "ES256", "kid": 7})),
            "\"kid\" must be a string",
        );
    }

    #[test]
    fn jwk_problems_surface() {
        let key = test_keys::p256();
        let mut jwk = key.public.to_json();
        jwk["d"] = json!("AAAA");
        let r = Jws::parse(&with_header(json!({"alg": "ES256", "jwk": jwk})));
        assert!(matches!(r, Err(WireError::BadPublicKey(_))), "{r:?}");
        let r = Jws::parse(&with_header(json!({"alg": "ES256", "jwk": "x"})));
        assert!(matches!(r, Err(WireError::Malformed(_))), "{r:?}");
    }

    #[test]
    fn weak_rsa_jwk_refused() {
        let mut n = vec![0xc3u8; 128];
        n[127] |= 1;
        let jwk = json!({"kty": "RSA", "n": b64u_encode(&n), "e": "AQAB"});
        let r = Jws::parse(&with_header(json!({"alg": "RS256", "jwk": jwk})));
        assert!(
            matches!(&r, Err(WireError::BadPublicKey(m)) if m.contains("1024 bits")),
            "{r:?}"
        );
    }

    #[test]
    fn b64_and_crit_refused() {
        malformed(
            &with_header(json!({"alg": "ES256", "kid": "k", "b64": false, "crit": ["b64"]})),
            "crit",
        );
        malformed(
            &with_header(json!({"alg": "ES256", "kid": "k", "b64": false})),
            "b64",
        );
        malformed(
            &with_header(json!({"alg": "ES256", "kid": "k", "b64": "no"})),
            "b64",
        );
        malformed(
            &with_header(json!({"alg": "ES256", "kid": "k", "crit": []})),
            "crit",
        );
        // "b64": true is the default and harmless.
        assert!(Jws::parse(&with_header(
            json!({"alg": "ES256", "kid": "k", "b64": true})
        ))
        .is_ok());
    }

    #[test]
    fn nonce_and_url_must_be_strings() {
        malformed(
            &with_header(json!({"alg": "ES256", "kid": "k", "nonce": 1})),
            "\"nonce\"",
        );
        malformed(
            &with_header(json!({"alg": "ES256", "kid": "k", "url": {}})),
            "\"url\"",
        );
        let jws = Jws::parse(&with_header(json!({"alg": "ES256", "kid": "k"}))).unwrap();
        assert_eq!((jws.protected.nonce, jws.protected.url), (None, None));
    }

    #[test]
    fn bad_base64_members() {
        let key = test_keys::p256();
        let body = jws_body(&key, &header_kid(&key), br#"{"a":1}"#);
        let v: Value = serde_json::from_slice(&body).unwrap();
        for member in ["protected", "payload", "signature"] {
            let s = v[member].as_str().unwrap().to_owned();
            for (broken, needle) in [
                (format!("{s}="), "padding"),
                (format!("+{}", &s[1..]), "standard base64"),
                (format!("/{}", &s[1..]), "standard base64"),
                (format!("{} {}", &s[..4], &s[4..]), "whitespace"),
            ] {
                let mut v2 = v.clone();
                v2[member] = json!(broken);
                malformed(&serde_json::to_vec(&v2).unwrap(), needle);
            }
        }
    }

    #[test]
    fn alg_none_with_an_empty_signature_is_a_bad_signature_algorithm() {
        // An unsecured JWS (RFC 7515 Appendix A.5) has an empty signature;
        // RFC 8555 §6.2 wants badSignatureAlgorithm for it, not malformed.
        let header = br#"{"alg":"none","kid":"k","nonce":"n","url":"u"}"#;
        let body = json!({"protected": b64u_encode(header), "payload": "", "signature": ""});
        let m = bad_alg(&serde_json::to_vec(&body).unwrap());
        assert!(m.contains("\"none\""), "{m}");
        assert!(m.contains("RS256, ES256, ES384, ES512, EdDSA"), "{m}");
    }

    #[test]
    fn empty_signature_refused() {
        let body = json!({"protected": b64u_encode(br#"{"alg":"ES256","kid":"k"}"#), "payload": "", "signature": ""});
        malformed(&serde_json::to_vec(&body).unwrap(), "signature is empty");
    }

    #[derive(Debug, Deserialize)]
    #[serde(rename_all = "camelCase")]
    #[allow(dead_code)]
    struct Req {
        identifiers: Vec<String>,
        not_after: Option<String>,
    }

    #[test]
    fn payload_json_errors() {
        let key = test_keys::p256();
        let parse =
            |payload: &[u8]| Jws::parse(&jws_body(&key, &header_kid(&key), payload)).unwrap();
        let jws = parse(b"not json");
        assert!(
            matches!(jws.payload_json::<Value>(), Err(WireError::Malformed(m)) if m.contains("invalid request payload"))
        );
        let jws = parse(br#"{"identifiers": 5}"#);
        assert!(
            matches!(jws.payload_json::<Req>(), Err(WireError::Malformed(m)) if m.contains("invalid type"))
        );
        let jws = parse(br#"{"notAfter": "x"}"#);
        assert!(
            matches!(jws.payload_json::<Req>(), Err(WireError::Malformed(m)) if m.contains("`identifiers`"))
        );
        let jws = parse(br#"{"identifiers": [], "identifiers": ["a"]}"#);
        assert!(jws.payload_json::<Req>().is_err());
        assert!(jws.payload_value().is_err());
        let jws = parse(b"");
        assert!(
            matches!(jws.payload_json::<Value>(), Err(WireError::Malformed(m)) if m.contains("POST-as-GET"))
        );
        let jws = parse(br#"{"identifiers": ["a"], "unknown": true}"#);
        assert_eq!(jws.payload_json::<Req>().unwrap().identifiers, ["a"]);
    }
}
