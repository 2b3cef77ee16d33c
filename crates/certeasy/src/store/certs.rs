//! Issued certificates.

use sqlx::sqlite::SqliteRow;
use sqlx::Row;

use super::{json_list, now_ms, parse_list, Result, Store, Tx};

/// A stored certificate.
#[derive(Debug, Clone)]
pub struct CertRow {
    /// Identifier (last segment of the certificate URL).
    pub id: String,
    /// Order it was issued for (unique: one certificate per order).
    pub order_id: String,
    /// Owning account.
    pub account_id: String,
    /// Authority that signed it.
    pub authority: String,
    /// Serial, lower-case hex.
    pub serial: String,
    /// Names, sorted.
    pub names: Vec<String>,
    /// Leaf DER.
    pub leaf_der: Vec<u8>,
    /// Leaf followed by the chain, PEM.
    pub chain_pem: String,
    /// notBefore (unix ms).
    pub not_before: i64,
    /// notAfter (unix ms).
    pub not_after: i64,
    /// Revocation time (unix ms).
    pub revoked_at: Option<i64>,
    /// RFC 5280 reason code.
    pub revocation_reason: Option<i64>,
}

const COLUMNS: &str = "id, order_id, account_id, authority, serial, names, leaf_der, chain_pem, not_before, not_after, revoked_at, revocation_reason";

fn from_row(r: &SqliteRow) -> Result<CertRow> {
    Ok(CertRow {
        id: r.try_get("id")?,
        order_id: r.try_get("order_id")?,
        account_id: r.try_get("account_id")?,
        authority: r.try_get("authority")?,
        serial: r.try_get("serial")?,
        names: parse_list(&r.try_get::<String, _>("names")?)?,
        leaf_der: r.try_get("leaf_der")?,
        chain_pem: r.try_get("chain_pem")?,
        not_before: r.try_get("not_before")?,
        not_after: r.try_get("not_after")?,
        revoked_at: r.try_get("revoked_at")?,
        revocation_reason: r.try_get("revocation_reason")?,
    })
}

impl Store {
    /// Inserts a certificate (fails on a second certificate for one order).
    pub async fn insert_cert(tx: &mut Tx, c: &CertRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO certificates (id, order_id, account_id, authority, serial, names, leaf_der, chain_pem, not_before, not_after, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&c.id)
        .bind(&c.order_id)
        .bind(&c.account_id)
        .bind(&c.authority)
        .bind(&c.serial)
        .bind(json_list(&c.names))
        .bind(&c.leaf_der)
        .bind(&c.chain_pem)
        .bind(c.not_before)
        .bind(c.not_after)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
        Ok(())
    }

    /// Certificate by id.
    pub async fn cert(&self, id: &str) -> Result<Option<CertRow>> {
        let r = sqlx::query(&format!("SELECT {COLUMNS} FROM certificates WHERE id = ?"))
            .bind(id)
            .fetch_optional(self.reader())
            .await?;
        r.as_ref().map(from_row).transpose()
    }

    /// Certificate id of an order (order view: no need for the DER and PEM).
    pub async fn cert_id_of_order(&self, order_id: &str) -> Result<Option<String>> {
        let r: Option<(String,)> = sqlx::query_as("SELECT id FROM certificates WHERE order_id = ?")
            .bind(order_id)
            .fetch_optional(self.reader())
            .await?;
        Ok(r.map(|r| r.0))
    }

    /// Certificate id of an order, inside a write transaction.
    pub async fn cert_id_of_order_tx(tx: &mut Tx, order_id: &str) -> Result<Option<String>> {
        let r: Option<(String,)> = sqlx::query_as("SELECT id FROM certificates WHERE order_id = ?")
            .bind(order_id)
            .fetch_optional(&mut **tx)
            .await?;
        Ok(r.map(|r| r.0))
    }

    /// Certificate by leaf DER (revocation requests carry the certificate).
    pub async fn cert_by_serial(&self, serial_hex: &str) -> Result<Vec<CertRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM certificates WHERE serial = ?"
        ))
        .bind(serial_hex)
        .fetch_all(self.reader())
        .await?;
        rows.iter().map(from_row).collect()
    }

    /// Marks a certificate revoked; false when it already was.
    pub async fn revoke_cert(&self, id: &str, reason: i64) -> Result<bool> {
        let done = sqlx::query("UPDATE certificates SET revoked_at = ?, revocation_reason = ? WHERE id = ? AND revoked_at IS NULL")
            .bind(now_ms())
            .bind(reason)
            .bind(id)
            .execute(self.writer())
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Number of certificates stored for an order (used by crash tests).
    pub async fn count_certs(&self) -> Result<i64> {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM certificates")
            .fetch_one(self.reader())
            .await?;
        Ok(n)
    }
}
