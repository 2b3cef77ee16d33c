//! Issued certificates.

use deadpool_postgres::Object;
use tokio_postgres::Row;

use super::{execute, params, query, query_one, query_opt, PgStore, PgTx, Result};
use crate::store::{json_list, now_ms, parse_list, AriCert, CaRevocation, CertRow, RenewEarly};

/// The full-row SELECT with a WHERE clause.
macro_rules! select {
    ($where:literal) => {
        concat!(
            "SELECT id, order_id, account_id, authority, serial, names, leaf_der, chain_pem, not_before, not_after, revoked_at, revocation_reason FROM certificates WHERE ",
            $where
        )
    };
}

fn decode(r: &Row) -> Result<CertRow> {
    Ok(CertRow {
        id: r.try_get(0)?,
        order_id: r.try_get(1)?,
        account_id: r.try_get(2)?,
        authority: r.try_get(3)?,
        serial: r.try_get(4)?,
        names: parse_list(r.try_get(5)?)?,
        leaf_der: r.try_get(6)?,
        chain_pem: r.try_get(7)?,
        not_before: r.try_get(8)?,
        not_after: r.try_get(9)?,
        revoked_at: r.try_get(10)?,
        revocation_reason: r.try_get(11)?,
    })
}

async fn cert_id_of_order_on(c: &Object, order_id: &str) -> Result<Option<String>> {
    Ok(query_opt(
        c,
        "SELECT id FROM certificates WHERE order_id = $1",
        params![order_id],
    )
    .await?
    .map(|r| r.try_get(0))
    .transpose()?)
}

// The methods of `Store` for this area (their contracts are documented
// there), in SQL.
impl PgStore {
    pub(in crate::store) async fn insert_cert(tx: &mut PgTx, c: &CertRow) -> Result<()> {
        execute(
            tx.c(),
            "INSERT INTO certificates (id, order_id, account_id, authority, serial, names, leaf_der, chain_pem, not_before, not_after, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
            params![
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
            ],
        )
        .await?;
        Ok(())
    }

    pub(in crate::store) async fn cert(&self, id: &str) -> Result<Option<CertRow>> {
        query_opt(&self.conn().await?, select!("id = $1"), params![id])
            .await?
            .as_ref()
            .map(decode)
            .transpose()
    }

    pub(in crate::store) async fn cert_id_of_order(
        &self,
        order_id: &str,
    ) -> Result<Option<String>> {
        cert_id_of_order_on(&self.conn().await?, order_id).await
    }

    pub(in crate::store) async fn cert_id_of_order_tx(
        tx: &mut PgTx,
        order_id: &str,
    ) -> Result<Option<String>> {
        cert_id_of_order_on(tx.c(), order_id).await
    }

    pub(in crate::store) async fn cert_by_serial(&self, serial_hex: &str) -> Result<Vec<CertRow>> {
        query(
            &self.conn().await?,
            select!("serial = $1"),
            params![serial_hex],
        )
        .await?
        .iter()
        .map(decode)
        .collect()
    }

    pub(in crate::store) async fn revoke_cert(
        tx: &mut PgTx,
        id: &str,
        reason: i64,
        ca: CaRevocation,
    ) -> Result<bool> {
        let n = execute(
            tx.c(),
            "UPDATE certificates SET revoked_at = $1, revocation_reason = $2, ca_revocation = $3 WHERE id = $4 AND revoked_at IS NULL",
            params![now_ms(), reason, ca.as_str(), id],
        )
        .await?;
        Ok(n == 1)
    }

    pub(in crate::store) async fn ari_certs_by_serial(
        &self,
        serial_hex: &str,
    ) -> Result<Vec<AriCert>> {
        query(
            &self.conn().await?,
            "SELECT id, account_id, names, leaf_der, not_before, not_after, revoked_at, renew_early_at \
             FROM certificates WHERE serial = $1",
            params![serial_hex],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(AriCert {
                id: r.try_get(0)?,
                account_id: r.try_get(1)?,
                names: parse_list(r.try_get(2)?)?,
                leaf_der: r.try_get(3)?,
                not_before: r.try_get(4)?,
                not_after: r.try_get(5)?,
                revoked_at: r.try_get(6)?,
                renew_early_at: r.try_get(7)?,
            })
        })
        .collect()
    }

    // The certificate row is locked first, so the condition below is read
    // by a statement that starts after any concurrent replacement
    // committed (READ COMMITTED: a new snapshot per statement), as
    // SQLite's single writer guarantees.
    pub(in crate::store) async fn mark_replaced(
        tx: &mut PgTx,
        cert_id: &str,
        order_id: &str,
        now: i64,
    ) -> Result<bool> {
        let c = tx.c();
        if query_opt(
            c,
            "SELECT 1 FROM certificates WHERE id = $1 FOR UPDATE",
            params![cert_id],
        )
        .await?
        .is_none()
        {
            return Ok(false);
        }
        let n = execute(
            c,
            "UPDATE certificates SET replaced_by = $1 WHERE id = $2 AND (replaced_by IS NULL \
             OR NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = certificates.replaced_by \
                            AND o.status != 'invalid' AND (o.status NOT IN ('pending', 'ready') OR o.expires > $3)))",
            params![order_id, cert_id, now],
        )
        .await?;
        Ok(n == 1)
    }

    pub(in crate::store) async fn renew_early(&self, which: &RenewEarly, at: i64) -> Result<u64> {
        let (filter, key) = match which {
            RenewEarly::Serial(s) => ("serial = $2", s),
            RenewEarly::Name(n) => ("jsonb_exists(names::jsonb, $2)", n),
            RenewEarly::Authority(a) => ("authority = $2", a),
            RenewEarly::Policy(p) => ("order_id IN (SELECT id FROM orders WHERE policy = $2)", p),
        };
        let sql = format!(
            "UPDATE certificates SET renew_early_at = $1 WHERE revoked_at IS NULL AND not_after > $1 AND {filter}"
        );
        execute(&self.conn().await?, &sql, params![at, key]).await
    }

    pub(in crate::store) async fn count_certs_expiring(&self, now: i64, until: i64) -> Result<i64> {
        Ok(query_one(
            &self.conn().await?,
            "SELECT COUNT(*) FROM certificates WHERE revoked_at IS NULL AND not_after > $1 AND not_after <= $2",
            params![now, until],
        )
        .await?
        .try_get(0)?)
    }

    pub(in crate::store) async fn count_certs(&self) -> Result<i64> {
        Ok(query_one(
            &self.conn().await?,
            "SELECT COUNT(*) FROM certificates",
            &[],
        )
        .await?
        .try_get(0)?)
    }
}
