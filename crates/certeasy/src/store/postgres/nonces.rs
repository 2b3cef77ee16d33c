//! Anti-replay shared through the database: the nonces that were used, so
//! a nonce is accepted once by whichever node sees it.

use super::{execute, params, PgStore, Result};
use crate::store::now_ms;

// The methods of `Store` for this area (their contracts are documented
// there), in SQL.
impl PgStore {
    pub(in crate::store) async fn use_nonce(&self, value: &str, expires: i64) -> Result<bool> {
        let n = execute(
            &self.conn().await?,
            "INSERT INTO used_nonces (value, expires) VALUES ($1, $2) ON CONFLICT (value) DO NOTHING",
            params![value, expires],
        )
        .await?;
        Ok(n == 1)
    }

    pub(in crate::store) async fn purge_nonces(&self) -> Result<u64> {
        execute(
            &self.conn().await?,
            "DELETE FROM used_nonces WHERE expires <= $1",
            params![now_ms()],
        )
        .await
    }
}
