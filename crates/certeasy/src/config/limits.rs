//! `rate-limiting`: abuse limits, each on by default and each with its own
//! `enabled`, so that one client cannot hurt the others.
//!
//! The defaults are sized for on-premise use, where a whole site may reach
//! certeasy from one NAT or proxy address and a CI pipeline may create
//! dozens of accounts in minutes: they stop a runaway loop or a flood, not
//! a normal fleet. docs/rate-limits.md gives the reasoning per limit.

use std::num::NonZeroU64;
use std::time::Duration;

use serde::Deserialize;

use super::checker::Checker;
use super::duration::ConfDuration;

/// `rate-limiting` as written (named `RateLimiting` in serde's messages).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(
    rename = "RateLimiting",
    default,
    deny_unknown_fields,
    rename_all = "kebab-case"
)]
pub(super) struct RateLimitingSection {
    /// Client addresses (IPs or CIDRs) exempt from the per-IP limits.
    whitelist: Vec<String>,
    global: GlobalSection,
    account_creation: AccountCreationSection,
    order_creation: OrderCreationSection,
    duplicate_certificate: DuplicateCertificateSection,
    failed_validation: FailedValidationSection,
    pending_authorizations: PendingAuthorizationsSection,
}

fn n(v: u64) -> NonZeroU64 {
    NonZeroU64::new(v).unwrap_or(NonZeroU64::MIN)
}

/// `rate-limiting.global`: every request, per client IP.
#[derive(Debug, Clone, Deserialize)]
#[serde(
    rename = "Global",
    default,
    deny_unknown_fields,
    rename_all = "kebab-case"
)]
struct GlobalSection {
    enabled: bool,
    requests_per_minute: NonZeroU64,
    burst: NonZeroU64,
}

impl Default for GlobalSection {
    fn default() -> Self {
        GlobalSection {
            enabled: true,
            requests_per_minute: n(6000),
            burst: n(1000),
        }
    }
}

/// `rate-limiting.account-creation`: new accounts per client IP.
#[derive(Debug, Clone, Deserialize)]
#[serde(
    rename = "AccountCreation",
    default,
    deny_unknown_fields,
    rename_all = "kebab-case"
)]
struct AccountCreationSection {
    enabled: bool,
    per_ip_per_hour: NonZeroU64,
    burst: NonZeroU64,
}

impl Default for AccountCreationSection {
    fn default() -> Self {
        AccountCreationSection {
            enabled: true,
            per_ip_per_hour: n(300),
            burst: n(60),
        }
    }
}

/// `rate-limiting.order-creation`: new orders and their names per account.
#[derive(Debug, Clone, Deserialize)]
#[serde(
    rename = "OrderCreation",
    default,
    deny_unknown_fields,
    rename_all = "kebab-case"
)]
struct OrderCreationSection {
    enabled: bool,
    orders_per_account_per_hour: NonZeroU64,
    order_burst: NonZeroU64,
    san_budget_per_account_per_hour: NonZeroU64,
}

impl Default for OrderCreationSection {
    fn default() -> Self {
        OrderCreationSection {
            enabled: true,
            orders_per_account_per_hour: n(1000),
            order_burst: n(200),
            san_budget_per_account_per_hour: n(10_000),
        }
    }
}

/// Defines a sliding-window limit section (`duplicate-certificate`,
/// `failed-validation`): at most `max-per-window` events per `window`,
/// with its defaults (count, window in seconds).
macro_rules! window_section {
    ($name:ident, $serde:literal, $max:expr, $secs:expr) => {
        #[doc = concat!("`rate-limiting.", $serde, "` as written.")]
        #[derive(Debug, Clone, Deserialize)]
        #[serde(default, deny_unknown_fields, rename_all = "kebab-case")]
        struct $name {
            enabled: bool,
            max_per_window: NonZeroU64,
            window: ConfDuration,
        }

        impl Default for $name {
            fn default() -> Self {
                $name {
                    enabled: true,
                    max_per_window: n($max),
                    window: ConfDuration::secs($secs),
                }
            }
        }

        impl $name {
            fn validated(&self) -> Option<SlidingWindow> {
                self.enabled.then(|| SlidingWindow {
                    max: self.max_per_window.get(),
                    window: self.window.get(),
                })
            }
        }
    };
}

window_section!(
    DuplicateCertificateSection,
    "duplicate-certificate",
    50,
    86_400
);
window_section!(FailedValidationSection, "failed-validation", 50, 3_600);

/// `rate-limiting.pending-authorizations` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(
    rename = "PendingAuthorizations",
    default,
    deny_unknown_fields,
    rename_all = "kebab-case"
)]
struct PendingAuthorizationsSection {
    /// Whether the limit applies.
    enabled: bool,
    /// Most pending authorizations an account may hold.
    max: NonZeroU64,
}

impl Default for PendingAuthorizationsSection {
    fn default() -> Self {
        PendingAuthorizationsSection {
            enabled: true,
            max: n(1000),
        }
    }
}

/// Abuse limits after validation: a limit that is `None` is disabled.
#[derive(Debug, Clone)]
pub struct RateLimiting {
    /// Client addresses exempt from the per-IP limits (`global`,
    /// `account-creation`); account limits still apply to them.
    pub whitelist: Vec<ipnet::IpNet>,
    /// Requests per client IP.
    pub global: Option<Rate>,
    /// New accounts per client IP.
    pub account_creation: Option<Rate>,
    /// New orders per account.
    pub orders: Option<Rate>,
    /// Names in new orders per account (one unit per name).
    pub san_budget: Option<Rate>,
    /// Non-revoked certificates of one account for one name set.
    pub duplicate_certificate: Option<SlidingWindow>,
    /// Failed validations of one account for one name.
    pub failed_validation: Option<SlidingWindow>,
    /// Non-expired pending authorizations per account.
    pub pending_authorizations: PendingAuthorizations,
}

impl Default for RateLimiting {
    /// The defaults of SPEC §2 (what an omitted section gives).
    fn default() -> Self {
        RateLimitingSection::default().validated(Vec::new())
    }
}

/// A token-bucket rate: `count` per `per` on average, up to `burst` at
/// once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rate {
    /// Events per period.
    pub count: u64,
    /// The period.
    pub per: Duration,
    /// Events allowed at once after a quiet spell.
    pub burst: u64,
}

/// At most `max` events in any `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlidingWindow {
    /// Most events counted in one window.
    pub max: u64,
    /// The window.
    pub window: Duration,
}

/// The limit on an account's pending authorizations.
#[derive(Debug, Clone)]
pub struct PendingAuthorizations {
    /// Whether the limit applies.
    pub enabled: bool,
    /// Most pending authorizations an account may hold.
    pub max: NonZeroU64,
}

impl RateLimitingSection {
    fn validated(&self, whitelist: Vec<ipnet::IpNet>) -> RateLimiting {
        let g = &self.global;
        let a = &self.account_creation;
        let o = &self.order_creation;
        let hour = Duration::from_secs(3600);
        RateLimiting {
            whitelist,
            global: g.enabled.then(|| Rate {
                count: g.requests_per_minute.get(),
                per: Duration::from_secs(60),
                burst: g.burst.get(),
            }),
            account_creation: a.enabled.then(|| Rate {
                count: a.per_ip_per_hour.get(),
                per: hour,
                burst: a.burst.get(),
            }),
            orders: o.enabled.then(|| Rate {
                count: o.orders_per_account_per_hour.get(),
                per: hour,
                burst: o.order_burst.get(),
            }),
            san_budget: o.enabled.then(|| Rate {
                count: o.san_budget_per_account_per_hour.get(),
                per: hour,
                burst: o.san_budget_per_account_per_hour.get(),
            }),
            duplicate_certificate: self.duplicate_certificate.validated(),
            failed_validation: self.failed_validation.validated(),
            pending_authorizations: PendingAuthorizations {
                enabled: self.pending_authorizations.enabled,
                max: self.pending_authorizations.max,
            },
        }
    }
}

impl Checker<'_> {
    /// Checks `rate-limiting` (the whitelist's addresses).
    pub(super) fn check_rate_limiting(&mut self, r: &RateLimitingSection) -> RateLimiting {
        let mut whitelist = Vec::new();
        for (i, raw) in r.whitelist.iter().enumerate() {
            match super::server::parse_cidr(raw) {
                Some(net) => whitelist.push(net),
                None => self.issue(
                    format!("rate-limiting.whitelist[{i}]"),
                    format!("{raw:?} is not an IP address or CIDR (e.g. 10.0.0.0/8)"),
                ),
            }
        }
        r.validated(whitelist)
    }
}
