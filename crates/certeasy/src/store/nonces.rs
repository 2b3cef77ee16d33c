//! Anti-replay shared through the database: the nonces that were used.
//! A single node keeps this in memory (`crate::wfe::nonce`); this table is
//! for several nodes sharing one database (PostgreSQL, not yet available).

use super::{now_ms, Result, Store};

impl Store {
    /// Records the use of a nonce valid until `expires` (unix ms). True when
    /// this is its first use.
    pub async fn use_nonce(&self, value: &str, expires: i64) -> Result<bool> {
        let done = sqlx::query("INSERT OR IGNORE INTO used_nonces (value, expires) VALUES (?, ?)")
            .bind(value)
            .bind(expires)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Forgets used nonces that have expired anyway; returns how many.
    pub async fn purge_nonces(&self) -> Result<u64> {
        let done = sqlx::query("DELETE FROM used_nonces WHERE expires <= ?")
            .bind(now_ms())
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected())
    }
}
