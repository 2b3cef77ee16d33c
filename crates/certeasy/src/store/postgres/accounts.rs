//! Accounts.

use acme_wire::AccountStatus;
use deadpool_postgres::Object;
use tokio_postgres::Row;

use super::{execute, params, query_opt, status, PgStore, PgTx, Result};
use crate::store::{json_list, now_ms, parse_list, AccountChange, AccountRow};

/// The columns of an [`AccountRow`], in the order [`decode`] reads them.
macro_rules! account_columns {
    () => {
        "id, thumbprint, jwk, contact, status, tos_agreed, created_at, eab_kid"
    };
}

const BY_ID: &str = concat!(
    "SELECT ",
    account_columns!(),
    " FROM accounts WHERE id = $1"
);
const BY_THUMBPRINT: &str = concat!(
    "SELECT ",
    account_columns!(),
    " FROM accounts WHERE thumbprint = $1"
);

fn decode(r: &Row) -> Result<AccountRow> {
    let status: AccountStatus = status(r, 4, "accounts")?;
    Ok(AccountRow {
        id: r.try_get(0)?,
        thumbprint: r.try_get(1)?,
        jwk: r.try_get(2)?,
        contact: parse_list(r.try_get(3)?)?,
        status,
        tos_agreed: r.try_get(5)?,
        created_at: r.try_get(6)?,
        eab_kid: r.try_get(7)?,
    })
}

async fn one(c: &Object, sql: &str, key: &str) -> Result<Option<AccountRow>> {
    query_opt(c, sql, params![key])
        .await?
        .as_ref()
        .map(decode)
        .transpose()
}

// The methods of `Store` for this area (their contracts are documented
// there), in SQL.
impl PgStore {
    pub(in crate::store) async fn account(&self, id: &str) -> Result<Option<AccountRow>> {
        one(&self.conn().await?, BY_ID, id).await
    }

    pub(in crate::store) async fn account_by_thumbprint(
        &self,
        thumbprint: &str,
    ) -> Result<Option<AccountRow>> {
        one(&self.conn().await?, BY_THUMBPRINT, thumbprint).await
    }

    pub(in crate::store) async fn account_by_thumbprint_tx(
        tx: &mut PgTx,
        thumbprint: &str,
    ) -> Result<Option<AccountRow>> {
        one(tx.c(), BY_THUMBPRINT, thumbprint).await
    }

    pub(in crate::store) async fn insert_account(tx: &mut PgTx, a: &AccountRow) -> Result<()> {
        let created = if a.created_at == 0 {
            now_ms()
        } else {
            a.created_at
        };
        execute(
            tx.c(),
            "INSERT INTO accounts (id, thumbprint, jwk, contact, status, tos_agreed, created_at, eab_kid) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            params![
                a.id,
                a.thumbprint,
                a.jwk,
                json_list(&a.contact),
                a.status.as_str(),
                a.tos_agreed,
                created,
                a.eab_kid,
            ],
        )
        .await?;
        Ok(())
    }

    pub(in crate::store) async fn update_account(
        &self,
        id: &str,
        thumbprint: &str,
        change: &AccountChange<'_>,
    ) -> Result<Option<AccountRow>> {
        update_on(&self.conn().await?, id, thumbprint, change).await
    }

    pub(in crate::store) async fn update_account_tx(
        tx: &mut PgTx,
        id: &str,
        thumbprint: &str,
        change: &AccountChange<'_>,
    ) -> Result<Option<AccountRow>> {
        update_on(tx.c(), id, thumbprint, change).await
    }

    pub(in crate::store) async fn change_account_key(
        tx: &mut PgTx,
        id: &str,
        old_thumbprint: &str,
        thumbprint: &str,
        jwk: &str,
    ) -> Result<Option<AccountRow>> {
        query_opt(
            tx.c(),
            concat!(
                "UPDATE accounts SET thumbprint = $1, jwk = $2 WHERE id = $3 AND status = 'valid' AND thumbprint = $4 RETURNING ",
                account_columns!()
            ),
            params![thumbprint, jwk, id, old_thumbprint],
        )
        .await?
        .as_ref()
        .map(decode)
        .transpose()
    }

    pub(in crate::store) async fn cancel_account_work(
        tx: &mut PgTx,
        account_id: &str,
        problem: &str,
    ) -> Result<()> {
        let now = now_ms();
        let c = tx.c();
        // Validations nobody holds: the challenge fails, the job goes.
        execute(
            c,
            "UPDATE challenges SET status = 'invalid', error = $1 WHERE status = 'processing' \
             AND id IN (SELECT subject FROM jobs WHERE kind = 'validate' AND (state = 'queued' OR lease_until < $2)) \
             AND EXISTS (SELECT 1 FROM authorizations a WHERE a.id = challenges.authz_id AND a.account_id = $3)",
            params![problem, now, account_id],
        )
        .await?;
        execute(
            c,
            "DELETE FROM jobs WHERE kind = 'validate' AND (state = 'queued' OR lease_until < $1) \
             AND EXISTS (SELECT 1 FROM challenges ch JOIN authorizations a ON a.id = ch.authz_id \
                         WHERE ch.id = jobs.subject AND a.account_id = $2)",
            params![now, account_id],
        )
        .await?;
        // Issuances nobody holds: the order fails, the job goes.
        execute(
            c,
            "UPDATE orders SET status = 'invalid', error = $1, updated_at = $2 WHERE status = 'processing' AND account_id = $3 \
             AND id IN (SELECT subject FROM jobs WHERE kind = 'issue' AND (state = 'queued' OR lease_until < $2))",
            params![problem, now, account_id],
        )
        .await?;
        execute(
            c,
            "DELETE FROM jobs WHERE kind = 'issue' AND (state = 'queued' OR lease_until < $1) \
             AND EXISTS (SELECT 1 FROM orders o WHERE o.id = jobs.subject AND o.account_id = $2)",
            params![now, account_id],
        )
        .await?;
        execute(
            c,
            "UPDATE orders SET status = 'invalid', error = $1, updated_at = $2 \
             WHERE account_id = $3 AND status IN ('pending', 'ready')",
            params![problem, now, account_id],
        )
        .await?;
        execute(
            c,
            "UPDATE authorizations SET status = 'deactivated' WHERE status = 'pending' \
             AND order_id IN (SELECT id FROM orders WHERE account_id = $1)",
            params![account_id],
        )
        .await?;
        Ok(())
    }
}

async fn update_on(
    c: &Object,
    id: &str,
    thumbprint: &str,
    change: &AccountChange<'_>,
) -> Result<Option<AccountRow>> {
    let contact = change.contact.map(json_list);
    query_opt(
        c,
        concat!(
            "UPDATE accounts SET contact = COALESCE($1, contact), tos_agreed = (tos_agreed OR $2), \
             status = CASE WHEN $3 THEN 'deactivated' ELSE status END \
             WHERE id = $4 AND status = 'valid' AND thumbprint = $5 RETURNING ",
            account_columns!()
        ),
        params![contact, change.agree_tos, change.deactivate, id, thumbprint],
    )
    .await?
    .as_ref()
    .map(decode)
    .transpose()
}
