//! The audit outbox and chain state, and the limit event log.

use rusqlite::{params, OptionalExtension};

use super::{Result, SqliteStore, SqliteTx};
use crate::store::audit::{AuditRow, ChainRow};
use crate::store::json_list;

// The methods of `Store` for this area (their contracts are documented
// there), in SQL.
impl SqliteStore {
    pub(in crate::store) async fn audit_append(
        tx: &mut SqliteTx,
        server_id: &str,
        e: &AuditRow,
    ) -> Result<()> {
        tx.conn()
            .prepare_cached(
                "INSERT INTO audit_outbox (server_id, ts, event, account_id, source_ip, user_agent, decision, reason, details) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )?
            .execute(params![
                server_id,
                e.ts,
                e.event,
                e.account_id,
                e.source_ip,
                e.user_agent,
                e.decision,
                e.reason,
                e.details,
            ])?;
        Ok(())
    }

    pub(in crate::store) async fn audit_pending(
        &self,
        server_id: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditRow>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT id, ts, event, account_id, source_ip, user_agent, decision, reason, details \
                 FROM audit_outbox WHERE id > ? AND server_id = ? ORDER BY id LIMIT ?",
            )?;
            let rows = st.query_map(params![after, server_id, limit], |r| {
                Ok(AuditRow {
                    id: r.get(0)?,
                    ts: r.get(1)?,
                    event: r.get(2)?,
                    account_id: r.get(3)?,
                    source_ip: r.get(4)?,
                    user_agent: r.get(5)?,
                    decision: r.get(6)?,
                    reason: r.get(7)?,
                    details: r.get(8)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    pub(in crate::store) async fn audit_register(
        &self,
        server_id: &str,
        genesis: &str,
    ) -> Result<ChainRow> {
        self.write(|c| {
            c.prepare_cached(
                "INSERT OR IGNORE INTO audit_chains (server_id, seq, mac, segment, registered_at) VALUES (?, 0, ?, 1, ?)",
            )?
            .execute(params![server_id, genesis, crate::store::now_ms()])?;
            Ok(chain_on(c, server_id)?.unwrap_or(ChainRow {
                seq: 0,
                mac: genesis.to_string(),
                segment: 1,
            }))
        })
        .await
    }

    pub(in crate::store) async fn audit_chain(&self, server_id: &str) -> Result<Option<ChainRow>> {
        self.read(|c| chain_on(c, server_id))
    }

    pub(in crate::store) async fn audit_advance(
        tx: &mut SqliteTx,
        server_id: &str,
        through: i64,
        end: &ChainRow,
    ) -> Result<()> {
        let c = tx.conn();
        c.prepare_cached("DELETE FROM audit_outbox WHERE server_id = ? AND id <= ?")?
            .execute(params![server_id, through])?;
        c.prepare_cached(
            "UPDATE audit_chains SET seq = ?, mac = ?, segment = ? WHERE server_id = ?",
        )?
        .execute(params![end.seq, end.mac, end.segment, server_id])?;
        Ok(())
    }

    pub(in crate::store) async fn limit_event_add(
        tx: &mut SqliteTx,
        name: &str,
        key: &str,
        at: i64,
    ) -> Result<()> {
        tx.conn()
            .prepare_cached("INSERT INTO limit_events (name, key, at) VALUES (?, ?, ?)")?
            .execute(params![name, key, at])?;
        Ok(())
    }

    pub(in crate::store) async fn limit_events_since(
        &self,
        name: &str,
        key: &str,
        since: i64,
    ) -> Result<Vec<i64>> {
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT at FROM limit_events WHERE name = ? AND key = ? AND at >= ? ORDER BY at",
            )?;
            let rows = st.query_map(params![name, key, since], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<i64>>>()?)
        })
    }

    pub(in crate::store) async fn limit_events_prune(
        &self,
        name: &str,
        before: i64,
    ) -> Result<u64> {
        self.write(|c| {
            Ok(
                c.prepare_cached("DELETE FROM limit_events WHERE name = ? AND at < ?")?
                    .execute(params![name, before])? as u64,
            )
        })
        .await
    }

    pub(in crate::store) async fn duplicate_certs_since(
        &self,
        account_id: &str,
        names: &[String],
        since: i64,
    ) -> Result<Vec<i64>> {
        let names = json_list(names);
        self.read(|c| {
            let mut st = c.prepare_cached(
                "SELECT created_at FROM certificates WHERE account_id = ? AND names = ? \
                 AND revoked_at IS NULL AND created_at >= ? ORDER BY created_at",
            )?;
            let rows = st.query_map(params![account_id, names, since], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<i64>>>()?)
        })
    }
}

fn chain_on(c: &rusqlite::Connection, server_id: &str) -> Result<Option<ChainRow>> {
    Ok(
        c.prepare_cached("SELECT seq, mac, segment FROM audit_chains WHERE server_id = ?")?
            .query_row([server_id], |r| {
                Ok(ChainRow {
                    seq: r.get(0)?,
                    mac: r.get(1)?,
                    segment: r.get(2)?,
                })
            })
            .optional()?,
    )
}
