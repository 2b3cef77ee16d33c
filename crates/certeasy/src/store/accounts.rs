//! Accounts.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{json_list, now_ms, parse_list, Result, Store, Tx};

/// A stored account.
#[derive(Debug, Clone)]
pub struct AccountRow {
    /// Identifier (last path segment of the account URL).
    pub id: String,
    /// RFC 7638 thumbprint of the account key.
    pub thumbprint: String,
    /// Canonical public JWK JSON.
    pub jwk: String,
    /// Contact URIs.
    pub contact: Vec<String>,
    /// `valid`, `deactivated` or `revoked`.
    pub status: String,
    /// Whether the terms of service were agreed.
    pub tos_agreed: bool,
    /// Creation time (unix ms).
    pub created_at: i64,
}

const BY_ID: &str = "SELECT id, thumbprint, jwk, contact, status, tos_agreed, created_at FROM accounts WHERE id = ?";
const BY_THUMBPRINT: &str = "SELECT id, thumbprint, jwk, contact, status, tos_agreed, created_at FROM accounts WHERE thumbprint = ?";

/// Columns in the order of the SELECTs above; the JSON list is decoded
/// after the row callback (which can only return SQLite errors).
type RawAccount = (String, String, String, String, String, bool, i64);

fn raw(r: &Row<'_>) -> rusqlite::Result<RawAccount> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

fn one(conn: &Connection, sql: &str, key: &str) -> Result<Option<AccountRow>> {
    let row = conn.prepare_cached(sql)?.query_row([key], raw).optional()?;
    row.map(
        |(id, thumbprint, jwk, contact, status, tos_agreed, created_at)| {
            Ok(AccountRow {
                id,
                thumbprint,
                jwk,
                contact: parse_list(&contact)?,
                status,
                tos_agreed,
                created_at,
            })
        },
    )
    .transpose()
}

impl Store {
    /// Account by id.
    pub async fn account(&self, id: &str) -> Result<Option<AccountRow>> {
        self.read(|c| one(c, BY_ID, id))
    }

    /// Account by key thumbprint.
    pub async fn account_by_thumbprint(&self, thumbprint: &str) -> Result<Option<AccountRow>> {
        self.read(|c| one(c, BY_THUMBPRINT, thumbprint))
    }

    /// Same lookup inside a write transaction (race-free create).
    pub async fn account_by_thumbprint_tx(
        tx: &mut Tx,
        thumbprint: &str,
    ) -> Result<Option<AccountRow>> {
        one(tx.conn(), BY_THUMBPRINT, thumbprint)
    }

    /// Inserts an account.
    pub async fn insert_account(tx: &mut Tx, a: &AccountRow) -> Result<()> {
        tx.conn()
            .prepare_cached("INSERT INTO accounts (id, thumbprint, jwk, contact, status, tos_agreed, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)")?
            .execute(params![
                a.id,
                a.thumbprint,
                a.jwk,
                json_list(&a.contact),
                a.status,
                a.tos_agreed,
                if a.created_at == 0 { now_ms() } else { a.created_at },
            ])?;
        Ok(())
    }

    /// Updates contact, status and ToS agreement.
    pub async fn update_account(&self, a: &AccountRow) -> Result<()> {
        self.write(|c| {
            c.prepare_cached(
                "UPDATE accounts SET contact = ?, status = ?, tos_agreed = ? WHERE id = ?",
            )?
            .execute(params![json_list(&a.contact), a.status, a.tos_agreed, a.id])?;
            Ok(())
        })
        .await
    }

    /// Replaces the account key; fails with a unique violation when the new
    /// key already belongs to another account (the caller checked first, the
    /// constraint closes the race).
    pub async fn change_account_key(
        tx: &mut Tx,
        id: &str,
        thumbprint: &str,
        jwk: &str,
    ) -> Result<()> {
        tx.conn()
            .prepare_cached("UPDATE accounts SET thumbprint = ?, jwk = ? WHERE id = ?")?
            .execute(params![thumbprint, jwk, id])?;
        Ok(())
    }
}
