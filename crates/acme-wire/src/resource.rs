//! Resource representations the server returns (RFC 8555 §7.1, RFC 9773 §4).
//!
//! camelCase member names; `Option` members are omitted when `None`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    AccountStatus, AuthorizationStatus, ChallengeStatus, Identifier, OrderStatus, Problem,
};

/// The directory's `meta` object (RFC 8555 §7.1.1).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DirectoryMeta {
    /// URL of the current terms of service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms_of_service: Option<String>,
    /// URL of a website about the CA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub website: Option<String>,
    /// CAA issuer domain names that refer to this CA; omitted when empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub caa_identities: Vec<String>,
    /// Whether new accounts need an external account binding.
    #[serde(default)]
    pub external_account_required: bool,
    /// Advertised profiles: name → human-readable description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profiles: Option<BTreeMap<String, String>>,
}

/// The directory (RFC 8555 §7.1.1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Directory {
    /// new-nonce URL.
    pub new_nonce: String,
    /// new-account URL.
    pub new_account: String,
    /// new-order URL.
    pub new_order: String,
    /// revoke-cert URL.
    pub revoke_cert: String,
    /// key-change URL.
    pub key_change: String,
    /// ARI base URL (RFC 9773).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal_info: Option<String>,
    /// Pre-authorization URL (not offered when `None`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub new_authz: Option<String>,
    /// Metadata.
    #[serde(default)]
    pub meta: DirectoryMeta,
}

/// An account object (RFC 8555 §7.1.2).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountResource {
    /// The account's status.
    pub status: AccountStatus,
    /// Contact URLs; always present, possibly empty.
    #[serde(default)]
    pub contact: Vec<String>,
    /// Whether the terms of service were agreed to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub terms_of_service_agreed: Option<bool>,
    /// URL of the account's orders list.
    pub orders: String,
    /// The external account binding the account was created with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_account_binding: Option<Value>,
}

/// An order object (RFC 8555 §7.1.3).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderResource {
    /// The order's status.
    pub status: OrderStatus,
    /// Expiry (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// The identifiers of the order.
    pub identifiers: Vec<Identifier>,
    /// Requested notBefore (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_before: Option<String>,
    /// Requested notAfter (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_after: Option<String>,
    /// Why the order is invalid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
    /// Authorization URLs.
    pub authorizations: Vec<String>,
    /// Finalize URL.
    pub finalize: String,
    /// Certificate URL, once issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub certificate: Option<String>,
    /// ARI CertID of the replaced certificate (RFC 9773).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaces: Option<String>,
    /// Profile name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<String>,
}

/// A challenge object (RFC 8555 §7.1.5, §8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChallengeResource {
    /// "http-01", "dns-01" or "tls-alpn-01" (`type` on the wire).
    #[serde(rename = "type")]
    pub kind: String,
    /// Challenge URL.
    pub url: String,
    /// The challenge's status.
    pub status: ChallengeStatus,
    /// The challenge token.
    pub token: String,
    /// Validation time (RFC 3339), when valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validated: Option<String>,
    /// Why validation failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Problem>,
}

/// An authorization object (RFC 8555 §7.1.4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuthorizationResource {
    /// The identifier (without the "*." of a wildcard).
    pub identifier: Identifier,
    /// The authorization's status.
    pub status: AuthorizationStatus,
    /// Expiry (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<String>,
    /// The challenges.
    pub challenges: Vec<ChallengeResource>,
    /// True for the authorization of a wildcard name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wildcard: Option<bool>,
}

/// An orders list (RFC 8555 §7.1.2.1).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrdersList {
    /// Order URLs.
    pub orders: Vec<String>,
}

/// The ARI suggested renewal window (RFC 9773 §4.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuggestedWindow {
    /// Window start (RFC 3339).
    pub start: String,
    /// Window end (RFC 3339).
    pub end: String,
}

/// An ARI renewal information object (RFC 9773 §4.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenewalInfo {
    /// When to renew.
    pub suggested_window: SuggestedWindow,
    /// A page explaining the suggestion (`explanationURL` on the wire).
    #[serde(
        rename = "explanationURL",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub explanation_url: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ProblemType;
    use serde_json::json;

    fn directory() -> Directory {
        Directory {
            new_nonce: "https://a/acme/new-nonce".into(),
            new_account: "https://a/acme/new-account".into(),
            new_order: "https://a/acme/new-order".into(),
            revoke_cert: "https://a/acme/revoke-cert".into(),
            key_change: "https://a/acme/key-change".into(),
            renewal_info: Some("https://a/acme/renewal-info".into()),
            new_authz: None,
            meta: DirectoryMeta {
                terms_of_service: Some("https://a/tos".into()),
                website: None,
                caa_identities: vec!["a.example".into()],
                external_account_required: true,
                profiles: Some(BTreeMap::from([(
                    "shortlived".to_owned(),
                    "6-day certificates".to_owned(),
                )])),
            },
        }
    }

    #[test]
    fn directory_json() {
        let d = directory();
        assert_eq!(
            serde_json::to_value(&d).unwrap(),
            json!({
                "newNonce": "https://a/acme/new-nonce",
                "newAccount": "https://a/acme/new-account",
                "newOrder": "https://a/acme/new-order",
                "revokeCert": "https://a/acme/revoke-cert",
                "keyChange": "https://a/acme/key-change",
                "renewalInfo": "https://a/acme/renewal-info",
                "meta": {
                    "termsOfService": "https://a/tos",
                    "caaIdentities": ["a.example"],
                    "externalAccountRequired": true,
                    "profiles": {"shortlived": "6-day certificates"}
                }
            })
        );
        let back: Directory = serde_json::from_value(serde_json::to_value(&d).unwrap()).unwrap();
        assert_eq!(back, d);
    }

    #[test]
    fn directory_meta_minimal() {
        let v = serde_json::to_value(DirectoryMeta::default()).unwrap();
        assert_eq!(v, json!({"externalAccountRequired": false}));
    }

    #[test]
    fn account_json() {
        let a = AccountResource {
            status: AccountStatus::Valid,
            contact: vec![],
            terms_of_service_agreed: None,
            orders: "https://a/acme/acct/1/orders".into(),
            external_account_binding: None,
        };
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            json!({"status": "valid", "contact": [], "orders": "https://a/acme/acct/1/orders"})
        );
        let a = AccountResource {
            terms_of_service_agreed: Some(true),
            contact: vec!["mailto:a@example.org".into()],
            external_account_binding: Some(json!({"protected": "x"})),
            ..a
        };
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["termsOfServiceAgreed"], true);
        assert_eq!(v["contact"][0], "mailto:a@example.org");
        assert_eq!(v["externalAccountBinding"]["protected"], "x");
    }

    #[test]
    fn order_json() {
        let o = OrderResource {
            status: OrderStatus::Pending,
            expires: Some("2025-01-08T00:00:00Z".into()),
            identifiers: vec![Identifier::dns("a.example")],
            not_before: None,
            not_after: None,
            error: None,
            authorizations: vec!["https://a/acme/authz/1".into()],
            finalize: "https://a/acme/finalize/1".into(),
            certificate: None,
            replaces: None,
            profile: None,
        };
        assert_eq!(
            serde_json::to_value(&o).unwrap(),
            json!({
                "status": "pending",
                "expires": "2025-01-08T00:00:00Z",
                "identifiers": [{"type": "dns", "value": "a.example"}],
                "authorizations": ["https://a/acme/authz/1"],
                "finalize": "https://a/acme/finalize/1"
            })
        );
        let o = OrderResource {
            status: OrderStatus::Invalid,
            error: Some(Problem::new(ProblemType::BadCsr, "key too small")),
            not_before: Some("nb".into()),
            not_after: Some("na".into()),
            certificate: Some("https://a/acme/cert/1".into()),
            replaces: Some("abc.def".into()),
            profile: Some("classic".into()),
            ..o
        };
        let v = serde_json::to_value(&o).unwrap();
        assert_eq!(v["error"]["type"], "urn:ietf:params:acme:error:badCSR");
        assert_eq!(v["error"]["status"], 400);
        assert_eq!(v["notBefore"], "nb");
        assert_eq!(v["notAfter"], "na");
        assert_eq!(v["certificate"], "https://a/acme/cert/1");
        assert_eq!(v["replaces"], "abc.def");
        assert_eq!(v["profile"], "classic");
        let back: OrderResource = serde_json::from_value(v).unwrap();
        assert_eq!(back, o);
    }

    #[test]
    fn authorization_and_challenge_json() {
        let a = AuthorizationResource {
            identifier: Identifier::dns("example.org"),
            status: AuthorizationStatus::Pending,
            expires: None,
            challenges: vec![ChallengeResource {
                kind: "dns-01".into(),
                url: "https://a/acme/chall/1".into(),
                status: ChallengeStatus::Invalid,
                token: "tok".into(),
                validated: None,
                error: Some(Problem::new(ProblemType::Dns, "NXDOMAIN")),
            }],
            wildcard: Some(true),
        };
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            json!({
                "identifier": {"type": "dns", "value": "example.org"},
                "status": "pending",
                "challenges": [{
                    "type": "dns-01",
                    "url": "https://a/acme/chall/1",
                    "status": "invalid",
                    "token": "tok",
                    "error": {"type": "urn:ietf:params:acme:error:dns", "detail": "NXDOMAIN", "status": 400}
                }],
                "wildcard": true
            })
        );
        let c = ChallengeResource {
            kind: "http-01".into(),
            url: "u".into(),
            status: ChallengeStatus::Valid,
            token: "t".into(),
            validated: Some("2025-01-01T00:00:00Z".into()),
            error: None,
        };
        let v = serde_json::to_value(&c).unwrap();
        assert_eq!(v["validated"], "2025-01-01T00:00:00Z");
        assert!(v.get("error").is_none());
    }

    #[test]
    fn orders_list_and_renewal_info() {
        let l = OrdersList {
            orders: vec!["https://a/acme/order/1".into()],
        };
        assert_eq!(
            serde_json::to_value(&l).unwrap(),
            json!({"orders": ["https://a/acme/order/1"]})
        );
        let r = RenewalInfo {
            suggested_window: SuggestedWindow {
                start: "2025-01-02T04:00:00Z".into(),
                end: "2025-01-03T04:00:00Z".into(),
            },
            explanation_url: Some("https://a/docs/ari".into()),
        };
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({
                "suggestedWindow": {"start": "2025-01-02T04:00:00Z", "end": "2025-01-03T04:00:00Z"},
                "explanationURL": "https://a/docs/ari"
            })
        );
        let r = RenewalInfo {
            explanation_url: None,
            ..r
        };
        assert!(serde_json::to_value(&r)
            .unwrap()
            .get("explanationURL")
            .is_none());
    }
}
