//! Listener certificates shared by the nodes (one node on SQLite, but the
//! same contract).

use rusqlite::OptionalExtension;

use super::{Result, SqliteStore};
use crate::store::listener::{LISTENER_CLAIM, LISTENER_COLUMNS, LISTENER_PUT};
use crate::store::ListenerCertRow;

// The methods of `Store` for this area (their contracts are documented
// there), in SQL.
impl SqliteStore {
    pub(in crate::store) async fn listener_cert(
        &self,
        bundle: &str,
    ) -> Result<Option<ListenerCertRow>> {
        let sql = format!("SELECT {LISTENER_COLUMNS} FROM listener_certificates WHERE bundle = ?");
        let cols = self.read(|c| {
            Ok(c.prepare_cached(&sql)?
                .query_row([bundle], |r| {
                    Ok((
                        r.get(0)?,
                        r.get(1)?,
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                    ))
                })
                .optional()?)
        })?;
        Ok(cols.and_then(ListenerCertRow::from_columns))
    }

    pub(in crate::store) async fn listener_cert_claim(
        &self,
        bundle: &str,
        node: &str,
        now: i64,
        until: i64,
    ) -> Result<bool> {
        self.write(|c| {
            c.prepare_cached(
                "INSERT INTO listener_certificates (bundle) VALUES (?) ON CONFLICT (bundle) DO NOTHING",
            )?
            .execute([bundle])?;
            let n = c
                .prepare_cached(LISTENER_CLAIM)?
                .execute(rusqlite::params![node, until, bundle, node, now])?;
            Ok(n == 1)
        })
        .await
    }

    pub(in crate::store) async fn listener_cert_put(
        &self,
        bundle: &str,
        row: &ListenerCertRow,
    ) -> Result<()> {
        let names = row.names_column();
        self.write(|c| {
            c.prepare_cached(LISTENER_PUT)?.execute(rusqlite::params![
                bundle,
                names,
                row.chain_pem,
                row.key_pem,
                row.not_after,
                row.issued_at,
                row.issued_by
            ])?;
            Ok(())
        })
        .await
    }

    pub(in crate::store) async fn listener_cert_release(
        &self,
        bundle: &str,
        node: &str,
    ) -> Result<()> {
        self.write(|c| {
            c.prepare_cached(
                "UPDATE listener_certificates SET claimed_by = NULL, claim_until = NULL \
                 WHERE bundle = ? AND claimed_by = ?",
            )?
            .execute([bundle, node])?;
            Ok(())
        })
        .await
    }
}
