//! ACME Renewal Information (RFC 9773): the suggested renewal window of a
//! certificate, and the `replaces` field of new-order.
//!
//! The window is computed, not stored: from the certificate's lifetime and
//! the `renewal-info` configuration, moved to "now" for a revoked
//! certificate and to the operator's request for an early renewal
//! (`certeasy cert renew-early`). See `docs/ari.md`.

use acme_wire::{ProblemType, RenewalInfo, SuggestedWindow};
use pki::DnsName;

use super::Ra;
use crate::config::RenewalInfoSettings;
use crate::error::{AcmeError, AcmeResult};
use crate::store::{AccountRow, AriCert};

/// A suggested window, unix ms, `start < end`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    /// Start.
    pub start: i64,
    /// End.
    pub end: i64,
}

/// A per-certificate number in `0..u64::MAX` derived from its serial: the
/// position of its window inside the renewal range, so that the
/// certificates of a fleet issued together do not all renew at the same
/// instant, while one certificate always gets the same window.
fn spread(serial_hex: &str) -> u64 {
    let d = ring::digest::digest(&ring::digest::SHA256, serial_hex.as_bytes());
    let mut b = [0u8; 8];
    b.copy_from_slice(&d.as_ref()[..8]);
    u64::from_be_bytes(b)
}

/// The suggested window of a certificate valid from `not_before` to
/// `not_after` (unix ms) with serial `serial_hex`, at `now`.
///
/// - The renewal range starts at `lifetime-fraction` of the lifetime and
///   ends halfway through what remains after that (2/3 of 90 days: from
///   day 60 to day 75).
/// - The window is `window-width` wide (the whole range when that is
///   narrower), placed inside the range by [`spread`] of the serial.
/// - An early renewal requested at `renew_early_at` moves the window to
///   start there (if that is earlier), `window-width` wide but ending
///   before halfway to expiry.
/// - A revoked certificate's window is collapsed to now: it starts at the
///   revocation and ends now, so every client renews at once.
pub fn window(
    cfg: &RenewalInfoSettings,
    serial_hex: &str,
    not_before: i64,
    not_after: i64,
    revoked_at: Option<i64>,
    renew_early_at: Option<i64>,
    now: i64,
) -> Window {
    if let Some(at) = revoked_at {
        let start = at.min(now - 1000);
        return Window { start, end: now };
    }
    let lifetime = (not_after - not_before).max(2);
    let range_start = not_before + (lifetime as f64 * cfg.lifetime_fraction) as i64;
    let range_end = (range_start + (not_after - range_start) / 2).max(range_start + 1);
    let width = i64::try_from(cfg.window_width.as_millis()).unwrap_or(i64::MAX);
    let normal = if range_end - range_start <= width {
        Window {
            start: range_start,
            end: range_end,
        }
    } else {
        let room = (range_end - range_start - width) as u64;
        let offset = (spread(serial_hex) % (room + 1)) as i64;
        Window {
            start: range_start + offset,
            end: range_start + offset + width,
        }
    };
    match renew_early_at {
        Some(at) if at < normal.start => {
            let end = (at + width).min(at + (not_after - at) / 2).max(at + 1000);
            Window { start: at, end }
        }
        _ => normal,
    }
}

/// RFC 3339 text of a unix-ms time (seconds precision).
fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// Looks a CertID up: `Err` (400 `malformed`) when it does not parse,
/// `Ok(None)` when no certificate of this server has it.
pub async fn find(s: &Ra, cert_id: &str) -> AcmeResult<Option<(AriCert, String)>> {
    let (aki, serial) = pki::parse_ari_cert_id(cert_id)
        .map_err(|e| AcmeError::new(ProblemType::Malformed, e.to_string()))?;
    let serial_hex = pki::ari_serial_hex(&serial);
    let candidates = s.store.ari_certs_by_serial(&serial_hex).await?;
    Ok(candidates
        .into_iter()
        .find(|c| pki::aki_key_id_of(&c.leaf_der).is_ok_and(|k| k == aki))
        .map(|c| (c, serial_hex)))
}

/// The renewal information of a CertID and the `Retry-After` in seconds;
/// 404 when unknown, 400 when malformed.
pub async fn renewal_info(s: &Ra, cert_id: &str, now: i64) -> AcmeResult<(RenewalInfo, u64)> {
    let Some((c, serial_hex)) = find(s, cert_id).await? else {
        return Err(super::orders::not_found("certificate"));
    };
    let w = window(
        &s.config.renewal_info,
        &serial_hex,
        c.not_before,
        c.not_after,
        c.revoked_at,
        c.renew_early_at,
        now,
    );
    let info = RenewalInfo {
        suggested_window: SuggestedWindow {
            start: rfc3339(w.start),
            end: rfc3339(w.end),
        },
        explanation_url: s.config.server.meta.website.clone(),
    };
    Ok((info, s.config.renewal_info.retry_after.as_secs().max(1)))
}

/// Checks new-order's `replaces` (RFC 9773 §5): the certificate exists,
/// belongs to `acct` and shares a name with the order. Whether it is
/// already replaced is decided in the order's transaction
/// ([`crate::store::Store::mark_replaced`]). Returns the certificate's id.
pub async fn check_replaces(
    s: &Ra,
    acct: &AccountRow,
    names: &[DnsName],
    cert_id: &str,
) -> AcmeResult<String> {
    let Some((c, _)) = find(s, cert_id).await? else {
        return Err(AcmeError::new(
            ProblemType::Malformed,
            format!("replaces: no certificate issued by this server has the CertID {cert_id:?}"),
        ));
    };
    if c.account_id != acct.id {
        return Err(AcmeError::new(
            ProblemType::Unauthorized,
            "replaces: the certificate belongs to another account",
        ));
    }
    if !names
        .iter()
        .any(|n| c.names.iter().any(|m| m == n.as_str()))
    {
        return Err(AcmeError::new(
            ProblemType::Malformed,
            format!(
                "replaces: the certificate ({}) shares no identifier with this order",
                c.names.join(", ")
            ),
        ));
    }
    Ok(c.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const DAY: i64 = 86_400_000;

    fn cfg() -> RenewalInfoSettings {
        RenewalInfoSettings {
            lifetime_fraction: 2.0 / 3.0,
            window_width: Duration::from_secs(48 * 3600),
            retry_after: Duration::from_secs(6 * 3600),
        }
    }

    #[test]
    fn windows_lie_inside_the_range_and_differ_per_serial() {
        let mut starts = std::collections::BTreeSet::new();
        for i in 0..50 {
            let w = window(&cfg(), &format!("{i:x}"), 0, 90 * DAY, None, None, 0);
            assert!(w.start >= 60 * DAY && w.end <= 75 * DAY, "{w:?}");
            assert_eq!(w.end - w.start, 2 * DAY);
            starts.insert(w.start);
            // Deterministic.
            assert_eq!(
                w,
                window(&cfg(), &format!("{i:x}"), 0, 90 * DAY, None, None, 5)
            );
        }
        assert!(
            starts.len() > 40,
            "windows are not spread: {}",
            starts.len()
        );
    }

    #[test]
    fn short_lifetimes_get_the_whole_range() {
        let w = window(&cfg(), "01", 0, 6 * DAY, None, None, 0);
        assert_eq!((w.start, w.end), (4 * DAY, 5 * DAY));
    }

    #[test]
    fn revoked_is_now_and_early_renewal_moves_the_window() {
        let now = 10 * DAY;
        let w = window(&cfg(), "01", 0, 90 * DAY, Some(now - DAY), None, now);
        assert_eq!((w.start, w.end), (now - DAY, now));
        let w = window(&cfg(), "01", 0, 90 * DAY, None, Some(now), now);
        assert_eq!((w.start, w.end), (now, now + 2 * DAY));
        // A request later than the normal window changes nothing.
        let normal = window(&cfg(), "01", 0, 90 * DAY, None, None, now);
        let late = window(&cfg(), "01", 0, 90 * DAY, None, Some(80 * DAY), now);
        assert_eq!(normal, late);
    }
}
