//! KDC discovery by DNS SRV (RFC 4120 §7.2.3.2, RFC 2782) for authorities
//! with `auth.method: kerberos` and no `auth.kdc`: `_kerberos._tcp.<realm
//! in lower case>`, targets in priority order (weighted random within a
//! priority), each target's A/AAAA records, and the next address tried when
//! one does not answer. The answer is cached for its TTL by the
//! [`SrvKdc`] of the authority.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::proto::rr::{RData, RecordType};
use hickory_resolver::{Resolver, TokioResolver};
use msrpc::auth::{KdcTransport, TcpKdc};

/// Which DNS servers answer the SRV and address queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nameservers {
    /// The system's resolver configuration (`/etc/resolv.conf`).
    System,
    /// One server (UDP, then TCP), e.g. a domain controller's DNS in tests.
    At(SocketAddr),
}

/// The placeholder KDC URL of a realm whose KDC is discovered: what
/// [`SrvKdc`] recognises (sspi needs some URL to address its requests to).
pub fn discovery_url(realm: &str) -> String {
    format!("tcp://{}", srv_name(realm).trim_end_matches('.'))
}

/// `_kerberos._tcp.<realm lower>.`
fn srv_name(realm: &str) -> String {
    format!("_kerberos._tcp.{}.", realm.to_ascii_lowercase())
}

/// One SRV answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SrvTarget {
    /// Priority (lower first).
    pub priority: u16,
    /// Weight within the priority.
    pub weight: u16,
    /// Port.
    pub port: u16,
    /// Target host (no trailing dot).
    pub target: String,
}

/// Orders SRV targets as RFC 2782 says: ascending priority; within one
/// priority a weighted random order (weight-0 entries first in the running
/// sum, so they are chosen rarely). `rng` gives uniform random numbers.
pub fn rfc2782_order(mut v: Vec<SrvTarget>, rng: &mut dyn FnMut() -> u64) -> Vec<SrvTarget> {
    v.sort_by_key(|t| (t.priority, t.weight != 0));
    let mut out = Vec::with_capacity(v.len());
    let mut i = 0;
    while i < v.len() {
        let p = v[i].priority;
        let end = v[i..]
            .iter()
            .position(|t| t.priority != p)
            .map_or(v.len(), |n| i + n);
        let mut group: Vec<SrvTarget> = v[i..end].to_vec();
        while !group.is_empty() {
            let sum: u64 = group.iter().map(|t| u64::from(t.weight)).sum();
            let r = rng() % (sum + 1);
            let mut running = 0u64;
            let mut pick = group.len() - 1;
            for (k, t) in group.iter().enumerate() {
                running += u64::from(t.weight);
                if running >= r {
                    pick = k;
                    break;
                }
            }
            out.push(group.remove(pick));
        }
        i = end;
    }
    out
}

fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default(),
    );
    h.finish()
}

fn resolver(ns: Nameservers) -> Result<TokioResolver, String> {
    match ns {
        Nameservers::System => TokioResolver::builder_tokio()
            .and_then(|b| b.build())
            .map_err(|e| format!("the system's DNS configuration is unusable: {e}")),
        Nameservers::At(addr) => {
            let mut udp = ConnectionConfig::udp();
            udp.port = addr.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = addr.port();
            let config = ResolverConfig::from_name_servers(vec![NameServerConfig::new(
                addr.ip(),
                true,
                vec![udp, tcp],
            )]);
            Resolver::builder_with_config(config, TokioRuntimeProvider::default())
                .build()
                .map_err(|e| format!("DNS server {addr}: {e}"))
        }
    }
}

/// The KDC addresses of `realm` in the order to try them, and until when
/// the answer may be cached (the SRV answer's TTL; the addresses are
/// looked up again with it).
pub async fn lookup_kdcs(
    realm: &str,
    ns: Nameservers,
) -> Result<(Vec<SocketAddr>, Instant), String> {
    let name = srv_name(realm);
    let shown = name.trim_end_matches('.');
    let fix = format!(
        "set auth.kdc (tcp://dc01.{}:88) or publish {shown} SRV records in DNS",
        realm.to_ascii_lowercase()
    );
    let r = resolver(ns)?;
    let lookup = match r.lookup(name.as_str(), RecordType::SRV).await {
        Ok(l) => l,
        Err(e) if e.is_no_records_found() => {
            return Err(format!(
                "no KDC for realm {realm}: no SRV record {shown}; {fix}"
            ))
        }
        Err(e) => {
            return Err(format!(
                "no KDC for realm {realm}: DNS lookup of {shown} failed: {e}; {fix}"
            ))
        }
    };
    let valid_until = lookup.valid_until();
    let mut targets = Vec::new();
    for rec in lookup.answers() {
        if let RData::SRV(s) = &rec.data {
            if s.target.is_root() {
                continue;
            }
            targets.push(SrvTarget {
                priority: s.priority,
                weight: s.weight,
                port: s.port,
                target: s.target.to_ascii().trim_end_matches('.').to_string(),
            });
        }
    }
    if targets.is_empty() {
        return Err(format!(
            "no KDC for realm {realm}: {shown} says the service is not available (target \".\"); {fix}"
        ));
    }
    let mut rng = random;
    let mut addrs = Vec::new();
    let mut unresolved = Vec::new();
    for t in rfc2782_order(targets, &mut rng) {
        match r.lookup_ip(format!("{}.", t.target)).await {
            Ok(ips) => addrs.extend(ips.iter().map(|ip| SocketAddr::new(ip, t.port))),
            Err(e) => unresolved.push(format!("{} ({e})", t.target)),
        }
    }
    if addrs.is_empty() {
        return Err(format!(
            "no KDC for realm {realm}: the targets of {shown} have no address: {}; {fix}",
            unresolved.join(", ")
        ));
    }
    Ok((addrs, valid_until))
}

/// A [`KdcTransport`] that sends to the KDCs discovered for its realm (a
/// URL made by [`discovery_url`]) and to any other `tcp://` URL directly.
pub struct SrvKdc {
    realm: String,
    ns: Nameservers,
    cache: Mutex<Option<(Vec<SocketAddr>, Instant)>>,
}

impl std::fmt::Debug for SrvKdc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SrvKdc")
            .field("realm", &self.realm)
            .field("ns", &self.ns)
            .finish_non_exhaustive()
    }
}

impl SrvKdc {
    /// Discovery for `realm` through `ns`.
    pub fn new(realm: &str, ns: Nameservers) -> SrvKdc {
        SrvKdc {
            realm: realm.to_string(),
            ns,
            cache: Mutex::new(None),
        }
    }

    /// The KDC addresses, from the cache while their TTL lasts.
    pub fn addresses(&self) -> Result<Vec<SocketAddr>, String> {
        if let Ok(g) = self.cache.lock() {
            if let Some((a, until)) = g.as_ref() {
                if Instant::now() < *until {
                    return Ok(a.clone());
                }
            }
        }
        // Called from sspi's synchronous network hook: resolve on a thread
        // of its own with a small runtime (not inside the caller's).
        let (realm, ns) = (self.realm.clone(), self.ns);
        let found = std::thread::scope(|s| {
            s.spawn(move || {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .map_err(|e| format!("DNS runtime: {e}"))
                    .and_then(|rt| {
                        rt.block_on(async {
                            tokio::time::timeout(Duration::from_secs(15), lookup_kdcs(&realm, ns))
                                .await
                                .unwrap_or_else(|_| {
                                    Err(format!("no KDC for realm {realm}: the DNS lookup of {} got no answer in 15s; set auth.kdc", discovery_url(&realm)))
                                })
                        })
                    })
            })
            .join()
            .unwrap_or_else(|_| Err("DNS lookup thread failed".to_string()))
        })?;
        if let Ok(mut g) = self.cache.lock() {
            *g = Some(found.clone());
        }
        Ok(found.0)
    }
}

impl KdcTransport for SrvKdc {
    fn send(&self, url: &str, data: &[u8]) -> Result<Vec<u8>, String> {
        if !url
            .trim_end_matches('/')
            .eq_ignore_ascii_case(&discovery_url(&self.realm))
        {
            return TcpKdc.send(url, data);
        }
        let addrs = self.addresses()?;
        let mut errors = Vec::new();
        for a in &addrs {
            match TcpKdc.send(&format!("tcp://{a}"), data) {
                Ok(r) => return Ok(r),
                Err(e) => errors.push(e),
            }
        }
        // Nobody answered: forget the answer so that the next try asks DNS again.
        if let Ok(mut g) = self.cache.lock() {
            *g = None;
        }
        Err(format!(
            "no KDC of realm {} (discovered by DNS SRV) answered: {}",
            self.realm,
            errors.join("; ")
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(priority: u16, weight: u16, target: &str) -> SrvTarget {
        SrvTarget {
            priority,
            weight,
            port: 88,
            target: target.into(),
        }
    }

    #[test]
    fn priority_first_then_weighted_choice() {
        let v = vec![t(20, 0, "c"), t(10, 1, "b"), t(10, 0, "a"), t(5, 0, "z")];
        // rng always 0: the first entry of the running sum (weight 0 first).
        let order: Vec<_> = rfc2782_order(v.clone(), &mut || 0)
            .into_iter()
            .map(|x| x.target)
            .collect();
        assert_eq!(order, ["z", "a", "b", "c"]);
        // rng large: within priority 10, the weighted entry is chosen first.
        let order: Vec<_> = rfc2782_order(v, &mut || 1)
            .into_iter()
            .map(|x| x.target)
            .collect();
        assert_eq!(order, ["z", "b", "a", "c"]);
    }

    #[test]
    fn weights_shape_the_first_choice() {
        let v = vec![t(0, 90, "heavy"), t(0, 10, "light")];
        let mut state = 12345u64;
        let mut rng = move || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            state >> 33
        };
        let heavy_first = (0..1000)
            .filter(|_| rfc2782_order(v.clone(), &mut rng)[0].target == "heavy")
            .count();
        assert!((800..=980).contains(&heavy_first), "{heavy_first}");
    }

    #[test]
    fn discovery_url_names_the_srv_record() {
        assert_eq!(discovery_url("CORP.TEST"), "tcp://_kerberos._tcp.corp.test");
    }
}
