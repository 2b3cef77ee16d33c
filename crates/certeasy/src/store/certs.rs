//! Issued certificates.

use rusqlite::{params, Connection, OptionalExtension, Row};

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

/// The full-row SELECT with a WHERE clause, as one literal (cache key).
macro_rules! select {
    ($where:literal) => {
        concat!(
            "SELECT id, order_id, account_id, authority, serial, names, leaf_der, chain_pem, not_before, not_after, revoked_at, revocation_reason FROM certificates WHERE ",
            $where
        )
    };
}

/// A row with its names still JSON (decoded outside the row callback).
fn raw(r: &Row<'_>) -> rusqlite::Result<(CertRow, String)> {
    Ok((
        CertRow {
            id: r.get(0)?,
            order_id: r.get(1)?,
            account_id: r.get(2)?,
            authority: r.get(3)?,
            serial: r.get(4)?,
            names: Vec::new(),
            leaf_der: r.get(6)?,
            chain_pem: r.get(7)?,
            not_before: r.get(8)?,
            not_after: r.get(9)?,
            revoked_at: r.get(10)?,
            revocation_reason: r.get(11)?,
        },
        r.get(5)?,
    ))
}

fn decode((mut row, names): (CertRow, String)) -> Result<CertRow> {
    row.names = parse_list(&names)?;
    Ok(row)
}

fn cert_id_of_order_on(c: &Connection, order_id: &str) -> Result<Option<String>> {
    Ok(
        c.prepare_cached("SELECT id FROM certificates WHERE order_id = ?")?
            .query_row([order_id], |r| r.get(0))
            .optional()?,
    )
}

impl Store {
    /// Inserts a certificate (fails on a second certificate for one order).
    pub async fn insert_cert(tx: &mut Tx, c: &CertRow) -> Result<()> {
        tx.conn()
            .prepare_cached(
                "INSERT INTO certificates (id, order_id, account_id, authority, serial, names, leaf_der, chain_pem, not_before, not_after, created_at) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )?
            .execute(params![
                c.id,
                c.order_id,
                c.account_id,
                c.authority,
                c.serial,
                json_list(&c.names),
                c.leaf_der,
                c.chain_pem,
                c.not_before,
                c.not_after,
                now_ms(),
            ])?;
        Ok(())
    }

    /// Certificate by id.
    pub async fn cert(&self, id: &str) -> Result<Option<CertRow>> {
        self.read(|c| {
            c.prepare_cached(select!("id = ?"))?
                .query_row([id], raw)
                .optional()?
                .map(decode)
                .transpose()
        })
    }

    /// Certificate id of an order (order view: no need for the DER and PEM).
    pub async fn cert_id_of_order(&self, order_id: &str) -> Result<Option<String>> {
        self.read(|c| cert_id_of_order_on(c, order_id))
    }

    /// Certificate id of an order, inside a write transaction.
    pub async fn cert_id_of_order_tx(tx: &mut Tx, order_id: &str) -> Result<Option<String>> {
        cert_id_of_order_on(tx.conn(), order_id)
    }

    /// Certificates with a serial (revocation requests carry the certificate).
    pub async fn cert_by_serial(&self, serial_hex: &str) -> Result<Vec<CertRow>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(select!("serial = ?"))?;
            let rows = stmt.query_map([serial_hex], raw)?;
            rows.map(|r| decode(r?)).collect()
        })
    }

    /// Marks a certificate revoked; false when it already was.
    pub async fn revoke_cert(&self, id: &str, reason: i64) -> Result<bool> {
        self.write(|c| {
            let n = c
                .prepare_cached("UPDATE certificates SET revoked_at = ?, revocation_reason = ? WHERE id = ? AND revoked_at IS NULL")?
                .execute(params![now_ms(), reason, id])?;
            Ok(n == 1)
        })
        .await
    }

    /// Number of certificates stored (used by crash tests).
    pub async fn count_certs(&self) -> Result<i64> {
        self.read(|c| Ok(c.query_row("SELECT COUNT(*) FROM certificates", [], |r| r.get(0))?))
    }
}
