//! `metrics`: the Prometheus endpoint, on an address of its own (never the
//! ACME listener, which faces clients). Off by default: without
//! `metrics.listen` no socket is opened.

use std::net::SocketAddr;
use std::time::Duration;

use serde::Deserialize;

use super::checker::Checker;
use super::duration::ConfDuration;

/// `metrics` as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename = "Metrics", deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct MetricsSection {
    /// Address of the plain-HTTP `/metrics` listener.
    #[serde(default)]
    listen: Option<String>,
    /// Certificates expiring within this window count as expiring soon.
    #[serde(default)]
    expiring_within: Option<ConfDuration>,
}

/// Metrics settings after validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSettings {
    /// Where `/metrics` is served; None: metrics off (the default).
    pub listen: Option<SocketAddr>,
    /// Window of `certeasy_certificates_expiring_soon` (default 30 days).
    pub expiring_within: Duration,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            listen: None,
            expiring_within: DEFAULT_EXPIRING_WITHIN,
        }
    }
}

const DEFAULT_EXPIRING_WITHIN: Duration = Duration::from_secs(30 * 24 * 3600);

impl Checker<'_> {
    /// Checks `metrics`: a socket address, and not the ACME listener's.
    pub(super) fn check_metrics(
        &mut self,
        m: &MetricsSection,
        acme_listen: Option<SocketAddr>,
    ) -> MetricsSettings {
        let listen = m.listen.as_deref().and_then(|raw| match raw.parse::<SocketAddr>() {
            Ok(a) if Some(a) == acme_listen => {
                self.issue(
                    "metrics.listen",
                    format!("{a} is server.listen; give the metrics endpoint an address of its own (e.g. 127.0.0.1:9464)"),
                );
                None
            }
            Ok(a) => Some(a),
            Err(_) => {
                self.issue(
                    "metrics.listen",
                    format!("{raw:?} is not an IP address and port (e.g. 127.0.0.1:9464)"),
                );
                None
            }
        });
        let expiring_within = match m.expiring_within {
            Some(d) => self.nonzero_duration("metrics.expiring-within", d.get()),
            None => DEFAULT_EXPIRING_WITHIN,
        };
        MetricsSettings {
            listen,
            expiring_within,
        }
    }
}
