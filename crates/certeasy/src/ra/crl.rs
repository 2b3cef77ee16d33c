//! CRLs of the built-in CAs (`revocation-status`): built by `pki` from
//! the revoked rows of one authority, stored with their cRLNumber so that
//! the number only grows and every node serves the same CRL. Rebuilt when
//! a revocation was recorded since (the revoke job does it at once) or
//! half of [`CRL_VALIDITY`] has passed (the listener's refresher and any
//! fetch do it).

use std::time::Duration;

use crate::store::{now_ms, CrlRow, Store};

/// Lifetime of a CRL (its nextUpdate); rebuilt when half of it passed.
pub const CRL_VALIDITY: Duration = Duration::from_secs(24 * 3600);

/// Unix milliseconds as a time.
pub fn to_time(ms: i64) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
}

/// The stored CRL of built-in CA `name` when up to date, else a new one
/// (signed by `ca` and stored).
pub async fn current(store: &Store, name: &str, ca: &pki::BuiltinCa) -> anyhow::Result<Vec<u8>> {
    let validity = i64::try_from(CRL_VALIDITY.as_millis()).unwrap_or(i64::MAX);
    for _ in 0..3 {
        let now = now_ms();
        let stored = store.crl(name).await?;
        if let Some(row) = &stored {
            if row.number > 0 && row.stale == 0 && row.next_update - now > validity / 2 {
                return Ok(row.der.clone());
            }
        }
        // Read the staleness before the entries: a revocation recorded
        // after this point leaves the new CRL stale.
        let (number, seen) = stored.as_ref().map_or((1, 0), |r| (r.number + 1, r.stale));
        let entries: Vec<pki::CrlEntry> = store
            .revoked_certs(name, now)
            .await?
            .into_iter()
            .map(|e| pki::CrlEntry {
                serial_hex: e.serial,
                revoked_at: to_time(e.revoked_at),
                reason: u32::try_from(e.reason).unwrap_or(0),
            })
            .collect();
        // Whole seconds: the CRL's times carry no fraction.
        let this_update = (now / 1000) * 1000;
        let next_update = this_update + validity;
        let der = ca.sign_crl(
            u64::try_from(number).unwrap_or(1),
            to_time(this_update),
            to_time(next_update),
            &entries,
        )?;
        let row = CrlRow {
            authority: name.to_string(),
            number,
            this_update,
            next_update,
            der,
            stale: seen,
        };
        if store.store_crl(&row).await? {
            tracing::info!(target: "server", authority = name, crl_number = number, entries = entries.len(), "CRL built");
            return Ok(row.der);
        }
        // Another request or node stored one first: serve that one.
    }
    anyhow::bail!("the CRL kept changing while it was built")
}
