//! Finding and caching the authoritative servers of DNS zones.
//!
//! For an `authoritative: true` zone the configured servers (the "finder")
//! only say where to ask: the SOA of a name gives the apex of its enclosing
//! zone, the NS of the apex the server names, their A/AAAA the addresses.
//!
//! - **Name-server addresses pass the IP policy.** They come from DNS data
//!   that whoever controls a zone can set, so an NS pointing at an internal
//!   address would otherwise make the validator send queries there. Denied
//!   addresses are dropped; when nothing is left the failure names the
//!   servers and addresses refused. (The configured servers are the
//!   operator's choice and are not filtered.)
//! - **No lock is held across network I/O.** The cache sits under a short
//!   std mutex taken only to read or insert; two validations that miss the
//!   cache for the same apex at once both discover it (the later insert
//!   wins), and a zone whose servers never answer delays only the names in
//!   that zone.
//! - **The cache is bounded**: an entry lives [`AUTHORITATIVE_REFRESH`], and
//!   at most [`MAX_CACHED_ZONES`] apexes are kept (expired entries go first,
//!   then the oldest).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use hickory_proto::rr::{RData, RecordType};
use tokio::task::JoinSet;

use super::client::{fqdn, net_error_text, owner, Client};
use crate::error::{FailureKind, ValidationFailure};
use crate::net::contactable;
use crate::policy::IpPolicy;
use crate::profile::{in_suffix, normalise, DnsProtocol};

/// How long a discovered set of authoritative servers is reused.
pub(crate) const AUTHORITATIVE_REFRESH: Duration = Duration::from_secs(300);

/// Most zone apexes whose servers are remembered.
pub(crate) const MAX_CACHED_ZONES: usize = 256;

/// Finds and caches the authoritative servers of zones.
pub(crate) struct Authoritative {
    /// Port the authoritative servers are asked on.
    pub(crate) port: u16,
    pub(crate) protocol: DnsProtocol,
    pub(crate) timeout: Duration,
    pub(crate) dnssec: bool,
    pub(crate) policy: IpPolicy,
    pub(crate) profile: String,
    pub(crate) cache: Mutex<ApexCache<Client>>,
}

impl Authoritative {
    /// A client for the authoritative servers of the zone enclosing `name`.
    pub(crate) async fn client_for(
        &self,
        finder: &Client,
        name: &str,
    ) -> Result<Client, ValidationFailure> {
        let apex = apex_of(finder, name).await?;
        if let Some(client) = self.cache().get(&apex, Instant::now()) {
            return Ok(client);
        }
        let client = self.discover(finder, &apex).await?;
        self.cache().insert(apex, client.clone(), Instant::now());
        Ok(client)
    }

    fn cache(&self) -> MutexGuard<'_, ApexCache<Client>> {
        self.cache.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Asks `finder` for the NS of `apex` and their addresses, and builds a
    /// client for the addresses the policy permits.
    async fn discover(&self, finder: &Client, apex: &str) -> Result<Client, ValidationFailure> {
        let response = finder.raw(fqdn(apex)?, RecordType::NS).await.map_err(|e| {
            ValidationFailure::dns(format!(
                "cannot find the authoritative servers of zone {apex}: {}",
                net_error_text(&e)
            ))
        })?;
        let mut servers: Vec<String> = Vec::new();
        for record in response.answers.iter().filter(|r| owner(r) == apex) {
            if let RData::NS(ns) = &record.data {
                let name = normalise(&ns.0.to_ascii());
                if !servers.contains(&name) {
                    servers.push(name);
                }
            }
        }
        if servers.is_empty() {
            return Err(ValidationFailure::dns(format!(
                "no NS records found for zone {apex}"
            )));
        }

        let mut lookups = JoinSet::new();
        for (index, server) in servers.iter().enumerate() {
            let (finder, server) = (finder.clone(), server.clone());
            lookups.spawn(async move { (index, addresses_of(&finder, &server).await) });
        }
        let mut found: Vec<(usize, Vec<IpAddr>)> = Vec::new();
        while let Some(joined) = lookups.join_next().await {
            match joined {
                Ok(result) => found.push(result),
                Err(e) => {
                    return Err(ValidationFailure::internal(format!(
                        "looking up the authoritative servers of zone {apex} failed: {e}"
                    )))
                }
            }
        }
        found.sort_by_key(|(index, _)| *index);

        let mut permitted: Vec<SocketAddr> = Vec::new();
        let mut denied: Vec<String> = Vec::new();
        for (index, ips) in found {
            let (allowed, refused): (Vec<IpAddr>, Vec<IpAddr>) = ips
                .into_iter()
                .partition(|ip| contactable(*ip) && self.policy.permits(*ip));
            for ip in allowed {
                let addr = SocketAddr::new(ip, self.port);
                if !permitted.contains(&addr) {
                    permitted.push(addr);
                }
            }
            if !refused.is_empty() {
                let list: Vec<String> = refused.iter().map(IpAddr::to_string).collect();
                let server = servers.get(index).map_or("?", String::as_str);
                denied.push(format!("{server} ({})", list.join(", ")));
            }
        }
        if permitted.is_empty() {
            return Err(if denied.is_empty() {
                ValidationFailure::dns(format!(
                    "no address found for the authoritative servers [{}] of zone {apex}",
                    servers.join(", ")
                ))
            } else {
                ValidationFailure::new(
                    FailureKind::Unauthorized,
                    format!(
                        "the authoritative servers of zone {apex} are denied by the resolved-ip-policy of profile {}: {}",
                        self.profile,
                        denied.join(", ")
                    ),
                )
            });
        }
        if !denied.is_empty() {
            tracing::debug!(
                zone = apex,
                denied = denied.join(", "),
                "authoritative server addresses denied by the resolved-ip-policy are not asked"
            );
        }
        Client::new(&permitted, self.protocol, self.timeout, self.dnssec, false).map_err(|e| {
            ValidationFailure::internal(format!("cannot build a resolver for zone {apex}: {e}"))
        })
    }
}

/// The A and AAAA addresses of `server` (failures leave a family out).
async fn addresses_of(finder: &Client, server: &str) -> Vec<IpAddr> {
    let Ok(name) = fqdn(server) else {
        return Vec::new();
    };
    let (v4, v6) = tokio::join!(
        finder.raw(name.clone(), RecordType::A),
        finder.raw(name, RecordType::AAAA)
    );
    let mut out = Vec::new();
    for (rtype, result) in [(RecordType::A, v4), (RecordType::AAAA, v6)] {
        match result {
            Ok(response) => out.extend(
                response
                    .answers
                    .iter()
                    .filter(|r| r.record_type() == rtype)
                    .filter_map(|r| r.data.ip_addr()),
            ),
            Err(e) => tracing::debug!(
                server,
                %rtype,
                error = net_error_text(&e),
                "no address of an authoritative server"
            ),
        }
    }
    out
}

/// The apex of the zone enclosing `name`: the owner of the SOA in the
/// answer or authority section, when it encloses `name`. An SOA that does
/// not (the name is a CNAME, and the server answered for its target) sends
/// the search one label up: the zone of a CNAME's owner is that of its
/// parent, as a CNAME cannot sit at an apex.
async fn apex_of(finder: &Client, name: &str) -> Result<String, ValidationFailure> {
    let mut at = name;
    loop {
        let soa_owners: Vec<String> = match finder.raw(fqdn(at)?, RecordType::SOA).await {
            Ok(response) => response
                .answers
                .iter()
                .chain(&response.authorities)
                .filter(|r| r.record_type() == RecordType::SOA)
                .map(owner)
                .collect(),
            Err(e) => {
                let text = net_error_text(&e);
                match e.into_soa() {
                    Some(soa) => vec![normalise(&soa.name.to_ascii())],
                    None => {
                        return Err(ValidationFailure::dns(format!(
                            "cannot find the zone apex of {name}: {text}"
                        )))
                    }
                }
            }
        };
        if let Some(apex) = soa_owners.iter().find(|apex| in_suffix(at, apex)) {
            return Ok(apex.clone());
        }
        match (soa_owners.is_empty(), at.split_once('.')) {
            (false, Some((_, parent))) => at = parent,
            _ => {
                return Err(ValidationFailure::dns(format!(
                    "cannot find the zone apex of {name}: no SOA"
                )))
            }
        }
    }
}

/// Values per zone apex, each kept for a fixed time, at most `capacity`.
#[derive(Debug)]
pub(crate) struct ApexCache<T> {
    entries: HashMap<String, (Instant, T)>,
    ttl: Duration,
    capacity: usize,
}

impl<T: Clone> ApexCache<T> {
    /// An empty cache.
    pub(crate) fn new(ttl: Duration, capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            ttl,
            capacity,
        }
    }

    /// The value for `apex` if it was inserted less than the TTL before
    /// `now`; an expired entry is removed.
    pub(crate) fn get(&mut self, apex: &str, now: Instant) -> Option<T> {
        let (at, value) = self.entries.get(apex)?;
        if now.saturating_duration_since(*at) < self.ttl {
            return Some(value.clone());
        }
        self.entries.remove(apex);
        None
    }

    /// Stores `value` for `apex`, making room first: expired entries are
    /// dropped, then the oldest while the cache is full.
    pub(crate) fn insert(&mut self, apex: String, value: T, now: Instant) {
        if !self.entries.contains_key(&apex) && self.entries.len() >= self.capacity {
            let ttl = self.ttl;
            self.entries
                .retain(|_, (at, _)| now.saturating_duration_since(*at) < ttl);
            while self.entries.len() >= self.capacity {
                let Some(oldest) = self
                    .entries
                    .iter()
                    .min_by_key(|(_, (at, _))| *at)
                    .map(|(key, _)| key.clone())
                else {
                    break;
                };
                self.entries.remove(&oldest);
            }
        }
        if self.capacity > 0 {
            self.entries.insert(apex, (now, value));
        }
    }

    /// Number of entries held (expired ones included until evicted).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_after_the_ttl() {
        let start = Instant::now();
        let mut cache = ApexCache::new(Duration::from_secs(300), 8);
        cache.insert("test".into(), 1, start);
        assert_eq!(cache.get("test", start + Duration::from_secs(299)), Some(1));
        assert_eq!(cache.get("test", start + Duration::from_secs(300)), None);
        assert_eq!(cache.len(), 0, "an expired entry is removed when seen");
    }

    #[test]
    fn a_full_cache_drops_expired_entries_then_the_oldest() {
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut cache = ApexCache::new(Duration::from_secs(300), 3);
        cache.insert("a".into(), 1, at(0));
        cache.insert("b".into(), 2, at(10));
        cache.insert("c".into(), 3, at(20));
        // Full, nothing expired: the oldest ("a") goes.
        cache.insert("d".into(), 4, at(30));
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get("a", at(30)), None);
        assert_eq!(cache.get("b", at(30)), Some(2));
        // "b" and "c" have expired by 320 s: both go, nothing else.
        cache.insert("e".into(), 5, at(320));
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get("d", at(320)), Some(4));
        assert_eq!(cache.get("e", at(320)), Some(5));
        // Replacing an entry of a full cache evicts nothing.
        cache.insert("f".into(), 6, at(321));
        cache.insert("f".into(), 7, at(322));
        assert_eq!(cache.len(), 3);
        assert_eq!(cache.get("f", at(322)), Some(7));
    }

    #[test]
    fn the_cache_never_grows_past_its_capacity() {
        let start = Instant::now();
        let mut cache = ApexCache::new(AUTHORITATIVE_REFRESH, MAX_CACHED_ZONES);
        for i in 0..(3 * MAX_CACHED_ZONES) {
            cache.insert(format!("zone{i}.test"), i, start);
        }
        assert_eq!(cache.len(), MAX_CACHED_ZONES);
    }
}
