//! `dns-validation-profiles`: how challenges are resolved and which
//! addresses a validation may contact, so that an ACME client can never make
//! certeasy reach an address the operator did not allow.
//!
//! A validation profile is not an ACME profile (the `profile` of a new-order,
//! SPEC `acme-profiles`): in code it is always called a validation profile.
//! The validated type is `certeasy_va::ValidationProfile`, the validator's
//! own; the `resolved-ip-policy` is mandatory, because an unset policy must
//! never mean "any address".

use std::collections::BTreeMap;
use std::net::SocketAddr;

use certeasy_va::{
    DnsProtocol as VaProtocol, IpPolicy, ValidationProfile, ZoneConfig, ZoneServers,
};
use serde::Deserialize;

use super::checker::Checker;
use super::duration::{secs, ConfDuration};

/// One DNS validation profile, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct DnsValidationProfile {
    /// Profile name.
    name: String,
    /// Only `local` exists.
    #[serde(default = "default_mode")]
    #[allow(dead_code, reason = "local is the only mode: nothing to read yet")]
    mode: ProfileMode,
    /// Time allowed for one validation.
    #[serde(default = "secs::<10>")]
    timeout: ConfDuration,
    /// Zones and their resolvers.
    zones: Vec<DnsZone>,
    /// Which resolved addresses may be contacted (mandatory).
    resolved_ip_policy: Option<ResolvedIpPolicy>,
    /// Test-only: port used for http-01 instead of 80.
    #[serde(default)]
    http_01_port: Option<u16>,
    /// Test-only: port used for tls-alpn-01 instead of 443.
    #[serde(default)]
    tls_alpn_01_port: Option<u16>,
}

fn default_mode() -> ProfileMode {
    ProfileMode::Local
}

/// Validation profile mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum ProfileMode {
    /// Validate from this host.
    Local,
}

/// One zone of a validation profile, as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct DnsZone {
    /// DNS suffixes this zone covers.
    suffixes: Vec<String>,
    /// Use the system resolver.
    #[serde(default)]
    system: bool,
    /// Explicit DNS servers (`ip` or `ip:port`).
    #[serde(default)]
    dns_server: Vec<String>,
    /// Transport.
    #[serde(default = "default_protocol")]
    protocol: DnsProtocol,
    /// Query the zone's authoritative servers directly.
    #[serde(default)]
    authoritative: bool,
    /// Require DNSSEC-validated answers.
    #[serde(default)]
    dnssec: bool,
}

fn default_protocol() -> DnsProtocol {
    DnsProtocol::Udp
}

/// DNS transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum DnsProtocol {
    /// UDP (falls back to TCP on truncation).
    Udp,
    /// TCP only.
    Tcp,
}

/// `resolved-ip-policy`, as written.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ResolvedIpPolicy {
    /// Addresses that may be contacted.
    #[serde(default)]
    allow_cidrs: Vec<String>,
    /// Addresses that may never be contacted (wins over allow).
    #[serde(default)]
    deny_cidrs: Vec<String>,
}

impl Checker<'_> {
    /// Checks every validation profile; the valid ones, by name.
    pub(super) fn check_validation_profiles(
        &mut self,
        list: &[DnsValidationProfile],
    ) -> BTreeMap<String, ValidationProfile> {
        let mut out = BTreeMap::new();
        if list.is_empty() {
            self.issue(
                "dns-validation-profiles",
                "define at least one validation profile",
            );
        }
        for (i, p) in list.iter().enumerate() {
            let base = format!("dns-validation-profiles[{i}]");
            if out.contains_key(&p.name) {
                self.issue(
                    format!("{base}.name"),
                    format!("profile name {:?} is used twice", p.name),
                );
                continue;
            }
            let policy = match &p.resolved_ip_policy {
                None => {
                    self.issue(
                        format!("{base}.resolved-ip-policy"),
                        "is required: set allow-cidrs and/or deny-cidrs (an unset policy must never mean \"any address\")",
                    );
                    None
                }
                Some(pol) => match IpPolicy::new(&pol.allow_cidrs, &pol.deny_cidrs) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        self.issue(format!("{base}.resolved-ip-policy"), e.to_string());
                        None
                    }
                },
            };
            if p.zones.is_empty() {
                self.issue(
                    format!("{base}.zones"),
                    "define at least one zone (suffixes + system or dns-server)",
                );
            }
            let mut zones = Vec::new();
            for (j, z) in p.zones.iter().enumerate() {
                let zk = format!("{base}.zones[{j}]");
                if let Some(zone) = self.check_zone(&zk, z) {
                    zones.push(zone);
                }
            }
            let Some(ip_policy) = policy else { continue };
            out.insert(
                p.name.clone(),
                ValidationProfile {
                    name: p.name.clone(),
                    timeout: p.timeout.get(),
                    zones,
                    ip_policy,
                    http01_port: p.http_01_port.unwrap_or(80),
                    tls_alpn01_port: p.tls_alpn_01_port.unwrap_or(443),
                },
            );
        }
        out
    }

    /// Checks one zone (`zk` is its key path); None when its resolvers are
    /// not given exactly one way.
    fn check_zone(&mut self, zk: &str, z: &DnsZone) -> Option<ZoneConfig> {
        if z.suffixes.is_empty() {
            self.issue(format!("{zk}.suffixes"), "list at least one DNS suffix");
        }
        let servers = match (z.system, z.dns_server.is_empty()) {
            (true, true) => ZoneServers::System,
            (false, false) => {
                let mut addrs = Vec::new();
                for (k, s) in z.dns_server.iter().enumerate() {
                    match parse_dns_server(s) {
                        Some(a) => addrs.push(a),
                        None => self.issue(
                            format!("{zk}.dns-server[{k}]"),
                            format!("{s:?} is not ip or ip:port"),
                        ),
                    }
                }
                ZoneServers::Explicit(addrs)
            }
            (true, false) => {
                self.issue(zk, "set either system: true or dns-server, not both");
                return None;
            }
            (false, true) => {
                self.issue(zk, "set system: true or list dns-server addresses");
                return None;
            }
        };
        let suffixes = z
            .suffixes
            .iter()
            .map(|s| s.trim().trim_end_matches('.').to_ascii_lowercase())
            .collect();
        let protocol = match z.protocol {
            DnsProtocol::Udp => VaProtocol::Udp,
            DnsProtocol::Tcp => VaProtocol::Tcp,
        };
        Some(ZoneConfig {
            suffixes,
            servers,
            protocol,
            authoritative: z.authoritative,
            dnssec: z.dnssec,
        })
    }
}

fn parse_dns_server(raw: &str) -> Option<SocketAddr> {
    raw.parse::<SocketAddr>().ok().or_else(|| {
        raw.parse::<std::net::IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, 53))
    })
}
