//! Accounts.

use sqlx::Row;

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

const COLUMNS: &str = "id, thumbprint, jwk, contact, status, tos_agreed, created_at";

fn from_row(r: &sqlx::sqlite::SqliteRow) -> Result<AccountRow> {
    Ok(AccountRow {
        id: r.try_get("id")?,
        thumbprint: r.try_get("thumbprint")?,
        jwk: r.try_get("jwk")?,
        contact: parse_list(&r.try_get::<String, _>("contact")?)?,
        status: r.try_get("status")?,
        tos_agreed: r.try_get::<i64, _>("tos_agreed")? != 0,
        created_at: r.try_get("created_at")?,
    })
}

impl Store {
    /// Account by id.
    pub async fn account(&self, id: &str) -> Result<Option<AccountRow>> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM accounts WHERE id = ?"))
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Account by key thumbprint.
    pub async fn account_by_thumbprint(&self, thumbprint: &str) -> Result<Option<AccountRow>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM accounts WHERE thumbprint = ?"
        ))
        .bind(thumbprint)
        .fetch_optional(self.reader())
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Same lookup inside a write transaction (race-free create).
    pub async fn account_by_thumbprint_tx(
        tx: &mut Tx,
        thumbprint: &str,
    ) -> Result<Option<AccountRow>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM accounts WHERE thumbprint = ?"
        ))
        .bind(thumbprint)
        .fetch_optional(&mut **tx)
        .await?;
        row.as_ref().map(from_row).transpose()
    }

    /// Inserts an account.
    pub async fn insert_account(tx: &mut Tx, a: &AccountRow) -> Result<()> {
        sqlx::query("INSERT INTO accounts (id, thumbprint, jwk, contact, status, tos_agreed, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)")
            .bind(&a.id)
            .bind(&a.thumbprint)
            .bind(&a.jwk)
            .bind(json_list(&a.contact))
            .bind(&a.status)
            .bind(a.tos_agreed as i64)
            .bind(if a.created_at == 0 { now_ms() } else { a.created_at })
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Updates contact, status and ToS agreement.
    pub async fn update_account(&self, a: &AccountRow) -> Result<()> {
        sqlx::query("UPDATE accounts SET contact = ?, status = ?, tos_agreed = ? WHERE id = ?")
            .bind(json_list(&a.contact))
            .bind(&a.status)
            .bind(a.tos_agreed as i64)
            .bind(&a.id)
            .execute(self.writer())
            .await?;
        Ok(())
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
        sqlx::query("UPDATE accounts SET thumbprint = ?, jwk = ? WHERE id = ?")
            .bind(thumbprint)
            .bind(jwk)
            .bind(id)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }
}
