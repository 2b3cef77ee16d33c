//! The cluster's token buckets (GCRA) for the limits that must hold across
//! nodes (`account-creation`, `order-creation`; docs/rate-limits.md).
//!
//! A bucket is one row: its theoretical arrival time (`tat`, unix ms). One
//! statement takes tokens atomically: the row is created full, or moved on
//! by `n` emissions when that stays within the burst, else left alone.

use super::{params, query_opt, PgStore, Result};

impl PgStore {
    pub(in crate::store) async fn cluster_bucket_take(
        &self,
        name: &str,
        key: &str,
        n: i64,
        emission_ms: i64,
        burst: i64,
        now: i64,
    ) -> Result<std::result::Result<(), Option<i64>>> {
        if n > burst {
            return Ok(Err(None));
        }
        let cost = n.saturating_mul(emission_ms);
        let tolerance = burst.saturating_mul(emission_ms);
        let c = self.conn().await?;
        let taken = query_opt(
            &c,
            "INSERT INTO limit_buckets (name, key, tat) VALUES ($1, $2, $3::bigint + $4::bigint) \
             ON CONFLICT (name, key) DO UPDATE SET tat = GREATEST(limit_buckets.tat, $3::bigint) + $4::bigint \
             WHERE GREATEST(limit_buckets.tat, $3::bigint) + $4::bigint - $3::bigint <= $5::bigint \
             RETURNING tat",
            params![name, key, now, cost, tolerance],
        )
        .await?;
        if taken.is_some() {
            return Ok(Ok(()));
        }
        let tat: i64 = match query_opt(
            &c,
            "SELECT tat FROM limit_buckets WHERE name = $1 AND key = $2",
            params![name, key],
        )
        .await?
        {
            Some(r) => r.try_get(0)?,
            None => now,
        };
        Ok(Err(Some((tat.max(now) + cost - now - tolerance).max(1))))
    }

    /// Forgets buckets that are full again (their `tat` passed), so the
    /// table follows the active clients.
    pub(in crate::store) async fn cluster_buckets_prune(&self, now: i64) -> Result<u64> {
        super::execute(
            &self.conn().await?,
            "DELETE FROM limit_buckets WHERE tat < $1",
            params![now],
        )
        .await
    }
}
