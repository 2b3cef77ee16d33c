//! Issued certificates.

use rusqlite::{params, Connection, OptionalExtension, Row};

use super::{Result, SqliteStore, SqliteTx};
use crate::store::{json_list, now_ms, parse_list, AriCert, CaRevocation, CertRow, RenewEarly};

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

// The methods of `Store` for this area (their contracts are documented
// there), in SQL.
impl SqliteStore {
    pub(in crate::store) async fn insert_cert(tx: &mut SqliteTx, c: &CertRow) -> Result<()> {
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

    pub(in crate::store) async fn cert(&self, id: &str) -> Result<Option<CertRow>> {
        self.read(|c| {
            c.prepare_cached(select!("id = ?"))?
                .query_row([id], raw)
                .optional()?
                .map(decode)
                .transpose()
        })
    }

    pub(in crate::store) async fn cert_id_of_order(
        &self,
        order_id: &str,
    ) -> Result<Option<String>> {
        self.read(|c| cert_id_of_order_on(c, order_id))
    }

    pub(in crate::store) async fn cert_id_of_order_tx(
        tx: &mut SqliteTx,
        order_id: &str,
    ) -> Result<Option<String>> {
        cert_id_of_order_on(tx.conn(), order_id)
    }

    pub(in crate::store) async fn cert_by_serial(&self, serial_hex: &str) -> Result<Vec<CertRow>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(select!("serial = ?"))?;
            let rows = stmt.query_map([serial_hex], raw)?;
            rows.map(|r| decode(r?)).collect()
        })
    }

    pub(in crate::store) async fn revoke_cert(
        tx: &mut SqliteTx,
        id: &str,
        reason: i64,
        ca: CaRevocation,
    ) -> Result<bool> {
        let n = tx
            .conn()
            .prepare_cached("UPDATE certificates SET revoked_at = ?, revocation_reason = ?, ca_revocation = ? WHERE id = ? AND revoked_at IS NULL")?
            .execute(params![now_ms(), reason, ca.as_str(), id])?;
        Ok(n == 1)
    }

    pub(in crate::store) async fn ari_certs_by_serial(
        &self,
        serial_hex: &str,
    ) -> Result<Vec<AriCert>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT id, account_id, names, leaf_der, not_before, not_after, revoked_at, renew_early_at \
                 FROM certificates WHERE serial = ?",
            )?;
            let rows = stmt.query_map([serial_hex], |r| {
                Ok((
                    AriCert {
                        id: r.get(0)?,
                        account_id: r.get(1)?,
                        names: Vec::new(),
                        leaf_der: r.get(3)?,
                        not_before: r.get(4)?,
                        not_after: r.get(5)?,
                        revoked_at: r.get(6)?,
                        renew_early_at: r.get(7)?,
                    },
                    r.get::<_, String>(2)?,
                ))
            })?;
            rows.map(|r| {
                let (mut row, names) = r?;
                row.names = parse_list(&names)?;
                Ok(row)
            })
            .collect()
        })
    }

    pub(in crate::store) async fn mark_replaced(
        tx: &mut SqliteTx,
        cert_id: &str,
        order_id: &str,
        now: i64,
    ) -> Result<bool> {
        let n = tx
            .conn()
            .prepare_cached(
                "UPDATE certificates SET replaced_by = ?1 WHERE id = ?2 AND (replaced_by IS NULL \
                 OR NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = certificates.replaced_by \
                                AND o.status != 'invalid' AND (o.status NOT IN ('pending', 'ready') OR o.expires > ?3)))",
            )?
            .execute(params![order_id, cert_id, now])?;
        Ok(n == 1)
    }

    pub(in crate::store) async fn renew_early(&self, which: &RenewEarly, at: i64) -> Result<u64> {
        let (filter, key) = match which {
            RenewEarly::Serial(s) => ("serial = ?2", s),
            RenewEarly::Name(n) => (
                "EXISTS (SELECT 1 FROM json_each(certificates.names) WHERE value = ?2)",
                n,
            ),
            RenewEarly::Authority(a) => ("authority = ?2", a),
            RenewEarly::Policy(p) => ("order_id IN (SELECT id FROM orders WHERE policy = ?2)", p),
        };
        let sql = format!(
            "UPDATE certificates SET renew_early_at = ?1 WHERE revoked_at IS NULL AND not_after > ?1 AND {filter}"
        );
        self.write(|c| {
            let n = c.prepare(&sql)?.execute(params![at, key])?;
            Ok(n as u64)
        })
        .await
    }

    pub(in crate::store) async fn count_certs_expiring(&self, now: i64, until: i64) -> Result<i64> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT COUNT(*) FROM certificates WHERE revoked_at IS NULL AND not_after > ? AND not_after <= ?",
            )?
            .query_row(params![now, until], |r| r.get(0))?)
        })
    }

    pub(in crate::store) async fn count_certs(&self) -> Result<i64> {
        self.read(|c| Ok(c.query_row("SELECT COUNT(*) FROM certificates", [], |r| r.get(0))?))
    }
}
