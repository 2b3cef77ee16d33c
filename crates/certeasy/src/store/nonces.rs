//! Anti-replay nonces, shared by every node through the database.

use super::{now_ms, Result, Store};

impl Store {
    /// Records a fresh nonce valid until `expires` (unix ms).
    pub async fn insert_nonce(&self, value: &str, expires: i64) -> Result<()> {
        sqlx::query("INSERT INTO nonces (value, expires) VALUES (?, ?)")
            .bind(value)
            .bind(expires)
            .execute(self.writer())
            .await?;
        Ok(())
    }

    /// Consumes a nonce: true when it existed and had not expired.
    pub async fn consume_nonce(&self, value: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM nonces WHERE value = ? AND expires > ?")
            .bind(value)
            .bind(now_ms())
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Deletes expired nonces; returns how many.
    pub async fn purge_nonces(&self) -> Result<u64> {
        let done = sqlx::query("DELETE FROM nonces WHERE expires <= ?")
            .bind(now_ms())
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected())
    }
}
