//! `server`: every limit the listener enforces is written here, so that an
//! operator can size it against the host and read it back in one place.
//!
//! Public base URLs (https only), the listen address, the per-connection
//! deadlines, the connection caps (the default derived from the open-file
//! limit) and the proxies whose client-IP header is believed.

use std::net::SocketAddr;
use std::num::{NonZeroU32, NonZeroU64};
use std::time::Duration;

use serde::Deserialize;

use super::checker::Checker;
use super::duration::{secs, ConfDuration};

/// `server` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct Server {
    /// Public base URLs (https).
    url: Vec<String>,
    /// Listen address.
    #[serde(default = "default_listen")]
    listen: String,
    /// Time allowed for the TLS handshake and the first request head, and
    /// for a later request head from its first byte.
    #[serde(default = "secs::<5>")]
    read_header_timeout: ConfDuration,
    /// Time allowed to receive a request's body, from the end of its head.
    #[serde(default = "secs::<10>")]
    read_timeout: ConfDuration,
    /// Time allowed to send a response, from its head to its last byte.
    #[serde(default = "secs::<30>")]
    write_timeout: ConfDuration,
    /// A connection with no request in flight and none started for this long
    /// is closed (HTTP/1.1 keep-alive and HTTP/2 alike).
    #[serde(default = "secs::<60>")]
    idle_timeout: ConfDuration,
    /// Most connections open at once (default: derived from the open-file
    /// limit, see `ServerSettings::max_connections`).
    #[serde(default)]
    max_connections: Option<NonZeroU32>,
    /// Most connections open at once from one peer IP address.
    #[serde(default = "default_max_per_ip")]
    max_connections_per_ip: NonZeroU32,
    /// Maximum request body size.
    #[serde(default = "default_max_body")]
    max_body_bytes: NonZeroU64,
    /// Graceful shutdown budget for in-flight requests (the workers check
    /// it against their drain timeout).
    #[serde(default = "secs::<30>")]
    pub(super) shutdown_timeout: ConfDuration,
    /// Header carrying the client IP when behind a trusted proxy.
    #[serde(default)]
    remote_ip_header: Option<String>,
    /// CIDRs of proxies whose `remote-ip-header` is honoured.
    #[serde(default)]
    trusted_proxies: Vec<String>,
    /// Directory `meta` shown to clients.
    #[serde(default)]
    meta: super::meta::MetaSection,
}

fn default_listen() -> String {
    "0.0.0.0:8443".into()
}
fn default_max_body() -> NonZeroU64 {
    NonZeroU64::new(1024 * 1024).unwrap_or(NonZeroU64::MIN)
}
fn default_max_per_ip() -> NonZeroU32 {
    NonZeroU32::new(256).unwrap_or(NonZeroU32::MIN)
}

/// `server` after validation.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Public base URLs, without trailing slash.
    pub urls: Vec<url::Url>,
    /// Listen address.
    pub listen: SocketAddr,
    /// TLS handshake and first request head, counted from accept; a later
    /// request head, counted from its first byte.
    pub read_header_timeout: Duration,
    /// Receiving one request's body, counted from the end of its head.
    pub read_timeout: Duration,
    /// Sending one response, counted from its head to its last byte.
    pub write_timeout: Duration,
    /// No request in flight and none started for this long: the connection
    /// is closed (HTTP/1.1 keep-alive and HTTP/2).
    pub idle_timeout: Duration,
    /// Most connections open at once; the default is
    /// [`default_max_connections`] of the open-file limit.
    pub max_connections: usize,
    /// Whether `max_connections` is the default (not configured).
    pub max_connections_is_default: bool,
    /// Most connections open at once from one peer IP address (the TCP
    /// peer; peers in `trusted_proxies` are exempt).
    pub max_connections_per_ip: usize,
    /// Largest accepted body.
    pub max_body_bytes: usize,
    /// Shutdown budget for in-flight requests.
    pub shutdown_timeout: Duration,
    /// Client-IP header honoured from trusted proxies.
    pub remote_ip_header: Option<String>,
    /// Trusted proxies.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// Directory `meta` (`server.meta`).
    pub meta: super::DirectoryMetaSettings,
}

/// Ceiling of the default `server.max-connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;

/// The default `server.max-connections` for a process whose soft open-file
/// limit is `open_files` (None: no such limit, as on Windows).
///
/// 10,000, lowered when the limit is smaller so that accept() does not run
/// out of descriptors before the cap applies: a quarter of the limit (at
/// least 32, at most 256) stays free for everything else — the database,
/// outbound validations, CA connections, logs. A soft limit of 1,024 gives
/// 768 connections; 256 gives 192; 10,256 and more give 10,000.
pub fn default_max_connections(open_files: Option<u64>) -> usize {
    let Some(limit) = open_files else {
        return DEFAULT_MAX_CONNECTIONS;
    };
    let reserve = (limit / 4).clamp(32, 256);
    let usable = limit.saturating_sub(reserve).max(1);
    usize::try_from(usable)
        .unwrap_or(usize::MAX)
        .min(DEFAULT_MAX_CONNECTIONS)
}

/// This process's soft limit on open files (`RLIMIT_NOFILE`); None where
/// there is none or it is unlimited.
pub fn open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        rustix::process::getrlimit(rustix::process::Resource::Nofile).current
    }
    #[cfg(not(unix))]
    {
        None
    }
}

impl Checker<'_> {
    /// Checks `server`; None when the listen address is unusable.
    pub(super) fn check_server(&mut self, s: &Server) -> Option<ServerSettings> {
        let mut urls = Vec::new();
        if s.url.is_empty() {
            self.issue(
                "server.url",
                "list at least one public base URL, e.g. https://acme.example.com",
            );
        }
        for (i, raw) in s.url.iter().enumerate() {
            let key = format!("server.url[{i}]");
            match url::Url::parse(raw) {
                Ok(u) if u.scheme() != "https" => {
                    self.issue(key, format!("{raw:?} must use https (ACME requires HTTPS)"))
                }
                Ok(u) if u.host_str().is_none() => self.issue(key, format!("{raw:?} has no host")),
                Ok(u) if u.query().is_some() || u.fragment().is_some() => {
                    self.issue(key, format!("{raw:?} must not have a query or fragment"))
                }
                Ok(mut u) => {
                    let trimmed = u.path().trim_end_matches('/').to_string();
                    u.set_path(&trimmed);
                    urls.push(u)
                }
                Err(e) => self.issue(key, format!("{raw:?} is not a URL: {e}")),
            }
        }
        let listen = match s.listen.parse::<SocketAddr>() {
            Ok(a) => Some(a),
            Err(_) => {
                self.issue(
                    "server.listen",
                    format!(
                        "{:?} is not an address:port, e.g. 0.0.0.0:8443 or [::]:443",
                        s.listen
                    ),
                );
                None
            }
        };
        let mut trusted = Vec::new();
        for (i, raw) in s.trusted_proxies.iter().enumerate() {
            match parse_cidr(raw) {
                Some(n) => trusted.push(n),
                None => self.issue(
                    format!("server.trusted-proxies[{i}]"),
                    format!("{raw:?} is not an IP address or CIDR"),
                ),
            }
        }
        if s.remote_ip_header.is_some() && trusted.is_empty() {
            self.issue(
                "server.remote-ip-header",
                "is honoured only from trusted proxies; add server.trusted-proxies",
            );
        }
        let max_body = usize::try_from(s.max_body_bytes.get()).unwrap_or(usize::MAX);
        let meta = self.check_meta(&s.meta);
        Some(ServerSettings {
            urls,
            listen: listen?,
            read_header_timeout: s.read_header_timeout.get(),
            read_timeout: s.read_timeout.get(),
            write_timeout: s.write_timeout.get(),
            idle_timeout: s.idle_timeout.get(),
            max_connections: s.max_connections.map_or_else(
                || default_max_connections(open_file_limit()),
                |n| usize::try_from(n.get()).unwrap_or(usize::MAX),
            ),
            max_connections_is_default: s.max_connections.is_none(),
            max_connections_per_ip: usize::try_from(s.max_connections_per_ip.get())
                .unwrap_or(usize::MAX),
            max_body_bytes: max_body,
            shutdown_timeout: s.shutdown_timeout.get(),
            remote_ip_header: s.remote_ip_header.clone(),
            trusted_proxies: trusted,
            meta,
        })
    }
}

pub(super) fn parse_cidr(raw: &str) -> Option<ipnet::IpNet> {
    raw.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| raw.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
}
