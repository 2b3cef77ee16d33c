//! Installation metadata (server id, secrets).

use rusqlite::OptionalExtension;

use super::{Result, SqliteStore};

// The methods of `Store` for this area (their contracts are documented
// there), in SQL.
impl SqliteStore {
    pub(in crate::store) async fn meta(&self, key: &str) -> Result<Option<String>> {
        self.read(|c| {
            Ok(c.prepare_cached("SELECT value FROM meta WHERE key = ?")?
                .query_row([key], |r| r.get(0))
                .optional()?)
        })
    }

    pub(in crate::store) async fn meta_get_or_init(
        &self,
        key: &str,
        make: impl FnOnce() -> String,
    ) -> Result<String> {
        self.write(|c| {
            c.prepare_cached("INSERT OR IGNORE INTO meta (key, value) VALUES (?, ?)")?
                .execute([key, make().as_str()])?;
            Ok(c.prepare_cached("SELECT value FROM meta WHERE key = ?")?
                .query_row([key], |r| r.get(0))?)
        })
        .await
    }
}
