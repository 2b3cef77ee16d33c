//! Revocation at the CA and the built-in CAs' CRLs.

use rusqlite::{params, OptionalExtension};

use super::{Result, SqliteStore, SqliteTx};
use crate::store::{CaRevocation, CrlRow, RevocationState, RevokedEntry, StoreError};

/// A revocation as read: revoked_at, reason, ca_revocation, detail,
/// ca_revoked_at.
type RawRevocation = (i64, i64, Option<String>, Option<String>, Option<i64>);

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
impl SqliteStore {
    pub(in crate::store) async fn revocation(&self, id: &str) -> Result<Option<RevocationState>> {
        let row: Option<RawRevocation> =
            self.read(|c| {
                Ok(c.prepare_cached(
                    "SELECT revoked_at, COALESCE(revocation_reason, 0), ca_revocation, ca_revocation_detail, ca_revoked_at \
                     FROM certificates WHERE id = ? AND revoked_at IS NOT NULL",
                )?
                .query_row([id], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
                })
                .optional()?)
            })?;
        let Some((revoked_at, reason, ca, detail, ca_at)) = row else {
            return Ok(None);
        };
        Ok(Some(RevocationState {
            revoked_at,
            reason,
            ca: ca_state(id, ca)?,
            detail,
            ca_at,
        }))
    }

    pub(in crate::store) async fn settle_ca_revocation(
        tx: &mut SqliteTx,
        id: &str,
        outcome: CaRevocation,
        detail: Option<&str>,
        at: i64,
    ) -> Result<bool> {
        let n = tx
            .conn()
            .prepare_cached(
                "UPDATE certificates SET ca_revocation = ?, ca_revocation_detail = ?, ca_revoked_at = ? \
                 WHERE id = ? AND ca_revocation = 'pending'",
            )?
            .execute(params![outcome.as_str(), detail, at, id])?;
        Ok(n == 1)
    }

    pub(in crate::store) async fn count_ca_revocations_pending(&self) -> Result<i64> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT COUNT(*) FROM certificates WHERE revoked_at IS NOT NULL AND ca_revocation = 'pending'",
            )?
            .query_row([], |r| r.get(0))?)
        })
    }

    pub(in crate::store) async fn revoked_certs(
        &self,
        authority: &str,
        not_after_after: i64,
    ) -> Result<Vec<RevokedEntry>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT serial, revoked_at, COALESCE(revocation_reason, 0) FROM certificates \
                 WHERE authority = ? AND revoked_at IS NOT NULL AND not_after > ? ORDER BY serial",
            )?;
            let rows = stmt.query_map(params![authority, not_after_after], |r| {
                Ok(RevokedEntry {
                    serial: r.get(0)?,
                    revoked_at: r.get(1)?,
                    reason: r.get(2)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    pub(in crate::store) async fn crl(&self, authority: &str) -> Result<Option<CrlRow>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT authority, number, this_update, next_update, der, stale FROM crls WHERE authority = ?",
            )?
            .query_row([authority], |r| {
                Ok(CrlRow {
                    authority: r.get(0)?,
                    number: r.get(1)?,
                    this_update: r.get(2)?,
                    next_update: r.get(3)?,
                    der: r.get(4)?,
                    stale: r.get(5)?,
                })
            })
            .optional()?)
        })
    }

    pub(in crate::store) async fn store_crl(&self, row: &CrlRow) -> Result<bool> {
        self.write(|c| {
            let n = c
                .prepare_cached(
                    "INSERT INTO crls (authority, number, this_update, next_update, der, stale) VALUES (?1, ?2, ?3, ?4, ?5, 0) \
                     ON CONFLICT (authority) DO UPDATE SET number = excluded.number, this_update = excluded.this_update, \
                     next_update = excluded.next_update, der = excluded.der, stale = MAX(crls.stale - ?6, 0) \
                     WHERE crls.number < excluded.number",
                )?
                .execute(params![
                    row.authority,
                    row.number,
                    row.this_update,
                    row.next_update,
                    row.der,
                    row.stale
                ])?;
            Ok(n == 1)
        })
        .await
    }

    pub(in crate::store) async fn mark_crl_stale(tx: &mut SqliteTx, authority: &str) -> Result<()> {
        tx.conn()
            .prepare_cached(
                "INSERT INTO crls (authority, number, this_update, next_update, der, stale) VALUES (?, 0, 0, 0, x'', 1) \
                 ON CONFLICT (authority) DO UPDATE SET stale = crls.stale + 1",
            )?
            .execute([authority])?;
        Ok(())
    }
}
