//! Anti-replay shared through the database: the nonces that were used.
//! A single node keeps this in memory (`crate::wfe::nonce`); this table is
//! for several nodes sharing one database (on PostgreSQL).

use rusqlite::params;

use super::{Result, SqliteStore};
use crate::store::now_ms;

// The methods of `Store` for this area (their contracts are documented
// there), in SQL.
impl SqliteStore {
    pub(in crate::store) async fn use_nonce(&self, value: &str, expires: i64) -> Result<bool> {
        self.write(|c| {
            let n = c
                .prepare_cached("INSERT OR IGNORE INTO used_nonces (value, expires) VALUES (?, ?)")?
                .execute(params![value, expires])?;
            Ok(n == 1)
        })
        .await
    }

    pub(in crate::store) async fn purge_nonces(&self) -> Result<u64> {
        self.write(|c| {
            let n = c
                .prepare_cached("DELETE FROM used_nonces WHERE expires <= ?")?
                .execute([now_ms()])?;
            Ok(n as u64)
        })
        .await
    }
}
