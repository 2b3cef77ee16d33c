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
//! as RFC 8555 intends.
//!
//! Several nodes on one PostgreSQL database ([`NonceBook::shared`]): any
//! node may see the nonce another minted, so the key is the cluster's (drawn
//! once and kept in the database's `meta`), a nonce is
//! `issued-at(8) || random(8) || HMAC(key, both)`, and its single use is
//! recorded in the shared `used_nonces` table (`Store::use_nonce`: one
//! `INSERT … ON CONFLICT DO NOTHING` per authenticated request, the cost
//! measured in docs/performance.md). A nonce older than [`SHARED_LIFETIME`]
//! is refused without a lookup, so the table only keeps that long of uses;
//! it is purged every [`PURGE_EVERY`] uses.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

use crate::store::{now_ms, Store};

/// How long a nonce of a shared book is accepted after it was minted.
pub const SHARED_LIFETIME_MS: i64 = 60 * 60 * 1000;

/// [`SHARED_LIFETIME_MS`] as a duration, for the docs.
pub const SHARED_LIFETIME: std::time::Duration =
    std::time::Duration::from_millis(SHARED_LIFETIME_MS as u64);

/// Uses of a shared book between two purges of expired uses.
pub const PURGE_EVERY: u64 = 4096;

/// The `meta` key of the cluster's nonce key.
const SHARED_KEY_META: &str = "nonce_key";

/// Most used nonces remembered before the low-water mark rises.
pub const MAX_TRACKED: usize = 65_536;

const TAG_LEN: usize = 32;

/// Mints nonces and accepts each at most once.
pub struct NonceBook {
    key: hmac::Key,
    next: AtomicU64,
    used: Mutex<Window>,
    /// The database of a cluster: uses are recorded there, not in `used`.
    shared: Option<Store>,
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
            shared: None,
        }
    }

    /// The book of a node of a cluster on `store`: the cluster's key (the
    /// first node to start draws it), uses recorded in the database.
    ///
    /// # Errors
    /// When the key cannot be read or stored, or the random number
    /// generator fails.
    pub async fn shared(store: Store) -> anyhow::Result<NonceBook> {
        let mut fresh = [0u8; 32];
        SystemRandom::new()
            .fill(&mut fresh)
            .map_err(|_| RngFailed)?;
        let stored = store
            .meta_get_or_init(SHARED_KEY_META, || hex::encode(fresh))
            .await?;
        let secret = hex::decode(&stored)
            .map_err(|e| anyhow::anyhow!("the stored nonce key is not hex: {e}"))?;
        let mut book = NonceBook::with_key(&secret);
        book.shared = Some(store);
        Ok(book)
    }

    /// A fresh nonce.
    pub fn mint(&self) -> String {
        if self.shared.is_some() {
            return self.mint_shared();
        }
        let counter = self.next.fetch_add(1, Ordering::Relaxed).to_be_bytes();
        let mut buf = [0u8; 8 + TAG_LEN];
        buf[..8].copy_from_slice(&counter);
        buf[8..].copy_from_slice(hmac::sign(&self.key, &counter).as_ref());
        acme_wire::b64u_encode(&buf)
    }

    /// `issued-at(8) || random(8) || tag(32)`.
    fn mint_shared(&self) -> String {
        let mut buf = [0u8; 16 + TAG_LEN];
        buf[..8].copy_from_slice(&now_ms().to_be_bytes());
        // Uniqueness across nodes: 64 random bits beside the millisecond.
        // Without a working RNG, the per-process counter still keeps this
        // node's nonces distinct (and the server refused to start anyway).
        if SystemRandom::new().fill(&mut buf[8..16]).is_err() {
            let counter = self.next.fetch_add(1, Ordering::Relaxed);
            buf[8..16].copy_from_slice(&counter.to_be_bytes());
        }
        let tag = hmac::sign(&self.key, &buf[..16]);
        buf[16..].copy_from_slice(tag.as_ref());
        acme_wire::b64u_encode(&buf)
    }

    /// Accepts `nonce` if this book (or, for a shared book, any node of the
    /// cluster) minted it and it was not used before. A shared book refuses
    /// when the database cannot record the use (the client retries with a
    /// fresh nonce, as after any `badNonce`).
    pub async fn use_once(&self, nonce: &str) -> bool {
        match &self.shared {
            None => self.use_once_local(nonce),
            Some(store) => self.use_once_shared(store, nonce).await,
        }
    }

    async fn use_once_shared(&self, store: &Store, nonce: &str) -> bool {
        let Ok(raw) = acme_wire::b64u_decode(nonce) else {
            return false;
        };
        if raw.len() != 16 + TAG_LEN || hmac::verify(&self.key, &raw[..16], &raw[16..]).is_err() {
            return false;
        }
        let mut issued = [0u8; 8];
        issued.copy_from_slice(&raw[..8]);
        let expires = i64::from_be_bytes(issued).saturating_add(SHARED_LIFETIME_MS);
        if expires <= now_ms() {
            return false;
        }
        let first = match store
            .use_nonce(&acme_wire::b64u_encode(&raw[..16]), expires)
            .await
        {
            Ok(first) => first,
            Err(e) => {
                tracing::error!(target: "wfe", error = %e, "cannot record a nonce's use; refused as badNonce");
                false
            }
        };
        if self.next.fetch_add(1, Ordering::Relaxed) % PURGE_EVERY == 0 {
            let store = store.clone();
            tokio::spawn(async move {
                if let Err(e) = store.purge_nonces().await {
                    tracing::warn!(target: "wfe", error = %e, "cannot purge expired nonce uses; retried later");
                }
            });
        }
        first
    }

    fn use_once_local(&self, nonce: &str) -> bool {
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
        assert!(ok.use_once_local(&ok.mint()));
    }

    /// Two nodes' books on one database (SQLite here: the shared table is
    /// the same on every engine; on PostgreSQL with `CERTEASY_TEST_PG_DSN`):
    /// one key, and a nonce minted by one is accepted once by any.
    #[tokio::test]
    async fn a_shared_nonce_is_accepted_once_by_any_node() {
        let dir = tempfile::tempdir().unwrap();
        let store = match crate::store::tests::test_pg_settings() {
            Some(pg) => Store::open_postgres(&pg).await.unwrap(),
            None => Store::open_sqlite(&dir.path().join("db.sqlite"))
                .await
                .unwrap(),
        };
        let (a, b) = tokio::join!(
            NonceBook::shared(store.clone()),
            NonceBook::shared(store.clone())
        );
        let (a, b) = (a.unwrap(), b.unwrap());
        let n = a.mint();
        assert!(b.use_once(&n).await, "minted by a, first use at b");
        assert!(!a.use_once(&n).await, "replayed at a");
        assert!(!b.use_once(&n).await, "replayed at b");
        assert!(a.use_once(&b.mint()).await);
        // A local book's nonce, a tampered one, an expired one: refused.
        assert!(!a.use_once(&NonceBook::with_key(b"k").mint()).await);
        let mut raw = acme_wire::b64u_decode(&a.mint()).unwrap();
        raw[12] ^= 1;
        assert!(!a.use_once(&acme_wire::b64u_encode(&raw)).await);
        let mut old = [0u8; 16 + TAG_LEN];
        old[..8].copy_from_slice(&(now_ms() - SHARED_LIFETIME_MS - 1).to_be_bytes());
        let tag = hmac::sign(&a.key, &old[..16]);
        old[16..].copy_from_slice(tag.as_ref());
        assert!(!b.use_once(&acme_wire::b64u_encode(&old)).await);
    }

    #[test]
    fn a_nonce_is_accepted_once() {
        let book = NonceBook::with_key(b"k");
        let n = book.mint();
        assert!(book.use_once_local(&n));
        assert!(!book.use_once_local(&n));
    }

    #[test]
    fn nonces_from_another_key_or_tampered_are_refused() {
        let book = NonceBook::with_key(b"k");
        let other = NonceBook::with_key(b"other");
        assert!(!book.use_once_local(&other.mint()));
        let mut raw = acme_wire::b64u_decode(&book.mint()).unwrap();
        raw[7] ^= 1;
        assert!(!book.use_once_local(&acme_wire::b64u_encode(&raw)));
        assert!(!book.use_once_local("short"));
        assert!(!book.use_once_local(""));
    }

    #[test]
    fn out_of_order_use_within_the_window_is_fine() {
        let book = NonceBook::with_key(b"k");
        let a = book.mint();
        let b = book.mint();
        assert!(book.use_once_local(&b));
        assert!(book.use_once_local(&a));
    }

    #[test]
    fn the_window_is_bounded_and_evicted_nonces_are_refused() {
        let book = NonceBook::with_key(b"k");
        let old = book.mint();
        let fresh: Vec<String> = (0..MAX_TRACKED + 10).map(|_| book.mint()).collect();
        for n in &fresh {
            assert!(book.use_once_local(n));
        }
        assert!(book.used.lock().unwrap().used.len() <= MAX_TRACKED);
        // Never used, but older than everything remembered: refused.
        assert!(!book.use_once_local(&old));
        // Replays of remembered and of evicted nonces: refused.
        assert!(!book.use_once_local(&fresh[fresh.len() - 1]));
        assert!(!book.use_once_local(&fresh[0]));
    }
}
