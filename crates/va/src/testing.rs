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

use std::collections::{HashMap, HashSet};
use std::iter;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use hickory_proto::op::{Header, HeaderCounts, Metadata, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, CNAME, NS, SOA, TXT};
use hickory_proto::rr::{Name, RData, Record, RecordType};
use hickory_server::net::runtime::Time;
use hickory_server::net::xfer::Protocol;
use hickory_server::server::{Request, RequestHandler, ResponseHandler, ResponseInfo};
use hickory_server::zone_handler::MessageResponseBuilder;
use hickory_server::Server;
use tokio::net::{TcpListener, UdpSocket};

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
        let handler = Handler {
            zone: zone.clone(),
            state: Arc::clone(&state),
        };
        let mut server = Server::new(handler);
        server.register_socket(udp);
        server.register_listener(tcp, Duration::from_secs(10), 64);
        Ok(Self {
            addr,
            zone,
            state,
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

    /// Removes every record of `name` (and a SERVFAIL mark).
    pub fn remove(&self, name: &str) {
        let key = normalise(name);
        let mut st = lock(&self.state);
        st.records.remove(&key);
        st.servfail.remove(&key);
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
}

impl Handler {
    /// (response code, answers, authority) for one question.
    fn answer(
        &self,
        qname: &str,
        qtype: RecordType,
        protocol: Protocol,
    ) -> (ResponseCode, Vec<Record>, Vec<Record>) {
        let mut st = lock(&self.state);
        match protocol {
            Protocol::Tcp => st.tcp_queries += 1,
            _ => st.udp_queries += 1,
        }
        if !in_suffix(qname, &self.zone) {
            return (ResponseCode::Refused, Vec::new(), Vec::new());
        }
        if st.servfail.contains(qname) {
            return (ResponseCode::ServFail, Vec::new(), Vec::new());
        }
        let soa: Vec<Record> = st
            .records
            .get(&self.zone)
            .into_iter()
            .flatten()
            .filter(|r| r.record_type() == RecordType::SOA)
            .cloned()
            .collect();

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
        let (rcode, answers, authority) = match request.request_info() {
            Ok(info) => self.answer(
                &normalise(&info.query.name().to_string()),
                info.query.query_type(),
                request.protocol(),
            ),
            Err(_) => (ResponseCode::FormErr, Vec::new(), Vec::new()),
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
