//! Accounts.

use acme_wire::AccountStatus;
use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{status, Result, SqliteStore, SqliteTx};
use crate::store::{json_list, now_ms, parse_list, AccountChange, AccountRow};

/// The columns of an [`AccountRow`], in the order [`raw`] reads them.
macro_rules! account_columns {
    () => {
        "id, thumbprint, jwk, contact, status, tos_agreed, created_at, eab_kid"
    };
}

const BY_ID: &str = concat!("SELECT ", account_columns!(), " FROM accounts WHERE id = ?");
const BY_THUMBPRINT: &str = concat!(
    "SELECT ",
    account_columns!(),
    " FROM accounts WHERE thumbprint = ?"
);

/// Columns in the order of the SELECTs above; the JSON list is decoded
/// after the row callback (which can only return SQLite errors).
type RawAccount = (
    String,
    String,
    String,
    String,
    AccountStatus,
    bool,
    i64,
    Option<String>,
);

fn raw(r: &Row<'_>) -> rusqlite::Result<RawAccount> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        status(r, 4, "accounts")?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
    ))
}

fn decode(
    (id, thumbprint, jwk, contact, status, tos_agreed, created_at, eab_kid): RawAccount,
) -> Result<AccountRow> {
    Ok(AccountRow {
        id,
        thumbprint,
        jwk,
        contact: parse_list(&contact)?,
        status,
        tos_agreed,
        created_at,
        eab_kid,
    })
}

fn one(conn: &Connection, sql: &str, key: &str) -> Result<Option<AccountRow>> {
    let row = conn.prepare_cached(sql)?.query_row([key], raw).optional()?;
    row.map(decode).transpose()
}

// The methods of `Store` for this area (their contracts are documented
// there), in SQL.
impl SqliteStore {
    pub(in crate::store) async fn account(&self, id: &str) -> Result<Option<AccountRow>> {
        self.read(|c| one(c, BY_ID, id))
    }

    pub(in crate::store) async fn account_by_thumbprint(
        &self,
        thumbprint: &str,
    ) -> Result<Option<AccountRow>> {
        self.read(|c| one(c, BY_THUMBPRINT, thumbprint))
    }

    pub(in crate::store) async fn account_by_thumbprint_tx(
        tx: &mut SqliteTx,
        thumbprint: &str,
    ) -> Result<Option<AccountRow>> {
        one(tx.conn(), BY_THUMBPRINT, thumbprint)
    }

    pub(in crate::store) async fn insert_account(tx: &mut SqliteTx, a: &AccountRow) -> Result<()> {
        tx.conn()
            .prepare_cached("INSERT INTO accounts (id, thumbprint, jwk, contact, status, tos_agreed, created_at, eab_kid) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")?
            .execute(params![
                a.id,
                a.thumbprint,
                a.jwk,
                json_list(&a.contact),
                a.status.as_str(),
                a.tos_agreed,
                if a.created_at == 0 { now_ms() } else { a.created_at },
                a.eab_kid,
            ])?;
        Ok(())
    }

    pub(in crate::store) async fn update_account(
        &self,
        id: &str,
        thumbprint: &str,
        change: &AccountChange<'_>,
    ) -> Result<Option<AccountRow>> {
        self.write(|c| update_on(c, id, thumbprint, change)).await
    }

    pub(in crate::store) async fn update_account_tx(
        tx: &mut SqliteTx,
        id: &str,
        thumbprint: &str,
        change: &AccountChange<'_>,
    ) -> Result<Option<AccountRow>> {
        update_on(tx.conn(), id, thumbprint, change)
    }

    pub(in crate::store) async fn change_account_key(
        tx: &mut SqliteTx,
        id: &str,
        old_thumbprint: &str,
        thumbprint: &str,
        jwk: &str,
    ) -> Result<Option<AccountRow>> {
        let row = tx
            .conn()
            .prepare_cached(concat!(
                "UPDATE accounts SET thumbprint = ?, jwk = ? WHERE id = ? AND status = 'valid' AND thumbprint = ? RETURNING ",
                account_columns!()
            ))?
            .query_row(params![thumbprint, jwk, id, old_thumbprint], raw)
            .optional()?;
        row.map(decode).transpose()
    }

    // Orders and authorizations are reached through the account's orders
    // (index `orders_by_account`), jobs by scanning the jobs table, which
    // holds only the jobs in flight.
    pub(in crate::store) async fn cancel_account_work(
        tx: &mut SqliteTx,
        account_id: &str,
        problem: &str,
    ) -> Result<()> {
        let now = now_ms();
        let c = tx.conn();
        // Validations nobody holds: the challenge fails, the job goes.
        c.prepare_cached(
            "UPDATE challenges SET status = 'invalid', error = ?1 WHERE status = 'processing' \
             AND id IN (SELECT subject FROM jobs WHERE kind = 'validate' AND (state = 'queued' OR lease_until < ?2)) \
             AND EXISTS (SELECT 1 FROM authorizations a WHERE a.id = challenges.authz_id AND a.account_id = ?3)",
        )?
        .execute(params![problem, now, account_id])?;
        c.prepare_cached(
            "DELETE FROM jobs WHERE kind = 'validate' AND (state = 'queued' OR lease_until < ?1) \
             AND EXISTS (SELECT 1 FROM challenges ch JOIN authorizations a ON a.id = ch.authz_id \
                         WHERE ch.id = jobs.subject AND a.account_id = ?2)",
        )?
        .execute(params![now, account_id])?;
        // Issuances nobody holds: the order fails, the job goes.
        c.prepare_cached(
            "UPDATE orders SET status = 'invalid', error = ?1, updated_at = ?2 WHERE status = 'processing' AND account_id = ?3 \
             AND id IN (SELECT subject FROM jobs WHERE kind = 'issue' AND (state = 'queued' OR lease_until < ?2))",
        )?
        .execute(params![problem, now, account_id])?;
        c.prepare_cached(
            "DELETE FROM jobs WHERE kind = 'issue' AND (state = 'queued' OR lease_until < ?1) \
             AND EXISTS (SELECT 1 FROM orders o WHERE o.id = jobs.subject AND o.account_id = ?2)",
        )?
        .execute(params![now, account_id])?;
        c.prepare_cached(
            "UPDATE orders SET status = 'invalid', error = ?1, updated_at = ?2 \
             WHERE account_id = ?3 AND status IN ('pending', 'ready')",
        )?
        .execute(params![problem, now, account_id])?;
        c.prepare_cached(
            "UPDATE authorizations SET status = 'deactivated' WHERE status = 'pending' \
             AND order_id IN (SELECT id FROM orders WHERE account_id = ?)",
        )?
        .execute([account_id])?;
        Ok(())
    }
}

fn update_on(
    c: &Connection,
    id: &str,
    thumbprint: &str,
    change: &AccountChange<'_>,
) -> Result<Option<AccountRow>> {
    let contact = change.contact.map(json_list);
    let row = c
        .prepare_cached(concat!(
            "UPDATE accounts SET contact = COALESCE(?, contact), tos_agreed = (tos_agreed OR ?), \
             status = CASE WHEN ? THEN 'deactivated' ELSE status END \
             WHERE id = ? AND status = 'valid' AND thumbprint = ? RETURNING ",
            account_columns!()
        ))?
        .query_row(
            params![contact, change.agree_tos, change.deactivate, id, thumbprint],
            raw,
        )
        .optional()?;
    row.map(decode).transpose()
}
