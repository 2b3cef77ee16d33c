//! Resolving names under a validation profile.
//!
//! One hickory resolver is built per zone when the [`crate::Validator`] is
//! built, and reused for every validation:
//! - **no response cache**: the cache is sized 0 and every TTL is clamped to
//!   0, so a retried validation always sees the current TXT / A / AAAA
//!   records (a stale cached TXT would make a retry fail);
//! - **no search list, no ndots, no hosts file**: every query is for a fully
//!   qualified name, built from the normalised name plus the root label, and
//!   `/etc/hosts` is never consulted (it could map names to loopback);
//! - `System` zones take only the *name servers* of `/etc/resolv.conf`;
//! - UDP zones use UDP and retry over TCP only when a response is truncated;
//!   TCP zones use TCP only.
//!
//! CNAMEs are followed here, not by hickory: each hop asks for the CNAME of
//! the current name first, checks that its target is still inside a zone of
//! the profile, and resolves the target with *that* zone's resolver (at most
//! [`MAX_CNAME_HOPS`] hops, loops refused).
//!
//! **Authoritative zones** (`authoritative: true`): the configured servers
//! are used only to find the zone's authoritative servers: an SOA query for
//! the name gives the apex of its enclosing zone, an NS query for the apex
//! gives the server names, and their A/AAAA records give the addresses. The
//! actual queries then go to those addresses with recursion-desired off.
//! The addresses are contacted on port 53, or on the port of the first
//! configured server when the zone lists explicit servers (so a test setup on
//! an ephemeral port works). The discovered server set is cached per apex for
//! [`AUTHORITATIVE_REFRESH`]. DNS servers are not subject to the resolved-IP
//! policy (it governs the addresses validated, not the resolvers the operator
//! configured).
//!
//! **DNSSEC zones** (`dnssec: true`): hickory validates from the root trust
//! anchor (`dnssec-ring`); every record used must carry a `Secure` proof,
//! anything else (insecure, bogus, indeterminate) fails the validation.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use hickory_proto::dnssec::Proof;
use hickory_proto::op::ResponseCode;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::TokioResolver;
use tokio::sync::Mutex;

use crate::error::{VaConfigError, ValidationFailure};
use crate::profile::{select_zone, DnsProtocol, ValidationProfile, ZoneConfig, ZoneServers};

/// Longest CNAME chain followed.
pub(crate) const MAX_CNAME_HOPS: usize = 8;

/// How long a discovered set of authoritative servers is reused.
pub(crate) const AUTHORITATIVE_REFRESH: Duration = Duration::from_secs(300);

/// Outcome of one query that reached a server.
#[derive(Debug)]
pub(crate) enum Answer {
    /// Records of the queried type at the queried name.
    Records(Vec<Record>),
    /// NOERROR, but nothing of that type at that name.
    NoData,
    /// The name does not exist.
    NxDomain,
}

/// The resolvers of every zone of one profile.
pub(crate) struct Resolvers {
    profile_name: String,
    zones: Vec<ZoneConfig>,
    resolvers: Vec<ZoneResolver>,
}

impl std::fmt::Debug for Resolvers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolvers")
            .field("profile", &self.profile_name)
            .field("zones", &self.zones.len())
            .finish()
    }
}

impl Resolvers {
    /// Builds one resolver per zone of `profile`.
    pub(crate) fn new(profile: &ValidationProfile) -> Result<Self, VaConfigError> {
        let resolvers = profile
            .zones
            .iter()
            .map(|zone| ZoneResolver::new(profile, zone))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            profile_name: profile.name.clone(),
            zones: profile.zones.clone(),
            resolvers,
        })
    }

    /// The resolver responsible for `name`, or `None` outside every zone.
    fn zone_for(&self, name: &str) -> Option<&ZoneResolver> {
        select_zone(&self.zones, name).and_then(|(i, _)| self.resolvers.get(i))
    }

    /// Refuses `name` when it lies outside every zone.
    pub(crate) fn check_in_profile(&self, name: &str) -> Result<(), ValidationFailure> {
        match self.zone_for(name) {
            Some(_) => Ok(()),
            None => Err(self.outside(name)),
        }
    }

    fn outside(&self, name: &str) -> ValidationFailure {
        ValidationFailure::new(
            crate::FailureKind::RejectedIdentifier,
            format!(
                "{name} is outside every zone of validation profile {}",
                self.profile_name
            ),
        )
    }

    /// Follows CNAMEs from `name` (see the module docs); returns the final
    /// name, or `Err` on NXDOMAIN, a CNAME leaving the profile, or a loop.
    async fn follow_cnames(&self, name: &str) -> Result<String, ValidationFailure> {
        let mut current = name.to_owned();
        let mut seen = vec![current.clone()];
        for _ in 0..=MAX_CNAME_HOPS {
            let zone = self
                .zone_for(&current)
                .ok_or_else(|| self.outside(&current))?;
            match zone.query(&current, RecordType::CNAME).await? {
                Answer::NxDomain => {
                    return Err(ValidationFailure::dns(format!("NXDOMAIN for {current}")))
                }
                Answer::NoData => return Ok(current),
                Answer::Records(records) => {
                    let Some(target) = records.iter().find_map(|r| match &r.data {
                        RData::CNAME(cname) => Some(crate::profile::normalise(&cname.0.to_ascii())),
                        _ => None,
                    }) else {
                        return Ok(current);
                    };
                    if self.zone_for(&target).is_none() {
                        return Err(ValidationFailure::dns(format!(
                            "CNAME {current} -> {target} leaves the zones of validation profile {}",
                            self.profile_name
                        )));
                    }
                    if seen.contains(&target) {
                        return Err(ValidationFailure::dns(format!(
                            "CNAME loop at {current} -> {target}"
                        )));
                    }
                    seen.push(target.clone());
                    current = target;
                }
            }
        }
        Err(ValidationFailure::dns(format!(
            "more than {MAX_CNAME_HOPS} CNAMEs starting at {name}"
        )))
    }

    /// The TXT strings at `name` (after CNAMEs): each record's
    /// character-strings concatenated, as RFC 8555 §8.4 expects.
    pub(crate) async fn txt(&self, name: &str) -> Result<(String, Vec<String>), ValidationFailure> {
        self.check_in_profile(name)?;
        let target = self.follow_cnames(name).await?;
        let zone = self
            .zone_for(&target)
            .ok_or_else(|| self.outside(&target))?;
        match zone.query(&target, RecordType::TXT).await? {
            Answer::NxDomain => Err(ValidationFailure::dns(format!("NXDOMAIN for {target}"))),
            Answer::NoData => Err(ValidationFailure::dns(format!(
                "no TXT records found for {target}"
            ))),
            Answer::Records(records) => {
                let values = records
                    .iter()
                    .filter_map(|r| match &r.data {
                        RData::TXT(txt) => Some(
                            txt.txt_data
                                .iter()
                                .map(|s| String::from_utf8_lossy(s).into_owned())
                                .collect::<String>(),
                        ),
                        _ => None,
                    })
                    .collect();
                Ok((target, values))
            }
        }
    }

    /// A and AAAA of `name` (after CNAMEs), IPv6 first, de-duplicated, not
    /// yet filtered by the IP policy. Empty is an error.
    pub(crate) async fn addresses(&self, name: &str) -> Result<Vec<IpAddr>, ValidationFailure> {
        self.check_in_profile(name)?;
        // RFC 6761 §6.3: `localhost` and every name below it are the
        // loopback host; resolvers answer them without asking DNS. The IP
        // policy still decides whether loopback may be contacted.
        if is_localhost(name) {
            return Ok(vec![
                IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
                IpAddr::V4(std::net::Ipv4Addr::LOCALHOST),
            ]);
        }
        let target = self.follow_cnames(name).await?;
        let zone = self
            .zone_for(&target)
            .ok_or_else(|| self.outside(&target))?;
        let (v6, v4) = tokio::join!(
            zone.query(&target, RecordType::AAAA),
            zone.query(&target, RecordType::A)
        );
        let (v6, v4) = (v6?, v4?);
        if matches!(v6, Answer::NxDomain) && matches!(v4, Answer::NxDomain) {
            return Err(ValidationFailure::dns(format!("NXDOMAIN for {target}")));
        }
        let mut out = Vec::new();
        for answer in [v6, v4] {
            if let Answer::Records(records) = answer {
                for ip in records.iter().filter_map(|r| r.data.ip_addr()) {
                    if !out.contains(&ip) {
                        out.push(ip);
                    }
                }
            }
        }
        if out.is_empty() {
            return Err(ValidationFailure::dns(format!(
                "no A or AAAA records found for {target}"
            )));
        }
        Ok(out)
    }
}

/// The resolver of one zone.
struct ZoneResolver {
    dnssec: bool,
    /// The configured servers: asked directly, or only to find the
    /// authoritative servers when `authoritative` is set.
    configured: TokioResolver,
    authoritative: Option<Authoritative>,
}

/// Finds and caches the authoritative servers of zones.
struct Authoritative {
    port: u16,
    protocol: DnsProtocol,
    options: ResolverOpts,
    cache: Mutex<HashMap<Name, (Instant, TokioResolver)>>,
}

impl ZoneResolver {
    fn new(profile: &ValidationProfile, zone: &ZoneConfig) -> Result<Self, VaConfigError> {
        let zone_error = |reason: String| VaConfigError::Zone {
            profile: profile.name.clone(),
            zone: zone.suffixes.join(","),
            reason,
        };
        if zone.suffixes.is_empty() {
            return Err(zone_error("a zone needs at least one suffix".into()));
        }
        let servers: Vec<SocketAddr> = match &zone.servers {
            ZoneServers::Explicit(list) if list.is_empty() => {
                return Err(zone_error("dns-server lists no server".into()))
            }
            ZoneServers::Explicit(list) => list.clone(),
            ZoneServers::System => system_servers().map_err(|e| {
                zone_error(format!(
                    "cannot read the system resolver configuration: {e}"
                ))
            })?,
        };
        let options = resolver_options(profile.timeout, zone.dnssec, true);
        let configured = build_resolver(&servers, zone.protocol, options.clone())
            .map_err(|e| zone_error(format!("cannot build the resolver: {e}")))?;
        let authoritative = zone.authoritative.then(|| Authoritative {
            port: match &zone.servers {
                ZoneServers::Explicit(list) => list.first().map_or(53, SocketAddr::port),
                ZoneServers::System => 53,
            },
            protocol: zone.protocol,
            options: resolver_options(profile.timeout, zone.dnssec, false),
            cache: Mutex::new(HashMap::new()),
        });
        Ok(Self {
            dnssec: zone.dnssec,
            configured,
            authoritative,
        })
    }

    /// One query for `name`/`rtype` (no CNAME following of our own).
    async fn query(&self, name: &str, rtype: RecordType) -> Result<Answer, ValidationFailure> {
        let fqdn = fqdn(name)?;
        let result = match &self.authoritative {
            None => self.configured.lookup(fqdn.clone(), rtype).await,
            Some(auth) => {
                let resolver = auth.resolver_for(&self.configured, &fqdn, name).await?;
                resolver.lookup(fqdn.clone(), rtype).await
            }
        };
        let lookup = match result {
            Ok(lookup) => lookup,
            Err(e) => return classify_error(&e, name, rtype),
        };
        let records: Vec<Record> = lookup
            .answers()
            .iter()
            .filter(|r| r.record_type() == rtype && r.name == fqdn)
            .cloned()
            .collect();
        if records.is_empty() {
            return Ok(Answer::NoData);
        }
        if self.dnssec {
            if let Some(bad) = records.iter().find(|r| r.proof != Proof::Secure) {
                return Err(ValidationFailure::dns(format!(
                    "the {rtype} answer for {name} is not DNSSEC-validated (proof: {})",
                    bad.proof
                )));
            }
        }
        Ok(Answer::Records(records))
    }
}

impl Authoritative {
    /// The resolver pointed at the authoritative servers of `fqdn`'s zone.
    async fn resolver_for(
        &self,
        finder: &TokioResolver,
        fqdn: &Name,
        name: &str,
    ) -> Result<TokioResolver, ValidationFailure> {
        let apex = Self::apex_of(finder, fqdn, name).await?;
        let mut cache = self.cache.lock().await;
        if let Some((found_at, resolver)) = cache.get(&apex) {
            if found_at.elapsed() < AUTHORITATIVE_REFRESH {
                return Ok(resolver.clone());
            }
        }
        let ns_lookup = finder
            .lookup(apex.clone(), RecordType::NS)
            .await
            .map_err(|e| {
                ValidationFailure::dns(format!(
                    "cannot find the authoritative servers of zone {apex}: {}",
                    net_error_text(&e)
                ))
            })?;
        let ns_names: Vec<Name> = ns_lookup
            .answers()
            .iter()
            .filter_map(|r| match &r.data {
                RData::NS(ns) => Some(ns.0.clone()),
                _ => None,
            })
            .collect();
        let mut addresses = Vec::new();
        for ns in &ns_names {
            if let Ok(ips) = finder.lookup_ip(ns.clone()).await {
                for ip in ips.iter() {
                    let addr = SocketAddr::new(ip, self.port);
                    if !addresses.contains(&addr) {
                        addresses.push(addr);
                    }
                }
            }
        }
        if addresses.is_empty() {
            let names: Vec<String> = ns_names.iter().map(Name::to_ascii).collect();
            return Err(ValidationFailure::dns(format!(
                "no address found for the authoritative servers [{}] of zone {apex}",
                names.join(", ")
            )));
        }
        let resolver =
            build_resolver(&addresses, self.protocol, self.options.clone()).map_err(|e| {
                ValidationFailure::internal(format!("cannot build a resolver for zone {apex}: {e}"))
            })?;
        cache.insert(apex, (Instant::now(), resolver.clone()));
        Ok(resolver)
    }

    /// The apex of the zone enclosing `fqdn`: from the SOA answer, or from
    /// the SOA of the negative response's authority section.
    async fn apex_of(
        finder: &TokioResolver,
        fqdn: &Name,
        name: &str,
    ) -> Result<Name, ValidationFailure> {
        match finder.lookup(fqdn.clone(), RecordType::SOA).await {
            Ok(lookup) => lookup
                .answers()
                .iter()
                .chain(lookup.authorities())
                .find(|r| r.record_type() == RecordType::SOA)
                .map(|r| r.name.clone())
                .ok_or_else(|| {
                    ValidationFailure::dns(format!("cannot find the zone apex of {name}: no SOA"))
                }),
            Err(e) => {
                let text = net_error_text(&e);
                e.into_soa().map(|soa| soa.name.clone()).ok_or_else(|| {
                    ValidationFailure::dns(format!("cannot find the zone apex of {name}: {text}"))
                })
            }
        }
    }
}

/// `name` (normalised) as a fully qualified hickory name.
pub(crate) fn fqdn(name: &str) -> Result<Name, ValidationFailure> {
    let mut n = Name::from_ascii(name).map_err(|e| {
        ValidationFailure::internal(format!("{name:?} is not a valid DNS name: {e}"))
    })?;
    n.set_fqdn(true);
    Ok(n)
}

fn classify_error(
    e: &NetError,
    name: &str,
    rtype: RecordType,
) -> Result<Answer, ValidationFailure> {
    match e {
        NetError::Dns(DnsError::NoRecordsFound(nr)) if nr.response_code == ResponseCode::NXDomain => {
            Ok(Answer::NxDomain)
        }
        NetError::Dns(DnsError::NoRecordsFound(_)) => Ok(Answer::NoData),
        NetError::Dns(DnsError::ResponseCode(code)) => Err(ValidationFailure::dns(format!(
            "{} for {name} ({rtype})",
            rcode_mnemonic(*code)
        ))),
        NetError::Dns(DnsError::Nsec { proof, .. }) => Err(ValidationFailure::dns(format!(
            "the {rtype} answer for {name} is not DNSSEC-validated (negative response, proof: {proof})"
        ))),
        NetError::Dns(DnsError::DnssecBogus) => Err(ValidationFailure::dns(format!(
            "DNSSEC validation failed (bogus) for {name} ({rtype})"
        ))),
        NetError::Timeout => Err(ValidationFailure::dns(format!(
            "DNS query for {name} ({rtype}) timed out"
        ))),
        other => Err(ValidationFailure::dns(format!(
            "DNS query for {name} ({rtype}) failed: {}",
            net_error_text(other)
        ))),
    }
}

fn net_error_text(e: &NetError) -> String {
    match e {
        NetError::Dns(DnsError::ResponseCode(code)) => rcode_mnemonic(*code),
        NetError::Dns(DnsError::NoRecordsFound(nr))
            if nr.response_code == ResponseCode::NXDomain =>
        {
            "NXDOMAIN".into()
        }
        NetError::Dns(DnsError::NoRecordsFound(_)) => "no records".into(),
        other => other.to_string(),
    }
}

fn rcode_mnemonic(code: ResponseCode) -> String {
    match code {
        ResponseCode::NoError => "NOERROR".into(),
        ResponseCode::FormErr => "FORMERR".into(),
        ResponseCode::ServFail => "SERVFAIL".into(),
        ResponseCode::NXDomain => "NXDOMAIN".into(),
        ResponseCode::NotImp => "NOTIMP".into(),
        ResponseCode::Refused => "REFUSED".into(),
        ResponseCode::NotAuth => "NOTAUTH".into(),
        other => format!("response code {} ({other})", u16::from(other)),
    }
}

fn resolver_options(timeout: Duration, dnssec: bool, recursion_desired: bool) -> ResolverOpts {
    let mut o = ResolverOpts::default();
    o.timeout = timeout;
    o.attempts = 2;
    o.ndots = 0;
    o.cache_size = 0;
    o.positive_min_ttl = Some(Duration::ZERO);
    o.negative_min_ttl = Some(Duration::ZERO);
    o.positive_max_ttl = Some(Duration::ZERO);
    o.negative_max_ttl = Some(Duration::ZERO);
    o.use_hosts_file = ResolveHosts::Never;
    o.preserve_intermediates = true;
    o.recursion_desired = recursion_desired;
    o.validate = dnssec;
    o
}

fn build_resolver(
    servers: &[SocketAddr],
    protocol: DnsProtocol,
    options: ResolverOpts,
) -> Result<TokioResolver, NetError> {
    let name_servers = servers
        .iter()
        .map(|addr| {
            let connections = match protocol {
                DnsProtocol::Udp => vec![
                    with_port(ConnectionConfig::udp(), addr.port()),
                    with_port(ConnectionConfig::tcp(), addr.port()),
                ],
                DnsProtocol::Tcp => vec![with_port(ConnectionConfig::tcp(), addr.port())],
            };
            NameServerConfig::new(addr.ip(), true, connections)
        })
        .collect();
    TokioResolver::builder_with_config(
        ResolverConfig::from_name_servers(name_servers),
        TokioRuntimeProvider::default(),
    )
    .with_options(options)
    .build()
}

fn with_port(mut connection: ConnectionConfig, port: u16) -> ConnectionConfig {
    connection.port = port;
    connection
}

/// The name servers of the host's configuration (`/etc/resolv.conf`).
fn system_servers() -> Result<Vec<SocketAddr>, String> {
    #[cfg(unix)]
    {
        let (config, _options) =
            hickory_resolver::system_conf::read_system_conf().map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        for ns in config.name_servers() {
            let port = ns.connections.first().map_or(53, |c| c.port);
            let addr = SocketAddr::new(ns.ip, port);
            if !out.contains(&addr) {
                out.push(addr);
            }
        }
        if out.is_empty() {
            return Err("no nameserver configured".into());
        }
        Ok(out)
    }
    #[cfg(not(unix))]
    {
        Err("system resolvers are only supported on Unix".into())
    }
}

/// `localhost` or a name below it (RFC 6761 §6.3).
pub(crate) fn is_localhost(name: &str) -> bool {
    let n = name.trim_end_matches('.');
    n.eq_ignore_ascii_case("localhost")
        || n.len() > 10 && n[n.len() - 10..].eq_ignore_ascii_case(".localhost")
}

#[cfg(test)]
mod tests {
    #[test]
    fn localhost_names_are_special() {
        assert!(super::is_localhost("localhost"));
        assert!(super::is_localhost("app.localhost."));
        assert!(super::is_localhost("A.LOCALHOST"));
        assert!(!super::is_localhost("notlocalhost"));
        assert!(!super::is_localhost("localhost.example"));
    }

    use super::*;

    #[test]
    fn fqdn_is_absolute() {
        let n = fqdn("www.example.test").expect("valid");
        assert!(n.is_fqdn());
        assert_eq!(n.to_ascii(), "www.example.test.");
    }

    #[test]
    fn options_disable_cache_hosts_and_search() {
        let o = resolver_options(Duration::from_secs(3), false, true);
        assert_eq!(o.cache_size, 0);
        assert_eq!(o.positive_max_ttl, Some(Duration::ZERO));
        assert_eq!(o.negative_max_ttl, Some(Duration::ZERO));
        assert_eq!(o.use_hosts_file, ResolveHosts::Never);
        assert_eq!(o.timeout, Duration::from_secs(3));
    }

    #[test]
    fn rcode_names() {
        assert_eq!(rcode_mnemonic(ResponseCode::ServFail), "SERVFAIL");
        assert_eq!(rcode_mnemonic(ResponseCode::Refused), "REFUSED");
    }
}
