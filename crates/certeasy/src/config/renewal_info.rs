//! `renewal-info`: how the ACME Renewal Information (RFC 9773) window of a
//! certificate is computed (see `ra::ari`).

use std::time::Duration;

use serde::Deserialize;

use super::checker::Checker;
use super::duration::{hours, ConfDuration};

/// A number written as a decimal (`0.66`) or a fraction (`2/3`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum Fraction {
    /// `0.66`.
    Number(f64),
    /// `"2/3"` or `"0.66"`.
    Text(String),
}

/// `renewal-info` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct RenewalInfoSection {
    /// Where in the lifetime the renewal range starts.
    lifetime_fraction: Fraction,
    /// Width of the suggested window of one certificate.
    window_width: ConfDuration,
    /// How long a client should wait before asking again.
    retry_after: ConfDuration,
}

impl Default for RenewalInfoSection {
    fn default() -> Self {
        RenewalInfoSection {
            lifetime_fraction: Fraction::Text("2/3".into()),
            window_width: hours::<48>(),
            retry_after: hours::<6>(),
        }
    }
}

/// `renewal-info` after validation.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RenewalInfoSettings {
    /// Strictly between 0 and 1.
    pub lifetime_fraction: f64,
    /// Width of one certificate's suggested window.
    pub window_width: Duration,
    /// `Retry-After` of a renewal-info response.
    pub retry_after: Duration,
}

impl Default for RenewalInfoSettings {
    fn default() -> Self {
        RenewalInfoSettings {
            lifetime_fraction: 2.0 / 3.0,
            window_width: Duration::from_secs(48 * 3600),
            retry_after: Duration::from_secs(6 * 3600),
        }
    }
}

fn parse_fraction(f: &Fraction) -> Option<f64> {
    match f {
        Fraction::Number(n) => Some(*n),
        Fraction::Text(t) => match t.split_once('/') {
            Some((a, b)) => {
                let (a, b) = (a.trim().parse::<f64>().ok()?, b.trim().parse::<f64>().ok()?);
                (b != 0.0).then(|| a / b)
            }
            None => t.trim().parse().ok(),
        },
    }
}

impl Checker<'_> {
    /// Checks `renewal-info`.
    pub(super) fn check_renewal_info(&mut self, s: &RenewalInfoSection) -> RenewalInfoSettings {
        let d = RenewalInfoSettings::default();
        let lifetime_fraction = match parse_fraction(&s.lifetime_fraction) {
            Some(v) if v > 0.0 && v < 1.0 => v,
            _ => {
                self.issue(
                    "renewal-info.lifetime-fraction",
                    "must be a number strictly between 0 and 1, as a decimal (0.66) or a fraction (\"2/3\")",
                );
                d.lifetime_fraction
            }
        };
        RenewalInfoSettings {
            lifetime_fraction,
            window_width: self.nonzero_duration("renewal-info.window-width", s.window_width.get()),
            retry_after: self.nonzero_duration("renewal-info.retry-after", s.retry_after.get()),
        }
    }
}
