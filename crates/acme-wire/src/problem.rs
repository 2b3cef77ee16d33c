//! ACME problem documents (RFC 8555 §6.7, RFC 7807), with RFC 9773
//! `alreadyReplaced` and the ACME profiles draft's `invalidProfile`.

use std::fmt;

use serde::de::Error as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

use crate::{Algorithm, Identifier, WireError};

const URN_PREFIX: &str = "urn:ietf:params:acme:error:";

/// An ACME error type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProblemType {
    /// The request specified an account that does not exist.
    AccountDoesNotExist,
    /// The request specified a predecessor certificate that has already been
    /// replaced (RFC 9773).
    AlreadyReplaced,
    /// The request specified a certificate to be revoked that has already
    /// been revoked.
    AlreadyRevoked,
    /// The CSR is unacceptable.
    BadCsr,
    /// The client sent an unacceptable anti-replay nonce.
    BadNonce,
    /// The JWS was signed by a public key the server does not support.
    BadPublicKey,
    /// The revocation reason provided is not allowed by the server.
    BadRevocationReason,
    /// The JWS was signed with an algorithm the server does not support.
    BadSignatureAlgorithm,
    /// CAA records forbid the CA from issuing a certificate.
    Caa,
    /// Specific error conditions are indicated in the "subproblems" array.
    Compound,
    /// The server could not connect to the validation target.
    Connection,
    /// There was a problem with a DNS query during identifier validation.
    Dns,
    /// The request must include a value for "externalAccountBinding".
    ExternalAccountRequired,
    /// Response received didn't match the challenge's requirements.
    IncorrectResponse,
    /// A contact URL for an account was invalid.
    InvalidContact,
    /// The requested profile is not advertised (ACME profiles draft).
    InvalidProfile,
    /// The request message was malformed.
    Malformed,
    /// The request attempted to finalize an order that is not ready.
    OrderNotReady,
    /// The request exceeds a rate limit.
    RateLimited,
    /// The server will not issue certificates for the identifier.
    RejectedIdentifier,
    /// The server experienced an internal error.
    ServerInternal,
    /// The server received a TLS error during validation.
    Tls,
    /// The client lacks sufficient authorization.
    Unauthorized,
    /// A contact URL for an account used an unsupported protocol scheme.
    UnsupportedContact,
    /// An identifier is of an unsupported type.
    UnsupportedIdentifier,
    /// Visit the "instance" URL and take actions specified there.
    UserActionRequired,
    /// Non-standard: a conflict (e.g. key rollover to a key that already
    /// belongs to an account). Serialized with the `malformed` URN and
    /// status 409, as RFC 8555 §7.3.5 describes.
    Conflict,
}

impl ProblemType {
    /// Every problem type.
    pub const ALL: [ProblemType; 27] = [
        Self::AccountDoesNotExist,
        Self::AlreadyReplaced,
        Self::AlreadyRevoked,
        Self::BadCsr,
        Self::BadNonce,
        Self::BadPublicKey,
        Self::BadRevocationReason,
        Self::BadSignatureAlgorithm,
        Self::Caa,
        Self::Compound,
        Self::Connection,
        Self::Dns,
        Self::ExternalAccountRequired,
        Self::IncorrectResponse,
        Self::InvalidContact,
        Self::InvalidProfile,
        Self::Malformed,
        Self::OrderNotReady,
        Self::RateLimited,
        Self::RejectedIdentifier,
        Self::ServerInternal,
        Self::Tls,
        Self::Unauthorized,
        Self::UnsupportedContact,
        Self::UnsupportedIdentifier,
        Self::UserActionRequired,
        Self::Conflict,
    ];

    /// The error name after the URN prefix, e.g. "badNonce".
    pub fn name(&self) -> &'static str {
        match self {
            Self::AccountDoesNotExist => "accountDoesNotExist",
            Self::AlreadyReplaced => "alreadyReplaced",
            Self::AlreadyRevoked => "alreadyRevoked",
            Self::BadCsr => "badCSR",
            Self::BadNonce => "badNonce",
            Self::BadPublicKey => "badPublicKey",
            Self::BadRevocationReason => "badRevocationReason",
            Self::BadSignatureAlgorithm => "badSignatureAlgorithm",
            Self::Caa => "caa",
            Self::Compound => "compound",
            Self::Connection => "connection",
            Self::Dns => "dns",
            Self::ExternalAccountRequired => "externalAccountRequired",
            Self::IncorrectResponse => "incorrectResponse",
            Self::InvalidContact => "invalidContact",
            Self::InvalidProfile => "invalidProfile",
            Self::Malformed | Self::Conflict => "malformed",
            Self::OrderNotReady => "orderNotReady",
            Self::RateLimited => "rateLimited",
            Self::RejectedIdentifier => "rejectedIdentifier",
            Self::ServerInternal => "serverInternal",
            Self::Tls => "tls",
            Self::Unauthorized => "unauthorized",
            Self::UnsupportedContact => "unsupportedContact",
            Self::UnsupportedIdentifier => "unsupportedIdentifier",
            Self::UserActionRequired => "userActionRequired",
        }
    }

    /// The full type URN, e.g. "urn:ietf:params:acme:error:badNonce".
    /// [`ProblemType::Conflict`] uses the `malformed` URN.
    pub fn urn(&self) -> &'static str {
        match self {
            Self::AccountDoesNotExist => "urn:ietf:params:acme:error:accountDoesNotExist",
            Self::AlreadyReplaced => "urn:ietf:params:acme:error:alreadyReplaced",
            Self::AlreadyRevoked => "urn:ietf:params:acme:error:alreadyRevoked",
            Self::BadCsr => "urn:ietf:params:acme:error:badCSR",
            Self::BadNonce => "urn:ietf:params:acme:error:badNonce",
            Self::BadPublicKey => "urn:ietf:params:acme:error:badPublicKey",
            Self::BadRevocationReason => "urn:ietf:params:acme:error:badRevocationReason",
            Self::BadSignatureAlgorithm => "urn:ietf:params:acme:error:badSignatureAlgorithm",
            Self::Caa => "urn:ietf:params:acme:error:caa",
            Self::Compound => "urn:ietf:params:acme:error:compound",
            Self::Connection => "urn:ietf:params:acme:error:connection",
            Self::Dns => "urn:ietf:params:acme:error:dns",
            Self::ExternalAccountRequired => "urn:ietf:params:acme:error:externalAccountRequired",
            Self::IncorrectResponse => "urn:ietf:params:acme:error:incorrectResponse",
            Self::InvalidContact => "urn:ietf:params:acme:error:invalidContact",
            Self::InvalidProfile => "urn:ietf:params:acme:error:invalidProfile",
            Self::Malformed | Self::Conflict => "urn:ietf:params:acme:error:malformed",
            Self::OrderNotReady => "urn:ietf:params:acme:error:orderNotReady",
            Self::RateLimited => "urn:ietf:params:acme:error:rateLimited",
            Self::RejectedIdentifier => "urn:ietf:params:acme:error:rejectedIdentifier",
            Self::ServerInternal => "urn:ietf:params:acme:error:serverInternal",
            Self::Tls => "urn:ietf:params:acme:error:tls",
            Self::Unauthorized => "urn:ietf:params:acme:error:unauthorized",
            Self::UnsupportedContact => "urn:ietf:params:acme:error:unsupportedContact",
            Self::UnsupportedIdentifier => "urn:ietf:params:acme:error:unsupportedIdentifier",
            Self::UserActionRequired => "urn:ietf:params:acme:error:userActionRequired",
        }
    }

    /// The type for a URN; the `malformed` URN gives
    /// [`ProblemType::Malformed`] (never `Conflict`).
    pub fn from_urn(urn: &str) -> Option<Self> {
        let name = urn.strip_prefix(URN_PREFIX)?;
        Self::ALL
            .into_iter()
            .find(|t| *t != Self::Conflict && t.name() == name)
    }

    /// The HTTP status used when this is the top-level problem of a response.
    pub fn default_status(&self) -> u16 {
        match self {
            Self::Unauthorized | Self::OrderNotReady | Self::Caa | Self::UserActionRequired => 403,
            Self::AlreadyReplaced | Self::Conflict => 409,
            Self::RateLimited => 429,
            Self::ServerInternal => 500,
            Self::AccountDoesNotExist
            | Self::AlreadyRevoked
            | Self::BadCsr
            | Self::BadNonce
            | Self::BadPublicKey
            | Self::BadRevocationReason
            | Self::BadSignatureAlgorithm
            | Self::Compound
            | Self::Connection
            | Self::Dns
            | Self::ExternalAccountRequired
            | Self::IncorrectResponse
            | Self::InvalidContact
            | Self::InvalidProfile
            | Self::Malformed
            | Self::RejectedIdentifier
            | Self::Tls
            | Self::UnsupportedContact
            | Self::UnsupportedIdentifier => 400,
        }
    }
}

impl fmt::Display for ProblemType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.urn())
    }
}

impl Serialize for ProblemType {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.urn())
    }
}

impl<'de> Deserialize<'de> for ProblemType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let urn = String::deserialize(d)?;
        Self::from_urn(&urn)
            .ok_or_else(|| D::Error::custom(format!("unknown ACME problem type \"{urn}\"")))
    }
}

/// A per-identifier problem inside a compound problem (RFC 8555 §6.7.1).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subproblem {
    /// The problem type (`type` on the wire).
    #[serde(rename = "type")]
    pub kind: ProblemType,
    /// Human-readable explanation.
    #[serde(default)]
    pub detail: String,
    /// The identifier this subproblem is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Identifier>,
}

impl Subproblem {
    /// A subproblem about `identifier`.
    pub fn new(kind: ProblemType, detail: impl Into<String>, identifier: Identifier) -> Self {
        Self {
            kind,
            detail: detail.into(),
            identifier: Some(identifier),
        }
    }

    fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("type".into(), Value::from(self.kind.urn()));
        m.insert("detail".into(), Value::from(self.detail.clone()));
        if let Some(id) = &self.identifier {
            let mut idm = Map::new();
            idm.insert("type".into(), Value::from(id.kind.clone()));
            idm.insert("value".into(), Value::from(id.value.clone()));
            m.insert("identifier".into(), Value::Object(idm));
        }
        Value::Object(m)
    }
}

/// An ACME problem document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The problem type.
    pub kind: ProblemType,
    /// Human-readable explanation.
    pub detail: String,
    /// The HTTP status code.
    pub status: u16,
    /// Per-identifier problems; omitted from JSON when empty.
    pub subproblems: Vec<Subproblem>,
    /// A URL with more information (for `userActionRequired`); omitted when
    /// `None`.
    pub instance: Option<String>,
    /// Seconds after which the client may try again, sent as the HTTP
    /// `Retry-After` header (not part of the JSON document); set on
    /// `rateLimited` refusals.
    pub retry_after: Option<u64>,
}

impl Problem {
    /// A problem with the type's default status and no subproblems.
    pub fn new(kind: ProblemType, detail: impl Into<String>) -> Self {
        Self {
            kind,
            detail: detail.into(),
            status: kind.default_status(),
            subproblems: Vec::new(),
            instance: None,
            retry_after: None,
        }
    }

    /// Sets the `Retry-After` delay, in seconds.
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// Overrides the HTTP status.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    /// Sets the subproblems.
    pub fn with_subproblems(mut self, subproblems: Vec<Subproblem>) -> Self {
        self.subproblems = subproblems;
        self
    }

    /// Sets the `instance` URL.
    pub fn with_instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// The JSON document: `type`, `detail`, `status`, `subproblems` (only
    /// when non-empty), `instance` (only when set). A
    /// `badSignatureAlgorithm` problem also carries `algorithms`, the list of
    /// supported JWS algorithms RFC 8555 §6.2 requires.
    pub fn to_json(&self) -> Value {
        let mut m = Map::new();
        m.insert("type".into(), Value::from(self.kind.urn()));
        m.insert("detail".into(), Value::from(self.detail.clone()));
        m.insert("status".into(), Value::from(self.status));
        if !self.subproblems.is_empty() {
            let subs = self.subproblems.iter().map(Subproblem::to_json).collect();
            m.insert("subproblems".into(), Value::Array(subs));
        }
        if let Some(instance) = &self.instance {
            m.insert("instance".into(), Value::from(instance.clone()));
        }
        if self.kind == ProblemType::BadSignatureAlgorithm {
            let algs = Algorithm::ALL.map(|a| Value::from(a.name())).to_vec();
            m.insert("algorithms".into(), Value::Array(algs));
        }
        Value::Object(m)
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.kind.urn(), self.status, self.detail)
    }
}

impl Serialize for Problem {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

/// The wire form, for deserialization.
#[derive(Deserialize)]
struct ProblemRepr {
    #[serde(rename = "type")]
    kind: ProblemType,
    #[serde(default)]
    detail: String,
    status: Option<u16>,
    #[serde(default)]
    subproblems: Vec<Subproblem>,
    instance: Option<String>,
}

impl<'de> Deserialize<'de> for Problem {
    /// Reads a problem document. A missing `status` takes the type's default;
    /// `malformed` with status 409 reads back as [`ProblemType::Conflict`].
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = ProblemRepr::deserialize(d)?;
        let status = r.status.unwrap_or_else(|| r.kind.default_status());
        let kind = match r.kind {
            ProblemType::Malformed if status == 409 => ProblemType::Conflict,
            k => k,
        };
        Ok(Problem {
            kind,
            detail: r.detail,
            status,
            subproblems: r.subproblems,
            instance: r.instance,
            retry_after: None,
        })
    }
}

impl From<WireError> for Problem {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Malformed(detail) => Problem::new(ProblemType::Malformed, detail),
            WireError::BadSignatureAlgorithm(detail) => {
                let list = Algorithm::supported_list();
                let detail = if detail.contains(&list) {
                    detail
                } else {
                    format!("{detail}; supported algorithms: {list}")
                };
                Problem::new(ProblemType::BadSignatureAlgorithm, detail)
            }
            WireError::BadSignature => {
                Problem::new(ProblemType::Malformed, "JWS signature invalid")
            }
            WireError::BadPublicKey(detail) => Problem::new(ProblemType::BadPublicKey, detail),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn urns_and_statuses_for_every_type() {
        let expected: [(ProblemType, &str, u16); 27] = [
            (ProblemType::AccountDoesNotExist, "accountDoesNotExist", 400),
            (ProblemType::AlreadyReplaced, "alreadyReplaced", 409),
            (ProblemType::AlreadyRevoked, "alreadyRevoked", 400),
            (ProblemType::BadCsr, "badCSR", 400),
            (ProblemType::BadNonce, "badNonce", 400),
            (ProblemType::BadPublicKey, "badPublicKey", 400),
            (ProblemType::BadRevocationReason, "badRevocationReason", 400),
            (
                ProblemType::BadSignatureAlgorithm,
                "badSignatureAlgorithm",
                400,
            ),
            (ProblemType::Caa, "caa", 403),
            (ProblemType::Compound, "compound", 400),
            (ProblemType::Connection, "connection", 400),
            (ProblemType::Dns, "dns", 400),
            (
                ProblemType::ExternalAccountRequired,
                "externalAccountRequired",
                400,
            ),
            (ProblemType::IncorrectResponse, "incorrectResponse", 400),
            (ProblemType::InvalidContact, "invalidContact", 400),
            (ProblemType::InvalidProfile, "invalidProfile", 400),
            (ProblemType::Malformed, "malformed", 400),
            (ProblemType::OrderNotReady, "orderNotReady", 403),
            (ProblemType::RateLimited, "rateLimited", 429),
            (ProblemType::RejectedIdentifier, "rejectedIdentifier", 400),
            (ProblemType::ServerInternal, "serverInternal", 500),
            (ProblemType::Tls, "tls", 400),
            (ProblemType::Unauthorized, "unauthorized", 403),
            (ProblemType::UnsupportedContact, "unsupportedContact", 400),
            (
                ProblemType::UnsupportedIdentifier,
                "unsupportedIdentifier",
                400,
            ),
            (ProblemType::UserActionRequired, "userActionRequired", 403),
            (ProblemType::Conflict, "malformed", 409),
        ];
        assert_eq!(expected.map(|e| e.0), ProblemType::ALL);
        for (kind, name, status) in expected {
            let urn = format!("urn:ietf:params:acme:error:{name}");
            assert_eq!(kind.urn(), urn);
            assert_eq!(kind.name(), name);
            assert_eq!(kind.to_string(), urn);
            assert_eq!(kind.default_status(), status, "{name}");
            let p = Problem::new(kind, "why").to_json();
            assert_eq!(p["type"], urn.as_str());
            assert_eq!(p["status"], status);
            assert_eq!(p["detail"], "why");
            if kind != ProblemType::Conflict {
                assert_eq!(ProblemType::from_urn(&urn), Some(kind));
            }
        }
        assert_eq!(
            ProblemType::from_urn("urn:ietf:params:acme:error:malformed"),
            Some(ProblemType::Malformed)
        );
        assert_eq!(
            ProblemType::from_urn("urn:ietf:params:acme:error:nope"),
            None
        );
        assert_eq!(ProblemType::from_urn("badNonce"), None);
    }

    #[test]
    fn json_shape_minimal() {
        let p = Problem::new(ProblemType::BadNonce, "stale nonce");
        assert_eq!(
            p.to_json(),
            json!({"type": "urn:ietf:params:acme:error:badNonce", "detail": "stale nonce", "status": 400})
        );
        assert_eq!(serde_json::to_value(&p).unwrap(), p.to_json());
    }

    #[test]
    fn json_shape_full() {
        let p = Problem::new(ProblemType::RejectedIdentifier, "2 identifiers refused")
            .with_status(403)
            .with_subproblems(vec![
                Subproblem::new(
                    ProblemType::RejectedIdentifier,
                    "not in scope",
                    Identifier::dns("evil.example"),
                ),
                Subproblem {
                    kind: ProblemType::UnsupportedIdentifier,
                    detail: "ip not supported".into(),
                    identifier: None,
                },
            ])
            .with_instance("https://acme.example/help");
        assert_eq!(
            p.to_json(),
            json!({
                "type": "urn:ietf:params:acme:error:rejectedIdentifier",
                "detail": "2 identifiers refused",
                "status": 403,
                "instance": "https://acme.example/help",
                "subproblems": [
                    {
                        "type": "urn:ietf:params:acme:error:rejectedIdentifier",
                        "detail": "not in scope",
                        "identifier": {"type": "dns", "value": "evil.example"}
                    },
                    {
                        "type": "urn:ietf:params:acme:error:unsupportedIdentifier",
                        "detail": "ip not supported"
                    }
                ]
            })
        );
        let back: Problem = serde_json::from_value(p.to_json()).unwrap();
        assert_eq!(back, p);
    }

    #[test]
    fn round_trip_every_type() {
        for kind in ProblemType::ALL {
            let p = Problem::new(kind, format!("detail of {}", kind.name()));
            let text = serde_json::to_string(&p).unwrap();
            let back: Problem = serde_json::from_str(&text).unwrap();
            assert_eq!(back, p, "{text}");
        }
    }

    #[test]
    fn conflict_is_malformed_409() {
        let p = Problem::new(ProblemType::Conflict, "key already in use");
        let v = p.to_json();
        assert_eq!(v["type"], "urn:ietf:params:acme:error:malformed");
        assert_eq!(v["status"], 409);
    }

    #[test]
    fn bad_signature_algorithm_lists_algorithms() {
        let v = Problem::new(ProblemType::BadSignatureAlgorithm, "x").to_json();
        assert_eq!(
            v["algorithms"],
            json!(["RS256", "ES256", "ES384", "ES512", "EdDSA"])
        );
        let back: Problem = serde_json::from_value(v).unwrap();
        assert_eq!(back.kind, ProblemType::BadSignatureAlgorithm);
    }

    #[test]
    fn deserialize_defaults_and_errors() {
        let p: Problem =
            serde_json::from_value(json!({"type": "urn:ietf:params:acme:error:rateLimited"}))
                .unwrap();
        assert_eq!((p.status, p.detail.as_str()), (429, ""));
        assert!(serde_json::from_value::<Problem>(json!({"type": "about:blank"})).is_err());
        assert!(serde_json::from_value::<Problem>(json!({"detail": "x"})).is_err());
    }

    #[test]
    fn from_wire_error() {
        let p = Problem::from(WireError::Malformed("bad json".into()));
        assert_eq!(
            (p.kind, p.status, p.detail.as_str()),
            (ProblemType::Malformed, 400, "bad json")
        );

        let p = Problem::from(WireError::BadSignature);
        assert_eq!(p.kind, ProblemType::Malformed);
        assert_eq!(p.detail, "JWS signature invalid");

        let p = Problem::from(WireError::BadPublicKey("RSA too small".into()));
        assert_eq!(
            (p.kind, p.detail.as_str()),
            (ProblemType::BadPublicKey, "RSA too small")
        );

        let p = Problem::from(WireError::BadSignatureAlgorithm("HS256 refused".into()));
        assert_eq!(p.kind, ProblemType::BadSignatureAlgorithm);
        assert!(
            p.detail.contains("RS256, ES256, ES384, ES512, EdDSA"),
            "{}",
            p.detail
        );
        assert!(p.detail.starts_with("HS256 refused"));
    }

    #[test]
    fn display() {
        let p = Problem::new(ProblemType::Unauthorized, "not yours");
        assert_eq!(
            p.to_string(),
            "urn:ietf:params:acme:error:unauthorized (403): not yours"
        );
    }
}
