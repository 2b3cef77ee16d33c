//! Orders, authorizations and challenges.

use acme_wire::{AuthorizationStatus, ChallengeStatus, OrderStatus};
use deadpool_postgres::Object;
use tokio_postgres::Row;

use super::{execute, params, prepare, query, query_one, query_opt, status, PgStore, PgTx, Result};
use crate::store::{json_list, now_ms, parse_list, AuthzRow, ChallengeRow, NewOrder, OrderRow};

/// The full order SELECT with a WHERE clause.
macro_rules! select_order {
    ($where:literal) => {
        concat!(
            "SELECT id, account_id, status, policy, names, not_before, not_after, expires, error, csr, replaces, profile, created_at, \
             ca_authority, ca_request_id, ca_submitted_at FROM orders WHERE ",
            $where
        )
    };
}

fn order_from(r: &Row) -> Result<OrderRow> {
    let ca_pending = match (
        r.try_get::<_, Option<String>>(13)?,
        r.try_get::<_, Option<i64>>(14)?,
        r.try_get::<_, Option<i64>>(15)?,
    ) {
        (Some(a), Some(id), Some(at)) => Some((a, id, at)),
        _ => None,
    };
    Ok(OrderRow {
        id: r.try_get(0)?,
        account_id: r.try_get(1)?,
        status: status(r, 2, "orders")?,
        policy: r.try_get(3)?,
        names: parse_list(r.try_get(4)?)?,
        not_before: r.try_get(5)?,
        not_after: r.try_get(6)?,
        expires: r.try_get(7)?,
        error: r.try_get(8)?,
        csr: r.try_get(9)?,
        replaces: r.try_get(10)?,
        profile: r.try_get(11)?,
        created_at: r.try_get(12)?,
        ca_pending,
    })
}

async fn order_on(c: &Object, id: &str) -> Result<Option<OrderRow>> {
    query_opt(c, select_order!("id = $1"), params![id])
        .await?
        .as_ref()
        .map(order_from)
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

fn authz_from(r: &Row) -> Result<AuthzRow> {
    Ok(AuthzRow {
        id: r.try_get(0)?,
        order_id: r.try_get(1)?,
        account_id: r.try_get(2)?,
        identifier: r.try_get(3)?,
        wildcard: r.try_get(4)?,
        status: status(r, 5, "authorizations")?,
        expires: r.try_get(6)?,
    })
}

async fn authz_on(c: &Object, id: &str) -> Result<Option<AuthzRow>> {
    query_opt(c, select_authz!("id = $1"), params![id])
        .await?
        .as_ref()
        .map(authz_from)
        .transpose()
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

fn chall_from(r: &Row) -> Result<ChallengeRow> {
    Ok(ChallengeRow {
        id: r.try_get(0)?,
        authz_id: r.try_get(1)?,
        kind: r.try_get(2)?,
        token: r.try_get(3)?,
        status: status(r, 4, "challenges")?,
        validated: r.try_get(5)?,
        error: r.try_get(6)?,
    })
}

async fn challenge_on(c: &Object, id: &str) -> Result<Option<ChallengeRow>> {
    query_opt(c, select_chall!("id = $1"), params![id])
        .await?
        .as_ref()
        .map(chall_from)
        .transpose()
}

/// The source states as one array parameter (`status = ANY($n)`).
fn words<T: Copy>(from: &[T], word: impl Fn(T) -> &'static str) -> Vec<&'static str> {
    from.iter().map(|f| word(*f)).collect()
}

// The methods of `Store` for this area (their contracts are documented
// there), in SQL.
impl PgStore {
    pub(in crate::store) async fn insert_order(tx: &mut PgTx, new: &NewOrder) -> Result<()> {
        let o = &new.order;
        let now = now_ms();
        let c = tx.c();
        execute(
            c,
            "INSERT INTO orders (id, account_id, status, policy, names, not_before, not_after, expires, error, csr, replaces, profile, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, $9, $10, $11, $12)",
            params![
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
            ],
        )
        .await?;
        let authz_stmt = prepare(c, "INSERT INTO authorizations (id, order_id, account_id, identifier, wildcard, status, expires, position) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)").await?;
        let chall_stmt = prepare(c, "INSERT INTO challenges (id, authz_id, kind, token, status, position) VALUES ($1, $2, $3, $4, $5, $6)").await?;
        for (pos, na) in new.authzs.iter().enumerate() {
            let a = &na.authz;
            c.execute(
                &authz_stmt,
                params![
                    a.id,
                    o.id,
                    a.account_id,
                    a.identifier,
                    a.wildcard,
                    a.status.as_str(),
                    a.expires,
                    pos as i64,
                ],
            )
            .await?;
            for (cpos, ch) in na.challenges.iter().enumerate() {
                c.execute(
                    &chall_stmt,
                    params![
                        ch.id,
                        a.id,
                        ch.kind,
                        ch.token,
                        ch.status.as_str(),
                        cpos as i64
                    ],
                )
                .await?;
            }
        }
        Ok(())
    }

    pub(in crate::store) async fn order(&self, id: &str) -> Result<Option<OrderRow>> {
        order_on(&self.conn().await?, id).await
    }

    pub(in crate::store) async fn order_tx(tx: &mut PgTx, id: &str) -> Result<Option<OrderRow>> {
        order_on(tx.c(), id).await
    }

    pub(in crate::store) async fn order_ids_of_account(
        &self,
        account_id: &str,
        limit: i64,
    ) -> Result<Vec<String>> {
        query(
            &self.conn().await?,
            "SELECT id FROM orders WHERE account_id = $1 ORDER BY created_at DESC LIMIT $2",
            params![account_id, limit],
        )
        .await?
        .iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect()
    }

    pub(in crate::store) async fn set_order_status(
        tx: &mut PgTx,
        id: &str,
        from: &[OrderStatus],
        to: OrderStatus,
        error: Option<&str>,
    ) -> Result<bool> {
        let n = execute(
            tx.c(),
            "UPDATE orders SET status = $1, error = COALESCE($2, error), updated_at = $3 WHERE id = $4 AND status = ANY($5)",
            params![to.as_str(), error, now_ms(), id, words(from, OrderStatus::as_str)],
        )
        .await?;
        Ok(n == 1)
    }

    pub(in crate::store) async fn begin_processing(
        tx: &mut PgTx,
        id: &str,
        csr: &[u8],
    ) -> Result<bool> {
        let n = execute(
            tx.c(),
            "UPDATE orders SET status = 'processing', csr = $1, updated_at = $2 WHERE id = $3 AND status = 'ready'",
            params![csr, now_ms(), id],
        )
        .await?;
        Ok(n == 1)
    }

    pub(in crate::store) async fn set_ca_pending(
        &self,
        order_id: &str,
        authority: &str,
        request_id: i64,
    ) -> Result<()> {
        let now = now_ms();
        execute(
            &self.conn().await?,
            "UPDATE orders SET ca_authority = $1, ca_request_id = $2, ca_submitted_at = $3, updated_at = $3 \
             WHERE id = $4 AND status = 'processing' AND ca_request_id IS NULL",
            params![authority, request_id, now, order_id],
        )
        .await?;
        Ok(())
    }

    pub(in crate::store) async fn pending_ca_requests(&self) -> Result<Vec<(String, String, i64)>> {
        query(
            &self.conn().await?,
            "SELECT id, ca_authority, ca_request_id FROM orders WHERE status = 'processing' AND ca_request_id IS NOT NULL ORDER BY ca_submitted_at",
            &[],
        )
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?, r.try_get(2)?)))
        .collect()
    }

    pub(in crate::store) async fn authz_ids_of_order(&self, order_id: &str) -> Result<Vec<String>> {
        query(
            &self.conn().await?,
            "SELECT id FROM authorizations WHERE order_id = $1 ORDER BY position",
            params![order_id],
        )
        .await?
        .iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect()
    }

    pub(in crate::store) async fn authzs_of_order_tx(
        tx: &mut PgTx,
        order_id: &str,
    ) -> Result<Vec<AuthzRow>> {
        query(
            tx.c(),
            select_authz!("order_id = $1 ORDER BY position"),
            params![order_id],
        )
        .await?
        .iter()
        .map(authz_from)
        .collect()
    }

    pub(in crate::store) async fn authz(&self, id: &str) -> Result<Option<AuthzRow>> {
        authz_on(&self.conn().await?, id).await
    }

    pub(in crate::store) async fn authz_tx(tx: &mut PgTx, id: &str) -> Result<Option<AuthzRow>> {
        authz_on(tx.c(), id).await
    }

    pub(in crate::store) async fn set_authz_status(
        tx: &mut PgTx,
        id: &str,
        from: &[AuthorizationStatus],
        to: AuthorizationStatus,
    ) -> Result<bool> {
        let n = execute(
            tx.c(),
            "UPDATE authorizations SET status = $1 WHERE id = $2 AND status = ANY($3)",
            params![to.as_str(), id, words(from, AuthorizationStatus::as_str)],
        )
        .await?;
        Ok(n == 1)
    }

    pub(in crate::store) async fn challenges_of_authz(
        &self,
        authz_id: &str,
    ) -> Result<Vec<ChallengeRow>> {
        query(
            &self.conn().await?,
            select_chall!("authz_id = $1 ORDER BY position"),
            params![authz_id],
        )
        .await?
        .iter()
        .map(chall_from)
        .collect()
    }

    pub(in crate::store) async fn challenge(&self, id: &str) -> Result<Option<ChallengeRow>> {
        challenge_on(&self.conn().await?, id).await
    }

    pub(in crate::store) async fn challenge_tx(
        tx: &mut PgTx,
        id: &str,
    ) -> Result<Option<ChallengeRow>> {
        challenge_on(tx.c(), id).await
    }

    // The authorization is locked first, so two nodes starting two
    // challenges of one authorization are serialised and the second sees
    // the first's (a new snapshot per statement at READ COMMITTED), as
    // SQLite's single writer guarantees.
    pub(in crate::store) async fn start_challenge(tx: &mut PgTx, id: &str) -> Result<bool> {
        let c = tx.c();
        query_opt(
            c,
            "SELECT 1 FROM authorizations WHERE id = (SELECT authz_id FROM challenges WHERE id = $1) FOR UPDATE",
            params![id],
        )
        .await?;
        let n = execute(
            c,
            "UPDATE challenges SET status = 'processing' WHERE id = $1 AND status = 'pending' \
             AND NOT EXISTS (SELECT 1 FROM challenges AS other \
               WHERE other.authz_id = challenges.authz_id AND other.id != $1 AND other.status != 'pending')",
            params![id],
        )
        .await?;
        Ok(n == 1)
    }

    // The account row is locked first: the count and the order the caller
    // then inserts are serialised per account across nodes (the limit
    // holds as with SQLite's single writer).
    pub(in crate::store) async fn pending_authzs_of_account_tx(
        tx: &mut PgTx,
        account_id: &str,
        now: i64,
    ) -> Result<i64> {
        let c = tx.c();
        query_opt(
            c,
            "SELECT 1 FROM accounts WHERE id = $1 FOR UPDATE",
            params![account_id],
        )
        .await?;
        Ok(query_one(
            c,
            "SELECT COUNT(*) FROM orders AS o JOIN authorizations AS a ON a.order_id = o.id \
             WHERE o.account_id = $1 AND o.status = 'pending' AND o.expires > $2 AND a.status = 'pending'",
            params![account_id, now],
        )
        .await?
        .try_get(0)?)
    }

    pub(in crate::store) async fn nth_pending_authz_expiry_tx(
        tx: &mut PgTx,
        account_id: &str,
        now: i64,
        nth: i64,
    ) -> Result<Option<i64>> {
        Ok(query_opt(
            tx.c(),
            "SELECT o.expires FROM orders AS o JOIN authorizations AS a ON a.order_id = o.id \
             WHERE o.account_id = $1 AND o.status = 'pending' AND o.expires > $2 AND a.status = 'pending' \
             ORDER BY o.expires LIMIT 1 OFFSET $3",
            params![account_id, now, nth - 1],
        )
        .await?
        .map(|r| r.try_get(0))
        .transpose()?)
    }

    pub(in crate::store) async fn finish_challenge(
        tx: &mut PgTx,
        id: &str,
        valid: bool,
        error: Option<&str>,
        record: Option<&str>,
    ) -> Result<bool> {
        let status = if valid {
            ChallengeStatus::Valid
        } else {
            ChallengeStatus::Invalid
        };
        let n = execute(
            tx.c(),
            "UPDATE challenges SET status = $1, validated = $2, error = $3, record = $4 WHERE id = $5 AND status = 'processing'",
            params![status.as_str(), valid.then(now_ms), error, record, id],
        )
        .await?;
        Ok(n == 1)
    }
}
