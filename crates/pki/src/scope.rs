//! The issuance-policy name grammar (`dns.allow` / `dns.deny`).
//!
//! | Rule        | Matches |
//! |-------------|---------|
//! | `.zone/N`   | non-wildcard names strictly under `zone` with 1 to N labels in front of it. The zone apex itself is **not** included (use `=zone` for that) and wildcards never match. |
//! | `*.zone`    | exactly the wildcard `*.zone`. |
//! | `*..zone/N` | wildcards strictly inside subzones of `zone`: `*.X.zone` where `X` has 1 to N labels. `*.zone` itself is **not** included (use `*.zone`). |
//! | `=name`     | exactly `name` (which may itself be a wildcard: `=*.a.example`). |
//!
//! `N` is 1..=127. Zones and names are normalised like every [`DnsName`]
//! (lower case, trailing dot dropped), and matching is on label boundaries:
//! `evilexample.com` is not under `.example.com/2`. A [`Scope`] is an allow
//! list and a deny list; a name is allowed when some allow rule matches and
//! no deny rule does (deny wins).

use std::fmt;
use std::str::FromStr;

use crate::dnsname::DnsName;

/// Largest accepted depth `N` (a name has at most 127 labels).
pub const MAX_DEPTH: u32 = 127;

const GRAMMAR: &str = "expected one of \".zone/N\" (names under zone, at most N labels in front, e.g. \".example.com/2\"), \"*.zone\" (exactly that wildcard, e.g. \"*.example.com\"), \"*..zone/N\" (wildcards inside subzones, e.g. \"*..example.com/1\" matches \"*.a.example.com\"), \"=name\" (exactly that name, e.g. \"=example.com\")";

/// One rule of the grammar (see the module documentation).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum ScopeRule {
    /// `.zone/N`: non-wildcard names under `zone` with 1..=N labels in front
    /// (the apex `zone` itself is not included).
    Subtree {
        /// The normalised zone.
        zone: String,
        /// Maximum number of labels in front of the zone.
        max_depth: u32,
    },
    /// `*.zone`: exactly the wildcard `*.zone`.
    Wildcard {
        /// The normalised zone.
        zone: String,
    },
    /// `*..zone/N`: `*.X.zone` where `X` has 1..=N labels.
    WildcardSubtree {
        /// The normalised zone.
        zone: String,
        /// Maximum number of labels between `*` and the zone.
        max_depth: u32,
    },
    /// `=name`: exactly that (normalised) name; may be a wildcard.
    Exact(String),
}

/// A rule or a rule list is malformed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// A rule does not follow the grammar.
    #[error("invalid scope rule {rule:?}: {reason}; {GRAMMAR}")]
    InvalidRule {
        /// The rule as written.
        rule: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A rule of a list is malformed.
    #[error("dns.{list}[{index}]: {source}")]
    InvalidListEntry {
        /// `allow` or `deny`.
        list: &'static str,
        /// Index of the rule in its list (0-based).
        index: usize,
        /// The underlying error.
        source: Box<ScopeError>,
    },
    /// `dns.allow` is empty.
    #[error("dns.allow is empty; at least one rule is required (e.g. \".example.com/2\")")]
    EmptyAllow,
}

fn invalid(rule: &str, reason: impl Into<String>) -> ScopeError {
    ScopeError::InvalidRule {
        rule: rule.to_owned(),
        reason: reason.into(),
    }
}

fn parse_zone(rule: &str, zone: &str) -> Result<String, ScopeError> {
    let name = DnsName::parse(zone).map_err(|e| invalid(rule, format!("zone {zone:?}: {e}")))?;
    if name.is_wildcard() {
        return Err(invalid(
            rule,
            format!("zone {zone:?} must not be a wildcard"),
        ));
    }
    Ok(name.as_str().to_owned())
}

fn split_depth<'a>(rule: &str, body: &'a str) -> Result<(&'a str, u32), ScopeError> {
    let Some((zone, n)) = body.rsplit_once('/') else {
        return Err(invalid(rule, "missing \"/N\" depth"));
    };
    if n.is_empty() || !n.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid(rule, format!("depth {n:?} is not a number")));
    }
    if n.len() > 1 && n.starts_with('0') {
        return Err(invalid(rule, format!("depth {n:?} has a leading zero")));
    }
    let depth: u32 = n
        .parse()
        .map_err(|_| invalid(rule, format!("depth {n:?} is out of range 1..=127")))?;
    if !(1..=MAX_DEPTH).contains(&depth) {
        return Err(invalid(
            rule,
            format!("depth {depth} is out of range 1..=127"),
        ));
    }
    Ok((zone, depth))
}

impl FromStr for ScopeRule {
    type Err = ScopeError;

    fn from_str(rule: &str) -> Result<Self, Self::Err> {
        if rule.chars().any(char::is_whitespace) {
            return Err(invalid(rule, "whitespace is not allowed"));
        }
        if let Some(body) = rule.strip_prefix("*..") {
            let (zone, max_depth) = split_depth(rule, body)?;
            return Ok(ScopeRule::WildcardSubtree {
                zone: parse_zone(rule, zone)?,
                max_depth,
            });
        }
        if let Some(body) = rule.strip_prefix("*.") {
            if body.contains('/') {
                return Err(invalid(
                    rule,
                    "\"*.zone\" takes no depth; use \"*..zone/N\" for wildcards in subzones",
                ));
            }
            return Ok(ScopeRule::Wildcard {
                zone: parse_zone(rule, body)?,
            });
        }
        if let Some(body) = rule.strip_prefix('=') {
            let name =
                DnsName::parse(body).map_err(|e| invalid(rule, format!("name {body:?}: {e}")))?;
            return Ok(ScopeRule::Exact(name.as_str().to_owned()));
        }
        if let Some(body) = rule.strip_prefix('.') {
            let (zone, max_depth) = split_depth(rule, body)?;
            return Ok(ScopeRule::Subtree {
                zone: parse_zone(rule, zone)?,
                max_depth,
            });
        }
        if rule.is_empty() {
            return Err(invalid(rule, "empty rule"));
        }
        Err(invalid(rule, "unknown rule form"))
    }
}

impl fmt::Display for ScopeRule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScopeRule::Subtree { zone, max_depth } => write!(f, ".{zone}/{max_depth}"),
            ScopeRule::Wildcard { zone } => write!(f, "*.{zone}"),
            ScopeRule::WildcardSubtree { zone, max_depth } => write!(f, "*..{zone}/{max_depth}"),
            ScopeRule::Exact(name) => write!(f, "={name}"),
        }
    }
}

/// Number of labels of `name` in front of `zone`, when `name` is strictly
/// under `zone` on a label boundary.
fn depth_under(name: &str, zone: &str) -> Option<usize> {
    let prefix = name.strip_suffix(zone)?.strip_suffix('.')?;
    if prefix.is_empty() {
        return None;
    }
    Some(prefix.split('.').count())
}

fn within(depth: Option<usize>, max: u32) -> bool {
    depth.is_some_and(|d| d >= 1 && u32::try_from(d).is_ok_and(|d| d <= max))
}

impl ScopeRule {
    /// Does this rule match the (normalised) name?
    pub fn matches(&self, name: &DnsName) -> bool {
        match self {
            ScopeRule::Subtree { zone, max_depth } => {
                !name.is_wildcard() && within(depth_under(name.as_str(), zone), *max_depth)
            }
            ScopeRule::Wildcard { zone } => name.is_wildcard() && name.base() == zone,
            ScopeRule::WildcardSubtree { zone, max_depth } => {
                name.is_wildcard() && within(depth_under(name.base(), zone), *max_depth)
            }
            ScopeRule::Exact(exact) => name.as_str() == exact,
        }
    }
}

/// Outcome of [`Scope::check`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScopeDecision {
    /// An allow rule matched and no deny rule did.
    Allowed {
        /// The first matching allow rule (normalised text).
        rule: String,
    },
    /// A deny rule matched (deny wins over allow).
    Denied {
        /// The first matching deny rule (normalised text).
        rule: String,
    },
    /// No allow rule matched.
    NotAllowed,
}

impl ScopeDecision {
    /// True only for [`ScopeDecision::Allowed`].
    pub fn is_allowed(&self) -> bool {
        matches!(self, ScopeDecision::Allowed { .. })
    }
}

/// The `dns` block of an issuance policy: allow and deny rules.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scope {
    allow: Vec<ScopeRule>,
    deny: Vec<ScopeRule>,
}

fn parse_list(list: &'static str, rules: &[String]) -> Result<Vec<ScopeRule>, ScopeError> {
    rules
        .iter()
        .enumerate()
        .map(|(index, rule)| {
            rule.parse().map_err(|e| ScopeError::InvalidListEntry {
                list,
                index,
                source: Box::new(e),
            })
        })
        .collect()
}

impl Scope {
    /// Parses the allow and deny lists.
    ///
    /// # Errors
    /// [`ScopeError::EmptyAllow`] for an empty allow list, and
    /// [`ScopeError::InvalidListEntry`] naming the list, index and rule of
    /// the first malformed rule.
    pub fn new(allow: &[String], deny: &[String]) -> Result<Scope, ScopeError> {
        if allow.is_empty() {
            return Err(ScopeError::EmptyAllow);
        }
        Ok(Scope {
            allow: parse_list("allow", allow)?,
            deny: parse_list("deny", deny)?,
        })
    }

    /// Decides whether `name` may be issued. Deny wins over allow.
    pub fn check(&self, name: &DnsName) -> ScopeDecision {
        if let Some(rule) = self.deny.iter().find(|r| r.matches(name)) {
            return ScopeDecision::Denied {
                rule: rule.to_string(),
            };
        }
        match self.allow.iter().find(|r| r.matches(name)) {
            Some(rule) => ScopeDecision::Allowed {
                rule: rule.to_string(),
            },
            None => ScopeDecision::NotAllowed,
        }
    }

    /// The allow rules.
    pub fn allow(&self) -> &[ScopeRule] {
        &self.allow
    }

    /// The deny rules.
    pub fn deny(&self) -> &[ScopeRule] {
        &self.deny
    }
}

#[cfg(test)]
mod tests;
