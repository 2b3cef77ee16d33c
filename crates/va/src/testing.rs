//! An in-process authoritative DNS server for tests (feature `test-dns`).
//!
//! [`TestDns`] serves one zone over UDP and TCP on the same loopback port,
//! with hickory-server doing the transport. Records can be changed at any
//! time from synchronous code and take effect for the next query. The zone
//! has an SOA (negative TTL 0), an NS `ns1.{zone}` and an A record for
//! `ns1.{zone}` pointing at the server's own address, so
//! `authoritative: true` profiles can discover it. All records have TTL 0.
//!
//! Answers: records of the queried type at the queried name (a CNAME at the
//! name is returned, and chased inside the zone, for any other type);
//! NOERROR with the SOA when the name exists (or is an empty non-terminal)
//! without that type; NXDOMAIN with the SOA otherwise; REFUSED for names
//! outside the zone. Dropping the [`TestDns`] stops the server.
//!
//! Misbehaviour on demand, for the failure modes validation must cope with:
//! [`TestDns::set_servfail`] (SERVFAIL for a name), [`TestDns::refuse_types`]
//! (REFUSED for whole record types, like a server set up to answer only A
//! records), [`TestDns::set_silent`] (no answer at all for a name, like an
//! unreachable upstream); [`TestDns::set_ns`] makes a name a zone cut with
//! its own SOA and NS records, and [`TestDns::wait_for_query`] lets a test
//! wait until a query has arrived instead of sleeping.

use std::collections::{HashMap, HashSet};
use std::iter;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hickory_proto::op::{Header, HeaderCounts, Metadata, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, SOA, SRV, TXT};
use hickory_proto::rr::{Name, RData, Record};
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use hickory_server::Server;
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::watch;

/// Record types, as [`TestDns::refuse_types`] takes them.
pub use hickory_proto::rr::RecordType;

use crate::profile::{in_suffix, normalise};

/// TTL of every record served.
const TTL: u32 = 0;
/// Longest in-zone CNAME chain chased.
const MAX_CHASE: usize = 8;

/// An authoritative DNS server for one zone on `127.0.0.1` (see the module
/// docs). Dropping it stops the server.
pub struct TestDns {
    addr: SocketAddr,
    zone: String,
    state: Arc<Mutex<State>>,
    /// Bumped after every query (see [`TestDns::wait_for_query`]).
    queries: Arc<watch::Sender<()>>,
    _server: Server<Handler>,
}

impl std::fmt::Debug for TestDns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestDns")
            .field("addr", &self.addr)
            .field("zone", &self.zone)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct State {
    /// Normalised owner name -> records.
    records: HashMap<String, Vec<Record>>,
    /// Names that answer SERVFAIL.
    servfail: HashSet<String>,
    /// Names whose queries are never answered.
    silent: HashSet<String>,
    /// Record types that answer REFUSED, whatever the name.
    refused_types: HashSet<RecordType>,
    /// Every name queried so far.
    queried: HashSet<String>,
    udp_queries: usize,
    tcp_queries: usize,
}

impl TestDns {
    /// Starts a server authoritative for `zone` (e.g. `"test"`) on
    /// `127.0.0.1` and an ephemeral port, UDP and TCP on the same port.
    pub async fn start(zone: &str) -> std::io::Result<Self> {
        Self::start_at(zone, SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0)).await
    }

    /// Like [`TestDns::start`] on a given loopback address and port (port 0
    /// picks a port free for both UDP and TCP). Lets a test run a second
    /// server, e.g. on `127.0.0.2` and the same port, as the zone's
    /// "authoritative" server.
    pub async fn start_at(zone: &str, addr: SocketAddr) -> std::io::Result<Self> {
        if !addr.ip().is_loopback() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "TestDns only listens on loopback addresses",
            ));
        }
        let zone = normalise(zone);
        let (udp, tcp) = bind_pair(addr).await?;
        let addr = udp.local_addr()?;
        let state = Arc::new(Mutex::new(State::default()));
        let origin = fqdn(&zone)?;
        {
            let mut st = lock(&state);
            let ns_name = join("ns1", &zone);
            let ns_fqdn = fqdn(&ns_name)?;
            let soa = SOA::new(
                ns_fqdn.clone(),
                fqdn(&join("hostmaster", &zone))?,
                1,
                3600,
                600,
                86400,
                0,
            );
            st.records.insert(
                zone.clone(),
                vec![
                    Record::from_rdata(origin.clone(), TTL, RData::SOA(soa)),
                    Record::from_rdata(origin.clone(), TTL, RData::NS(NS(ns_fqdn.clone()))),
                ],
            );
            st.records.insert(
                ns_name,
                vec![Record::from_rdata(ns_fqdn, TTL, ip_rdata(addr.ip()))],
            );
        }
        let queries = Arc::new(watch::Sender::new(()));
        let handler = Handler {
            zone: zone.clone(),
            state: Arc::clone(&state),
            queries: Arc::clone(&queries),
        };
        let mut server = Server::new(handler);
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(10), 64);
        Ok(Self {
            addr,
            zone,
            state,
            queries,
            _server: server,
        })
    }

    /// The address the server listens on (UDP and TCP).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The zone served (normalised).
    pub fn zone(&self) -> &str {
        &self.zone
    }

    /// Sets the A (IPv4) or AAAA (IPv6) record of `name` (a full name inside
    /// the zone), replacing the records of that type.
    pub fn set_a(&self, name: &str, ip: IpAddr) {
        let rtype = match ip {
            IpAddr::V4(_) => RecordType::A,
            IpAddr::V6(_) => RecordType::AAAA,
        };
        self.replace(name, rtype, vec![ip_rdata(ip)]);
    }

    /// Sets the TXT records of `name`, one record per value, replacing the
    /// previous ones. Values longer than 255 bytes are split into several
    /// character-strings of one record.
    pub fn set_txt(&self, name: &str, values: &[&str]) {
        let rdatas = values
            .iter()
            .map(|v| {
                let chunks = v
                    .as_bytes()
                    .chunks(255)
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect::<Vec<_>>();
                RData::TXT(TXT::new(if chunks.is_empty() {
                    vec![String::new()]
                } else {
                    chunks
                }))
            })
            .collect();
        self.replace(name, RecordType::TXT, rdatas);
    }

    /// Sets the SRV records of `name` (e.g. `_kerberos._tcp.corp.test`), one
    /// per `(priority, weight, port, target)`, replacing the previous ones;
    /// a target of `.` says the service is not available.
    /// `ttl` is the records' TTL (the other setters use 0).
    pub fn set_srv(&self, name: &str, ttl: u32, records: &[(u16, u16, u16, &str)]) {
        let rdatas = records
            .iter()
            .filter_map(|(priority, weight, port, target)| {
                let target = if *target == "." {
                    Name::root()
                } else {
                    fqdn(&normalise(target)).ok()?
                };
                Some(RData::SRV(SRV::new(*priority, *weight, *port, target)))
            })
            .collect::<Vec<_>>();
        let key = normalise(name);
        let Ok(owner) = fqdn(&key) else {
            return;
        };
        let mut st = lock(&self.state);
        let records = st.records.entry(key).or_default();
        records
            .retain(|r| r.record_type() != RecordType::SRV && r.record_type() != RecordType::CNAME);
        records.extend(
            rdatas
                .into_iter()
                .map(|d| Record::from_rdata(owner.clone(), ttl, d)),
        );
    }

    /// Makes `name` a CNAME for `target` (which may be outside the zone),
    /// replacing every other record at `name`.
    pub fn set_cname(&self, name: &str, target: &str) {
        let key = normalise(name);
        let (Ok(owner), Ok(target)) = (fqdn(&key), fqdn(&normalise(target))) else {
            return;
        };
        let mut st = lock(&self.state);
        st.records.insert(
            key,
            vec![Record::from_rdata(owner, TTL, RData::CNAME(CNAME(target)))],
        );
    }

    /// Makes every query for `name` answer SERVFAIL (until [`TestDns::remove`]).
    pub fn set_servfail(&self, name: &str) {
        lock(&self.state).servfail.insert(normalise(name));
    }

    /// Makes every query of one of `types` answer REFUSED, for every name
    /// (replacing the previous set; an empty slice answers every type
    /// again). Models a server configured to answer only some record types,
    /// e.g. only A records for a name.
    pub fn refuse_types(&self, types: &[RecordType]) {
        lock(&self.state).refused_types = types.iter().copied().collect();
    }

    /// Makes every query for `name` go unanswered (until
    /// [`TestDns::remove`]): the server reads it and sends nothing back, like
    /// a resolver whose upstream is unreachable.
    pub fn set_silent(&self, name: &str) {
        lock(&self.state).silent.insert(normalise(name));
    }

    /// Makes `apex` (the zone itself or a name inside it) a zone cut served
    /// by `servers`: an SOA and one NS record per server at `apex`,
    /// replacing the previous SOA and NS records there. Negative answers for
    /// names at or below `apex` then carry its SOA, so `authoritative: true`
    /// profiles find `apex` as the zone of those names. The servers'
    /// addresses are set with [`TestDns::set_a`].
    pub fn set_ns(&self, apex: &str, servers: &[&str]) {
        let key = normalise(apex);
        let Ok(owner) = fqdn(&key) else {
            return;
        };
        let Ok(names) = servers
            .iter()
            .map(|s| fqdn(&normalise(s)))
            .collect::<std::io::Result<Vec<Name>>>()
        else {
            return;
        };
        let (Some(primary), Ok(hostmaster)) = (names.first(), fqdn(&join("hostmaster", &key)))
        else {
            return;
        };
        let soa = SOA::new(primary.clone(), hostmaster, 1, 3600, 600, 86400, 0);
        let mut st = lock(&self.state);
        let records = st.records.entry(key).or_default();
        records.retain(|r| !matches!(r.record_type(), RecordType::SOA | RecordType::NS));
        records.push(Record::from_rdata(owner.clone(), TTL, RData::SOA(soa)));
        records.extend(
            names
                .into_iter()
                .map(|ns| Record::from_rdata(owner.clone(), TTL, RData::NS(NS(ns)))),
        );
    }

    /// Removes every record of `name` (and a SERVFAIL or silent mark).
    pub fn remove(&self, name: &str) {
        let key = normalise(name);
        let mut st = lock(&self.state);
        st.records.remove(&key);
        st.servfail.remove(&key);
        st.silent.remove(&key);
    }

    /// Waits until a query for `name` (any type, answered or not) has
    /// arrived; returns at once if one already has.
    pub async fn wait_for_query(&self, name: &str) {
        let key = normalise(name);
        let mut changes = self.queries.subscribe();
        loop {
            if lock(&self.state).queried.contains(&key) {
                return;
            }
            if changes.changed().await.is_err() {
                return;
            }
        }
    }

    /// Queries received over UDP so far.
    pub fn udp_queries(&self) -> usize {
        lock(&self.state).udp_queries
    }

    /// Queries received over TCP so far.
    pub fn tcp_queries(&self) -> usize {
        lock(&self.state).tcp_queries
    }

    fn replace(&self, name: &str, rtype: RecordType, rdatas: Vec<RData>) {
        let key = normalise(name);
        let Ok(owner) = fqdn(&key) else {
            return;
        };
        let mut st = lock(&self.state);
        let records = st.records.entry(key).or_default();
        records.retain(|r| r.record_type() != rtype && r.record_type() != RecordType::CNAME);
        records.extend(
            rdatas
                .into_iter()
                .map(|d| Record::from_rdata(owner.clone(), TTL, d)),
        );
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

fn join(label: &str, zone: &str) -> String {
    if zone.is_empty() {
        label.to_owned()
    } else {
        format!("{label}.{zone}")
    }
}

fn fqdn(name: &str) -> std::io::Result<Name> {
    let mut n = Name::from_ascii(name)
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    n.set_fqdn(true);
    Ok(n)
}

fn ip_rdata(ip: IpAddr) -> RData {
    match ip {
        IpAddr::V4(v4) => RData::A(A(v4)),
        IpAddr::V6(v6) => RData::AAAA(AAAA(v6)),
    }
}

/// Binds UDP and TCP on the same address; with port 0, retries until an
/// ephemeral port is free for both.
async fn bind_pair(addr: SocketAddr) -> std::io::Result<(UdpSocket, TcpListener)> {
    let mut last = None;
    for _ in 0..32 {
        let udp = UdpSocket::bind(addr).await?;
        let bound = udp.local_addr()?;
        match TcpListener::bind(bound).await {
            Ok(tcp) => return Ok((udp, tcp)),
            Err(e) if addr.port() == 0 => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| std::io::Error::other("no free port")))
}

struct Handler {
    zone: String,
    state: Arc<Mutex<State>>,
    queries: Arc<watch::Sender<()>>,
}

/// What the server does with one question.
enum Reply {
    /// (response code, answers, authority).
    Answer(ResponseCode, Vec<Record>, Vec<Record>),
    /// Nothing is sent back.
    Silence,
}

impl Handler {
    /// Counts and records one question, then answers it.
    fn reply(&self, qname: &str, qtype: RecordType, protocol: Protocol) -> Reply {
        let reply = {
            let mut st = lock(&self.state);
            match protocol {
                Protocol::Tcp => st.tcp_queries += 1,
                _ => st.udp_queries += 1,
            }
            st.queried.insert(qname.to_owned());
            if st.silent.contains(qname) {
                Reply::Silence
            } else {
                let (rcode, answers, authority) = self.answer(&st, qname, qtype);
                Reply::Answer(rcode, answers, authority)
            }
        };
        self.queries.send_replace(());
        reply
    }

    /// (response code, answers, authority) for one question.
    fn answer(
        &self,
        st: &State,
        qname: &str,
        qtype: RecordType,
    ) -> (ResponseCode, Vec<Record>, Vec<Record>) {
        if !in_suffix(qname, &self.zone) || st.refused_types.contains(&qtype) {
            return (ResponseCode::Refused, Vec::new(), Vec::new());
        }
        if st.servfail.contains(qname) {
            return (ResponseCode::ServFail, Vec::new(), Vec::new());
        }

        let mut answers = Vec::new();
        let mut name = qname.to_owned();
        for _ in 0..MAX_CHASE {
            let at = st.records.get(&name).cloned().unwrap_or_default();
            let exact: Vec<Record> = at
                .iter()
                .filter(|r| r.record_type() == qtype)
                .cloned()
                .collect();
            if !exact.is_empty() {
                answers.extend(exact);
                return (ResponseCode::NoError, answers, Vec::new());
            }
            let cname = at.iter().find_map(|r| match &r.data {
                RData::CNAME(c) => Some((r.clone(), normalise(&c.0.to_ascii()))),
                _ => None,
            });
            match cname {
                Some((record, target)) => {
                    answers.push(record);
                    if !in_suffix(&target, &self.zone) {
                        return (ResponseCode::NoError, answers, Vec::new());
                    }
                    name = target;
                }
                None => {
                    let soa = self.soa_above(st, &name);
                    if !answers.is_empty() {
                        return (ResponseCode::NoError, answers, soa);
                    }
                    let exists = !at.is_empty()
                        || st.records.keys().any(|k| in_suffix(k, &name) && k != &name);
                    let rcode = if exists {
                        ResponseCode::NoError
                    } else {
                        ResponseCode::NXDomain
                    };
                    return (rcode, Vec::new(), soa);
                }
            }
        }
        (ResponseCode::NoError, answers, Vec::new())
    }

    /// The SOA of the closest zone cut at or above `name` (the zone's own
    /// SOA unless [`TestDns::set_ns`] made a cut below it).
    fn soa_above(&self, st: &State, name: &str) -> Vec<Record> {
        let mut at = name;
        loop {
            let soa: Vec<Record> = st
                .records
                .get(at)
                .into_iter()
                .flatten()
                .filter(|r| r.record_type() == RecordType::SOA)
                .cloned()
                .collect();
            if !soa.is_empty() || at == self.zone || at.is_empty() {
                return soa;
            }
            at = at.split_once('.').map_or("", |(_, parent)| parent);
        }
    }
}

#[async_trait::async_trait]
impl RequestHandler for Handler {
    async fn handle_request<R: ResponseHandler, T: Time>(
        &self,
        request: &Request,
        mut response_handle: R,
    ) -> ResponseInfo {
        let mut metadata = Metadata::response_from_request(&request.metadata);
        metadata.authoritative = true;
        let reply = match request.request_info() {
            Ok(info) => self.reply(
                &normalise(&info.query.name().to_string()),
                info.query.query_type(),
                request.protocol(),
            ),
            Err(_) => Reply::Answer(ResponseCode::FormErr, Vec::new(), Vec::new()),
        };
        let (rcode, answers, authority) = match reply {
            Reply::Answer(rcode, answers, authority) => (rcode, answers, authority),
            Reply::Silence => {
                return ResponseInfo::from(Header {
                    metadata,
                    counts: HeaderCounts::default(),
                })
            }
        };
        metadata.response_code = rcode;
        let response = MessageResponseBuilder::from_message_request(request).build(
            metadata,
            answers.iter(),
            authority.iter(),
            iter::empty(),
            iter::empty(),
        );
        match response_handle.send_response(response).await {
            Ok(info) => info,
            Err(_) => ResponseInfo::from(Header {
                metadata,
                counts: HeaderCounts::default(),
            }),
        }
    }
}
