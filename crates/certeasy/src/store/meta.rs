//! Installation metadata (server id, secrets).

use super::{Result, Store};

impl Store {
    /// Reads a metadata value.
    pub async fn meta(&self, key: &str) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_optional(self.reader())
            .await?;
        Ok(row.map(|r| r.0))
    }

    /// Returns the value of `key`, storing `make()` first if it is absent.
    /// Concurrent callers all get the first value stored.
    pub async fn meta_get_or_init(
        &self,
        key: &str,
        make: impl FnOnce() -> String,
    ) -> Result<String> {
        sqlx::query("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)")
            .bind(key)
            .bind(make())
            .execute(self.writer())
            .await?;
        let (v,): (String,) = sqlx::query_as("SELECT value FROM meta WHERE key = ?")
            .bind(key)
            .fetch_one(self.writer())
            .await?;
        Ok(v)
    }
}
