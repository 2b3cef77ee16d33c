//! ES256 account keys and flattened JWS (RFC 7515 / RFC 8555 §6.2) with ring.

use anyhow::{anyhow, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::rand::SystemRandom;
use ring::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use serde::Serialize;

/// base64url without padding.
pub fn b64u(data: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(data)
}

/// An ES256 account key with its public JWK and RFC 7638 thumbprint.
pub struct AccountKey {
    kp: EcdsaKeyPair,
    rng: SystemRandom,
    /// Canonical public JWK JSON (members in lexicographic order).
    pub jwk: String,
    /// RFC 7638 thumbprint, base64url.
    pub thumbprint: String,
    jwk_value: serde_json::Value,
}

#[derive(Serialize)]
struct Protected<'a> {
    alg: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jwk: Option<&'a serde_json::Value>,
    nonce: &'a str,
    url: &'a str,
}

#[derive(Serialize)]
struct Flattened<'a> {
    protected: &'a str,
    payload: &'a str,
    signature: &'a str,
}

impl AccountKey {
    /// A fresh P-256 key.
    pub fn generate() -> Result<AccountKey> {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .map_err(|_| anyhow!("P-256 key generation failed"))?;
        let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng)
            .map_err(|_| anyhow!("P-256 key parsing failed"))?;
        let public = kp.public_key().as_ref();
        if public.len() != 65 {
            return Err(anyhow!(
                "unexpected P-256 public key length {}",
                public.len()
            ));
        }
        let jwk = format!(
            r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
            b64u(&public[1..33]),
            b64u(&public[33..65])
        );
        let thumbprint = b64u(ring::digest::digest(&ring::digest::SHA256, jwk.as_bytes()).as_ref());
        let jwk_value = serde_json::from_str(&jwk)?;
        Ok(AccountKey {
            kp,
            rng,
            jwk,
            thumbprint,
            jwk_value,
        })
    }

    /// RFC 8555 §8.1 key authorization of `token`.
    pub fn key_authorization(&self, token: &str) -> String {
        format!("{token}.{}", self.thumbprint)
    }

    /// Signs `payload` (empty for POST-as-GET) for `url`, with `kid` or,
    /// when `None`, the embedded JWK. Returns the flattened JSON body.
    pub fn sign(
        &self,
        kid: Option<&str>,
        nonce: &str,
        url: &str,
        payload: &[u8],
    ) -> Result<Vec<u8>> {
        let jwk = match kid {
            Some(_) => None,
            None => Some(&self.jwk_value),
        };
        let protected = serde_json::to_vec(&Protected {
            alg: "ES256",
            kid,
            jwk,
            nonce,
            url,
        })?;
        let protected = b64u(&protected);
        let payload = b64u(payload);
        let mut input = String::with_capacity(protected.len() + 1 + payload.len());
        input.push_str(&protected);
        input.push('.');
        input.push_str(&payload);
        let sig = self
            .kp
            .sign(&self.rng, input.as_bytes())
            .map_err(|_| anyhow!("ES256 signing failed"))?;
        let signature = b64u(sig.as_ref());
        Ok(serde_json::to_vec(&Flattened {
            protected: &protected,
            payload: &payload,
            signature: &signature,
        })?)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn jws_verifies_with_the_public_key() {
        let k = AccountKey::generate().unwrap();
        let body = k
            .sign(None, "n1", "https://x/acme/new-account", b"{}")
            .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let input = format!(
            "{}.{}",
            v["protected"].as_str().unwrap(),
            v["payload"].as_str().unwrap()
        );
        let sig = URL_SAFE_NO_PAD
            .decode(v["signature"].as_str().unwrap())
            .unwrap();
        let pk = ring::signature::UnparsedPublicKey::new(
            &ring::signature::ECDSA_P256_SHA256_FIXED,
            k.kp.public_key().as_ref().to_vec(),
        );
        pk.verify(input.as_bytes(), &sig).unwrap();
        let prot: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(v["protected"].as_str().unwrap())
                .unwrap(),
        )
        .unwrap();
        assert_eq!(prot["jwk"]["kty"], "EC");
        assert!(prot.get("kid").is_none());
        assert_eq!(k.key_authorization("tok"), format!("tok.{}", k.thumbprint));
    }
}
