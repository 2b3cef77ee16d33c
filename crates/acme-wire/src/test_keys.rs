//! Test support: signing keys of every supported type and a hand-made
//! flattened JWS builder.

use ring::rand::{SecureRandom, SystemRandom};
use ring::signature::{
    EcdsaKeyPair, Ed25519KeyPair, KeyPair as _, RsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING,
    ECDSA_P384_SHA384_FIXED_SIGNING, RSA_PKCS1_SHA256,
};
use serde_json::{json, Value};

use crate::{b64u_encode, Algorithm, EcCurve, Jwk};

/// RSA-2048 private key, PKCS#8 DER (generated with OpenSSL for these tests).
pub const RSA2048_PKCS8: &[u8] = include_bytes!("testdata/rsa2048.pk8.der");
/// The matching SubjectPublicKeyInfo, as written by OpenSSL.
pub const RSA2048_SPKI: &[u8] = include_bytes!("testdata/rsa2048.spki.der");

enum Signer {
    Rsa(RsaKeyPair),
    Ecdsa(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
    P521(p521::ecdsa::SigningKey),
}

/// A private key with its public JWK and SPKI.
pub struct TestKey {
    pub alg: Algorithm,
    pub public: Jwk,
    pub spki: Vec<u8>,
    signer: Signer,
}

impl TestKey {
    /// Signs `msg` the way JWS `alg` requires (ECDSA: fixed r||s).
    pub fn sign(&self, msg: &[u8]) -> Vec<u8> {
        let rng = SystemRandom::new();
        match &self.signer {
            Signer::Rsa(k) => {
                let mut sig = vec![0; k.public().modulus_len()];
                k.sign(&RSA_PKCS1_SHA256, &rng, msg, &mut sig).unwrap();
                sig
            }
            Signer::Ecdsa(k) => k.sign(&rng, msg).unwrap().as_ref().to_vec(),
            Signer::Ed25519(k) => k.sign(msg).as_ref().to_vec(),
            Signer::P521(k) => {
                use p521::ecdsa::signature::Signer as _;
                let sig: p521::ecdsa::Signature = k.sign(msg);
                sig.to_bytes().to_vec()
            }
        }
    }
}

fn ec_public(curve: EcCurve, point: &[u8]) -> Jwk {
    let len = curve.coordinate_len();
    assert_eq!(point.len(), 1 + 2 * len);
    Jwk::ec(curve, point[1..=len].to_vec(), point[len + 1..].to_vec()).unwrap()
}

pub fn rsa2048() -> TestKey {
    let k = RsaKeyPair::from_pkcs8(RSA2048_PKCS8).unwrap();
    let c = ring::signature::RsaPublicKeyComponents::<Vec<u8>>::from(k.public());
    let public = Jwk::rsa(c.n, c.e).unwrap();
    TestKey {
        alg: Algorithm::Rs256,
        public,
        spki: RSA2048_SPKI.to_vec(),
        signer: Signer::Rsa(k),
    }
}

fn ring_ecdsa(
    rcgen_alg: &'static rcgen::SignatureAlgorithm,
    ring_alg: &'static ring::signature::EcdsaSigningAlgorithm,
    curve: EcCurve,
) -> TestKey {
    use rcgen::PublicKeyData as _;
    let kp = rcgen::KeyPair::generate_for(rcgen_alg).unwrap();
    let k = EcdsaKeyPair::from_pkcs8(ring_alg, &kp.serialize_der(), &SystemRandom::new()).unwrap();
    TestKey {
        alg: curve.algorithm(),
        public: ec_public(curve, k.public_key().as_ref()),
        spki: kp.subject_public_key_info(),
        signer: Signer::Ecdsa(k),
    }
}

pub fn p256() -> TestKey {
    ring_ecdsa(
        &rcgen::PKCS_ECDSA_P256_SHA256,
        &ECDSA_P256_SHA256_FIXED_SIGNING,
        EcCurve::P256,
    )
}

pub fn p384() -> TestKey {
    ring_ecdsa(
        &rcgen::PKCS_ECDSA_P384_SHA384,
        &ECDSA_P384_SHA384_FIXED_SIGNING,
        EcCurve::P384,
    )
}

pub fn p521() -> TestKey {
    use p521::pkcs8::EncodePublicKey as _;
    let rng = SystemRandom::new();
    let k = loop {
        let mut scalar = [0u8; 66];
        rng.fill(&mut scalar).unwrap();
        scalar[0] &= 0x01;
        if let Ok(k) = p521::ecdsa::SigningKey::from_slice(&scalar) {
            break k;
        }
    };
    let vk = k.verifying_key();
    let point = vk.to_sec1_point(false);
    TestKey {
        alg: Algorithm::Es512,
        public: ec_public(EcCurve::P521, point.as_ref()),
        spki: vk.to_public_key_der().unwrap().as_bytes().to_vec(),
        signer: Signer::P521(k),
    }
}

pub fn ed25519() -> TestKey {
    use rcgen::PublicKeyData as _;
    let kp = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
    let k = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&kp.serialize_der()).unwrap();
    TestKey {
        alg: Algorithm::EdDsa,
        public: Jwk::ed25519(k.public_key().as_ref().to_vec()).unwrap(),
        spki: kp.subject_public_key_info(),
        signer: Signer::Ed25519(k),
    }
}

/// One key of each type, in [`Algorithm::ALL`] order.
pub fn all() -> Vec<TestKey> {
    vec![rsa2048(), p256(), p384(), p521(), ed25519()]
}

pub fn all_public_jwks() -> Vec<Jwk> {
    all().into_iter().map(|k| k.public).collect()
}

/// A flattened JWS from raw protected header bytes, payload and signature.
pub fn flattened(protected: &[u8], payload: &[u8], signature: &[u8]) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "protected": b64u_encode(protected),
        "payload": b64u_encode(payload),
        "signature": b64u_encode(signature),
    }))
    .unwrap()
}

/// A flattened JWS over `payload` with `header`, signed by `key`.
pub fn jws_body(key: &TestKey, header: &Value, payload: &[u8]) -> Vec<u8> {
    let protected = b64u_encode(&serde_json::to_vec(header).unwrap());
    let payload = b64u_encode(payload);
    let signature = key.sign(format!("{protected}.{payload}").as_bytes());
    serde_json::to_vec(&json!({
        "protected": protected,
        "payload": payload,
        "signature": b64u_encode(&signature),
    }))
    .unwrap()
}
