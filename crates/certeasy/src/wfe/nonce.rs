//! Replay nonces (RFC 8555 §6.5).
//!
//! A nonce is `random(16) || expiry(8, big-endian unix ms) || HMAC-SHA-256`
//! under a per-installation key stored in the database, base64url-encoded.
//! Minting touches no database; a nonce is accepted once its MAC verifies,
//! it has not expired, and its insertion into `used_nonces` succeeds — the
//! table every node shares, so a replay is refused cluster-wide.

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::store::now_ms;

/// How long a nonce stays valid.
pub const NONCE_LIFETIME_MS: i64 = 3600 * 1000;

const RAND_LEN: usize = 16;
const BODY_LEN: usize = RAND_LEN + 8;
const TAG_LEN: usize = 32;

/// Mints and checks nonces.
pub struct NonceKey {
    key: hmac::Key,
    rng: SystemRandom,
}

impl std::fmt::Debug for NonceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NonceKey(<secret>)")
    }
}

impl NonceKey {
    /// A key from the installation's secret bytes.
    pub fn new(secret: &[u8]) -> NonceKey {
        NonceKey {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            rng: SystemRandom::new(),
        }
    }

    /// A fresh nonce.
    pub fn mint(&self) -> String {
        let mut buf = [0u8; BODY_LEN + TAG_LEN];
        // The OS RNG failing is not recoverable; a zero prefix would still be
        // unique per expiry millisecond only, so log loudly.
        if self.rng.fill(&mut buf[..RAND_LEN]).is_err() {
            tracing::error!(target: "wfe", "the system random number generator failed");
        }
        buf[RAND_LEN..BODY_LEN].copy_from_slice(&(now_ms() + NONCE_LIFETIME_MS).to_be_bytes());
        let tag = hmac::sign(&self.key, &buf[..BODY_LEN]);
        buf[BODY_LEN..].copy_from_slice(tag.as_ref());
        acme_wire::b64u_encode(&buf)
    }

    /// Checks a nonce's authenticity and expiry; returns its expiry (unix ms).
    pub fn verify(&self, nonce: &str) -> Option<i64> {
        let raw = acme_wire::b64u_decode(nonce).ok()?;
        if raw.len() != BODY_LEN + TAG_LEN {
            return None;
        }
        hmac::verify(&self.key, &raw[..BODY_LEN], &raw[BODY_LEN..]).ok()?;
        let mut exp = [0u8; 8];
        exp.copy_from_slice(&raw[RAND_LEN..BODY_LEN]);
        let expires = i64::from_be_bytes(exp);
        (expires > now_ms()).then_some(expires)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_nonces_verify_and_are_distinct() {
        let k = NonceKey::new(b"secret");
        let a = k.mint();
        let b = k.mint();
        assert_ne!(a, b);
        assert!(k.verify(&a).is_some());
    }

    #[test]
    fn forged_or_foreign_nonces_do_not_verify() {
        let k = NonceKey::new(b"secret");
        let other = NonceKey::new(b"other");
        assert!(k.verify(&other.mint()).is_none());
        let mut n = acme_wire::b64u_decode(&k.mint()).unwrap();
        n[0] ^= 1;
        assert!(k.verify(&acme_wire::b64u_encode(&n)).is_none());
        assert!(k.verify("short").is_none());
        assert!(k.verify("").is_none());
    }

    #[test]
    fn expired_nonces_do_not_verify() {
        let k = NonceKey::new(b"secret");
        let mut buf = [0u8; BODY_LEN + TAG_LEN];
        buf[RAND_LEN..BODY_LEN].copy_from_slice(&(now_ms() - 1).to_be_bytes());
        let tag = hmac::sign(&k.key, &buf[..BODY_LEN]);
        buf[BODY_LEN..].copy_from_slice(tag.as_ref());
        assert!(k.verify(&acme_wire::b64u_encode(&buf)).is_none());
    }
}
