//! Resolving names under a validation profile.
//!
//! Validation must see what the zone's servers say *now*, ask only the
//! servers the profile names for each zone, and not fail on answers it does
//! not need. So every query is one question to one zone's servers (see
//! [`client`]), and everything around it — CNAMEs, address families, zone
//! boundaries — is decided here:
//! - **no response cache**: nothing is cached, so a retried validation
//!   always sees the current TXT / A / AAAA records;
//! - **no search list, no ndots, no hosts file**: every query is for a fully
//!   qualified name, built from the normalised name plus the root label, and
//!   `/etc/hosts` is never consulted (it could map names to loopback);
//! - `System` zones take only the *name servers* of `/etc/resolv.conf`;
//! - UDP zones use UDP and retry over TCP only when a response is truncated;
//!   TCP zones use TCP only.
//!
//! **Only the wanted type is asked for.** dns-01 asks for TXT, http-01 and
//! tls-alpn-01 for A and AAAA — never for CNAME: servers set up to answer
//! only some types (e.g. only A records for a name) answer REFUSED to the
//! others. CNAMEs are followed from the answer section: a recursor's
//! answer is read along the chain as long as the targets stay in the same
//! zone of the profile; a target in another zone of the profile is asked of
//! that zone's servers; in an authoritative zone every target is asked
//! afresh (a server is authoritative only for its own DNS zone, and cannot
//! be told apart from its delegated children by its answer); a chain that
//! ends without the wanted records is asked for at its end. A target
//! outside every zone fails, as do loops and chains longer than
//! [`MAX_CNAME_HOPS`]. For addresses, A and AAAA are asked in parallel and
//! one family answering is enough: a failure of the other (REFUSED,
//! SERVFAIL, a timeout) is logged at debug level, and named in the failure
//! only when neither family gave an address.
//!
//! **Authoritative zones** (`authoritative: true`): the configured servers
//! are used only to find the zone's authoritative servers (see
//! [`authoritative`]); the queries then go to those servers with
//! recursion-desired off. They are contacted on port 53, or on the port of
//! the first configured server when the zone lists explicit servers (so a
//! test setup on an ephemeral port works). Their addresses must pass the
//! profile's IP policy, as they come from DNS data; the configured servers
//! are the operator's choice and are not filtered.
//!
//! **DNSSEC zones** (`dnssec: true`): hickory validates from the root trust
//! anchor (`dnssec-ring`); every record used — each CNAME of a chain
//! included — must carry a `Secure` proof, anything else (insecure, bogus,
//! indeterminate) fails the validation.

mod authoritative;
mod client;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Mutex;

use hickory_proto::dnssec::Proof;
use hickory_proto::rr::{RData, Record, RecordType};

use self::authoritative::{ApexCache, Authoritative, AUTHORITATIVE_REFRESH, MAX_CACHED_ZONES};
use self::client::{owner, system_servers, Answer, Client};
use crate::error::{VaConfigError, ValidationFailure};
use crate::profile::{normalise, select_zone, ValidationProfile, ZoneConfig, ZoneServers};

/// Longest CNAME chain followed.
pub(crate) const MAX_CNAME_HOPS: usize = 8;

/// Where a lookup of one type ended, after CNAMEs.
#[derive(Debug)]
enum Found {
    /// Records of the wanted type at `name`.
    Records { name: String, records: Vec<Record> },
    /// `name` exists without records of the wanted type.
    NoData(String),
    /// `name` does not exist.
    NxDomain(String),
}

impl Found {
    /// The negative outcome as a failure text.
    fn negative_text(&self, rtype: RecordType) -> String {
        match self {
            Self::NxDomain(name) => format!("NXDOMAIN for {name}"),
            Self::NoData(name) | Self::Records { name, .. } => {
                format!("no {rtype} records found for {name}")
            }
        }
    }
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

    /// The index of the zone responsible for `name`, and its resolver.
    fn zone_for(&self, name: &str) -> Option<(usize, &ZoneResolver)> {
        select_zone(&self.zones, name)
            .and_then(|(i, _)| self.resolvers.get(i).map(|resolver| (i, resolver)))
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

    /// The `rtype` records of `name`, following CNAMEs (see the module
    /// docs). `Err` for a failed query, a CNAME leaving the profile, a loop
    /// or a chain that is too long.
    async fn lookup(&self, name: &str, rtype: RecordType) -> Result<Found, ValidationFailure> {
        let mut current = name.to_owned();
        let mut seen = vec![current.clone()];
        loop {
            let (index, zone) = self
                .zone_for(&current)
                .ok_or_else(|| self.outside(&current))?;
            let records = match zone.query(&current, rtype).await? {
                Answer::NxDomain => return Ok(Found::NxDomain(current)),
                Answer::NoData => return Ok(Found::NoData(current)),
                Answer::Records(records) => records,
            };
            // Walk the chain inside this answer as long as it is trusted.
            let mut at = current.clone();
            loop {
                let wanted: Vec<Record> = records
                    .iter()
                    .filter(|r| r.record_type() == rtype && owner(r) == at)
                    .cloned()
                    .collect();
                if !wanted.is_empty() {
                    if zone.dnssec {
                        require_secure(&wanted, &at)?;
                    }
                    return Ok(Found::Records {
                        name: at,
                        records: wanted,
                    });
                }
                let Some((cname, target)) = records.iter().find_map(|r| match &r.data {
                    RData::CNAME(c) if owner(r) == at => Some((r, host_name(&c.0))),
                    _ => None,
                }) else {
                    if at == current {
                        return Ok(Found::NoData(at));
                    }
                    // The chain ends here without data: ask for its end.
                    break;
                };
                if zone.dnssec {
                    require_secure(std::slice::from_ref(cname), &at)?;
                }
                let Some((target_index, target)) = target
                    .clone()
                    .ok()
                    .and_then(|t| self.zone_for(&t).map(|(i, _)| (i, t)))
                else {
                    let shown = target.unwrap_or_else(|escaped| escaped);
                    return Err(ValidationFailure::dns(format!(
                        "CNAME {at} -> {shown} leaves the zones of validation profile {}",
                        self.profile_name
                    )));
                };
                if seen.contains(&target) {
                    return Err(ValidationFailure::dns(format!(
                        "CNAME loop at {at} -> {target}"
                    )));
                }
                if seen.len() > MAX_CNAME_HOPS {
                    return Err(ValidationFailure::dns(format!(
                        "more than {MAX_CNAME_HOPS} CNAMEs starting at {name}"
                    )));
                }
                seen.push(target.clone());
                at = target;
                if target_index != index || zone.authoritative.is_some() {
                    break;
                }
            }
            current = at;
        }
    }

    /// The TXT strings at `name` (after CNAMEs): each record's
    /// character-strings concatenated, as RFC 8555 §8.4 expects.
    pub(crate) async fn txt(&self, name: &str) -> Result<(String, Vec<String>), ValidationFailure> {
        self.check_in_profile(name)?;
        match self.lookup(name, RecordType::TXT).await? {
            Found::Records { name, records } => {
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
                Ok((name, values))
            }
            negative => Err(ValidationFailure::dns(
                negative.negative_text(RecordType::TXT),
            )),
        }
    }

    /// A and AAAA of `name` (after CNAMEs), IPv6 first, de-duplicated, not
    /// yet filtered by the IP policy. One family answering is enough (see
    /// the module docs); no address at all is an error.
    pub(crate) async fn addresses(&self, name: &str) -> Result<Vec<IpAddr>, ValidationFailure> {
        self.check_in_profile(name)?;
        // RFC 6761 §6.3: `localhost` and every name below it are the
        // loopback host; resolvers answer them without asking DNS. The IP
        // policy still decides whether loopback may be contacted.
        if is_localhost(name) {
            return Ok(vec![
                IpAddr::V6(Ipv6Addr::LOCALHOST),
                IpAddr::V4(Ipv4Addr::LOCALHOST),
            ]);
        }
        let (v6, v4) = tokio::join!(
            self.lookup(name, RecordType::AAAA),
            self.lookup(name, RecordType::A)
        );
        let mut out = Vec::new();
        for found in [&v6, &v4] {
            if let Ok(Found::Records { records, .. }) = found {
                for ip in records.iter().filter_map(|r| r.data.ip_addr()) {
                    if !out.contains(&ip) {
                        out.push(ip);
                    }
                }
            }
        }
        if !out.is_empty() {
            for (rtype, result) in [(RecordType::AAAA, &v6), (RecordType::A, &v4)] {
                if let Err(e) = result {
                    tracing::debug!(
                        name,
                        %rtype,
                        error = %e,
                        "ignored: the other address family answered"
                    );
                }
            }
            return Ok(out);
        }
        match (v4, v6) {
            (Err(e), v6) => {
                if let Err(e6) = v6 {
                    tracing::debug!(name, error = %e6, "the AAAA query failed too");
                }
                Err(e)
            }
            (Ok(Found::NxDomain(n)), Ok(Found::NxDomain(_))) => {
                Err(ValidationFailure::dns(format!("NXDOMAIN for {n}")))
            }
            (Ok(found), Ok(_)) => {
                let (Found::NxDomain(n) | Found::NoData(n) | Found::Records { name: n, .. }) =
                    found;
                Err(ValidationFailure::dns(format!(
                    "no A or AAAA records found for {n}"
                )))
            }
            (Ok(found), Err(e6)) => Err(ValidationFailure::new(
                e6.kind,
                format!(
                    "{}; the AAAA query failed: {}",
                    found.negative_text(RecordType::A),
                    e6.detail
                ),
            )),
        }
    }
}

/// Fails unless every record of `records` (at `name`) is DNSSEC-validated.
/// The normalised text of a name whose labels are all host-name labels
/// (letters, digits, `-`, `_`), or `Err` with its escaped text. A label
/// holding a dot (`elsewhere\.test.` is one label under the root) must
/// never be read as the text `elsewhere.test` and so land in zone `test`.
fn host_name(name: &hickory_proto::rr::Name) -> Result<String, String> {
    let plain = name.iter().all(|label| {
        !label.is_empty()
            && label
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
    });
    let text = normalise(&name.to_ascii());
    if plain {
        Ok(text)
    } else {
        Err(text)
    }
}

fn require_secure(records: &[Record], name: &str) -> Result<(), ValidationFailure> {
    match records.iter().find(|r| r.proof != Proof::Secure) {
        Some(bad) => Err(ValidationFailure::dns(format!(
            "the {} answer for {name} is not DNSSEC-validated (proof: {})",
            bad.record_type(),
            bad.proof
        ))),
        None => Ok(()),
    }
}

/// The resolver of one zone.
struct ZoneResolver {
    dnssec: bool,
    /// The configured servers: asked directly, or only to find the
    /// authoritative servers when `authoritative` is set.
    configured: Client,
    authoritative: Option<Authoritative>,
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
        let servers = match &zone.servers {
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
        let configured = Client::new(&servers, zone.protocol, profile.timeout, zone.dnssec, true)
            .map_err(|e| zone_error(format!("cannot build the resolver: {e}")))?;
        let authoritative = zone.authoritative.then(|| Authoritative {
            port: match &zone.servers {
                ZoneServers::Explicit(list) => list.first().map_or(53, |s| s.port()),
                ZoneServers::System => 53,
            },
            protocol: zone.protocol,
            timeout: profile.timeout,
            dnssec: zone.dnssec,
            policy: profile.ip_policy.clone(),
            profile: profile.name.clone(),
            cache: Mutex::new(ApexCache::new(AUTHORITATIVE_REFRESH, MAX_CACHED_ZONES)),
        });
        Ok(Self {
            dnssec: zone.dnssec,
            configured,
            authoritative,
        })
    }

    /// One query for `name`/`rtype`, to the configured servers or to the
    /// authoritative servers of `name`'s DNS zone.
    async fn query(&self, name: &str, rtype: RecordType) -> Result<Answer, ValidationFailure> {
        match &self.authoritative {
            None => self.configured.query(name, rtype).await,
            Some(auth) => {
                let client = auth.client_for(&self.configured, name).await?;
                client.query(name, rtype).await
            }
        }
    }
}

/// `localhost` or a name below it (RFC 6761 §6.3).
pub(crate) fn is_localhost(name: &str) -> bool {
    let n = name.trim_end_matches('.');
    n.eq_ignore_ascii_case("localhost")
        || n.len() > 10 && n.as_bytes()[n.len() - 10..].eq_ignore_ascii_case(b".localhost")
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
        assert!(!super::is_localhost("éxxxxxxxxx"), "no char-boundary panic");
    }
}
