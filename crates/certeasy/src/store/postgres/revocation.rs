//! Revocation at the CA and the built-in CAs' CRLs.

use super::{execute, params, query, query_one, query_opt, PgStore, PgTx, Result};
use crate::store::{CaRevocation, CrlRow, RevocationState, RevokedEntry, StoreError};

fn ca_state(id: &str, raw: Option<String>) -> Result<CaRevocation> {
    // Revoked before migration 9 set the column: local.
    let Some(raw) = raw else {
        return Ok(CaRevocation::Local);
    };
    CaRevocation::parse(&raw).ok_or_else(|| {
        StoreError::Corrupt(format!("certificates {id}: unknown ca_revocation {raw:?}")).into()
    })
}

// The methods of `Store` for this area (their contracts are documented
// there), in SQL.
impl PgStore {
    pub(in crate::store) async fn revocation(&self, id: &str) -> Result<Option<RevocationState>> {
        let Some(r) = query_opt(
            &self.conn().await?,
            "SELECT revoked_at, COALESCE(revocation_reason, 0), ca_revocation, ca_revocation_detail, ca_revoked_at \
             FROM certificates WHERE id = $1 AND revoked_at IS NOT NULL",
            params![id],
        )
        .await?
        else {
            return Ok(None);
        };
        Ok(Some(RevocationState {
            revoked_at: r.try_get(0)?,
            reason: r.try_get(1)?,
            ca: ca_state(id, r.try_get(2)?)?,
            detail: r.try_get(3)?,
            ca_at: r.try_get(4)?,
        }))
    }

    pub(in crate::store) async fn settle_ca_revocation(
        tx: &mut PgTx,
        id: &str,
        outcome: CaRevocation,
        detail: Option<&str>,
        at: i64,
    ) -> Result<bool> {
        let n = execute(
            tx.c(),
            "UPDATE certificates SET ca_revocation = $1, ca_revocation_detail = $2, ca_revoked_at = $3 \
             WHERE id = $4 AND ca_revocation = 'pending'",
            params![outcome.as_str(), detail, at, id],
        )
        .await?;
        Ok(n == 1)
    }

    pub(in crate::store) async fn count_ca_revocations_pending(&self) -> Result<i64> {
        Ok(query_one(
            &self.conn().await?,
            "SELECT COUNT(*) FROM certificates WHERE revoked_at IS NOT NULL AND ca_revocation = 'pending'",
            &[],
        )
        .await?
        .try_get(0)?)
    }

    pub(in crate::store) async fn revoked_certs(
        &self,
        authority: &str,
        not_after_after: i64,
    ) -> Result<Vec<RevokedEntry>> {
        query(
            &self.conn().await?,
            "SELECT serial, revoked_at, COALESCE(revocation_reason, 0) FROM certificates \
             WHERE authority = $1 AND revoked_at IS NOT NULL AND not_after > $2 ORDER BY serial",
            params![authority, not_after_after],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(RevokedEntry {
                serial: r.try_get(0)?,
                revoked_at: r.try_get(1)?,
                reason: r.try_get(2)?,
            })
        })
        .collect()
    }

    pub(in crate::store) async fn crl(&self, authority: &str) -> Result<Option<CrlRow>> {
        query_opt(
            &self.conn().await?,
            "SELECT authority, number, this_update, next_update, der, stale FROM crls WHERE authority = $1",
            params![authority],
        )
        .await?
        .map(|r| {
            Ok(CrlRow {
                authority: r.try_get(0)?,
                number: r.try_get(1)?,
                this_update: r.try_get(2)?,
                next_update: r.try_get(3)?,
                der: r.try_get(4)?,
                stale: r.try_get(5)?,
            })
        })
        .transpose()
    }

    pub(in crate::store) async fn store_crl(&self, row: &CrlRow) -> Result<bool> {
        // Conditional on the number, so concurrent builders (several
        // nodes) keep the newest and the number only grows.
        let n = execute(
            &self.conn().await?,
            "INSERT INTO crls (authority, number, this_update, next_update, der, stale) VALUES ($1, $2, $3, $4, $5, 0) \
             ON CONFLICT (authority) DO UPDATE SET number = excluded.number, this_update = excluded.this_update, \
             next_update = excluded.next_update, der = excluded.der, stale = GREATEST(crls.stale - $6, 0) \
             WHERE crls.number < excluded.number",
            params![
                row.authority,
                row.number,
                row.this_update,
                row.next_update,
                row.der,
                row.stale
            ],
        )
        .await?;
        Ok(n == 1)
    }

    pub(in crate::store) async fn mark_crl_stale(tx: &mut PgTx, authority: &str) -> Result<()> {
        execute(
            tx.c(),
            "INSERT INTO crls (authority, number, this_update, next_update, der, stale) VALUES ($1, 0, 0, 0, '\\x'::bytea, 1) \
             ON CONFLICT (authority) DO UPDATE SET stale = crls.stale + 1",
            params![authority],
        )
        .await?;
        Ok(())
    }
}
