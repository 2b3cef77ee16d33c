//! The validator's handling of DNS answers (CNAME following, TXT joining,
//! address extraction, response codes) never panics, whatever the name
//! server answers.
//!
//! The input is a script of DNS messages, each prefixed by its length (two
//! bytes, big-endian). A name server on a loopback UDP port answers the n-th
//! query it receives with the n-th message (the last one once the script is
//! used up), after giving it the query's id and question section, so the
//! resolver accepts it as the answer (a message that does not parse is sent
//! as it is, with the query's id). Then `dns01("x.test")` and
//! `resolve_addresses("x.test")` run through the real resolver against it.
//! Every query goes to 127.0.0.1: the zones are not authoritative (no
//! server discovery) and nothing is contacted at the resolved addresses.
//! With DNS_FUZZ_VERBOSE set, each run prints both outcomes (for triage).
#![no_main]

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use certeasy_va::{DnsProtocol, IpPolicy, ValidationProfile, Validator, ZoneConfig, ZoneServers};
use hickory_proto::op::{Message, MessageType, OpCode, ResponseCode};
use libfuzzer_sys::fuzz_target;
use tokio::net::UdpSocket;

/// The answers of one run, handed out in order.
#[derive(Default)]
struct Script {
    messages: Vec<Vec<u8>>,
    next: usize,
}

impl Script {
    fn next_reply(&mut self) -> Vec<u8> {
        let i = self.next.min(self.messages.len().saturating_sub(1));
        self.next += 1;
        self.messages.get(i).cloned().unwrap_or_default()
    }
}

struct Harness {
    rt: tokio::runtime::Runtime,
    server: SocketAddr,
    script: Arc<Mutex<Script>>,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let socket = rt
            .block_on(UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)))
            .expect("bind a loopback UDP port");
        let server = socket.local_addr().expect("local address");
        let script = Arc::new(Mutex::new(Script::default()));
        rt.spawn(serve(socket, Arc::clone(&script)));
        Harness { rt, server, script }
    })
}

async fn serve(socket: UdpSocket, script: Arc<Mutex<Script>>) {
    let mut buf = vec![0u8; 65535];
    loop {
        let Ok((n, peer)) = socket.recv_from(&mut buf).await else {
            continue;
        };
        let Ok(query) = Message::from_vec(&buf[..n]) else {
            continue;
        };
        let raw = script.lock().expect("script lock").next_reply();
        let _ = socket.send_to(&reply(&query, &raw), peer).await;
    }
}

/// `raw` made an answer to `query`.
fn reply(query: &Message, raw: &[u8]) -> Vec<u8> {
    let id = query.metadata.id;
    match Message::from_vec(raw) {
        Ok(mut m) => {
            m.metadata.id = id;
            m.metadata.message_type = MessageType::Response;
            m.queries = query.queries.clone();
            m.to_vec().unwrap_or_else(|_| servfail(query))
        }
        Err(_) if raw.len() >= 12 => {
            let mut bytes = raw.to_vec();
            bytes[..2].copy_from_slice(&id.to_be_bytes());
            bytes
        }
        Err(_) => servfail(query),
    }
}

fn servfail(query: &Message) -> Vec<u8> {
    let mut m = Message::error_msg(query.metadata.id, OpCode::Query, ResponseCode::ServFail);
    m.queries = query.queries.clone();
    m.to_vec().expect("a SERVFAIL encodes")
}

/// Splits the input into length-prefixed messages.
fn split(mut data: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    while let [hi, lo, rest @ ..] = data {
        let len = usize::from(u16::from_be_bytes([*hi, *lo])).min(rest.len());
        out.push(rest[..len].to_vec());
        data = &rest[len..];
    }
    out
}

fn profile(server: SocketAddr) -> ValidationProfile {
    let zone = |suffix: &str| ZoneConfig {
        suffixes: vec![suffix.into()],
        servers: ZoneServers::Explicit(vec![server]),
        protocol: DnsProtocol::Udp,
        authoritative: false,
        dnssec: false,
    };
    ValidationProfile {
        name: "fuzz".into(),
        timeout: Duration::from_secs(2),
        zones: vec![zone("test"), zone("example")],
        ip_policy: IpPolicy::new(&[], &["10.0.0.0/8".into(), "fd00::/8".into()]).expect("policy"),
        http01_port: 80,
        tls_alpn01_port: 443,
    }
}

fuzz_target!(|data: &[u8]| {
    let messages = split(data);
    if messages.is_empty() {
        return;
    }
    let h = harness();
    *h.script.lock().expect("script lock") = Script { messages, next: 0 };
    // A validator per run: no state carried from one input to the next.
    let va = Validator::new(profile(h.server)).expect("validator");
    let policy = va.profile().ip_policy.clone();
    let verbose = std::env::var_os("DNS_FUZZ_VERBOSE").is_some();
    h.rt.block_on(async {
        let dns01 = va.dns01("x.test", "expected-digest").await;
        let resolved = va.resolve_addresses("x.test").await;
        if verbose {
            eprintln!("dns01: {dns01:?}\nresolve_addresses: {resolved:?}");
        }
        if let Ok(record) = dns01 {
            assert_eq!(record.hostname, "x.test");
        }
        if let Ok(addresses) = resolved {
            assert!(!addresses.is_empty());
            for (i, ip) in addresses.iter().enumerate() {
                assert!(policy.permits(*ip), "{ip} is denied by the policy");
                assert!(!addresses[..i].contains(ip), "{ip} is listed twice");
            }
        }
    });
});
