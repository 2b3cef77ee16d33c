//! Anti-replay shared through the database: the nonces that were used.
//! A single node keeps this in memory (`crate::nonce`); this table is
//! for several nodes sharing one PostgreSQL database
//! (`NonceBook::shared`).

use super::Store;

impl Store {
    delegate! {
        /// Records the use of a nonce valid until `expires` (unix ms). True when
        /// this is its first use.
        pub async fn use_nonce(&self, value: &str, expires: i64) -> Result<bool>;

        /// Forgets used nonces that have expired anyway; returns how many.
        pub async fn purge_nonces(&self) -> Result<u64>;
    }
}
