//! Replay nonces (RFC 8555 §6.5), kept in memory.
//!
//! A nonce is `counter(8, big-endian) || HMAC-SHA-256(key, counter)`,
//! base64url-encoded, under a key drawn at process start. Minting costs an
//! atomic increment and an HMAC; no database write happens on any request
//! for nonces (the profile showed one WAL commit per POST for them).
//!
//! Single use: the counters of used nonces are kept in a window of at most
//! [`MAX_TRACKED`] entries with a low-water mark, as Boulder's nonce service
//! does. A nonce at or below the mark, or already in the window, is refused;
//! when the window is full its oldest counter becomes the new mark. Memory
//! stays bounded and a replay is always refused.
//!
//! Scope: this is exact for one process, which is what a SQLite deployment
//! is. A restart draws a new key, so outstanding nonces are refused once
//! with `badNonce` and clients retry with the fresh nonce in that response,
//! as RFC 8555 intends. Several nodes sharing PostgreSQL will need the
//! shared `used_nonces` table instead (see `Store::use_nonce`).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// Most used nonces remembered before the low-water mark rises.
pub const MAX_TRACKED: usize = 65_536;

const TAG_LEN: usize = 32;

/// Mints nonces and accepts each at most once.
pub struct NonceBook {
    key: hmac::Key,
    next: AtomicU64,
    used: Mutex<Window>,
}

#[derive(Default)]
struct Window {
    low_water: u64,
    used: BTreeSet<u64>,
}

impl std::fmt::Debug for NonceBook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("NonceBook(<secret>)")
    }
}

impl NonceBook {
    /// A book with a fresh random key.
    ///
    /// # Errors
    /// When the system's random number generator fails: nonces under a
    /// predictable key could be forged, so the server must not start.
    pub fn new() -> Result<NonceBook, RngFailed> {
        NonceBook::from_random(|buf| SystemRandom::new().fill(buf))
    }

    /// A book keyed with 32 bytes from `fill`; its failure is an error, never
    /// a zero key.
    fn from_random(
        fill: impl FnOnce(&mut [u8]) -> Result<(), ring::error::Unspecified>,
    ) -> Result<NonceBook, RngFailed> {
        let mut secret = [0u8; 32];
        fill(&mut secret).map_err(|_| RngFailed)?;
        Ok(NonceBook::with_key(&secret))
    }

    /// A book with a given key (tests).
    pub fn with_key(secret: &[u8]) -> NonceBook {
        NonceBook {
            key: hmac::Key::new(hmac::HMAC_SHA256, secret),
            next: AtomicU64::new(1),
            used: Mutex::new(Window::default()),
        }
    }

    /// A fresh nonce.
    pub fn mint(&self) -> String {
        let counter = self.next.fetch_add(1, Ordering::Relaxed).to_be_bytes();
        let mut buf = [0u8; 8 + TAG_LEN];
        buf[..8].copy_from_slice(&counter);
        buf[8..].copy_from_slice(hmac::sign(&self.key, &counter).as_ref());
        acme_wire::b64u_encode(&buf)
    }

    /// Accepts `nonce` if this book minted it and it was not used before.
    pub fn use_once(&self, nonce: &str) -> bool {
        let Some(counter) = self.counter(nonce) else {
            return false;
        };
        let Ok(mut w) = self.used.lock() else {
            return false;
        };
        if counter <= w.low_water || !w.used.insert(counter) {
            return false;
        }
        if w.used.len() > MAX_TRACKED {
            if let Some(oldest) = w.used.pop_first() {
                w.low_water = oldest;
            }
        }
        true
    }

    fn counter(&self, nonce: &str) -> Option<u64> {
        let raw = acme_wire::b64u_decode(nonce).ok()?;
        if raw.len() != 8 + TAG_LEN {
            return None;
        }
        hmac::verify(&self.key, &raw[..8], &raw[8..]).ok()?;
        let mut c = [0u8; 8];
        c.copy_from_slice(&raw[..8]);
        Some(u64::from_be_bytes(c))
    }
}

/// The system's random number generator failed.
#[derive(Debug, thiserror::Error)]
#[error("the system random number generator failed; nonces cannot be keyed safely")]
pub struct RngFailed;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failing_random_generator_is_an_error_not_a_zero_key() {
        let failed = NonceBook::from_random(|_| Err(ring::error::Unspecified));
        assert!(failed.is_err());
        let ok = NonceBook::from_random(|b| {
            b.fill(7);
            Ok(())
        })
        .unwrap();
        assert!(ok.use_once(&ok.mint()));
    }

    #[test]
    fn a_nonce_is_accepted_once() {
        let book = NonceBook::with_key(b"k");
        let n = book.mint();
        assert!(book.use_once(&n));
        assert!(!book.use_once(&n));
    }

    #[test]
    fn nonces_from_another_key_or_tampered_are_refused() {
        let book = NonceBook::with_key(b"k");
        let other = NonceBook::with_key(b"other");
        assert!(!book.use_once(&other.mint()));
        let mut raw = acme_wire::b64u_decode(&book.mint()).unwrap();
        raw[7] ^= 1;
        assert!(!book.use_once(&acme_wire::b64u_encode(&raw)));
        assert!(!book.use_once("short"));
        assert!(!book.use_once(""));
    }

    #[test]
    fn out_of_order_use_within_the_window_is_fine() {
        let book = NonceBook::with_key(b"k");
        let a = book.mint();
        let b = book.mint();
        assert!(book.use_once(&b));
        assert!(book.use_once(&a));
    }

    #[test]
    fn the_window_is_bounded_and_evicted_nonces_are_refused() {
        let book = NonceBook::with_key(b"k");
        let old = book.mint();
        let fresh: Vec<String> = (0..MAX_TRACKED + 10).map(|_| book.mint()).collect();
        for n in &fresh {
            assert!(book.use_once(n));
        }
        assert!(book.used.lock().unwrap().used.len() <= MAX_TRACKED);
        // Never used, but older than everything remembered: refused.
        assert!(!book.use_once(&old));
        // Replays of remembered and of evicted nonces: refused.
        assert!(!book.use_once(&fresh[fresh.len() - 1]));
        assert!(!book.use_once(&fresh[0]));
    }
}
