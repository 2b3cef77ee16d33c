//! Anti-replay shared through the database: the nonces that were used.
//! A single node keeps this in memory (`crate::nonce`); this table is
//! for several nodes sharing one database (PostgreSQL, not yet available).

use rusqlite::params;

use super::{now_ms, Result, Store};

impl Store {
    /// Records the use of a nonce valid until `expires` (unix ms). True when
    /// this is its first use.
    pub async fn use_nonce(&self, value: &str, expires: i64) -> Result<bool> {
        self.write(|c| {
            let n = c
                .prepare_cached("INSERT OR IGNORE INTO used_nonces (value, expires) VALUES (?, ?)")?
                .execute(params![value, expires])?;
            Ok(n == 1)
        })
        .await
    }

    /// Forgets used nonces that have expired anyway; returns how many.
    pub async fn purge_nonces(&self) -> Result<u64> {
        self.write(|c| {
            let n = c
                .prepare_cached("DELETE FROM used_nonces WHERE expires <= ?")?
                .execute([now_ms()])?;
            Ok(n as u64)
        })
        .await
    }
}
