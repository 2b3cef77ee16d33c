//! External account binding (RFC 8555 §7.3.4): the MAC-signed inner JWS of a
//! new-account request.

use std::fmt;

use ring::hmac;
use serde_json::Value;

use crate::json::type_name;
use crate::jws::{non_empty_string, parse_flattened, refuse_empty_signature, refuse_extensions};
use crate::{Jwk, WireError};

/// A MAC algorithm allowed for external account bindings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MacAlgorithm {
    /// HMAC with SHA-256.
    Hs256,
    /// HMAC with SHA-384.
    Hs384,
    /// HMAC with SHA-512.
    Hs512,
}

impl MacAlgorithm {
    /// Every supported MAC algorithm.
    pub const ALL: [MacAlgorithm; 3] = [Self::Hs256, Self::Hs384, Self::Hs512];

    /// The JWS name: "HS256", "HS384", "HS512".
    pub fn name(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::Hs384 => "HS384",
            Self::Hs512 => "HS512",
        }
    }

    /// Parses a JWS `alg` value.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.name() == name)
    }

    fn ring(self) -> hmac::Algorithm {
        match self {
            Self::Hs256 => hmac::HMAC_SHA256,
            Self::Hs384 => hmac::HMAC_SHA384,
            Self::Hs512 => hmac::HMAC_SHA512,
        }
    }
}

impl fmt::Display for MacAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A parsed `externalAccountBinding` JWS. Parsing does not check the MAC:
/// look the key up by [`kid`](Self::kid), then call
/// [`verify`](Self::verify).
#[derive(Debug, Clone, PartialEq)]
pub struct ExternalAccountBinding {
    /// The MAC algorithm.
    pub alg: MacAlgorithm,
    /// The key identifier the CA handed out.
    pub kid: String,
    /// Must equal the outer JWS's `url` (the server checks).
    pub url: String,
    /// The decoded payload: the account's public JWK.
    pub payload: Vec<u8>,
    signing_input: Vec<u8>,
    mac: Vec<u8>,
}

impl ExternalAccountBinding {
    /// Parses the `externalAccountBinding` member of a new-account payload:
    /// a flattened JWS whose protected header has a MAC `alg` (HS256/384/512),
    /// a `kid` and a `url`, and no `nonce` or `jwk`; the payload must not be
    /// empty.
    pub fn parse(value: &Value) -> Result<Self, WireError> {
        const WHAT: &str = "external account binding JWS";
        if !value.is_object() {
            return Err(WireError::malformed(format!(
                "externalAccountBinding must be a JWS object, got {}",
                type_name(value)
            )));
        }
        let body = serde_json::to_vec(value).map_err(|e| {
            WireError::malformed(format!("externalAccountBinding cannot be serialized: {e}"))
        })?;
        let f = parse_flattened(&body, WHAT)?;
        let alg = match f.header.get("alg") {
            Some(Value::String(name)) => MacAlgorithm::from_name(name).ok_or_else(|| {
                WireError::BadSignatureAlgorithm(format!(
                    "external account binding algorithm \"{name}\" is not supported; supported: HS256, HS384, HS512"
                ))
            })?,
            Some(other) => {
                return Err(WireError::malformed(format!(
                    "external account binding \"alg\" must be a string, got {}",
                    type_name(other)
                )))
            }
            None => {
                return Err(WireError::malformed(
                    "external account binding protected header lacks \"alg\"",
                ))
            }
        };
        refuse_empty_signature(&f.signature, WHAT)?;
        refuse_extensions(&f.header)?;
        for forbidden in ["nonce", "jwk"] {
            if f.header.contains_key(forbidden) {
                return Err(WireError::malformed(format!(
                    "external account binding protected header must not contain \"{forbidden}\""
                )));
            }
        }
        let kid = non_empty_string(&f.header, "kid")?;
        let url = non_empty_string(&f.header, "url")?;
        if f.payload.is_empty() {
            return Err(WireError::malformed(
                "external account binding payload must be the account JWK, not empty",
            ));
        }
        Ok(Self {
            alg,
            kid,
            url,
            payload: f.payload,
            signing_input: f.signing_input,
            mac: f.signature,
        })
    }

    /// Checks the MAC with the raw (decoded) HMAC key, in constant time.
    /// A wrong MAC is [`WireError::BadSignature`].
    pub fn verify(&self, mac_key: &[u8]) -> Result<(), WireError> {
        let key = hmac::Key::new(self.alg.ring(), mac_key);
        hmac::verify(&key, &self.signing_input, &self.mac).map_err(|_| WireError::BadSignature)
    }

    /// The payload parsed as a JWK; the server compares it with the outer
    /// JWS's `jwk` (equality, or equal thumbprints).
    pub fn payload_jwk(&self) -> Result<Jwk, WireError> {
        let v = crate::json::parse_strict(&self.payload, "external account binding payload")?;
        Jwk::from_json(&v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{b64u_encode, test_keys};
    use serde_json::json;

    const URL: &str = "https://acme.example/acme/new-account";
    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn eab(alg: MacAlgorithm, header: Value, payload: &[u8], key: &[u8]) -> Value {
        let protected = b64u_encode(&serde_json::to_vec(&header).unwrap());
        let payload = b64u_encode(payload);
        let tag = hmac::sign(
            &hmac::Key::new(alg.ring(), key),
            format!("{protected}.{payload}").as_bytes(),
        );
        json!({"protected": protected, "payload": payload, "signature": b64u_encode(tag.as_ref())})
    }

    fn account_jwk() -> Jwk {
        test_keys::p256().public
    }

    #[test]
    fn verifies_each_algorithm() {
        let jwk = account_jwk();
        let payload = serde_json::to_vec(&jwk.to_json()).unwrap();
        for alg in MacAlgorithm::ALL {
            let v = eab(
                alg,
                json!({"alg": alg.name(), "kid": "kid-1", "url": URL}),
                &payload,
                KEY,
            );
            let e = ExternalAccountBinding::parse(&v).unwrap();
            assert_eq!((e.alg, e.kid.as_str(), e.url.as_str()), (alg, "kid-1", URL));
            e.verify(KEY).unwrap();
            assert_eq!(e.verify(b"another key"), Err(WireError::BadSignature));
            assert_eq!(e.payload_jwk().unwrap(), jwk);
        }
    }

    #[test]
    fn wrong_algorithm_and_forbidden_members() {
        let payload = serde_json::to_vec(&account_jwk().to_json()).unwrap();
        let v = eab(
            MacAlgorithm::Hs256,
            json!({"alg": "ES256", "kid": "k", "url": URL}),
            &payload,
            KEY,
        );
        assert!(
            matches!(ExternalAccountBinding::parse(&v), Err(WireError::BadSignatureAlgorithm(m)) if m.contains("HS256, HS384, HS512"))
        );
        let v = eab(
            MacAlgorithm::Hs256,
            json!({"alg": "HS256", "kid": "k", "url": URL, "nonce": "n"}),
            &payload,
            KEY,
        );
        assert!(
            matches!(ExternalAccountBinding::parse(&v), Err(WireError::Malformed(m)) if m.contains("nonce"))
        );
        let v = eab(
            MacAlgorithm::Hs256,
            json!({"alg": "HS256", "url": URL}),
            &payload,
            KEY,
        );
        assert!(
            matches!(ExternalAccountBinding::parse(&v), Err(WireError::Malformed(m)) if m.contains("kid"))
        );
        let v = eab(
            MacAlgorithm::Hs256,
            json!({"alg": "HS256", "kid": "k"}),
            &payload,
            KEY,
        );
        assert!(
            matches!(ExternalAccountBinding::parse(&v), Err(WireError::Malformed(m)) if m.contains("url"))
        );
        let v = eab(
            MacAlgorithm::Hs256,
            json!({"alg": "HS256", "kid": "k", "url": URL}),
            b"",
            KEY,
        );
        assert!(matches!(
            ExternalAccountBinding::parse(&v),
            Err(WireError::Malformed(_))
        ));
        assert!(matches!(
            ExternalAccountBinding::parse(&json!("x")),
            Err(WireError::Malformed(_))
        ));
    }

    #[test]
    fn tampered_payload_fails() {
        let payload = serde_json::to_vec(&account_jwk().to_json()).unwrap();
        let mut v = eab(
            MacAlgorithm::Hs256,
            json!({"alg": "HS256", "kid": "k", "url": URL}),
            &payload,
            KEY,
        );
        let other = serde_json::to_vec(&account_jwk().to_json()).unwrap();
        v["payload"] = json!(b64u_encode(&other));
        let e = ExternalAccountBinding::parse(&v).unwrap();
        assert_eq!(e.verify(KEY), Err(WireError::BadSignature));
    }
}
