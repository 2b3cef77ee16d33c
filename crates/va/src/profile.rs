//! DNS validation profiles: zones, their resolvers, and zone selection.

use std::net::SocketAddr;
use std::time::Duration;

use crate::policy::IpPolicy;

/// One DNS validation profile (SPEC §2 `dns-validation-profiles`), already
/// mapped from the YAML by the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationProfile {
    /// Profile name, used in failure details.
    pub name: String,
    /// Upper bound for one whole validation (DNS, connect, redirects, body).
    pub timeout: Duration,
    /// The zones this profile covers; names outside all of them are refused.
    pub zones: Vec<ZoneConfig>,
    /// Which resolved addresses may be contacted.
    pub ip_policy: IpPolicy,
    /// Port for http-01 (80 outside tests).
    pub http01_port: u16,
    /// Port for tls-alpn-01 (443 outside tests).
    pub tls_alpn01_port: u16,
}

/// One zone of a profile and how to resolve names in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneConfig {
    /// Suffixes, normalised: lower case, no trailing dot. `"."` or `""` is
    /// the root catch-all.
    pub suffixes: Vec<String>,
    /// Which name servers to ask.
    pub servers: ZoneServers,
    /// Transport to the name servers.
    pub protocol: DnsProtocol,
    /// Query the zone's authoritative servers instead of the configured
    /// servers (which are then only used to find them).
    pub authoritative: bool,
    /// Require DNSSEC-validated answers.
    pub dnssec: bool,
}

/// Name servers of a zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ZoneServers {
    /// The host's resolvers (`/etc/resolv.conf`); only its name servers are
    /// used, not its search list or options.
    System,
    /// Exactly these servers.
    Explicit(Vec<SocketAddr>),
}

/// DNS transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DnsProtocol {
    /// UDP (hickory falls back to TCP only when it is also configured).
    Udp,
    /// TCP only.
    Tcp,
}

/// Lower-cases a name and drops one trailing dot.
pub(crate) fn normalise(name: &str) -> String {
    let lower = name.trim().to_ascii_lowercase();
    lower.strip_suffix('.').map(str::to_owned).unwrap_or(lower)
}

/// Whether `name` equals `suffix` or lies under it on a label boundary.
/// Both are normalised; an empty suffix (root) matches every name.
pub(crate) fn in_suffix(name: &str, suffix: &str) -> bool {
    suffix.is_empty()
        || name == suffix
        || (name.len() > suffix.len()
            && name.ends_with(suffix)
            && name.as_bytes()[name.len() - suffix.len() - 1] == b'.')
}

/// The zone whose suffix is the longest label-boundary match for `name`:
/// `(zone index, matched suffix)`.
pub(crate) fn select_zone<'a>(zones: &'a [ZoneConfig], name: &str) -> Option<(usize, &'a str)> {
    let name = normalise(name);
    let mut best: Option<(usize, &'a str)> = None;
    for (index, zone) in zones.iter().enumerate() {
        for suffix in &zone.suffixes {
            let s = suffix.as_str().trim_end_matches('.');
            if in_suffix(&name, s) && best.is_none_or(|(_, b)| s.len() > b.len()) {
                best = Some((index, s));
            }
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zone(suffixes: &[&str]) -> ZoneConfig {
        ZoneConfig {
            suffixes: suffixes.iter().map(|s| (*s).to_owned()).collect(),
            servers: ZoneServers::System,
            protocol: DnsProtocol::Udp,
            authoritative: false,
            dnssec: false,
        }
    }

    #[test]
    fn longest_suffix_wins_on_label_boundaries() {
        let zones = vec![
            zone(&["example.com"]),
            zone(&["corp.example.com", "other.test"]),
        ];
        assert_eq!(
            select_zone(&zones, "a.example.com"),
            Some((0, "example.com"))
        );
        assert_eq!(
            select_zone(&zones, "a.corp.example.com"),
            Some((1, "corp.example.com"))
        );
        assert_eq!(
            select_zone(&zones, "corp.example.com."),
            Some((1, "corp.example.com"))
        );
        assert_eq!(
            select_zone(&zones, "evilcorp.example.com"),
            Some((0, "example.com"))
        );
        assert_eq!(select_zone(&zones, "notexample.com"), None);
        assert_eq!(select_zone(&zones, "X.Other.Test"), Some((1, "other.test")));
    }

    #[test]
    fn root_is_a_catch_all_but_loses_to_longer_matches() {
        let zones = vec![zone(&["."]), zone(&["test"])];
        assert_eq!(select_zone(&zones, "x.example"), Some((0, "")));
        assert_eq!(select_zone(&zones, "x.test"), Some((1, "test")));
        let zones = vec![zone(&[""])];
        assert_eq!(select_zone(&zones, "anything.at.all"), Some((0, "")));
    }

    #[test]
    fn normalise_drops_case_and_dot() {
        assert_eq!(normalise("WWW.Example.COM."), "www.example.com");
        assert_eq!(normalise("."), "");
    }
}
