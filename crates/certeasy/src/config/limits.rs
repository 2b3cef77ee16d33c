//! `rate-limiting`: abuse limits, each on by default, so that one account
//! cannot fill the database or the workers' queue. (The rest of SPEC §2's
//! set comes with the rate-limit work; unknown limits are refused.)

use std::num::NonZeroU64;

use serde::Deserialize;

/// `rate-limiting` as written (named `RateLimiting` in serde's messages,
/// as before the split).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(
    rename = "RateLimiting",
    deny_unknown_fields,
    rename_all = "kebab-case"
)]
pub(super) struct RateLimitingSection {
    /// Non-expired pending authorizations per account.
    #[serde(default)]
    pending_authorizations: PendingAuthorizationsSection,
}

/// `rate-limiting.pending-authorizations` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(
    rename = "PendingAuthorizations",
    deny_unknown_fields,
    rename_all = "kebab-case"
)]
struct PendingAuthorizationsSection {
    /// Whether the limit applies.
    #[serde(default = "default_true")]
    enabled: bool,
    /// Most pending authorizations an account may hold.
    #[serde(default = "default_pending_authz")]
    max: NonZeroU64,
}

impl Default for PendingAuthorizationsSection {
    fn default() -> Self {
        PendingAuthorizationsSection {
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

/// Abuse limits after validation.
#[derive(Debug, Clone)]
pub struct RateLimiting {
    /// Non-expired pending authorizations per account.
    pub pending_authorizations: PendingAuthorizations,
}

/// The limit on an account's pending authorizations.
#[derive(Debug, Clone)]
pub struct PendingAuthorizations {
    /// Whether the limit applies.
    pub enabled: bool,
    /// Most pending authorizations an account may hold.
    pub max: NonZeroU64,
}

impl From<RateLimitingSection> for RateLimiting {
    fn from(r: RateLimitingSection) -> Self {
        let p = r.pending_authorizations;
        RateLimiting {
            pending_authorizations: PendingAuthorizations {
                enabled: p.enabled,
                max: p.max,
            },
        }
    }
}
