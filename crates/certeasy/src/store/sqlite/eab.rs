//! External account binding keys.

use rusqlite::{params, OptionalExtension, Row};

use super::{Result, SqliteStore, SqliteTx};
use crate::store::{json_list, parse_list, EabKeyRow};

macro_rules! select {
    ($tail:literal) => {
        concat!(
            "SELECT kid, label, sealed_key, policies, profiles, names, expires_at, created_at, revoked_at, account_id, bound_at FROM eab_keys ",
            $tail
        )
    };
}

type Raw = (EabKeyRow, [String; 3]);

fn raw(r: &Row<'_>) -> rusqlite::Result<Raw> {
    Ok((
        EabKeyRow {
            kid: r.get(0)?,
            label: r.get(1)?,
            sealed_key: r.get(2)?,
            policies: Vec::new(),
            profiles: Vec::new(),
            names: Vec::new(),
            expires_at: r.get(6)?,
            created_at: r.get(7)?,
            revoked_at: r.get(8)?,
            account_id: r.get(9)?,
            bound_at: r.get(10)?,
        },
        [r.get(3)?, r.get(4)?, r.get(5)?],
    ))
}

fn decode((mut k, [policies, profiles, names]): Raw) -> Result<EabKeyRow> {
    k.policies = parse_list(&policies)?;
    k.profiles = parse_list(&profiles)?;
    k.names = parse_list(&names)?;
    Ok(k)
}

// The methods of `Store` for this area (their contracts are documented
// there), in SQL.
impl SqliteStore {
    pub(in crate::store) async fn insert_eab_key(&self, k: &EabKeyRow) -> Result<()> {
        self.write(|c| {
            c.prepare_cached(
                "INSERT INTO eab_keys (kid, label, sealed_key, policies, profiles, names, expires_at, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            )?
            .execute(params![
                k.kid,
                k.label,
                k.sealed_key,
                json_list(&k.policies),
                json_list(&k.profiles),
                json_list(&k.names),
                k.expires_at,
                k.created_at,
            ])?;
            Ok(())
        })
        .await
    }

    pub(in crate::store) async fn eab_key(&self, kid: &str) -> Result<Option<EabKeyRow>> {
        self.read(|c| {
            c.prepare_cached(select!("WHERE kid = ?"))?
                .query_row([kid], raw)
                .optional()?
                .map(decode)
                .transpose()
        })
    }

    pub(in crate::store) async fn eab_keys(&self) -> Result<Vec<EabKeyRow>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(select!("ORDER BY created_at, kid"))?;
            let rows = stmt.query_map([], raw)?;
            rows.map(|r| decode(r?)).collect()
        })
    }

    pub(in crate::store) async fn bind_eab_key(
        tx: &mut SqliteTx,
        kid: &str,
        account_id: &str,
        now: i64,
    ) -> Result<bool> {
        let n = tx
            .conn()
            .prepare_cached(
                "UPDATE eab_keys SET account_id = ?1, bound_at = ?2 WHERE kid = ?3 \
                 AND account_id IS NULL AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?2)",
            )?
            .execute(params![account_id, now, kid])?;
        Ok(n == 1)
    }

    pub(in crate::store) async fn revoke_eab_key(
        tx: &mut SqliteTx,
        kid: &str,
        now: i64,
    ) -> Result<Option<Option<String>>> {
        Ok(tx
            .conn()
            .prepare_cached(
                "UPDATE eab_keys SET revoked_at = ? WHERE kid = ? AND revoked_at IS NULL RETURNING account_id",
            )?
            .query_row(params![now, kid], |r| r.get(0))
            .optional()?)
    }

    pub(in crate::store) async fn deactivate_account_tx(
        tx: &mut SqliteTx,
        id: &str,
    ) -> Result<bool> {
        let n = tx
            .conn()
            .prepare_cached(
                "UPDATE accounts SET status = 'deactivated' WHERE id = ? AND status = 'valid'",
            )?
            .execute([id])?;
        Ok(n == 1)
    }
}
