//! Orders, authorizations and challenges.

use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::{json_list, now_ms, parse_list, Result, Store, Tx};

/// A stored order.
#[derive(Debug, Clone)]
pub struct OrderRow {
    /// Identifier.
    pub id: String,
    /// Owning account.
    pub account_id: String,
    /// RFC 8555 status.
    pub status: String,
    /// Issuance policy selected at creation.
    pub policy: String,
    /// Normalised names, sorted.
    pub names: Vec<String>,
    /// Requested notBefore (unix ms).
    pub not_before: Option<i64>,
    /// Requested notAfter (unix ms).
    pub not_after: Option<i64>,
    /// Expiry of the order (unix ms).
    pub expires: i64,
    /// Problem document JSON when invalid.
    pub error: Option<String>,
    /// Finalize CSR (DER).
    pub csr: Option<Vec<u8>>,
    /// ARI `replaces`.
    pub replaces: Option<String>,
    /// ACME profile.
    pub profile: Option<String>,
    /// Creation time.
    pub created_at: i64,
    /// A request pending at a CA: (authority, request id, submitted at ms).
    pub ca_pending: Option<(String, i64, i64)>,
}

/// A stored authorization.
#[derive(Debug, Clone)]
pub struct AuthzRow {
    /// Identifier.
    pub id: String,
    /// Order it belongs to.
    pub order_id: String,
    /// Owning account.
    pub account_id: String,
    /// Base DNS name (without `*.`).
    pub identifier: String,
    /// The order asked for the wildcard.
    pub wildcard: bool,
    /// RFC 8555 status.
    pub status: String,
    /// Expiry (unix ms).
    pub expires: i64,
}

/// A stored challenge.
#[derive(Debug, Clone)]
pub struct ChallengeRow {
    /// Identifier.
    pub id: String,
    /// Authorization it belongs to.
    pub authz_id: String,
    /// `http-01`, `dns-01` or `tls-alpn-01`.
    pub kind: String,
    /// Token.
    pub token: String,
    /// RFC 8555 status.
    pub status: String,
    /// Validation time (unix ms).
    pub validated: Option<i64>,
    /// Problem document JSON.
    pub error: Option<String>,
}

/// What [`Store::insert_order`] writes.
#[derive(Debug, Clone)]
pub struct NewOrder {
    /// Order row.
    pub order: OrderRow,
    /// Its authorizations with their challenges.
    pub authzs: Vec<NewAuthz>,
}

/// An authorization to insert with its challenges.
#[derive(Debug, Clone)]
pub struct NewAuthz {
    /// Authorization row.
    pub authz: AuthzRow,
    /// Challenge rows.
    pub challenges: Vec<ChallengeRow>,
}

const ORDER_COLUMNS: &str = "id, account_id, status, policy, names, not_before, not_after, expires, error, csr, replaces, profile, created_at, \
     ca_authority, ca_request_id, ca_submitted_at";

fn order_from(r: &SqliteRow) -> Result<OrderRow> {
    Ok(OrderRow {
        id: r.try_get("id")?,
        account_id: r.try_get("account_id")?,
        status: r.try_get("status")?,
        policy: r.try_get("policy")?,
        names: parse_list(&r.try_get::<String, _>("names")?)?,
        not_before: r.try_get("not_before")?,
        not_after: r.try_get("not_after")?,
        expires: r.try_get("expires")?,
        error: r.try_get("error")?,
        csr: r.try_get("csr")?,
        replaces: r.try_get("replaces")?,
        profile: r.try_get("profile")?,
        created_at: r.try_get("created_at")?,
        ca_pending: match (
            r.try_get::<Option<String>, _>("ca_authority")?,
            r.try_get::<Option<i64>, _>("ca_request_id")?,
            r.try_get::<Option<i64>, _>("ca_submitted_at")?,
        ) {
            (Some(a), Some(id), Some(at)) => Some((a, id, at)),
            _ => None,
        },
    })
}

const AUTHZ_COLUMNS: &str = "id, order_id, account_id, identifier, wildcard, status, expires";

fn authz_from(r: &SqliteRow) -> Result<AuthzRow> {
    Ok(AuthzRow {
        id: r.try_get("id")?,
        order_id: r.try_get("order_id")?,
        account_id: r.try_get("account_id")?,
        identifier: r.try_get("identifier")?,
        wildcard: r.try_get::<i64, _>("wildcard")? != 0,
        status: r.try_get("status")?,
        expires: r.try_get("expires")?,
    })
}

const CHALL_COLUMNS: &str = "id, authz_id, kind, token, status, validated, error";

fn chall_from(r: &SqliteRow) -> Result<ChallengeRow> {
    Ok(ChallengeRow {
        id: r.try_get("id")?,
        authz_id: r.try_get("authz_id")?,
        kind: r.try_get("kind")?,
        token: r.try_get("token")?,
        status: r.try_get("status")?,
        validated: r.try_get("validated")?,
        error: r.try_get("error")?,
    })
}

impl Store {
    /// Writes an order with its authorizations and challenges.
    pub async fn insert_order(tx: &mut Tx, new: &NewOrder) -> Result<()> {
        let o = &new.order;
        let now = now_ms();
        sqlx::query(
            "INSERT INTO orders (id, account_id, status, policy, names, not_before, not_after, expires, error, csr, replaces, profile, created_at, updated_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, ?, ?, ?, ?)",
        )
        .bind(&o.id)
        .bind(&o.account_id)
        .bind(&o.status)
        .bind(&o.policy)
        .bind(json_list(&o.names))
        .bind(o.not_before)
        .bind(o.not_after)
        .bind(o.expires)
        .bind(&o.replaces)
        .bind(&o.profile)
        .bind(now)
        .bind(now)
        .execute(&mut **tx)
        .await?;
        for (pos, na) in new.authzs.iter().enumerate() {
            let a = &na.authz;
            sqlx::query("INSERT INTO authorizations (id, order_id, account_id, identifier, wildcard, status, expires, position) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
                .bind(&a.id)
                .bind(&o.id)
                .bind(&a.account_id)
                .bind(&a.identifier)
                .bind(a.wildcard as i64)
                .bind(&a.status)
                .bind(a.expires)
                .bind(pos as i64)
                .execute(&mut **tx)
                .await?;
            for (cpos, c) in na.challenges.iter().enumerate() {
                sqlx::query("INSERT INTO challenges (id, authz_id, kind, token, status, position) VALUES (?, ?, ?, ?, ?, ?)")
                    .bind(&c.id)
                    .bind(&a.id)
                    .bind(&c.kind)
                    .bind(&c.token)
                    .bind(&c.status)
                    .bind(cpos as i64)
                    .execute(&mut **tx)
                    .await?;
            }
        }
        Ok(())
    }

    /// Order by id.
    pub async fn order(&self, id: &str) -> Result<Option<OrderRow>> {
        let r = sqlx::query(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = ?"))
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        r.as_ref().map(order_from).transpose()
    }

    /// Order by id, inside a write transaction.
    pub async fn order_tx(tx: &mut Tx, id: &str) -> Result<Option<OrderRow>> {
        let r = sqlx::query(&format!("SELECT {ORDER_COLUMNS} FROM orders WHERE id = ?"))
            .bind(id)
            .fetch_optional(&mut **tx)
            .await?;
        r.as_ref().map(order_from).transpose()
    }

    /// Ids of an account's orders, newest first, with a page limit.
    pub async fn order_ids_of_account(&self, account_id: &str, limit: i64) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = sqlx::query_as(
            "SELECT id FROM orders WHERE account_id = ? ORDER BY created_at DESC LIMIT ?",
        )
        .bind(account_id)
        .bind(limit)
        .fetch_all(self.reader())
        .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Sets an order's status (and error) when it is currently `from`.
    /// Returns false when the order was not in that state (lost a race).
    pub async fn set_order_status(
        tx: &mut Tx,
        id: &str,
        from: &[&str],
        to: &str,
        error: Option<&str>,
    ) -> Result<bool> {
        let placeholders = vec!["?"; from.len()].join(", ");
        let sql = format!("UPDATE orders SET status = ?, error = COALESCE(?, error), updated_at = ? WHERE id = ? AND status IN ({placeholders})");
        let mut q = sqlx::query(&sql)
            .bind(to)
            .bind(error)
            .bind(now_ms())
            .bind(id);
        for f in from {
            q = q.bind(*f);
        }
        Ok(q.execute(&mut **tx).await?.rows_affected() == 1)
    }

    /// Stores the CSR and moves a `ready` order to `processing`.
    pub async fn begin_processing(tx: &mut Tx, id: &str, csr: &[u8]) -> Result<bool> {
        let done = sqlx::query("UPDATE orders SET status = 'processing', csr = ?, updated_at = ? WHERE id = ? AND status = 'ready'")
            .bind(csr)
            .bind(now_ms())
            .bind(id)
            .execute(&mut **tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records that a processing order's request is pending at a CA.
    pub async fn set_ca_pending(
        &self,
        order_id: &str,
        authority: &str,
        request_id: i64,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE orders SET ca_authority = ?, ca_request_id = ?, ca_submitted_at = ?, updated_at = ? \
             WHERE id = ? AND status = 'processing' AND ca_request_id IS NULL",
        )
        .bind(authority)
        .bind(request_id)
        .bind(now_ms())
        .bind(now_ms())
        .bind(order_id)
        .execute(self.writer())
        .await?;
        Ok(())
    }

    /// Orders whose request is pending at a CA: (order id, authority, request id).
    pub async fn pending_ca_requests(&self) -> Result<Vec<(String, String, i64)>> {
        let rows: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT id, ca_authority, ca_request_id FROM orders WHERE status = 'processing' AND ca_request_id IS NOT NULL ORDER BY ca_submitted_at",
        )
        .fetch_all(self.reader())
        .await?;
        Ok(rows)
    }

    /// Ids of an order's authorizations, in creation order (order view).
    pub async fn authz_ids_of_order(&self, order_id: &str) -> Result<Vec<String>> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT id FROM authorizations WHERE order_id = ? ORDER BY position")
                .bind(order_id)
                .fetch_all(self.reader())
                .await?;
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    /// Same, inside a write transaction.
    pub async fn authzs_of_order_tx(tx: &mut Tx, order_id: &str) -> Result<Vec<AuthzRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {AUTHZ_COLUMNS} FROM authorizations WHERE order_id = ? ORDER BY position"
        ))
        .bind(order_id)
        .fetch_all(&mut **tx)
        .await?;
        rows.iter().map(authz_from).collect()
    }

    /// Authorization by id.
    pub async fn authz(&self, id: &str) -> Result<Option<AuthzRow>> {
        let r = sqlx::query(&format!(
            "SELECT {AUTHZ_COLUMNS} FROM authorizations WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(self.reader())
        .await?;
        r.as_ref().map(authz_from).transpose()
    }

    /// Authorization by id, inside a write transaction.
    pub async fn authz_tx(tx: &mut Tx, id: &str) -> Result<Option<AuthzRow>> {
        let r = sqlx::query(&format!(
            "SELECT {AUTHZ_COLUMNS} FROM authorizations WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
        r.as_ref().map(authz_from).transpose()
    }

    /// Sets an authorization's status when it is currently one of `from`.
    pub async fn set_authz_status(tx: &mut Tx, id: &str, from: &[&str], to: &str) -> Result<bool> {
        let placeholders = vec!["?"; from.len()].join(", ");
        let sql = format!(
            "UPDATE authorizations SET status = ? WHERE id = ? AND status IN ({placeholders})"
        );
        let mut q = sqlx::query(&sql).bind(to).bind(id);
        for f in from {
            q = q.bind(*f);
        }
        Ok(q.execute(&mut **tx).await?.rows_affected() == 1)
    }

    /// Challenges of an authorization.
    pub async fn challenges_of_authz(&self, authz_id: &str) -> Result<Vec<ChallengeRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {CHALL_COLUMNS} FROM challenges WHERE authz_id = ? ORDER BY position"
        ))
        .bind(authz_id)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(chall_from).collect()
    }

    /// Challenge by id.
    pub async fn challenge(&self, id: &str) -> Result<Option<ChallengeRow>> {
        let r = sqlx::query(&format!(
            "SELECT {CHALL_COLUMNS} FROM challenges WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(self.reader())
        .await?;
        r.as_ref().map(chall_from).transpose()
    }

    /// Challenge by id, inside a write transaction.
    pub async fn challenge_tx(tx: &mut Tx, id: &str) -> Result<Option<ChallengeRow>> {
        let r = sqlx::query(&format!(
            "SELECT {CHALL_COLUMNS} FROM challenges WHERE id = ?"
        ))
        .bind(id)
        .fetch_optional(&mut **tx)
        .await?;
        r.as_ref().map(chall_from).transpose()
    }

    /// Moves a pending challenge to `processing`; false when it was not pending.
    pub async fn start_challenge(tx: &mut Tx, id: &str) -> Result<bool> {
        let done = sqlx::query(
            "UPDATE challenges SET status = 'processing' WHERE id = ? AND status = 'pending'",
        )
        .bind(id)
        .execute(&mut **tx)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records a challenge's outcome when it is still `processing`.
    pub async fn finish_challenge(
        tx: &mut Tx,
        id: &str,
        valid: bool,
        error: Option<&str>,
        record: Option<&str>,
    ) -> Result<bool> {
        let done = sqlx::query("UPDATE challenges SET status = ?, validated = ?, error = ?, record = ? WHERE id = ? AND status = 'processing'")
            .bind(if valid { "valid" } else { "invalid" })
            .bind(valid.then(now_ms))
            .bind(error)
            .bind(record)
            .bind(id)
            .execute(&mut **tx)
            .await?;
        Ok(done.rows_affected() == 1)
    }
}
