//! External account binding keys.

use tokio_postgres::Row;

use super::{execute, params, query, query_opt, PgStore, PgTx, Result};
use crate::store::{json_list, parse_list, EabKeyRow};

macro_rules! select {
    ($tail:literal) => {
        concat!(
            "SELECT kid, label, sealed_key, policies, profiles, names, expires_at, created_at, revoked_at, account_id, bound_at FROM eab_keys ",
            $tail
        )
    };
}

fn decode(r: &Row) -> Result<EabKeyRow> {
    Ok(EabKeyRow {
        kid: r.try_get(0)?,
        label: r.try_get(1)?,
        sealed_key: r.try_get(2)?,
        policies: parse_list(r.try_get(3)?)?,
        profiles: parse_list(r.try_get(4)?)?,
        names: parse_list(r.try_get(5)?)?,
        expires_at: r.try_get(6)?,
        created_at: r.try_get(7)?,
        revoked_at: r.try_get(8)?,
        account_id: r.try_get(9)?,
        bound_at: r.try_get(10)?,
    })
}

// The methods of `Store` for this area (their contracts are documented
// there), in SQL.
impl PgStore {
    pub(in crate::store) async fn insert_eab_key(&self, k: &EabKeyRow) -> Result<()> {
        execute(
            &self.conn().await?,
            "INSERT INTO eab_keys (kid, label, sealed_key, policies, profiles, names, expires_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            params![
                k.kid,
                k.label,
                k.sealed_key,
                json_list(&k.policies),
                json_list(&k.profiles),
                json_list(&k.names),
                k.expires_at,
                k.created_at,
            ],
        )
        .await?;
        Ok(())
    }

    pub(in crate::store) async fn eab_key(&self, kid: &str) -> Result<Option<EabKeyRow>> {
        query_opt(&self.conn().await?, select!("WHERE kid = $1"), params![kid])
            .await?
            .as_ref()
            .map(decode)
            .transpose()
    }

    pub(in crate::store) async fn eab_keys(&self) -> Result<Vec<EabKeyRow>> {
        query(
            &self.conn().await?,
            select!("ORDER BY created_at, kid"),
            &[],
        )
        .await?
        .iter()
        .map(decode)
        .collect()
    }

    pub(in crate::store) async fn bind_eab_key(
        tx: &mut PgTx,
        kid: &str,
        account_id: &str,
        now: i64,
    ) -> Result<bool> {
        let n = execute(
            tx.c(),
            "UPDATE eab_keys SET account_id = $1, bound_at = $2 WHERE kid = $3 \
             AND account_id IS NULL AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2)",
            params![account_id, now, kid],
        )
        .await?;
        Ok(n == 1)
    }

    pub(in crate::store) async fn revoke_eab_key(
        tx: &mut PgTx,
        kid: &str,
        now: i64,
    ) -> Result<Option<Option<String>>> {
        Ok(query_opt(
            tx.c(),
            "UPDATE eab_keys SET revoked_at = $1 WHERE kid = $2 AND revoked_at IS NULL RETURNING account_id",
            params![now, kid],
        )
        .await?
        .map(|r| r.try_get(0))
        .transpose()?)
    }

    pub(in crate::store) async fn deactivate_account_tx(tx: &mut PgTx, id: &str) -> Result<bool> {
        let n = execute(
            tx.c(),
            "UPDATE accounts SET status = 'deactivated' WHERE id = $1 AND status = 'valid'",
            params![id],
        )
        .await?;
        Ok(n == 1)
    }
}
