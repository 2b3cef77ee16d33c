//! Orders, authorizations and challenges.

use acme_wire::{AuthorizationStatus, ChallengeStatus, OrderStatus};
use rusqlite::{params, Connection, OptionalExtension, Row, ToSql};

use super::{status, Result, SqliteStore, SqliteTx};
use crate::store::{json_list, now_ms, parse_list, AuthzRow, ChallengeRow, NewOrder, OrderRow};

/// The full order SELECT with a WHERE clause, as one literal (cache key).
macro_rules! select_order {
    ($where:literal) => {
        concat!(
            "SELECT id, account_id, status, policy, names, not_before, not_after, expires, error, csr, replaces, profile, created_at, \
             ca_authority, ca_request_id, ca_submitted_at FROM orders WHERE ",
            $where
        )
    };
}

/// An order with its names still JSON (decoded outside the row callback).
fn order_raw(r: &Row<'_>) -> rusqlite::Result<(OrderRow, String)> {
    let ca_pending = match (
        r.get::<_, Option<String>>(13)?,
        r.get::<_, Option<i64>>(14)?,
        r.get::<_, Option<i64>>(15)?,
    ) {
        (Some(a), Some(id), Some(at)) => Some((a, id, at)),
        _ => None,
    };
    Ok((
        OrderRow {
            id: r.get(0)?,
            account_id: r.get(1)?,
            status: status(r, 2, "orders")?,
            policy: r.get(3)?,
            names: Vec::new(),
            not_before: r.get(5)?,
            not_after: r.get(6)?,
            expires: r.get(7)?,
            error: r.get(8)?,
            csr: r.get(9)?,
            replaces: r.get(10)?,
            profile: r.get(11)?,
            created_at: r.get(12)?,
            ca_pending,
        },
        r.get(4)?,
    ))
}

fn order_on(c: &Connection, id: &str) -> Result<Option<OrderRow>> {
    c.prepare_cached(select_order!("id = ?"))?
        .query_row([id], order_raw)
        .optional()?
        .map(|(mut o, names)| {
            o.names = parse_list(&names)?;
            Ok(o)
        })
        .transpose()
}

/// The full authorization SELECT with a WHERE clause.
macro_rules! select_authz {
    ($where:literal) => {
        concat!(
            "SELECT id, order_id, account_id, identifier, wildcard, status, expires FROM authorizations WHERE ",
            $where
        )
    };
}

fn authz_from(r: &Row<'_>) -> rusqlite::Result<AuthzRow> {
    Ok(AuthzRow {
        id: r.get(0)?,
        order_id: r.get(1)?,
        account_id: r.get(2)?,
        identifier: r.get(3)?,
        wildcard: r.get(4)?,
        status: status(r, 5, "authorizations")?,
        expires: r.get(6)?,
    })
}

fn authz_on(c: &Connection, id: &str) -> Result<Option<AuthzRow>> {
    Ok(c.prepare_cached(select_authz!("id = ?"))?
        .query_row([id], authz_from)
        .optional()?)
}

/// The full challenge SELECT with a WHERE clause.
macro_rules! select_chall {
    ($where:literal) => {
        concat!(
            "SELECT id, authz_id, kind, token, status, validated, error FROM challenges WHERE ",
            $where
        )
    };
}

fn chall_from(r: &Row<'_>) -> rusqlite::Result<ChallengeRow> {
    Ok(ChallengeRow {
        id: r.get(0)?,
        authz_id: r.get(1)?,
        kind: r.get(2)?,
        token: r.get(3)?,
        status: status(r, 4, "challenges")?,
        validated: r.get(5)?,
        error: r.get(6)?,
    })
}

fn challenge_on(c: &Connection, id: &str) -> Result<Option<ChallengeRow>> {
    Ok(c.prepare_cached(select_chall!("id = ?"))?
        .query_row([id], chall_from)
        .optional()?)
}

/// Runs `UPDATE … WHERE … AND status IN (?, …)` for one to three source
/// states (every caller passes a literal list of at most three): `head`
/// binds the parameters of `prefix`, the words of `from` the list. The
/// number of rows changed.
fn update_if_status_in(
    c: &Connection,
    prefix: &str,
    head: &[&dyn ToSql],
    from: impl ExactSizeIterator<Item = &'static str>,
) -> Result<usize> {
    let placeholders = vec!["?"; from.len()].join(", ");
    let mut stmt = c.prepare_cached(&format!("{prefix} AND status IN ({placeholders})"))?;
    for (i, value) in head.iter().enumerate() {
        stmt.raw_bind_parameter(i + 1, value)?;
    }
    for (i, word) in from.enumerate() {
        stmt.raw_bind_parameter(head.len() + i + 1, word)?;
    }
    Ok(stmt.raw_execute()?)
}

// The methods of `Store` for this area (their contracts are documented
// there), in SQL.
impl SqliteStore {
    pub(in crate::store) async fn insert_order(tx: &mut SqliteTx, new: &NewOrder) -> Result<()> {
        let o = &new.order;
        let now = now_ms();
        let c = tx.conn();
        c.prepare_cached(
            "INSERT INTO orders (id, account_id, status, policy, names, not_before, not_after, expires, error, csr, replaces, profile, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?, ?, ?)",
        )?
        .execute(params![
            o.id,
            o.account_id,
            o.status.as_str(),
            o.policy,
            json_list(&o.names),
            o.not_before,
            o.not_after,
            o.expires,
            o.replaces,
            o.profile,
            now,
            now,
        ])?;
        let mut authz_stmt = c.prepare_cached("INSERT INTO authorizations (id, order_id, account_id, identifier, wildcard, status, expires, position) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")?;
        let mut chall_stmt = c.prepare_cached("INSERT INTO challenges (id, authz_id, kind, token, status, position) VALUES (?, ?, ?, ?, ?, ?)")?;
        for (pos, na) in new.authzs.iter().enumerate() {
            let a = &na.authz;
            authz_stmt.execute(params![
                a.id,
                o.id,
                a.account_id,
                a.identifier,
                a.wildcard,
                a.status.as_str(),
                a.expires,
                pos as i64,
            ])?;
            for (cpos, ch) in na.challenges.iter().enumerate() {
                chall_stmt.execute(params![
                    ch.id,
                    a.id,
                    ch.kind,
                    ch.token,
                    ch.status.as_str(),
                    cpos as i64
                ])?;
            }
        }
        Ok(())
    }

    pub(in crate::store) async fn order(&self, id: &str) -> Result<Option<OrderRow>> {
        self.read(|c| order_on(c, id))
    }

    pub(in crate::store) async fn order_tx(
        tx: &mut SqliteTx,
        id: &str,
    ) -> Result<Option<OrderRow>> {
        order_on(tx.conn(), id)
    }

    pub(in crate::store) async fn order_ids_of_account(
        &self,
        account_id: &str,
        limit: i64,
    ) -> Result<Vec<String>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id FROM orders WHERE account_id = ? ORDER BY created_at DESC LIMIT ?",
            )?;
            let ids = stmt.query_map(params![account_id, limit], |r| r.get(0))?;
            Ok(ids.collect::<rusqlite::Result<_>>()?)
        })
    }

    pub(in crate::store) async fn set_order_status(
        tx: &mut SqliteTx,
        id: &str,
        from: &[OrderStatus],
        to: OrderStatus,
        error: Option<&str>,
    ) -> Result<bool> {
        let n = update_if_status_in(
            tx.conn(),
            "UPDATE orders SET status = ?, error = COALESCE(?, error), updated_at = ? WHERE id = ?",
            &[&to.as_str(), &error, &now_ms(), &id],
            from.iter().map(|f| f.as_str()),
        )?;
        Ok(n == 1)
    }

    pub(in crate::store) async fn begin_processing(
        tx: &mut SqliteTx,
        id: &str,
        csr: &[u8],
    ) -> Result<bool> {
        let n = tx
            .conn()
            .prepare_cached("UPDATE orders SET status = 'processing', csr = ?, updated_at = ? WHERE id = ? AND status = 'ready'")?
            .execute(params![csr, now_ms(), id])?;
        Ok(n == 1)
    }

    pub(in crate::store) async fn set_ca_pending(
        &self,
        order_id: &str,
        authority: &str,
        request_id: i64,
    ) -> Result<()> {
        let now = now_ms();
        self.write(|c| {
            c.prepare_cached(
                "UPDATE orders SET ca_authority = ?, ca_request_id = ?, ca_submitted_at = ?, updated_at = ? \
                 WHERE id = ? AND status = 'processing' AND ca_request_id IS NULL",
            )?
            .execute(params![authority, request_id, now, now, order_id])?;
            Ok(())
        })
        .await
    }

    pub(in crate::store) async fn pending_ca_requests(&self) -> Result<Vec<(String, String, i64)>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, ca_authority, ca_request_id FROM orders WHERE status = 'processing' AND ca_request_id IS NOT NULL ORDER BY ca_submitted_at",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    pub(in crate::store) async fn authz_ids_of_order(&self, order_id: &str) -> Result<Vec<String>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id FROM authorizations WHERE order_id = ? ORDER BY position",
            )?;
            let ids = stmt.query_map([order_id], |r| r.get(0))?;
            Ok(ids.collect::<rusqlite::Result<_>>()?)
        })
    }

    pub(in crate::store) async fn authzs_of_order_tx(
        tx: &mut SqliteTx,
        order_id: &str,
    ) -> Result<Vec<AuthzRow>> {
        let mut stmt = tx
            .conn()
            .prepare_cached(select_authz!("order_id = ? ORDER BY position"))?;
        let rows = stmt.query_map([order_id], authz_from)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub(in crate::store) async fn authz(&self, id: &str) -> Result<Option<AuthzRow>> {
        self.read(|c| authz_on(c, id))
    }

    pub(in crate::store) async fn authz_tx(
        tx: &mut SqliteTx,
        id: &str,
    ) -> Result<Option<AuthzRow>> {
        authz_on(tx.conn(), id)
    }

    pub(in crate::store) async fn set_authz_status(
        tx: &mut SqliteTx,
        id: &str,
        from: &[AuthorizationStatus],
        to: AuthorizationStatus,
    ) -> Result<bool> {
        let n = update_if_status_in(
            tx.conn(),
            "UPDATE authorizations SET status = ? WHERE id = ?",
            &[&to.as_str(), &id],
            from.iter().map(|f| f.as_str()),
        )?;
        Ok(n == 1)
    }

    pub(in crate::store) async fn challenges_of_authz(
        &self,
        authz_id: &str,
    ) -> Result<Vec<ChallengeRow>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(select_chall!("authz_id = ? ORDER BY position"))?;
            let rows = stmt.query_map([authz_id], chall_from)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    pub(in crate::store) async fn challenge(&self, id: &str) -> Result<Option<ChallengeRow>> {
        self.read(|c| challenge_on(c, id))
    }

    pub(in crate::store) async fn challenge_tx(
        tx: &mut SqliteTx,
        id: &str,
    ) -> Result<Option<ChallengeRow>> {
        challenge_on(tx.conn(), id)
    }

    pub(in crate::store) async fn start_challenge(tx: &mut SqliteTx, id: &str) -> Result<bool> {
        let n = tx
            .conn()
            .prepare_cached(
                "UPDATE challenges SET status = 'processing' WHERE id = ?1 AND status = 'pending' \
                 AND NOT EXISTS (SELECT 1 FROM challenges AS other \
                   WHERE other.authz_id = challenges.authz_id AND other.id != ?1 AND other.status != 'pending')",
            )?
            .execute([id])?;
        Ok(n == 1)
    }

    // The partial index `orders_pending_by_account` keeps this to the
    // account's pending orders.
    pub(in crate::store) async fn pending_authzs_of_account_tx(
        tx: &mut SqliteTx,
        account_id: &str,
        now: i64,
    ) -> Result<i64> {
        Ok(tx
            .conn()
            .prepare_cached(
                "SELECT COUNT(*) FROM orders AS o JOIN authorizations AS a ON a.order_id = o.id \
                 WHERE o.account_id = ?1 AND o.status = 'pending' AND o.expires > ?2 AND a.status = 'pending'",
            )?
            .query_row(params![account_id, now], |r| r.get(0))?)
    }

    pub(in crate::store) async fn nth_pending_authz_expiry_tx(
        tx: &mut SqliteTx,
        account_id: &str,
        now: i64,
        nth: i64,
    ) -> Result<Option<i64>> {
        Ok(tx
            .conn()
            .prepare_cached(
                "SELECT o.expires FROM orders AS o JOIN authorizations AS a ON a.order_id = o.id \
                 WHERE o.account_id = ?1 AND o.status = 'pending' AND o.expires > ?2 AND a.status = 'pending' \
                 ORDER BY o.expires LIMIT 1 OFFSET ?3",
            )?
            .query_row(params![account_id, now, nth - 1], |r| r.get(0))
            .optional()?)
    }

    pub(in crate::store) async fn finish_challenge(
        tx: &mut SqliteTx,
        id: &str,
        valid: bool,
        error: Option<&str>,
        record: Option<&str>,
    ) -> Result<bool> {
        let n = tx
            .conn()
            .prepare_cached("UPDATE challenges SET status = ?, validated = ?, error = ?, record = ? WHERE id = ? AND status = 'processing'")?
            .execute(params![
                if valid {
                    ChallengeStatus::Valid
                } else {
                    ChallengeStatus::Invalid
                }
                .as_str(),
                valid.then(now_ms),
                error,
                record,
                id,
            ])?;
        Ok(n == 1)
    }
}
