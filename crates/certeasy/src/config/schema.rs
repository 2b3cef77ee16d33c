//! The configuration schema: serde structs, kebab-case, strict.
//!
//! Every struct refuses unknown keys. Sections and keys that are omitted get
//! the defaults of SPEC §2. Values that must be positive use types that refuse
//! an explicit zero while deserialising, so the error carries the key's line.

use std::num::{NonZeroU32, NonZeroU64};

use serde::Deserialize;

use super::duration::ConfDuration;

/// Top-level document.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Document {
    /// Runtime directory (absolute or `%CONFIGDIR%`-anchored).
    pub workdir: String,
    /// Listener and public URLs.
    pub server: Server,
    /// Certificate of certeasy's own HTTPS endpoint.
    pub tls_certificate_manager: TlsCertificateManager,
    /// DNS validation profiles.
    pub dns_validation_profiles: Vec<DnsValidationProfile>,
    /// CA backends.
    pub authorities: Vec<Authority>,
    /// Issuance policies.
    pub issuance_policies: Vec<IssuancePolicy>,
    /// Policy → authorities bindings.
    #[serde(default)]
    pub policy_bindings: Vec<PolicyBinding>,
    /// Database.
    #[serde(default)]
    pub database: Database,
    /// Durable job engine tuning.
    #[serde(default)]
    pub workers: Workers,
    /// Abuse limits (on by default).
    #[serde(default)]
    pub rate_limiting: RateLimiting,
    /// Logging.
    #[serde(default)]
    pub logs: Logs,
}

/// `server`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Server {
    /// Public base URLs (https).
    pub url: Vec<String>,
    /// Listen address.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Time allowed for the TLS handshake and the first request head, and
    /// for a later request head from its first byte.
    #[serde(default = "d5s")]
    pub read_header_timeout: ConfDuration,
    /// Time allowed to receive a request's body, from the end of its head.
    #[serde(default = "d10s")]
    pub read_timeout: ConfDuration,
    /// Time allowed to send a response, from its head to its last byte.
    #[serde(default = "d30s")]
    pub write_timeout: ConfDuration,
    /// A connection with no request in flight and none started for this long
    /// is closed (HTTP/1.1 keep-alive and HTTP/2 alike).
    #[serde(default = "d60s")]
    pub idle_timeout: ConfDuration,
    /// Most connections open at once (default: derived from the open-file
    /// limit, see `ServerSettings::max_connections`).
    #[serde(default)]
    pub max_connections: Option<NonZeroU32>,
    /// Most connections open at once from one peer IP address.
    #[serde(default = "default_max_per_ip")]
    pub max_connections_per_ip: NonZeroU32,
    /// Maximum request body size.
    #[serde(default = "default_max_body")]
    pub max_body_bytes: NonZeroU64,
    /// Graceful shutdown budget for in-flight requests.
    #[serde(default = "d30s")]
    pub shutdown_timeout: ConfDuration,
    /// Header carrying the client IP when behind a trusted proxy.
    #[serde(default)]
    pub remote_ip_header: Option<String>,
    /// CIDRs of proxies whose `remote-ip-header` is honoured.
    #[serde(default)]
    pub trusted_proxies: Vec<String>,
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
fn d5s() -> ConfDuration {
    ConfDuration::secs(5)
}
fn d10s() -> ConfDuration {
    ConfDuration::secs(10)
}
fn d30s() -> ConfDuration {
    ConfDuration::secs(30)
}
fn d60s() -> ConfDuration {
    ConfDuration::secs(60)
}

/// `tls-certificate-manager`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TlsCertificateManager {
    /// Certificate bundles.
    pub bundles: Vec<TlsBundle>,
}

/// One certificate bundle of the own listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TlsBundle {
    /// Bundle name.
    pub name: String,
    /// Hosts served by this bundle (optional with one bundle).
    #[serde(default)]
    pub hosts: Vec<String>,
    /// How the certificate is obtained.
    pub mode: TlsMode,
    /// `files` mode: certificate chain PEM.
    #[serde(default)]
    pub local_cert_file: Option<String>,
    /// `files` mode: private key PEM.
    #[serde(default)]
    pub local_key_file: Option<String>,
    /// `files` mode: how often the files are checked for changes.
    #[serde(default = "d5s")]
    pub file_watch_interval: ConfDuration,
    /// `pki` mode: the authority that issues the listener certificate.
    #[serde(default)]
    pub authority: Option<String>,
    /// `pki` mode: time allowed to obtain the certificate at startup.
    #[serde(default = "d2m")]
    pub acquire_timeout: ConfDuration,
    /// `pki` mode: cache directory.
    #[serde(default)]
    pub local_pki_cache_dir: Option<String>,
    /// `pki` mode: renew this long before expiry.
    #[serde(default = "d720h")]
    pub renew_before: ConfDuration,
    /// `pki` mode: key of the listener certificate.
    #[serde(default)]
    pub key: Option<TlsKey>,
    /// `acme` mode: directory URL of the external CA.
    #[serde(default)]
    pub directory_url: Option<String>,
    /// `acme` mode: CA root to trust for the directory.
    #[serde(default)]
    pub ca_root: Option<String>,
    /// `acme` mode: account contact.
    #[serde(default)]
    pub contact: Vec<String>,
}

fn d2m() -> ConfDuration {
    ConfDuration::secs(120)
}
fn d720h() -> ConfDuration {
    ConfDuration::secs(720 * 3600)
}

/// Listener certificate source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// PEM files on disk, hot-reloaded.
    Files,
    /// Issued by one of certeasy's authorities.
    Pki,
    /// Obtained from an external ACME CA.
    Acme,
}

/// Key of the `pki`-mode listener certificate.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct TlsKey {
    /// `ecdsa` or `rsa`.
    #[serde(rename = "type")]
    pub kind: TlsKeyType,
    /// ECDSA curve: `P-256` (default) or `P-384`.
    #[serde(default)]
    pub curve: Option<String>,
    /// RSA size in bits.
    #[serde(default)]
    pub size: Option<u32>,
}

/// Key algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsKeyType {
    /// ECDSA.
    Ecdsa,
    /// RSA.
    Rsa,
}

/// One DNS validation profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DnsValidationProfile {
    /// Profile name.
    pub name: String,
    /// Only `local` exists.
    #[serde(default = "default_mode")]
    pub mode: ProfileMode,
    /// Time allowed for one validation.
    #[serde(default = "d10s")]
    pub timeout: ConfDuration,
    /// Zones and their resolvers.
    pub zones: Vec<DnsZone>,
    /// Which resolved addresses may be contacted (mandatory).
    pub resolved_ip_policy: Option<ResolvedIpPolicy>,
    /// Test-only: port used for http-01 instead of 80.
    #[serde(default)]
    pub http_01_port: Option<u16>,
    /// Test-only: port used for tls-alpn-01 instead of 443.
    #[serde(default)]
    pub tls_alpn_01_port: Option<u16>,
}

fn default_mode() -> ProfileMode {
    ProfileMode::Local
}

/// Validation profile mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProfileMode {
    /// Validate from this host.
    Local,
}

/// One zone of a validation profile.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DnsZone {
    /// DNS suffixes this zone covers.
    pub suffixes: Vec<String>,
    /// Use the system resolver.
    #[serde(default)]
    pub system: bool,
    /// Explicit DNS servers (`ip` or `ip:port`).
    #[serde(default)]
    pub dns_server: Vec<String>,
    /// Transport.
    #[serde(default = "default_protocol")]
    pub protocol: DnsProtocol,
    /// Query the zone's authoritative servers directly.
    #[serde(default)]
    pub authoritative: bool,
    /// Require DNSSEC-validated answers.
    #[serde(default)]
    pub dnssec: bool,
}

fn default_protocol() -> DnsProtocol {
    DnsProtocol::Udp
}

/// DNS transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DnsProtocol {
    /// UDP (falls back to TCP on truncation).
    Udp,
    /// TCP only.
    Tcp,
}

/// `resolved-ip-policy`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct ResolvedIpPolicy {
    /// Addresses that may be contacted.
    #[serde(default)]
    pub allow_cidrs: Vec<String>,
    /// Addresses that may never be contacted (wins over allow).
    #[serde(default)]
    pub deny_cidrs: Vec<String>,
}

/// One authority: `type` selects the shape of `configuration`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Authority {
    /// Authority name.
    pub name: String,
    /// Backend type.
    #[serde(rename = "type")]
    pub kind: AuthorityType,
    /// Type-specific configuration, deserialised in a second step.
    #[serde(default)]
    pub configuration: Option<serde_norway::Value>,
}

/// Authority backend types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuthorityType {
    /// Built-in CA.
    Fake,
    /// Native ADCS bridge.
    #[serde(alias = "adcs-native")]
    Adcs,
    /// `certreq.exe` fallback.
    AdcsCli,
}

/// `configuration` of a `fake` authority.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FakeAuthority {
    /// Common name of the CA certificate.
    #[serde(default = "default_ca_cn")]
    pub common_name: String,
    /// CA key type.
    #[serde(default = "default_ca_key_type")]
    pub key_type: CaKeyType,
    /// RSA key size (with `key-type: rsa`).
    #[serde(default)]
    pub key_size: Option<u32>,
    /// Validity of issued certificates.
    #[serde(default = "d90d")]
    pub validity: ConfDuration,
    /// Issue from an intermediate below the root.
    #[serde(default)]
    pub intermediate: bool,
    /// Password protecting the CA keys.
    #[serde(default)]
    pub password: Option<String>,
    /// File holding that password.
    #[serde(default)]
    pub password_file: Option<String>,
    /// Environment variable holding that password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Refuse certificates that live longer than this.
    #[serde(default)]
    pub max_validity: Option<ConfDuration>,
    /// Health probe interval.
    #[serde(default = "d60s")]
    pub health_check_interval: ConfDuration,
    /// Test-only fault injection: make every request fail.
    #[serde(default)]
    pub simulate_failure: Option<SimulatedFailure>,
}

/// Test-only fault injection of the built-in CA (exercises bindings).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SimulatedFailure {
    /// Unreachable: a transient error, fails over, marks it unhealthy.
    Transient,
    /// Denies every request: a final refusal.
    Refused,
}

fn default_ca_cn() -> String {
    "certeasy built-in CA".into()
}
fn default_ca_key_type() -> CaKeyType {
    CaKeyType::EcdsaP256
}
fn d90d() -> ConfDuration {
    ConfDuration::secs(90 * 86400)
}

/// `configuration` of an `adcs` authority (native bridge, MS-ICPR over RPC).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AdcsAuthority {
    /// `HOST\CA Common Name`, as in `certreq -config`.
    pub ca_name: String,
    /// RPC target when it differs from the HOST part of `ca-name`.
    #[serde(default)]
    pub host: Option<String>,
    /// Certificate template to request.
    pub certificate_template: String,
    /// Credentials of the service account.
    pub auth: AdcsAuth,
    /// RPC transport.
    #[serde(default = "default_transport")]
    pub transport: AdcsTransport,
    /// Fixed ICertPassage port (skips the endpoint mapper).
    #[serde(default)]
    pub port: Option<u16>,
    /// Endpoint mapper port.
    #[serde(default = "default_epm_port")]
    pub endpoint_mapper_port: u16,
    /// RPC authentication level.
    #[serde(default = "default_auth_level")]
    pub auth_level: AdcsAuthLevel,
    /// How long a request may stay pending at the CA.
    #[serde(default = "d4m")]
    pub default_timeout: ConfDuration,
    /// Budget of one RPC exchange (connect, bind, call).
    #[serde(default = "d30s")]
    pub request_timeout: ConfDuration,
    /// PEM chain to serve when the CA's reply carries none.
    #[serde(default)]
    pub ca_chain_file: Option<String>,
    /// Do not propagate revocations to the CA.
    #[serde(default)]
    pub disable_ca_revocation: bool,
    /// Refuse certificates living longer than this.
    #[serde(default)]
    pub max_validity: Option<ConfDuration>,
    /// Health probe interval.
    #[serde(default = "d60s")]
    pub health_check_interval: ConfDuration,
    /// Domain controller that `certeasy adcs check` reads the template, the
    /// enrollment service and the service account's rights from.
    #[serde(default)]
    pub ldap: Option<AdcsLdap>,
}

/// `ldap` of an `adcs` authority: read-only LDAP access to Active Directory
/// for `certeasy adcs check`, bound with the authority's own `auth`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AdcsLdap {
    /// `ldaps://dc:636`, or `ldap://dc:389` with `start-tls: true`.
    pub url: String,
    /// Upgrade an `ldap://` connection with StartTLS before binding.
    #[serde(default)]
    pub start_tls: bool,
    /// PEM trust anchors for the domain controller's certificate (default:
    /// the system's roots).
    #[serde(default)]
    pub ca_file: Option<String>,
    /// DN of the configuration naming context (default: the rootDSE's
    /// `configurationNamingContext`).
    #[serde(default)]
    pub configuration_dn: Option<String>,
    /// Name for the simple bind (default: `username@domain`, or
    /// `DOMAIN\username` for a NetBIOS domain, or `username` as written when
    /// it contains `@` or `\`).
    #[serde(default)]
    pub bind_name: Option<String>,
    /// Budget of the connection and of each LDAP operation.
    #[serde(default = "d10s")]
    pub timeout: ConfDuration,
}

fn default_transport() -> AdcsTransport {
    AdcsTransport::Tcp
}
fn default_epm_port() -> u16 {
    135
}
fn default_auth_level() -> AdcsAuthLevel {
    AdcsAuthLevel::Privacy
}
fn d4m() -> ConfDuration {
    ConfDuration::secs(240)
}

/// `configuration` of an `adcs-cli` authority (fallback through certreq.exe).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AdcsCliAuthority {
    /// `HOST\CA Common Name`, given to `certreq -config`.
    pub ca_name: String,
    /// Certificate template.
    pub certificate_template: String,
    /// Path of certreq.exe (default `C:\Windows\System32\certreq.exe`).
    #[serde(default)]
    pub certreq_path: Option<String>,
    /// Budget of one certreq run, and how long a request may stay pending.
    #[serde(default = "d4m")]
    pub default_timeout: ConfDuration,
    /// PEM chain to serve when certreq returns none.
    #[serde(default)]
    pub ca_chain_file: Option<String>,
    /// Refuse certificates living longer than this.
    #[serde(default)]
    pub max_validity: Option<ConfDuration>,
    /// Health probe interval.
    #[serde(default = "d60s")]
    pub health_check_interval: ConfDuration,
}

/// `auth` of an `adcs` authority.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AdcsAuth {
    /// `ntlm`, `kerberos` or `negotiate`.
    pub method: AdcsAuthMethod,
    /// NetBIOS or DNS domain.
    #[serde(default)]
    pub domain: String,
    /// Service account.
    pub username: String,
    /// File holding the password.
    #[serde(default)]
    pub password_file: Option<String>,
    /// Environment variable holding the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Accepted only to refuse it with a hint: no plain passwords in YAML.
    #[serde(default)]
    pub password: Option<String>,
    /// Kerberos keytab.
    #[serde(default)]
    pub keytab: Option<String>,
    /// Kerberos: KDC URL, e.g. `tcp://dc01.corp.example:88`.
    #[serde(default)]
    pub kdc: Option<String>,
    /// Kerberos: service principal of the CA (default `host/<host>`).
    #[serde(default)]
    pub spn: Option<String>,
}

/// ADCS authentication mechanisms.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdcsAuthMethod {
    /// NTLMv2.
    Ntlm,
    /// Kerberos.
    Kerberos,
    /// SPNEGO: Kerberos when possible, NTLM otherwise.
    Negotiate,
}

/// RPC transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdcsTransport {
    /// `ncacn_ip_tcp`.
    Tcp,
    /// `ncacn_np` (`\pipe\cert` over SMB).
    Np,
}

/// RPC authentication level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AdcsAuthLevel {
    /// Sign and seal every PDU (what hardened CAs require).
    Privacy,
    /// Sign every PDU.
    Integrity,
}

/// Key type of the built-in CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CaKeyType {
    /// ECDSA P-256.
    EcdsaP256,
    /// ECDSA P-384.
    EcdsaP384,
    /// RSA (`key-size`, default 3072).
    Rsa,
}

/// One issuance policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct IssuancePolicy {
    /// Policy name.
    pub name: String,
    /// Validation profile (required when several exist).
    #[serde(default)]
    pub dns_validation_profile: Option<String>,
    /// Name scope.
    pub dns: DnsScope,
    /// Key and signature requirements.
    #[serde(default)]
    pub signature: Signature,
    /// CSR options.
    #[serde(default)]
    pub csr: CsrOptions,
}

/// `dns` of a policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct DnsScope {
    /// Allowed name rules (non-empty).
    pub allow: Vec<String>,
    /// Denied name rules (win over allow).
    #[serde(default)]
    pub deny: Vec<String>,
}

/// `signature` of a policy.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Signature {
    /// Allowed CSR signature algorithms (empty = all).
    #[serde(default)]
    pub allowed_algorithms: Vec<String>,
    /// Minimum RSA modulus size.
    #[serde(default = "default_min_rsa")]
    pub min_rsa_bits: u32,
    /// Allowed EC curves.
    #[serde(default = "default_curves")]
    pub allowed_ec_curves: Vec<String>,
}

impl Default for Signature {
    fn default() -> Self {
        Signature {
            allowed_algorithms: Vec::new(),
            min_rsa_bits: default_min_rsa(),
            allowed_ec_curves: default_curves(),
        }
    }
}

fn default_min_rsa() -> u32 {
    3072
}
fn default_curves() -> Vec<String> {
    vec!["P-256".into(), "P-384".into()]
}

/// `csr` of a policy.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct CsrOptions {
    /// Extra EKUs accepted besides serverAuth.
    #[serde(default)]
    pub allowed_extra_eku: Vec<String>,
}

/// One policy binding.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PolicyBinding {
    /// Policy name.
    pub policy: String,
    /// Authority names, in order.
    pub authorities: Vec<String>,
    /// Selection strategy.
    #[serde(default = "default_strategy")]
    pub strategy: Strategy,
}

fn default_strategy() -> Strategy {
    Strategy::FirstAvailable
}

/// Authority selection strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    /// First healthy authority, failing over on error.
    FirstAvailable,
    /// Rotate among healthy authorities.
    RoundRobin,
}

/// `database`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Database {
    /// Engine.
    #[serde(rename = "type", default = "default_db")]
    pub kind: DatabaseType,
    /// SQLite file.
    #[serde(default)]
    pub path: Option<String>,
    /// PostgreSQL DSN.
    #[serde(default)]
    pub dsn: Option<String>,
}

impl Default for Database {
    fn default() -> Self {
        Database {
            kind: DatabaseType::Sqlite,
            path: None,
            dsn: None,
        }
    }
}

fn default_db() -> DatabaseType {
    DatabaseType::Sqlite
}

/// Database engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DatabaseType {
    /// SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// `workers`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Workers {
    /// Identity of this node's worker pool (default: derived from the host).
    #[serde(default)]
    pub worker_id: Option<String>,
    /// Concurrent workers.
    #[serde(default = "default_workers")]
    pub workers: NonZeroU64,
    /// Lease of a claimed job.
    #[serde(default = "d30s")]
    pub lease: ConfDuration,
    /// Shortest idle poll interval.
    #[serde(default = "d200ms")]
    pub idle_min: ConfDuration,
    /// Longest idle poll interval (safety net behind wake-ups).
    #[serde(default = "d5s")]
    pub idle_max: ConfDuration,
    /// First retry delay.
    #[serde(default = "d1s")]
    pub base_backoff: ConfDuration,
    /// Longest retry delay.
    #[serde(default = "d2m")]
    pub max_backoff: ConfDuration,
    /// Jobs handed to workers in memory at most; more wait in the database
    /// for a worker's poll.
    #[serde(default = "default_queue")]
    pub queue_size: NonZeroU64,
    /// How long finalize waits for the issuance before answering
    /// `processing`.
    #[serde(default = "d3s")]
    pub finalize_wait: ConfDuration,
    /// How long the POST that answers a challenge waits for its validation
    /// before answering `processing`.
    #[serde(default = "d2s")]
    pub validation_wait: ConfDuration,
    /// Time allowed to finish running jobs at shutdown.
    #[serde(default = "d30s")]
    pub drain_timeout: ConfDuration,
    /// Validations of one account running at once on this node (default:
    /// half of `workers`, at least 1), so one account's slow or blackholed
    /// validations cannot take every worker.
    #[serde(default)]
    pub validations_per_account: Option<NonZeroU64>,
}

impl Workers {
    /// `validations-per-account`, or its default.
    pub fn validations_per_account(&self) -> u64 {
        self.validations_per_account
            .map_or((self.workers.get() / 2).max(1), NonZeroU64::get)
    }
}

impl Default for Workers {
    fn default() -> Self {
        Workers {
            worker_id: None,
            workers: default_workers(),
            lease: d30s(),
            idle_min: d200ms(),
            idle_max: d5s(),
            base_backoff: d1s(),
            max_backoff: d2m(),
            queue_size: default_queue(),
            finalize_wait: d3s(),
            validation_wait: d2s(),
            drain_timeout: d30s(),
            validations_per_account: None,
        }
    }
}

/// `rate-limiting`: abuse limits, each on by default. (The rest of SPEC
/// §2's set comes with the rate-limit work; unknown limits are refused.)
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RateLimiting {
    /// Non-expired pending authorizations per account.
    #[serde(default)]
    pub pending_authorizations: PendingAuthorizations,
}

/// `rate-limiting.pending-authorizations`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct PendingAuthorizations {
    /// Whether the limit applies.
    #[serde(default = "default_true")]
    pub enabled: bool,
    /// Most pending authorizations an account may hold.
    #[serde(default = "default_pending_authz")]
    pub max: NonZeroU64,
}

impl Default for PendingAuthorizations {
    fn default() -> Self {
        PendingAuthorizations {
            enabled: true,
            max: default_pending_authz(),
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_pending_authz() -> NonZeroU64 {
    NonZeroU64::new(1000).unwrap_or(NonZeroU64::MIN)
}

fn d3s() -> ConfDuration {
    ConfDuration::secs(3)
}
fn d2s() -> ConfDuration {
    ConfDuration::secs(2)
}
fn default_workers() -> NonZeroU64 {
    NonZeroU64::new(4).unwrap_or(NonZeroU64::MIN)
}
fn default_queue() -> NonZeroU64 {
    NonZeroU64::new(1024).unwrap_or(NonZeroU64::MIN)
}
fn d200ms() -> ConfDuration {
    ConfDuration::millis(200)
}
fn d1s() -> ConfDuration {
    ConfDuration::secs(1)
}

/// `logs`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct Logs {
    /// Minimum level.
    #[serde(default = "default_level")]
    pub level: LogLevel,
    /// Output format.
    #[serde(default = "default_format")]
    pub format: LogFormat,
    /// Output stream.
    #[serde(default = "default_output")]
    pub output: LogOutput,
}

impl Default for Logs {
    fn default() -> Self {
        Logs {
            level: default_level(),
            format: default_format(),
            output: default_output(),
        }
    }
}

fn default_level() -> LogLevel {
    LogLevel::Info
}
fn default_format() -> LogFormat {
    LogFormat::Text
}
fn default_output() -> LogOutput {
    LogOutput::Stderr
}

/// Log level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogLevel {
    /// Debug.
    Debug,
    /// Info.
    Info,
    /// Warn.
    Warn,
    /// Error.
    Error,
}

impl LogLevel {
    /// Directive text for tracing's filter.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// Log format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable.
    Text,
}

/// Log destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LogOutput {
    /// Standard error.
    Stderr,
    /// Standard output.
    Stdout,
}
