//! ACME identifiers (RFC 8555 §7.1.3, §9.7.7).

use serde::{Deserialize, Serialize};

/// An identifier object: `{"type": "dns", "value": "example.org"}`.
///
/// Ordering is by type then value, so sets of identifiers sort
/// deterministically.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Identifier {
    /// The identifier type (`type` on the wire), e.g. "dns".
    #[serde(rename = "type")]
    pub kind: String,
    /// The identifier value, e.g. "www.example.org" or "*.example.org".
    pub value: String,
}

impl Identifier {
    /// The identifier type for DNS names.
    pub const DNS: &'static str = "dns";

    /// A `dns` identifier.
    pub fn dns(value: impl Into<String>) -> Self {
        Self {
            kind: Self::DNS.to_owned(),
            value: value.into(),
        }
    }

    /// True when the type is `dns`.
    pub fn is_dns(&self) -> bool {
        self.kind == Self::DNS
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn wire_form() {
        let id = Identifier::dns("example.org");
        assert!(id.is_dns());
        assert_eq!(
            serde_json::to_value(&id).unwrap(),
            json!({"type": "dns", "value": "example.org"})
        );
        let back: Identifier =
            serde_json::from_value(json!({"type": "dns", "value": "example.org", "x": 1})).unwrap();
        assert_eq!(back, id);
        let ip: Identifier =
            serde_json::from_value(json!({"type": "ip", "value": "192.0.2.1"})).unwrap();
        assert!(!ip.is_dns());
    }

    #[test]
    fn missing_members_refused() {
        assert!(serde_json::from_value::<Identifier>(json!({"type": "dns"})).is_err());
        assert!(serde_json::from_value::<Identifier>(json!({"value": "a"})).is_err());
    }

    #[test]
    fn ordering() {
        let mut v = [
            Identifier::dns("b.example"),
            Identifier {
                kind: "ip".into(),
                value: "192.0.2.1".into(),
            },
            Identifier::dns("a.example"),
        ];
        v.sort();
        assert_eq!(v[0], Identifier::dns("a.example"));
        assert_eq!(v[2].kind, "ip");
    }
}
