//! The audit outbox and chain state, and the limit event log.
//!
//! Kept in a file of its own: the outbox's row shape follows
//! `store/audit.rs`.
//!
//! Ordering across transactions: the node's writer drains its rows in
//! outbox order and deletes every row up to the last one it wrote. On
//! PostgreSQL an identity value is drawn at insert time, not at commit, so
//! a transaction that inserted a lower id could commit after the writer
//! read a higher one — and its event would be deleted unwritten. So
//! [`PgStore::audit_append`] takes a transaction-level advisory lock per
//! node (`server_id`) before inserting: a node's appending transactions
//! then commit in the order of their ids. Appends of different nodes do
//! not wait for each other.

use super::{execute, params, query, query_opt, PgStore, PgTx, Result};
use crate::store::audit::{AuditRow, ChainRow};
use crate::store::json_list;

/// The first key of the advisory locks of the audit outbox (the second is
/// the hash of the node's id).
const AUDIT_LOCK_CLASS: i32 = 0x000a_0d17;

// The methods of `Store` for this area (their contracts are documented
// there), in SQL.
impl PgStore {
    pub(in crate::store) async fn audit_append(
        tx: &mut PgTx,
        server_id: &str,
        e: &AuditRow,
    ) -> Result<()> {
        let c = tx.c();
        execute(
            c,
            "SELECT pg_advisory_xact_lock($1, hashtext($2))",
            params![AUDIT_LOCK_CLASS, server_id],
        )
        .await?;
        execute(
            c,
            "INSERT INTO audit_outbox (server_id, ts, event, account_id, source_ip, user_agent, decision, reason, details) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            params![
                server_id,
                e.ts,
                e.event,
                e.account_id,
                e.source_ip,
                e.user_agent,
                e.decision,
                e.reason,
                e.details,
            ],
        )
        .await?;
        Ok(())
    }

    pub(in crate::store) async fn audit_pending(
        &self,
        server_id: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<AuditRow>> {
        query(
            &self.conn().await?,
            "SELECT id, ts, event, account_id, source_ip, user_agent, decision, reason, details \
             FROM audit_outbox WHERE server_id = $1 AND id > $2 ORDER BY id LIMIT $3",
            params![server_id, after, limit],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(AuditRow {
                id: r.try_get(0)?,
                ts: r.try_get(1)?,
                event: r.try_get(2)?,
                account_id: r.try_get(3)?,
                source_ip: r.try_get(4)?,
                user_agent: r.try_get(5)?,
                decision: r.try_get(6)?,
                reason: r.try_get(7)?,
                details: r.try_get(8)?,
            })
        })
        .collect()
    }

    pub(in crate::store) async fn audit_register(
        &self,
        server_id: &str,
        genesis: &str,
    ) -> Result<ChainRow> {
        let c = self.conn().await?;
        execute(
            &c,
            "INSERT INTO audit_chains (server_id, seq, mac, segment, registered_at) VALUES ($1, 0, $2, 1, $3) \
             ON CONFLICT (server_id) DO NOTHING",
            params![server_id, genesis, crate::store::now_ms()],
        )
        .await?;
        Ok(chain_on(&c, server_id).await?.unwrap_or(ChainRow {
            seq: 0,
            mac: genesis.to_string(),
            segment: 1,
        }))
    }

    pub(in crate::store) async fn audit_chain(&self, server_id: &str) -> Result<Option<ChainRow>> {
        chain_on(&self.conn().await?, server_id).await
    }

    pub(in crate::store) async fn audit_advance(
        tx: &mut PgTx,
        server_id: &str,
        through: i64,
        end: &ChainRow,
    ) -> Result<()> {
        let c = tx.c();
        execute(
            c,
            "DELETE FROM audit_outbox WHERE server_id = $1 AND id <= $2",
            params![server_id, through],
        )
        .await?;
        execute(
            c,
            "UPDATE audit_chains SET seq = $1, mac = $2, segment = $3 WHERE server_id = $4",
            params![end.seq, end.mac, end.segment, server_id],
        )
        .await?;
        Ok(())
    }

    pub(in crate::store) async fn limit_event_add(
        tx: &mut PgTx,
        name: &str,
        key: &str,
        at: i64,
    ) -> Result<()> {
        execute(
            tx.c(),
            "INSERT INTO limit_events (name, key, at) VALUES ($1, $2, $3)",
            params![name, key, at],
        )
        .await?;
        Ok(())
    }

    pub(in crate::store) async fn limit_events_since(
        &self,
        name: &str,
        key: &str,
        since: i64,
    ) -> Result<Vec<i64>> {
        query(
            &self.conn().await?,
            "SELECT at FROM limit_events WHERE name = $1 AND key = $2 AND at >= $3 ORDER BY at",
            params![name, key, since],
        )
        .await?
        .iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect()
    }

    pub(in crate::store) async fn limit_events_prune(
        &self,
        name: &str,
        before: i64,
    ) -> Result<u64> {
        execute(
            &self.conn().await?,
            "DELETE FROM limit_events WHERE name = $1 AND at < $2",
            params![name, before],
        )
        .await
    }

    pub(in crate::store) async fn duplicate_certs_since(
        &self,
        account_id: &str,
        names: &[String],
        since: i64,
    ) -> Result<Vec<i64>> {
        query(
            &self.conn().await?,
            "SELECT created_at FROM certificates WHERE account_id = $1 AND names = $2 \
             AND revoked_at IS NULL AND created_at >= $3 ORDER BY created_at",
            params![account_id, json_list(names), since],
        )
        .await?
        .iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect()
    }
}

async fn chain_on(c: &deadpool_postgres::Object, server_id: &str) -> Result<Option<ChainRow>> {
    query_opt(
        c,
        "SELECT seq, mac, segment FROM audit_chains WHERE server_id = $1",
        params![server_id],
    )
    .await?
    .map(|r| {
        Ok(ChainRow {
            seq: r.try_get(0)?,
            mac: r.try_get(1)?,
            segment: r.try_get(2)?,
        })
    })
    .transpose()
}
