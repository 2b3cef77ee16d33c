//! One DNS client: a set of servers asked one question at a time.
//!
//! The client sits *below* hickory's caching resolver, on its name-server
//! pool (with retries and, for DNSSEC zones, hickory's validating handle):
//! a query gives exactly the server's response, with no cache and no CNAME
//! chasing of hickory's own. CNAMEs are followed by the caller, which knows
//! the zones of the profile (hickory would ask the same servers for a target
//! in another zone, or outside the profile).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hickory_proto::op::{DnsRequestOptions, DnsResponse, Query, ResponseCode};
use hickory_proto::rr::{Name, Record, RecordType};
use hickory_resolver::config::{ConnectionConfig, NameServerConfig, ResolverOpts};
use hickory_resolver::net::dnssec::DnssecDnsHandle;
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::net::xfer::{DnsHandle, FirstAnswer, RetryDnsHandle};
use hickory_resolver::net::{DnsError, NetError};
use hickory_resolver::{NameServerPool, PoolContext, TlsConfig};

use crate::error::ValidationFailure;
use crate::profile::DnsProtocol;

/// Outcome of one query that reached a server.
#[derive(Debug)]
pub(crate) enum Answer {
    /// The answer section: records of the queried type, CNAMEs leading to
    /// them, or both.
    Records(Vec<Record>),
    /// NOERROR, but nothing of that type at that name.
    NoData,
    /// The name does not exist.
    NxDomain,
}

type Pool = RetryDnsHandle<NameServerPool<TokioRuntimeProvider>>;

#[derive(Clone)]
enum Handle {
    Plain(Pool),
    Secure(DnssecDnsHandle<Pool>),
}

/// Queries a fixed set of servers (see the module docs).
#[derive(Clone)]
pub(crate) struct Client {
    handle: Handle,
    request: DnsRequestOptions,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("recursion_desired", &self.request.recursion_desired)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client for `servers`; each query waits at most `timeout` per
    /// attempt. `recursion_desired` is off for authoritative servers.
    pub(crate) fn new(
        servers: &[SocketAddr],
        protocol: DnsProtocol,
        timeout: Duration,
        dnssec: bool,
        recursion_desired: bool,
    ) -> Result<Self, NetError> {
        let options = resolver_options(timeout, dnssec, recursion_desired);
        let mut request = DnsRequestOptions::default();
        request.recursion_desired = options.recursion_desired;
        request.use_edns = options.edns0;
        request.edns_payload_len = options.edns_payload_len;
        request.case_randomization = options.case_randomization;
        request.edns_set_dnssec_ok = dnssec;
        let attempts = options.attempts;
        let context = Arc::new(PoolContext::new(options, TlsConfig::new()?));
        let pool = NameServerPool::from_config(
            name_servers(servers, protocol),
            context,
            TokioRuntimeProvider::default(),
        );
        let retrying = RetryDnsHandle::new(pool, attempts);
        let handle = if dnssec {
            Handle::Secure(DnssecDnsHandle::new(retrying))
        } else {
            Handle::Plain(retrying)
        };
        Ok(Self { handle, request })
    }

    /// The response to one question, error response codes and empty
    /// answers turned into errors as hickory's resolver does.
    pub(crate) async fn raw(&self, name: Name, rtype: RecordType) -> Result<DnsResponse, NetError> {
        let query = Query::query(name, rtype);
        let response = match &self.handle {
            Handle::Plain(h) => h.lookup(query, self.request).first_answer().await,
            Handle::Secure(h) => h.lookup(query, self.request).first_answer().await,
        }?;
        DnsError::from_response(response).map_err(NetError::from)
    }

    /// One query for `name` (normalised) and `rtype`.
    pub(crate) async fn query(
        &self,
        name: &str,
        rtype: RecordType,
    ) -> Result<Answer, ValidationFailure> {
        match self.raw(fqdn(name)?, rtype).await {
            Ok(response) => Ok(Answer::Records(response.into_message().answers)),
            Err(e) => classify_error(&e, name, rtype),
        }
    }
}

fn name_servers(servers: &[SocketAddr], protocol: DnsProtocol) -> Vec<NameServerConfig> {
    servers
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
        .collect()
}

fn with_port(mut connection: ConnectionConfig, port: u16) -> ConnectionConfig {
    connection.port = port;
    connection
}

/// The pool's options: the per-attempt timeout, two attempts, and the
/// recursion-desired bit; no hosts file (the pool never reads it anyway).
pub(crate) fn resolver_options(
    timeout: Duration,
    dnssec: bool,
    recursion_desired: bool,
) -> ResolverOpts {
    let mut o = ResolverOpts::default();
    o.timeout = timeout;
    o.attempts = 2;
    o.ndots = 0;
    o.cache_size = 0;
    o.use_hosts_file = hickory_resolver::config::ResolveHosts::Never;
    o.recursion_desired = recursion_desired;
    o.validate = dnssec;
    o
}

/// `name` (normalised) as a fully qualified hickory name.
pub(crate) fn fqdn(name: &str) -> Result<Name, ValidationFailure> {
    let mut n = Name::from_ascii(name).map_err(|e| {
        ValidationFailure::internal(format!("{name:?} is not a valid DNS name: {e}"))
    })?;
    n.set_fqdn(true);
    Ok(n)
}

/// A record's owner name, normalised.
pub(crate) fn owner(record: &Record) -> String {
    crate::profile::normalise(&record.name.to_ascii())
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

/// A short text for `e`: the response code's mnemonic where there is one.
pub(crate) fn net_error_text(e: &NetError) -> String {
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

/// The name servers of the host's configuration (`/etc/resolv.conf`).
pub(crate) fn system_servers() -> Result<Vec<SocketAddr>, String> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fqdn_is_absolute() {
        let n = fqdn("www.example.test").expect("valid");
        assert!(n.is_fqdn());
        assert_eq!(n.to_ascii(), "www.example.test.");
    }

    #[test]
    fn options_set_timeout_and_recursion() {
        let o = resolver_options(Duration::from_secs(3), false, true);
        assert_eq!(o.timeout, Duration::from_secs(3));
        assert!(o.recursion_desired);
        assert!(!resolver_options(Duration::from_secs(3), false, false).recursion_desired);
        assert!(resolver_options(Duration::from_secs(3), true, false).validate);
    }

    #[test]
    fn rcode_names() {
        assert_eq!(rcode_mnemonic(ResponseCode::ServFail), "SERVFAIL");
        assert_eq!(rcode_mnemonic(ResponseCode::Refused), "REFUSED");
    }
}
