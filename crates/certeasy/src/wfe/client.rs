//! Who is asking: the client's address (with the trusted-proxy rule), the
//! `global` per-IP rate limit, and the origin every audit event of the
//! request carries — one layer in front of every route.
//!
//! The address is the TCP peer's, unless the peer is one of
//! `server.trusted-proxies` and the request carries
//! `server.remote-ip-header`: then the header's last address that is not
//! itself a trusted proxy (a proxy appends the address it received from,
//! so entries to the left of an untrusted one could be forged by the
//! client). From any other peer the header is ignored, so a client cannot
//! choose the address its limits are counted against.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap};
use axum::middleware::Next;
use axum::response::Response;

use super::Wfe;
use crate::audit::{with_origin, Origin};

/// The client's address as the front end determined it, for the handlers
/// (a request extension).
#[derive(Debug, Clone, Copy)]
pub struct ClientIp(pub Option<IpAddr>);

/// Longest `User-Agent` kept in audit events.
const MAX_USER_AGENT: usize = 256;

/// The client address of a request from `peer` with `headers`, given
/// `server.remote-ip-header` and `server.trusted-proxies`.
pub fn client_ip(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    remote_ip_header: Option<&str>,
    trusted_proxies: &[ipnet::IpNet],
) -> Option<IpAddr> {
    let peer = peer?;
    let trusted = |ip: &IpAddr| trusted_proxies.iter().any(|n| n.contains(ip));
    let Some(name) = remote_ip_header else {
        return Some(peer);
    };
    if !trusted(&peer) {
        return Some(peer);
    }
    let forwarded = name.eq_ignore_ascii_case("forwarded");
    let mut chain: Vec<IpAddr> = Vec::new();
    for value in headers.get_all(name) {
        let Ok(text) = value.to_str() else {
            return Some(peer);
        };
        for entry in text.split(',') {
            match parse_entry(entry, forwarded) {
                Some(ip) => chain.push(ip),
                // One unreadable entry makes the whole header untrustworthy.
                None => return Some(peer),
            }
        }
    }
    if chain.is_empty() {
        return Some(peer);
    }
    chain
        .iter()
        .rev()
        .find(|ip| !trusted(ip))
        .or(chain.first())
        .copied()
}

/// One entry of `X-Forwarded-For` (`192.0.2.1`, `[2001:db8::1]:443`) or of
/// RFC 7239 `Forwarded` (`for=192.0.2.1;proto=https`, `for="[2001:db8::1]"`).
fn parse_entry(entry: &str, forwarded: bool) -> Option<IpAddr> {
    let mut v = entry.trim();
    if forwarded {
        v = v
            .split(';')
            .find_map(|p| {
                let (k, val) = p.trim().split_once('=')?;
                k.eq_ignore_ascii_case("for").then_some(val.trim())
            })?
            .trim_matches('"');
    }
    if let Ok(ip) = v.parse::<IpAddr>() {
        return Some(ip);
    }
    if let Ok(sa) = v.parse::<SocketAddr>() {
        return Some(sa.ip());
    }
    v.strip_prefix('[')
        .and_then(|r| r.split_once(']'))
        .and_then(|(ip, _)| ip.parse().ok())
}

/// The layer in front of every route: the client's address, the `global`
/// limit (health endpoints exempt: a load balancer's probes must not be
/// refused), and the audit origin around the handler.
pub async fn front(State(s): State<Arc<Wfe>>, mut req: Request, next: Next) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let cfg = &s.ra.config.server;
    let ip = client_ip(
        peer,
        req.headers(),
        cfg.remote_ip_header.as_deref(),
        &cfg.trusted_proxies,
    );
    let user_agent = req
        .headers()
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(|ua| ua.chars().take(MAX_USER_AGENT).collect());
    let origin = Origin { ip, user_agent };
    let probe = matches!(req.uri().path(), "/healthz" | "/readyz");
    if let (Some(addr), false) = (ip, probe) {
        if let Err(d) = s.ra.limits.request(addr) {
            let err = with_origin(origin, s.ra.deny(None, d)).await;
            let base = super::base_url(&s, req.uri(), req.headers());
            let resp = super::problem_response(err, &crate::telemetry::request_id());
            return super::decorate(&s, &base, resp).await;
        }
    }
    req.extensions_mut().insert(ClientIp(ip));
    with_origin(origin, next.run(req)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Cfg(Option<&'static str>, Vec<ipnet::IpNet>);

    fn cfg(header: Option<&'static str>, trusted: &[&str]) -> Cfg {
        Cfg(header, trusted.iter().map(|t| t.parse().unwrap()).collect())
    }

    fn client_ip(peer: Option<IpAddr>, h: &HeaderMap, c: &Cfg) -> Option<IpAddr> {
        super::client_ip(peer, h, c.0, &c.1)
    }

    fn headers(name: &str, v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
            v.parse().unwrap(),
        );
        h
    }

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_proxy() {
        let c = cfg(Some("X-Forwarded-For"), &["10.0.0.0/8"]);
        let h = headers("x-forwarded-for", "198.51.100.7");
        assert_eq!(client_ip(ip("10.1.2.3"), &h, &c), ip("198.51.100.7"));
        // An untrusted peer's header is ignored: it cannot pick its address.
        assert_eq!(client_ip(ip("203.0.113.9"), &h, &c), ip("203.0.113.9"));
        // Without the header, the peer.
        assert_eq!(
            client_ip(ip("10.1.2.3"), &HeaderMap::new(), &c),
            ip("10.1.2.3")
        );
        // Without a configured header, never.
        let none = cfg(None, &["10.0.0.0/8"]);
        assert_eq!(client_ip(ip("10.1.2.3"), &h, &none), ip("10.1.2.3"));
    }

    #[test]
    fn the_last_untrusted_entry_is_the_client() {
        let c = cfg(Some("X-Forwarded-For"), &["10.0.0.0/8"]);
        // The client forged the first entry; the proxy appended the real one.
        let h = headers("x-forwarded-for", "1.2.3.4, 198.51.100.7, 10.9.9.9");
        assert_eq!(client_ip(ip("10.1.2.3"), &h, &c), ip("198.51.100.7"));
        let h = headers("x-forwarded-for", "10.2.2.2, 10.3.3.3");
        assert_eq!(client_ip(ip("10.1.2.3"), &h, &c), ip("10.2.2.2"));
        let h = headers("x-forwarded-for", "[2001:db8::5]:4711, 198.51.100.7:80");
        assert_eq!(client_ip(ip("10.1.2.3"), &h, &c), ip("198.51.100.7"));
        let h = headers("x-forwarded-for", "garbage, 198.51.100.7");
        assert_eq!(client_ip(ip("10.1.2.3"), &h, &c), ip("10.1.2.3"));
    }

    #[test]
    fn rfc7239_forwarded_is_understood() {
        let c = cfg(Some("Forwarded"), &["10.0.0.0/8"]);
        let h = headers(
            "forwarded",
            "for=\"[2001:db8::1]:443\";proto=https, for=198.51.100.7",
        );
        assert_eq!(client_ip(ip("10.1.2.3"), &h, &c), ip("198.51.100.7"));
        let h = headers("forwarded", "for=192.0.2.60;proto=http;by=203.0.113.43");
        assert_eq!(client_ip(ip("10.1.2.3"), &h, &c), ip("192.0.2.60"));
    }
}
