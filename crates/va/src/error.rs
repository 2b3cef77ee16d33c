//! Validation outcomes that are not a success, and configuration errors.

use serde::{Deserialize, Serialize};

/// The class of a validation failure; maps one-to-one onto an ACME error type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FailureKind {
    /// DNS lookup failed (NXDOMAIN, no records, SERVFAIL, timeout, DNSSEC).
    Dns,
    /// The challenge server could not be reached, or a redirect was refused.
    Connection,
    /// The response did not satisfy the challenge's requirements.
    IncorrectResponse,
    /// An address is refused by the profile's resolved-IP policy.
    Unauthorized,
    /// The TLS handshake failed or did not negotiate what the challenge needs.
    Tls,
    /// The name lies outside every zone of the validation profile.
    RejectedIdentifier,
    /// A bug or an invalid argument on our side.
    ServerInternal,
}

impl FailureKind {
    /// The ACME problem type (RFC 8555 §6.7) for this kind of failure.
    pub fn acme_error_type(self) -> &'static str {
        match self {
            Self::Dns => "urn:ietf:params:acme:error:dns",
            Self::Connection => "urn:ietf:params:acme:error:connection",
            Self::IncorrectResponse => "urn:ietf:params:acme:error:incorrectResponse",
            Self::Unauthorized => "urn:ietf:params:acme:error:unauthorized",
            Self::Tls => "urn:ietf:params:acme:error:tls",
            Self::RejectedIdentifier => "urn:ietf:params:acme:error:rejectedIdentifier",
            Self::ServerInternal => "urn:ietf:params:acme:error:serverInternal",
        }
    }
}

/// Why a validation failed; `Display` is the precise, human-readable detail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{detail}")]
pub struct ValidationFailure {
    /// The class of failure.
    pub kind: FailureKind,
    /// What exactly went wrong, suitable for the ACME problem `detail`.
    pub detail: String,
}

impl ValidationFailure {
    /// Builds a failure of `kind` with `detail`.
    pub fn new(kind: FailureKind, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
        }
    }

    pub(crate) fn dns(detail: impl Into<String>) -> Self {
        Self::new(FailureKind::Dns, detail)
    }

    pub(crate) fn connection(detail: impl Into<String>) -> Self {
        Self::new(FailureKind::Connection, detail)
    }

    pub(crate) fn incorrect(detail: impl Into<String>) -> Self {
        Self::new(FailureKind::IncorrectResponse, detail)
    }

    pub(crate) fn tls(detail: impl Into<String>) -> Self {
        Self::new(FailureKind::Tls, detail)
    }

    pub(crate) fn internal(detail: impl Into<String>) -> Self {
        Self::new(FailureKind::ServerInternal, detail)
    }
}

/// A validation profile that cannot be turned into a [`crate::Validator`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaConfigError {
    /// The profile as a whole is unusable (no zones, zero timeout, …).
    #[error("validation profile {profile}: {reason}")]
    Profile {
        /// Profile name.
        profile: String,
        /// What is wrong.
        reason: String,
    },
    /// One zone of the profile is unusable.
    #[error("validation profile {profile}, zone {zone}: {reason}")]
    Zone {
        /// Profile name.
        profile: String,
        /// The zone's suffixes, comma-separated.
        zone: String,
        /// What is wrong.
        reason: String,
    },
}

/// Escapes and truncates untrusted text for inclusion in a failure detail.
pub(crate) fn excerpt(text: &str, max_chars: usize) -> String {
    let mut out = String::new();
    for (i, c) in text.chars().enumerate() {
        if i == max_chars {
            out.push('…');
            break;
        }
        out.extend(c.escape_debug());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_detail() {
        let f = ValidationFailure::new(FailureKind::Dns, "NXDOMAIN for x.test");
        assert_eq!(f.to_string(), "NXDOMAIN for x.test");
        assert_eq!(f.kind.acme_error_type(), "urn:ietf:params:acme:error:dns");
    }

    #[test]
    fn excerpt_escapes_and_truncates() {
        assert_eq!(excerpt("a\"b\n", 10), "a\\\"b\\n");
        assert_eq!(excerpt("abcdef", 3), "abc…");
    }

    #[test]
    fn kind_serializes_camel_case() {
        let json = serde_json::to_string(&FailureKind::IncorrectResponse).unwrap_or_default();
        assert_eq!(json, "\"incorrectResponse\"");
    }
}
