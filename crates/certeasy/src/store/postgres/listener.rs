//! Listener certificates shared by the nodes.

use super::{execute, params, query_opt, PgStore, Result};
use crate::store::listener::{numbered, LISTENER_CLAIM, LISTENER_COLUMNS, LISTENER_PUT};
use crate::store::ListenerCertRow;

// The methods of `Store` for this area (their contracts are documented
// there), in SQL.
impl PgStore {
    pub(in crate::store) async fn listener_cert(
        &self,
        bundle: &str,
    ) -> Result<Option<ListenerCertRow>> {
        let sql = format!("SELECT {LISTENER_COLUMNS} FROM listener_certificates WHERE bundle = $1");
        let Some(r) = query_opt(&self.conn().await?, &sql, params![bundle]).await? else {
            return Ok(None);
        };
        Ok(ListenerCertRow::from_columns((
            r.try_get(0)?,
            r.try_get(1)?,
            r.try_get(2)?,
            r.try_get(3)?,
            r.try_get(4)?,
            r.try_get(5)?,
        )))
    }

    // Under READ COMMITTED, of two nodes updating the row at once the
    // second waits for the first's commit and re-evaluates the condition on
    // the claimed row: exactly one gets the claim.
    pub(in crate::store) async fn listener_cert_claim(
        &self,
        bundle: &str,
        node: &str,
        now: i64,
        until: i64,
    ) -> Result<bool> {
        let c = self.conn().await?;
        execute(
            &c,
            "INSERT INTO listener_certificates (bundle) VALUES ($1) ON CONFLICT (bundle) DO NOTHING",
            params![bundle],
        )
        .await?;
        let n = execute(
            &c,
            &numbered(LISTENER_CLAIM),
            params![node, until, bundle, node, now],
        )
        .await?;
        Ok(n == 1)
    }

    pub(in crate::store) async fn listener_cert_put(
        &self,
        bundle: &str,
        row: &ListenerCertRow,
    ) -> Result<()> {
        execute(
            &self.conn().await?,
            &numbered(LISTENER_PUT),
            params![
                bundle,
                row.names_column(),
                row.chain_pem,
                row.key_pem,
                row.not_after,
                row.issued_at,
                row.issued_by
            ],
        )
        .await?;
        Ok(())
    }

    pub(in crate::store) async fn listener_cert_release(
        &self,
        bundle: &str,
        node: &str,
    ) -> Result<()> {
        execute(
            &self.conn().await?,
            "UPDATE listener_certificates SET claimed_by = NULL, claim_until = NULL \
             WHERE bundle = $1 AND claimed_by = $2",
            params![bundle, node],
        )
        .await?;
        Ok(())
    }
}
