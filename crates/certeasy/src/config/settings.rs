//! The validated configuration and the checks that produce it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use certeasy_adcs::{AdcsTarget, CertreqTarget, LdapTarget};
use certeasy_va::{
    DnsProtocol as VaProtocol, IpPolicy, ValidationProfile, ZoneConfig, ZoneServers,
};
use pki::{CsrPolicy, KeyPolicy, Scope};

use super::locate::LineIndex;
use super::schema::{self, AuthorityType, DatabaseType, Strategy, TlsMode};
use super::{parse_nested, ConfigIssue};

/// A configuration that passed every check.
#[derive(Debug, Clone)]
pub struct Config {
    /// Runtime directory.
    pub workdir: PathBuf,
    /// Listener settings.
    pub server: ServerSettings,
    /// Listener certificate bundles.
    pub tls_bundles: Vec<TlsBundle>,
    /// Validation profiles by name.
    pub profiles: BTreeMap<String, ValidationProfile>,
    /// Authorities, in configuration order.
    pub authorities: Vec<AuthoritySettings>,
    /// Issuance policies, in configuration order.
    pub policies: Vec<PolicySettings>,
    /// Policy → authorities, one per policy.
    pub bindings: BTreeMap<String, Binding>,
    /// SQLite database file.
    pub database_path: PathBuf,
    /// Job engine settings.
    pub workers: schema::Workers,
    /// Abuse limits.
    pub rate_limiting: schema::RateLimiting,
    /// Logging settings.
    pub logs: schema::Logs,
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

/// One listener certificate bundle.
#[derive(Debug, Clone)]
pub struct TlsBundle {
    /// Bundle name.
    pub name: String,
    /// Hosts it serves (empty = every host, only with one bundle).
    pub hosts: Vec<String>,
    /// Where the certificate comes from.
    pub source: TlsSource,
}

/// Source of a listener certificate.
#[derive(Debug, Clone)]
pub enum TlsSource {
    /// PEM files, reloaded when they change.
    Files {
        /// Certificate chain.
        cert: PathBuf,
        /// Private key.
        key: PathBuf,
        /// Poll interval.
        watch_interval: Duration,
    },
    /// Issued by an authority of this server.
    Pki {
        /// Authority name.
        authority: String,
        /// Cache directory.
        cache_dir: PathBuf,
        /// Renew this long before expiry.
        renew_before: Duration,
        /// Startup budget.
        acquire_timeout: Duration,
        /// Key type.
        key: ListenerKey,
    },
}

/// Key of a `pki`-mode listener certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenerKey {
    /// ECDSA P-256.
    EcdsaP256,
    /// ECDSA P-384.
    EcdsaP384,
    /// RSA with this many bits.
    Rsa(u32),
}

/// One authority after validation.
#[derive(Debug, Clone)]
pub struct AuthoritySettings {
    /// Name.
    pub name: String,
    /// Longest lifetime accepted from this authority.
    pub max_validity: Duration,
    /// Health probe interval.
    pub health_check_interval: Duration,
    /// Backend.
    pub kind: AuthorityKind,
}

/// Authority backends.
#[derive(Debug, Clone)]
pub enum AuthorityKind {
    /// Built-in CA.
    Fake(FakeSettings),
    /// Microsoft ADCS over the native RPC bridge.
    Adcs(Box<AdcsTarget>),
    /// Microsoft ADCS through `certreq.exe` (fallback; spawns processes).
    AdcsCli(Box<CertreqTarget>),
}

impl AuthorityKind {
    /// The `type` of this kind in the configuration.
    pub fn type_name(&self) -> &'static str {
        match self {
            AuthorityKind::Fake(_) => "fake",
            AuthorityKind::Adcs(_) => "adcs",
            AuthorityKind::AdcsCli(_) => "adcs-cli",
        }
    }

    /// Whether an authority of this kind can issue a certificate for a
    /// public key of type `key` (one the CSR model accepted). The built-in
    /// CA signs every such key; Microsoft ADCS cannot issue for Ed25519
    /// keys (its policy module denies the request), so finalize refuses
    /// them up front with `badPublicKey` when no authority of the policy
    /// can.
    pub fn issues_for(&self, key: pki::PublicKeyKind) -> bool {
        match self {
            AuthorityKind::Fake(_) => true,
            AuthorityKind::Adcs(_) | AuthorityKind::AdcsCli(_) => {
                !matches!(key, pki::PublicKeyKind::Ed25519)
            }
        }
    }
}

/// Built-in CA settings.
#[derive(Clone)]
pub struct FakeSettings {
    /// CA common name.
    pub common_name: String,
    /// CA key.
    pub key_type: pki::CaKeyType,
    /// Lifetime of issued certificates.
    pub validity: Duration,
    /// Issue from an intermediate.
    pub intermediate: bool,
    /// Key-encryption password.
    pub password: Vec<u8>,
    /// Test-only fault injection.
    pub simulate_failure: Option<schema::SimulatedFailure>,
}

impl std::fmt::Debug for FakeSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeSettings")
            .field("common_name", &self.common_name)
            .field("key_type", &self.key_type)
            .field("validity", &self.validity)
            .field("intermediate", &self.intermediate)
            .field("password", &"<redacted>")
            .field("simulate_failure", &self.simulate_failure)
            .finish()
    }
}

/// One issuance policy after validation.
#[derive(Debug, Clone)]
pub struct PolicySettings {
    /// Name.
    pub name: String,
    /// Validation profile name.
    pub profile: String,
    /// Name scope.
    pub scope: Scope,
    /// CSR and key requirements.
    pub csr: CsrPolicy,
}

/// A policy's authorities and strategy.
#[derive(Debug, Clone)]
pub struct Binding {
    /// Authority names in order.
    pub authorities: Vec<String>,
    /// Strategy.
    pub strategy: Strategy,
}

impl Config {
    /// The `ca/` directory of the built-in CA named `authority`.
    pub fn ca_dir(&self, authority: &str) -> PathBuf {
        self.workdir.join("ca").join(authority)
    }

    /// Looks up an authority by name.
    pub fn authority(&self, name: &str) -> Option<&AuthoritySettings> {
        self.authorities.iter().find(|a| a.name == name)
    }
}

/// Runs the semantic checks, collecting every issue.
pub(super) struct Checker<'a> {
    index: &'a LineIndex,
    config_dir: PathBuf,
    workdir: PathBuf,
    /// Problems found so far.
    pub issues: Vec<ConfigIssue>,
}

impl<'a> Checker<'a> {
    pub fn new(index: &'a LineIndex, config_dir: PathBuf) -> Self {
        Checker {
            index,
            config_dir,
            workdir: PathBuf::new(),
            issues: Vec::new(),
        }
    }

    fn issue(&mut self, path: impl Into<String>, message: impl Into<String>) {
        let path = path.into();
        let line = self.index.line_of(&path);
        self.issues.push(ConfigIssue {
            path,
            line,
            message: message.into(),
        });
    }

    fn nonzero_duration(&mut self, path: &str, d: Duration) -> Duration {
        if d.is_zero() {
            self.issue(
                path,
                "an explicit zero is not allowed; omit the key to get the default",
            );
        }
        d
    }

    /// Reads a PEM file of certificates named by `key` (one or more
    /// CERTIFICATE blocks). Records an issue, ending in `hint`, and returns
    /// None when the file cannot be read, parsed, or holds none.
    fn pem_certs_file(
        &mut self,
        key: &str,
        raw: &str,
        hint: &str,
    ) -> Option<(PathBuf, Vec<Vec<u8>>)> {
        let path = self.work_path(key, raw);
        let problem = match std::fs::read_to_string(&path) {
            Err(e) => format!("cannot read {}: {e}", path.display()),
            Ok(text) => match pki::pem_to_der_certs(&text) {
                Ok(certs) if !certs.is_empty() => return Some((path, certs)),
                Ok(_) => format!("{} holds no CERTIFICATE block{hint}", path.display()),
                Err(e) => format!("{}: {e}{hint}", path.display()),
            },
        };
        self.issue(key, problem);
        None
    }

    /// Resolves a path that must be absolute or start with `%WORKDIR%`.
    fn work_path(&mut self, key: &str, raw: &str) -> PathBuf {
        if let Some(rest) = raw.strip_prefix("%WORKDIR%") {
            return self.workdir.join(rest.trim_start_matches(['/', '\\']));
        }
        let p = PathBuf::from(raw);
        if !p.is_absolute() {
            self.issue(
                key,
                format!(
                    "path {raw:?} is relative; write an absolute path or start it with %WORKDIR%"
                ),
            );
        }
        p
    }

    pub fn build(&mut self, doc: schema::Document) -> Option<Config> {
        self.workdir = self.workdir(&doc.workdir);
        let server = self.server(&doc.server);
        let profiles = self.profiles(&doc.dns_validation_profiles);
        let authorities = self.authorities(&doc.authorities);
        let tls_bundles = self.tls(&doc.tls_certificate_manager, server.as_ref(), &authorities);
        let policies = self.policies(&doc.issuance_policies, &profiles);
        let bindings = self.bindings(&doc.policy_bindings, &policies, &authorities);
        let database_path = self.database(&doc.database);
        self.workers(&doc.workers, doc.server.shutdown_timeout.get());
        Some(Config {
            workdir: self.workdir.clone(),
            server: server?,
            tls_bundles,
            profiles,
            authorities,
            policies,
            bindings,
            database_path,
            workers: doc.workers,
            rate_limiting: doc.rate_limiting,
            logs: doc.logs,
        })
    }

    fn workdir(&mut self, raw: &str) -> PathBuf {
        if let Some(rest) = raw.strip_prefix("%CONFIGDIR%") {
            return self.config_dir.join(rest.trim_start_matches(['/', '\\']));
        }
        let p = PathBuf::from(raw);
        if !p.is_absolute() {
            self.issue(
                "workdir",
                format!(
                    "path {raw:?} is relative; write an absolute path or start it with %CONFIGDIR%"
                ),
            );
        }
        p
    }

    fn server(&mut self, s: &schema::Server) -> Option<ServerSettings> {
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
        })
    }

    fn profiles(
        &mut self,
        list: &[schema::DnsValidationProfile],
    ) -> BTreeMap<String, ValidationProfile> {
        let mut out = BTreeMap::new();
        if list.is_empty() {
            self.issue(
                "dns-validation-profiles",
                "define at least one validation profile",
            );
        }
        for (i, p) in list.iter().enumerate() {
            let base = format!("dns-validation-profiles[{i}]");
            if out.contains_key(&p.name) {
                self.issue(
                    format!("{base}.name"),
                    format!("profile name {:?} is used twice", p.name),
                );
                continue;
            }
            let policy = match &p.resolved_ip_policy {
                None => {
                    self.issue(
                        format!("{base}.resolved-ip-policy"),
                        "is required: set allow-cidrs and/or deny-cidrs (an unset policy must never mean \"any address\")",
                    );
                    None
                }
                Some(pol) => match IpPolicy::new(&pol.allow_cidrs, &pol.deny_cidrs) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        self.issue(format!("{base}.resolved-ip-policy"), e.to_string());
                        None
                    }
                },
            };
            if p.zones.is_empty() {
                self.issue(
                    format!("{base}.zones"),
                    "define at least one zone (suffixes + system or dns-server)",
                );
            }
            let mut zones = Vec::new();
            for (j, z) in p.zones.iter().enumerate() {
                let zk = format!("{base}.zones[{j}]");
                if z.suffixes.is_empty() {
                    self.issue(format!("{zk}.suffixes"), "list at least one DNS suffix");
                }
                let servers = match (z.system, z.dns_server.is_empty()) {
                    (true, true) => ZoneServers::System,
                    (false, false) => {
                        let mut addrs = Vec::new();
                        for (k, s) in z.dns_server.iter().enumerate() {
                            match parse_dns_server(s) {
                                Some(a) => addrs.push(a),
                                None => self.issue(
                                    format!("{zk}.dns-server[{k}]"),
                                    format!("{s:?} is not ip or ip:port"),
                                ),
                            }
                        }
                        ZoneServers::Explicit(addrs)
                    }
                    (true, false) => {
                        self.issue(&zk, "set either system: true or dns-server, not both");
                        continue;
                    }
                    (false, true) => {
                        self.issue(&zk, "set system: true or list dns-server addresses");
                        continue;
                    }
                };
                let suffixes = z
                    .suffixes
                    .iter()
                    .map(|s| s.trim().trim_end_matches('.').to_ascii_lowercase())
                    .collect();
                let protocol = match z.protocol {
                    schema::DnsProtocol::Udp => VaProtocol::Udp,
                    schema::DnsProtocol::Tcp => VaProtocol::Tcp,
                };
                zones.push(ZoneConfig {
                    suffixes,
                    servers,
                    protocol,
                    authoritative: z.authoritative,
                    dnssec: z.dnssec,
                });
            }
            let Some(ip_policy) = policy else { continue };
            out.insert(
                p.name.clone(),
                ValidationProfile {
                    name: p.name.clone(),
                    timeout: p.timeout.get(),
                    zones,
                    ip_policy,
                    http01_port: p.http_01_port.unwrap_or(80),
                    tls_alpn01_port: p.tls_alpn_01_port.unwrap_or(443),
                },
            );
        }
        out
    }

    fn authorities(&mut self, list: &[schema::Authority]) -> Vec<AuthoritySettings> {
        let mut out: Vec<AuthoritySettings> = Vec::new();
        if list.is_empty() {
            self.issue(
                "authorities",
                "define at least one authority (type: fake for the built-in CA)",
            );
        }
        for (i, a) in list.iter().enumerate() {
            let base = format!("authorities[{i}]");
            if out.iter().any(|o| o.name == a.name) {
                self.issue(
                    format!("{base}.name"),
                    format!("authority name {:?} is used twice", a.name),
                );
                continue;
            }
            let settings = match a.kind {
                AuthorityType::Fake => self
                    .configuration(a, &base)
                    .and_then(|c| self.fake(&base, &a.name, c)),
                AuthorityType::Adcs => self
                    .configuration(a, &base)
                    .and_then(|c| self.adcs(&base, &a.name, c)),
                AuthorityType::AdcsCli => self
                    .configuration(a, &base)
                    .and_then(|c| self.adcs_cli(&base, &a.name, c)),
            };
            out.extend(settings);
        }
        out
    }

    /// Deserialises an authority's `configuration` into its type's schema,
    /// recording the issue (with key path and line) when it does not fit.
    fn configuration<T: serde::de::DeserializeOwned>(
        &mut self,
        a: &schema::Authority,
        base: &str,
    ) -> Option<T> {
        let value = a
            .configuration
            .clone()
            .unwrap_or(serde_norway::Value::Mapping(Default::default()));
        match parse_nested(value, self.index, &format!("{base}.configuration")) {
            Ok(c) => Some(c),
            Err(issue) => {
                self.issues.push(issue);
                None
            }
        }
    }

    /// Reads a secret from `file` (`key` names it in errors): refused when
    /// every user may read or change the file; trailing newlines dropped.
    fn secret_file(&mut self, key: &str, file: &str) -> Option<Vec<u8>> {
        let path = self.work_path(key, file);
        if let Err(e) = crate::fsutil::check_secret_file(&path) {
            self.issue(key, e);
            return None;
        }
        match std::fs::read(&path) {
            Ok(mut bytes) => {
                while bytes.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
                    bytes.pop();
                }
                Some(bytes)
            }
            Err(e) => {
                self.issue(key, format!("cannot read {}: {e}", path.display()));
                None
            }
        }
    }

    /// Reads a secret from the environment variable `var`.
    fn secret_env(&mut self, key: &str, var: &str) -> Option<String> {
        match std::env::var(var) {
            Ok(p) if !p.is_empty() => Some(p),
            _ => {
                self.issue(
                    key,
                    format!("environment variable {var} is not set or empty"),
                );
                None
            }
        }
    }

    fn fake(
        &mut self,
        base: &str,
        name: &str,
        cfg: schema::FakeAuthority,
    ) -> Option<AuthoritySettings> {
        let ck = format!("{base}.configuration");
        let password = match (&cfg.password, &cfg.password_file, &cfg.password_env) {
            (Some(p), None, None) => {
                tracing::warn!(target: "ca", authority = name, "the built-in CA's key password is written in the configuration: fine for trials; put it in password-file or password-env otherwise");
                Some(p.as_bytes().to_vec())
            }
            (None, Some(f), None) => self.secret_file(&format!("{ck}.password-file"), f),
            (None, None, Some(var)) => self
                .secret_env(&format!("{ck}.password-env"), var)
                .map(String::into_bytes),
            (None, None, None) => {
                self.issue(
                    &ck,
                    "set password-file, password-env or password: the built-in CA keys are stored encrypted",
                );
                None
            }
            _ => {
                self.issue(
                    &ck,
                    "set only one of password, password-file and password-env",
                );
                None
            }
        };
        if password.as_ref().is_some_and(|p| p.is_empty()) {
            self.issue(
                format!("{ck}.password"),
                "the CA key password must not be empty",
            );
        }
        let key_type = match (cfg.key_type, cfg.key_size) {
            (schema::CaKeyType::EcdsaP256, None) => pki::CaKeyType::EcdsaP256,
            (schema::CaKeyType::EcdsaP384, None) => pki::CaKeyType::EcdsaP384,
            (schema::CaKeyType::Rsa, size) => {
                let bits = size.unwrap_or(3072);
                if !(2048..=8192).contains(&bits) || bits % 8 != 0 {
                    self.issue(
                        format!("{ck}.key-size"),
                        format!("{bits} is not a usable RSA size; use 2048, 3072 or 4096"),
                    );
                }
                pki::CaKeyType::Rsa { bits }
            }
            (_, Some(_)) => {
                self.issue(
                    format!("{ck}.key-size"),
                    "key-size applies only to key-type: rsa",
                );
                pki::CaKeyType::EcdsaP256
            }
        };
        if cfg.simulate_failure.is_some() {
            tracing::warn!(target: "ca", authority = name, "simulate-failure is set: this authority fails every request (test-only setting)");
        }
        let validity = cfg.validity.get();
        let max_validity = cfg.max_validity.map(|d| d.get()).unwrap_or(validity);
        if validity > max_validity {
            self.issue(
                format!("{ck}.validity"),
                format!(
                    "validity {} exceeds max-validity {}",
                    cfg.validity,
                    super::duration::format_duration(max_validity)
                ),
            );
        }
        Some(AuthoritySettings {
            name: name.to_string(),
            max_validity,
            health_check_interval: cfg.health_check_interval.get(),
            kind: AuthorityKind::Fake(FakeSettings {
                common_name: cfg.common_name,
                key_type,
                validity,
                intermediate: cfg.intermediate,
                password: password?,
                simulate_failure: cfg.simulate_failure,
            }),
        })
    }

    fn adcs(
        &mut self,
        base: &str,
        name: &str,
        cfg: schema::AdcsAuthority,
    ) -> Option<AuthoritySettings> {
        let ck = format!("{base}.configuration");
        let mut ok = true;
        let (host_part, ca) = match cfg.ca_name.split_once('\\') {
            Some((h, c)) if !h.trim().is_empty() && !c.trim().is_empty() => {
                (h.trim().to_string(), c.trim().to_string())
            }
            _ => {
                self.issue(
                    format!("{ck}.ca-name"),
                    format!(
                        "{:?} must be HOST\\CA Common Name, as printed by certutil -config - -ping",
                        cfg.ca_name
                    ),
                );
                return None;
            }
        };
        let host = cfg.host.clone().unwrap_or(host_part);
        if cfg.transport == schema::AdcsTransport::Np {
            ok = false;
            self.issue(
                format!("{ck}.transport"),
                "np (named pipes over SMB) is not available in this build yet; use tcp",
            );
        }
        if cfg.port == Some(0) {
            ok = false;
            self.issue(
                format!("{ck}.port"),
                "an explicit zero is not allowed; omit the key to use the endpoint mapper",
            );
        }
        if cfg.endpoint_mapper_port == 0 {
            ok = false;
            self.issue(
                format!("{ck}.endpoint-mapper-port"),
                "an explicit zero is not allowed; omit the key for 135",
            );
        }
        let a = &cfg.auth;
        if a.password.is_some() {
            ok = false;
            self.issue(
                format!("{ck}.auth.password"),
                "a password is never written in the configuration; put it in a file readable only by certeasy (password-file) or in an environment variable (password-env)",
            );
        }
        if a.keytab.is_some() {
            ok = false;
            self.issue(
                format!("{ck}.auth.keytab"),
                "keytabs are not supported yet; use password-file or password-env",
            );
        }
        if a.method == schema::AdcsAuthMethod::Kerberos && a.kdc.is_none() {
            ok = false;
            self.issue(
                format!("{ck}.auth.kdc"),
                "method kerberos needs kdc, e.g. tcp://dc01.corp.example:88 (or use negotiate)",
            );
        }
        let password = match (&a.password_file, &a.password_env) {
            (Some(f), None) => {
                let key = format!("{ck}.auth.password-file");
                self.secret_file(&key, f)
                    .and_then(|bytes| match String::from_utf8(bytes) {
                        Ok(p) => Some(p),
                        Err(_) => {
                            self.issue(key, "the password file is not UTF-8 text");
                            None
                        }
                    })
            }
            (None, Some(var)) => self.secret_env(&format!("{ck}.auth.password-env"), var),
            (Some(_), Some(_)) => {
                self.issue(
                    format!("{ck}.auth"),
                    "set password-file or password-env, not both",
                );
                None
            }
            (None, None) => {
                if a.password.is_none() {
                    self.issue(
                        format!("{ck}.auth"),
                        "set password-file or password-env for the service account",
                    );
                }
                None
            }
        };
        let mut ca_chain = Vec::new();
        if let Some(f) = &cfg.ca_chain_file {
            match self.pem_certs_file(&format!("{ck}.ca-chain-file"), f, "") {
                Some((_, certs)) => ca_chain = certs,
                None => ok = false,
            }
        }
        let ldap = match &cfg.ldap {
            Some(l) => match self.adcs_ldap(&format!("{ck}.ldap"), l) {
                Some(v) => Some(v),
                None => {
                    ok = false;
                    None
                }
            },
            None => None,
        };
        if !ok {
            return None;
        }
        Some(AuthoritySettings {
            name: name.to_string(),
            // CA/Browser Forum ceiling unless the operator says otherwise.
            max_validity: cfg
                .max_validity
                .map(|d| d.get())
                .unwrap_or(Duration::from_secs(398 * 86400)),
            health_check_interval: cfg.health_check_interval.get(),
            kind: AuthorityKind::Adcs(Box::new(AdcsTarget {
                host,
                ca,
                ca_name: cfg.ca_name.clone(),
                template: cfg.certificate_template.clone(),
                method: match a.method {
                    schema::AdcsAuthMethod::Ntlm => certeasy_adcs::AuthMethod::Ntlm,
                    schema::AdcsAuthMethod::Kerberos => certeasy_adcs::AuthMethod::Kerberos,
                    schema::AdcsAuthMethod::Negotiate => certeasy_adcs::AuthMethod::Negotiate,
                },
                domain: a.domain.clone(),
                username: a.username.clone(),
                password: password?,
                kdc: a.kdc.clone(),
                spn: a.spn.clone(),
                port: cfg.port,
                endpoint_mapper_port: cfg.endpoint_mapper_port,
                auth_level: match cfg.auth_level {
                    schema::AdcsAuthLevel::Privacy => certeasy_adcs::AuthLevel::Privacy,
                    schema::AdcsAuthLevel::Integrity => certeasy_adcs::AuthLevel::Integrity,
                },
                default_timeout: cfg.default_timeout.get(),
                request_timeout: cfg.request_timeout.get(),
                ca_chain,
                disable_ca_revocation: cfg.disable_ca_revocation,
                ldap,
            })),
        })
    }

    /// Validates the `ldap` section of an `adcs` authority; `key` is its path.
    fn adcs_ldap(&mut self, key: &str, l: &schema::AdcsLdap) -> Option<LdapTarget> {
        let mut ok = true;
        match url::Url::parse(&l.url) {
            Ok(u) if u.host_str().is_none_or(str::is_empty) => {
                ok = false;
                self.issue(
                    format!("{key}.url"),
                    format!(
                        "{:?} has no host; write ldaps://dc01.corp.example:636",
                        l.url
                    ),
                );
            }
            Ok(u) if !matches!(u.path(), "" | "/") || u.query().is_some() => {
                ok = false;
                self.issue(
                    format!("{key}.url"),
                    format!(
                        "{:?} carries a DN or query; write only ldaps://host[:port] (the configuration DN goes in configuration-dn)",
                        l.url
                    ),
                );
            }
            Ok(u) if u.scheme() == "ldaps" && l.start_tls => {
                ok = false;
                self.issue(
                    format!("{key}.start-tls"),
                    "an ldaps:// URL is TLS from the first byte; start-tls applies only to ldap:// (remove it)",
                );
            }
            Ok(u) if u.scheme() == "ldap" && !l.start_tls => {
                ok = false;
                self.issue(
                    format!("{key}.url"),
                    format!(
                        "{:?} is plaintext LDAP: the simple bind would send the service account's password in clear; use ldaps://HOST:636 (domain controllers of a forest with an enterprise CA get an LDAPS certificate automatically) or add start-tls: true",
                        l.url
                    ),
                );
            }
            Ok(u) if u.scheme() != "ldap" && u.scheme() != "ldaps" => {
                ok = false;
                self.issue(
                    format!("{key}.url"),
                    format!(
                        "{:?} must start with ldaps:// (or ldap:// with start-tls: true)",
                        l.url
                    ),
                );
            }
            Ok(_) => {}
            Err(e) => {
                ok = false;
                self.issue(
                    format!("{key}.url"),
                    format!(
                        "{:?} is not a URL ({e}); write ldaps://dc01.corp.example:636",
                        l.url
                    ),
                );
            }
        }
        let mut ca_certs = Vec::new();
        let mut ca_file = None;
        if let Some(f) = &l.ca_file {
            match self.pem_certs_file(
                &format!("{key}.ca-file"),
                f,
                "; give the PEM of the CA that issued the domain controller's certificate",
            ) {
                Some((path, certs)) => {
                    ca_file = Some(path);
                    ca_certs = certs;
                }
                None => ok = false,
            }
        }
        if let Some(dn) = &l.configuration_dn {
            if !dn.contains('=') {
                ok = false;
                self.issue(
                    format!("{key}.configuration-dn"),
                    format!("{dn:?} is not a DN; write e.g. CN=Configuration,DC=corp,DC=example, or omit it to read it from the rootDSE"),
                );
            }
        }
        if l.bind_name.as_deref().is_some_and(|b| b.trim().is_empty()) {
            ok = false;
            self.issue(
                format!("{key}.bind-name"),
                "must not be empty (an empty name is an anonymous bind); omit it for username@domain",
            );
        }
        ok.then(|| LdapTarget {
            url: l.url.clone(),
            start_tls: l.start_tls,
            ca_certs,
            ca_file,
            configuration_dn: l.configuration_dn.clone(),
            bind_name: l.bind_name.clone(),
            timeout: l.timeout.get(),
        })
    }

    fn adcs_cli(
        &mut self,
        base: &str,
        name: &str,
        cfg: schema::AdcsCliAuthority,
    ) -> Option<AuthoritySettings> {
        let ck = format!("{base}.configuration");
        if !cfg.ca_name.contains('\\') {
            self.issue(
                format!("{ck}.ca-name"),
                format!(
                    "{:?} must be HOST\\CA Common Name, as given to certreq -config",
                    cfg.ca_name
                ),
            );
            return None;
        }
        let certreq_path = match &cfg.certreq_path {
            Some(p) => self.work_path(&format!("{ck}.certreq-path"), p),
            None if cfg!(windows) => PathBuf::from(r"C:\Windows\System32\certreq.exe"),
            None => {
                self.issue(format!("{ck}.certreq-path"), "is required off Windows (certreq.exe exists only there); prefer type: adcs, the native bridge, which needs no certreq");
                return None;
            }
        };
        let mut ca_chain = Vec::new();
        if let Some(f) = &cfg.ca_chain_file {
            ca_chain = self
                .pem_certs_file(&format!("{ck}.ca-chain-file"), f, "")?
                .1;
        }
        tracing::warn!(target: "ca", authority = name, "authority {name} is type adcs-cli: it starts certreq.exe and writes scratch files; prefer type: adcs");
        Some(AuthoritySettings {
            name: name.to_string(),
            max_validity: cfg
                .max_validity
                .map(|d| d.get())
                .unwrap_or(Duration::from_secs(398 * 86400)),
            health_check_interval: cfg.health_check_interval.get(),
            kind: AuthorityKind::AdcsCli(Box::new(CertreqTarget {
                ca_name: cfg.ca_name.clone(),
                template: cfg.certificate_template.clone(),
                certreq_path,
                default_timeout: cfg.default_timeout.get(),
                scratch_dir: self.workdir.join("adcs-cli"),
                ca_chain,
            })),
        })
    }

    fn tls(
        &mut self,
        m: &schema::TlsCertificateManager,
        server: Option<&ServerSettings>,
        authorities: &[AuthoritySettings],
    ) -> Vec<TlsBundle> {
        let mut out: Vec<TlsBundle> = Vec::new();
        if m.bundles.is_empty() {
            self.issue(
                "tls-certificate-manager.bundles",
                "define at least one certificate bundle",
            );
        }
        for (i, b) in m.bundles.iter().enumerate() {
            let base = format!("tls-certificate-manager.bundles[{i}]");
            if out.iter().any(|o| o.name == b.name) {
                self.issue(
                    format!("{base}.name"),
                    format!("bundle name {:?} is used twice", b.name),
                );
            }
            if b.hosts.is_empty() && m.bundles.len() > 1 {
                self.issue(
                    format!("{base}.hosts"),
                    "with several bundles, each must list the hosts it serves",
                );
            }
            let source = match b.mode {
                TlsMode::Files => {
                    let (Some(c), Some(k)) = (&b.local_cert_file, &b.local_key_file) else {
                        self.issue(&base, "mode files needs local-cert-file and local-key-file");
                        continue;
                    };
                    TlsSource::Files {
                        cert: self.work_path(&format!("{base}.local-cert-file"), c),
                        key: self.work_path(&format!("{base}.local-key-file"), k),
                        watch_interval: b.file_watch_interval.get(),
                    }
                }
                TlsMode::Pki => {
                    let Some(authority) = &b.authority else {
                        self.issue(&base, "mode pki needs authority: the name of the authority that issues the listener certificate");
                        continue;
                    };
                    if !authorities.iter().any(|a| &a.name == authority) {
                        self.issue(
                            format!("{base}.authority"),
                            format!("unknown authority {authority:?}"),
                        );
                    }
                    let cache_dir = match &b.local_pki_cache_dir {
                        Some(d) => self.work_path(&format!("{base}.local-pki-cache-dir"), d),
                        None => self.workdir.join("server-certificate-cache"),
                    };
                    let key = match &b.key {
                        None => ListenerKey::EcdsaP256,
                        Some(k) => match (k.kind, k.curve.as_deref(), k.size) {
                            (schema::TlsKeyType::Ecdsa, None | Some("P-256"), None) => {
                                ListenerKey::EcdsaP256
                            }
                            (schema::TlsKeyType::Ecdsa, Some("P-384"), None) => {
                                ListenerKey::EcdsaP384
                            }
                            (schema::TlsKeyType::Rsa, None, size) => {
                                ListenerKey::Rsa(size.unwrap_or(3072))
                            }
                            _ => {
                                self.issue(format!("{base}.key"), "use {type: ecdsa, curve: P-256|P-384} or {type: rsa, size: 2048|3072|4096}");
                                ListenerKey::EcdsaP256
                            }
                        },
                    };
                    TlsSource::Pki {
                        authority: authority.clone(),
                        cache_dir,
                        renew_before: b.renew_before.get(),
                        acquire_timeout: b.acquire_timeout.get(),
                        key,
                    }
                }
                TlsMode::Acme => {
                    self.issue(
                        format!("{base}.mode"),
                        "mode acme is not available in this build yet; use files or pki",
                    );
                    continue;
                }
            };
            let hosts = b
                .hosts
                .iter()
                .map(|h| h.trim_end_matches('.').to_ascii_lowercase())
                .collect();
            out.push(TlsBundle {
                name: b.name.clone(),
                hosts,
                source,
            });
        }
        if let Some(server) = server {
            for (i, u) in server.urls.iter().enumerate() {
                let host = u.host_str().unwrap_or_default().to_ascii_lowercase();
                let n = out
                    .iter()
                    .filter(|b| b.hosts.is_empty() || b.hosts.contains(&host))
                    .count();
                if n != 1 && !out.is_empty() {
                    self.issue(
                        format!("server.url[{i}]"),
                        format!("host {host:?} must be covered by exactly one tls-certificate-manager bundle (found {n})"),
                    );
                }
            }
        }
        out
    }

    fn policies(
        &mut self,
        list: &[schema::IssuancePolicy],
        profiles: &BTreeMap<String, ValidationProfile>,
    ) -> Vec<PolicySettings> {
        let mut out: Vec<PolicySettings> = Vec::new();
        if list.is_empty() {
            self.issue("issuance-policies", "define at least one issuance policy");
        }
        for (i, p) in list.iter().enumerate() {
            let base = format!("issuance-policies[{i}]");
            if out.iter().any(|o| o.name == p.name) {
                self.issue(
                    format!("{base}.name"),
                    format!("policy name {:?} is used twice", p.name),
                );
                continue;
            }
            let profile = match &p.dns_validation_profile {
                Some(name) if profiles.contains_key(name) => name.clone(),
                Some(name) => {
                    self.issue(
                        format!("{base}.dns-validation-profile"),
                        format!("unknown validation profile {name:?}"),
                    );
                    continue;
                }
                None if profiles.len() == 1 => profiles.keys().next().cloned().unwrap_or_default(),
                None => {
                    if profiles.len() > 1 {
                        self.issue(&base, "dns-validation-profile is required when several validation profiles exist");
                    }
                    continue;
                }
            };
            if p.dns.allow.is_empty() {
                self.issue(
                    format!("{base}.dns.allow"),
                    "list at least one rule, e.g. .example.com/3",
                );
            }
            let scope = match Scope::new(&p.dns.allow, &p.dns.deny) {
                Ok(s) => s,
                Err(e) => {
                    self.issue(format!("{base}.dns"), e.to_string());
                    continue;
                }
            };
            let csr = match self.csr_policy(&base, p) {
                Some(c) => c,
                None => continue,
            };
            out.push(PolicySettings {
                name: p.name.clone(),
                profile,
                scope,
                csr,
            });
        }
        out
    }

    fn csr_policy(&mut self, base: &str, p: &schema::IssuancePolicy) -> Option<CsrPolicy> {
        let mut ok = true;
        let mut algs = Vec::new();
        for (i, a) in p.signature.allowed_algorithms.iter().enumerate() {
            match a.parse::<pki::SignatureAlgorithm>() {
                Ok(v) => algs.push(v),
                Err(e) => {
                    ok = false;
                    self.issue(
                        format!("{base}.signature.allowed-algorithms[{i}]"),
                        e.to_string(),
                    );
                }
            }
        }
        let mut curves = Vec::new();
        for (i, c) in p.signature.allowed_ec_curves.iter().enumerate() {
            match c.parse::<pki::EcCurve>() {
                Ok(v) => curves.push(v),
                Err(e) => {
                    ok = false;
                    self.issue(
                        format!("{base}.signature.allowed-ec-curves[{i}]"),
                        e.to_string(),
                    );
                }
            }
        }
        if p.signature.min_rsa_bits < 2048 {
            ok = false;
            self.issue(
                format!("{base}.signature.min-rsa-bits"),
                "must be at least 2048",
            );
        }
        let mut ekus = Vec::new();
        for (i, e) in p.csr.allowed_extra_eku.iter().enumerate() {
            match e.parse::<pki::ExtraEku>() {
                Ok(v) => ekus.push(v),
                Err(err) => {
                    ok = false;
                    self.issue(
                        format!("{base}.csr.allowed-extra-eku[{i}]"),
                        err.to_string(),
                    );
                }
            }
        }
        ok.then_some(CsrPolicy {
            key: KeyPolicy {
                allowed_algorithms: algs,
                min_rsa_bits: p.signature.min_rsa_bits,
                allowed_ec_curves: curves,
            },
            allowed_extra_eku: ekus,
        })
    }

    fn bindings(
        &mut self,
        list: &[schema::PolicyBinding],
        policies: &[PolicySettings],
        authorities: &[AuthoritySettings],
    ) -> BTreeMap<String, Binding> {
        let mut out = BTreeMap::new();
        if list.is_empty() {
            if policies.len() == 1 && authorities.len() == 1 {
                out.insert(
                    policies[0].name.clone(),
                    Binding {
                        authorities: vec![authorities[0].name.clone()],
                        strategy: Strategy::FirstAvailable,
                    },
                );
            } else if !policies.is_empty() && !authorities.is_empty() {
                self.issue(
                    "policy-bindings",
                    "is required when there is more than one policy or authority: bind each policy to its authorities",
                );
            }
            return out;
        }
        for (i, b) in list.iter().enumerate() {
            let base = format!("policy-bindings[{i}]");
            if !policies.iter().any(|p| p.name == b.policy) {
                self.issue(
                    format!("{base}.policy"),
                    format!("unknown issuance policy {:?}", b.policy),
                );
            }
            if out.contains_key(&b.policy) {
                self.issue(
                    format!("{base}.policy"),
                    format!("policy {:?} is bound twice; merge the bindings", b.policy),
                );
                continue;
            }
            if b.authorities.is_empty() {
                self.issue(format!("{base}.authorities"), "list at least one authority");
            }
            let mut seen = BTreeSet::new();
            for (j, a) in b.authorities.iter().enumerate() {
                if !authorities.iter().any(|x| &x.name == a) {
                    self.issue(
                        format!("{base}.authorities[{j}]"),
                        format!("unknown authority {a:?}"),
                    );
                }
                if !seen.insert(a) {
                    self.issue(
                        format!("{base}.authorities[{j}]"),
                        format!("authority {a:?} is listed twice"),
                    );
                }
            }
            out.insert(
                b.policy.clone(),
                Binding {
                    authorities: b.authorities.clone(),
                    strategy: b.strategy,
                },
            );
        }
        for p in policies {
            if !out.contains_key(&p.name) {
                self.issue(
                    "policy-bindings",
                    format!("policy {:?} has no binding; add one", p.name),
                );
            }
        }
        out
    }

    fn database(&mut self, d: &schema::Database) -> PathBuf {
        match d.kind {
            DatabaseType::Sqlite => {
                if d.dsn.is_some() {
                    self.issue("database.dsn", "dsn applies only to type: postgres");
                }
                match &d.path {
                    Some(p) => self.work_path("database.path", p),
                    None => self.workdir.join("db.sqlite"),
                }
            }
            DatabaseType::Postgres => {
                self.issue(
                    "database.type",
                    "postgres is not available in this build yet; use sqlite (the default)",
                );
                PathBuf::new()
            }
        }
    }

    fn workers(&mut self, w: &schema::Workers, shutdown: Duration) {
        if w.idle_min > w.idle_max {
            self.issue(
                "workers.idle-min",
                format!(
                    "idle-min {} is larger than idle-max {}",
                    w.idle_min, w.idle_max
                ),
            );
        }
        if w.base_backoff > w.max_backoff {
            self.issue(
                "workers.base-backoff",
                format!(
                    "base-backoff {} is larger than max-backoff {}",
                    w.base_backoff, w.max_backoff
                ),
            );
        }
        if shutdown > w.drain_timeout.get() {
            self.issue(
                "server.shutdown-timeout",
                format!(
                    "must be less than or equal to workers.drain-timeout ({}); raise drain-timeout or lower shutdown-timeout",
                    w.drain_timeout
                ),
            );
        }
        let _ = self.nonzero_duration("workers.lease", w.lease.get());
    }
}

fn parse_cidr(raw: &str) -> Option<ipnet::IpNet> {
    raw.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| raw.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
}

fn parse_dns_server(raw: &str) -> Option<SocketAddr> {
    raw.parse::<SocketAddr>().ok().or_else(|| {
        raw.parse::<std::net::IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, 53))
    })
}

/// Expands `%WORKDIR%` in a path given on the command line or in docs.
pub fn expand_workdir(workdir: &Path, raw: &str) -> PathBuf {
    match raw.strip_prefix("%WORKDIR%") {
        Some(rest) => workdir.join(rest.trim_start_matches(['/', '\\'])),
        None => PathBuf::from(raw),
    }
}
