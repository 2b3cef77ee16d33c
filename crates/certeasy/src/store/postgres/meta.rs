//! Installation metadata (server id, secrets).

use super::{execute, params, query_one, query_opt, PgStore, Result};

// The methods of `Store` for this area (their contracts are documented
// there), in SQL.
impl PgStore {
    pub(in crate::store) async fn meta(&self, key: &str) -> Result<Option<String>> {
        Ok(query_opt(
            &self.conn().await?,
            "SELECT value FROM meta WHERE key = $1",
            params![key],
        )
        .await?
        .map(|r| r.try_get(0))
        .transpose()?)
    }

    // ON CONFLICT DO NOTHING: of nodes racing to initialise a key, the
    // first insert wins and every node reads its value.
    pub(in crate::store) async fn meta_get_or_init(
        &self,
        key: &str,
        make: impl FnOnce() -> String,
    ) -> Result<String> {
        let c = self.conn().await?;
        if let Some(row) =
            query_opt(&c, "SELECT value FROM meta WHERE key = $1", params![key]).await?
        {
            return Ok(row.try_get(0)?);
        }
        execute(
            &c,
            "INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
            params![key, make()],
        )
        .await?;
        Ok(
            query_one(&c, "SELECT value FROM meta WHERE key = $1", params![key])
                .await?
                .try_get(0)?,
        )
    }
}
