//! The top-level document: the sections a configuration file may hold.
//!
//! Each section's schema lives in the section's own file, beside its
//! validated type and its checks. Every schema struct is serde, kebab-case
//! and strict: unknown keys are refused. Sections and keys that are omitted
//! get the defaults of SPEC §2; values that must be positive use types that
//! refuse an explicit zero while deserialising, so the error carries the
//! key's line. None of these types leaves `config`: consumers get the
//! validated ones.

use serde::Deserialize;

use super::audit::AuditSection;
use super::authorities::Authority;
use super::bindings::PolicyBinding;
use super::database::Database;
use super::eab::EabSection;
use super::limits::RateLimitingSection;
use super::logs::LogsSection;
use super::metrics::MetricsSection;
use super::policies::IssuancePolicy;
use super::profiles::ProfileEntry;
use super::renewal_info::RenewalInfoSection;
use super::revocation_status::RevocationStatusSection;
use super::server::Server;
use super::tls::TlsCertificateManager;
use super::validation::DnsValidationProfile;
use super::workers::WorkersSection;

/// Top-level document.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct Document {
    /// Runtime directory (absolute or `%CONFIGDIR%`-anchored).
    pub(super) workdir: String,
    /// Listener and public URLs.
    pub(super) server: Server,
    /// Certificate of certeasy's own HTTPS endpoint.
    pub(super) tls_certificate_manager: TlsCertificateManager,
    /// DNS validation profiles.
    pub(super) dns_validation_profiles: Vec<DnsValidationProfile>,
    /// CA backends.
    pub(super) authorities: Vec<Authority>,
    /// Issuance policies.
    pub(super) issuance_policies: Vec<IssuancePolicy>,
    /// Policy → authorities bindings.
    #[serde(default)]
    pub(super) policy_bindings: Vec<PolicyBinding>,
    /// Database.
    #[serde(default)]
    pub(super) database: Database,
    /// Durable job engine tuning.
    #[serde(default)]
    pub(super) workers: WorkersSection,
    /// Abuse limits (on by default).
    #[serde(default)]
    pub(super) rate_limiting: RateLimitingSection,
    /// Tamper-evident audit log (on by default).
    #[serde(default)]
    pub(super) audit: AuditSection,
    /// Logging.
    #[serde(default)]
    pub(super) logs: LogsSection,
    /// ARI window computation.
    #[serde(default)]
    pub(super) renewal_info: RenewalInfoSection,
    /// External account binding requirement.
    #[serde(default)]
    pub(super) external_account_binding: EabSection,
    /// ACME profiles.
    #[serde(default)]
    pub(super) acme_profiles: Vec<ProfileEntry>,
    /// Prometheus endpoint (off by default).
    #[serde(default)]
    pub(super) metrics: MetricsSection,
    /// CRL and OCSP listener of the built-in CAs (off by default).
    #[serde(default)]
    pub(super) revocation_status: Option<RevocationStatusSection>,
}
