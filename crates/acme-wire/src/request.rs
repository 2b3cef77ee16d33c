//! Request payloads (RFC 8555 §7.3–§7.6, RFC 9773, ACME profiles draft).
//!
//! Member names are camelCase; unknown members are ignored, as RFC 8555 §7.3
//! requires. Duplicate members are refused.

use serde::Deserialize;
use serde_json::Value;

use crate::Identifier;

/// `POST new-account` (RFC 8555 §7.3).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewAccountRequest {
    /// Contact URLs, e.g. "mailto:admin@example.org".
    #[serde(default)]
    pub contact: Option<Vec<String>>,
    /// Agreement to the terms of service.
    #[serde(default)]
    pub terms_of_service_agreed: Option<bool>,
    /// Only look up an existing account for the key; never create one.
    #[serde(default)]
    pub only_return_existing: Option<bool>,
    /// External account binding: a flattened JWS (see
    /// [`ExternalAccountBinding`](crate::ExternalAccountBinding)).
    #[serde(default)]
    pub external_account_binding: Option<Value>,
}

/// `POST acct/{id}` with a payload: contact update or deactivation
/// (RFC 8555 §7.3.2, §7.3.6).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccountUpdateRequest {
    /// New contact URLs (replaces the whole list).
    #[serde(default)]
    pub contact: Option<Vec<String>>,
    /// "deactivated" to deactivate the account.
    #[serde(default)]
    pub status: Option<String>,
    /// Agreement to (updated) terms of service.
    #[serde(default)]
    pub terms_of_service_agreed: Option<bool>,
}

/// `POST new-order` (RFC 8555 §7.4, RFC 9773 §5, ACME profiles draft).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewOrderRequest {
    /// The identifiers the certificate is for.
    pub identifiers: Vec<Identifier>,
    /// Requested notBefore (RFC 3339).
    #[serde(default)]
    pub not_before: Option<String>,
    /// Requested notAfter (RFC 3339).
    #[serde(default)]
    pub not_after: Option<String>,
    /// ARI CertID of the certificate this order replaces.
    #[serde(default)]
    pub replaces: Option<String>,
    /// Requested profile name.
    #[serde(default)]
    pub profile: Option<String>,
}

/// `POST finalize/{id}` (RFC 8555 §7.4).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FinalizeRequest {
    /// base64url DER PKCS#10 CSR.
    pub csr: String,
}

/// `POST revoke-cert` (RFC 8555 §7.6).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevocationRequest {
    /// base64url DER certificate.
    pub certificate: String,
    /// RFC 5280 CRLReason code.
    #[serde(default)]
    pub reason: Option<u32>,
}

/// Payload of the inner JWS of `POST key-change` (RFC 8555 §7.3.5).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeyChangeRequest {
    /// The account URL.
    pub account: String,
    /// The current account key, as a JWK (parse with
    /// [`Jwk::from_json`](crate::Jwk::from_json)).
    pub old_key: Value,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Jwk;

    fn parse<T: serde::de::DeserializeOwned>(s: &str) -> Result<T, crate::WireError> {
        // Through the same path the server uses: Jws::payload_json.
        let key = crate::test_keys::ed25519();
        let h = serde_json::json!({"alg": "EdDSA", "kid": "k"});
        let body = crate::test_keys::jws_body(&key, &h, s.as_bytes());
        crate::Jws::parse(&body).unwrap().payload_json()
    }

    #[test]
    fn certbot_new_account() {
        let r: NewAccountRequest =
            parse(r#"{"contact": ["mailto:admin@example.org"], "termsOfServiceAgreed": true}"#)
                .unwrap();
        assert_eq!(r.contact.unwrap(), ["mailto:admin@example.org"]);
        assert_eq!(r.terms_of_service_agreed, Some(true));
        assert_eq!(r.only_return_existing, None);
        assert_eq!(r.external_account_binding, None);
    }

    #[test]
    fn lego_new_account_with_eab_and_unknown_fields() {
        let r: NewAccountRequest = parse(
            r#"{"termsOfServiceAgreed":true,"contact":[],"externalAccountBinding":{"protected":"e30","payload":"e30","signature":"AA"},"x-vendor":{"a":1}}"#,
        )
        .unwrap();
        assert_eq!(r.contact, Some(vec![]));
        assert_eq!(r.external_account_binding.unwrap()["payload"], "e30");
    }

    #[test]
    fn only_return_existing_and_empty() {
        let r: NewAccountRequest = parse(r#"{"onlyReturnExisting": true}"#).unwrap();
        assert_eq!(r.only_return_existing, Some(true));
        let r: NewAccountRequest = parse("{}").unwrap();
        assert_eq!(r, NewAccountRequest::default());
        let r: NewAccountRequest = parse(r#"{"contact": null}"#).unwrap();
        assert_eq!(r.contact, None);
    }

    #[test]
    fn wrong_types_name_the_field() {
        let e = parse::<NewAccountRequest>(r#"{"contact": "mailto:a@b"}"#).unwrap_err();
        assert!(e.to_string().contains("invalid type"), "{e}");
        let e = parse::<NewAccountRequest>(r#"{"termsOfServiceAgreed": "yes"}"#).unwrap_err();
        assert!(e.to_string().contains("invalid type"), "{e}");
        let e = parse::<NewAccountRequest>(r#"{"contact": [], "contact": []}"#).unwrap_err();
        assert!(e.to_string().contains("duplicate field `contact`"), "{e}");
    }

    #[test]
    fn account_update() {
        let r: AccountUpdateRequest = parse(r#"{"status": "deactivated"}"#).unwrap();
        assert_eq!(r.status.as_deref(), Some("deactivated"));
        let r: AccountUpdateRequest =
            parse(r#"{"contact": ["mailto:new@example.org"], "termsOfServiceAgreed": true}"#)
                .unwrap();
        assert_eq!(r.contact.unwrap(), ["mailto:new@example.org"]);
        assert_eq!(r.terms_of_service_agreed, Some(true));
    }

    #[test]
    fn new_order_certbot_style() {
        let r: NewOrderRequest = parse(
            r#"{"identifiers": [{"type": "dns", "value": "example.org"}, {"type": "dns", "value": "*.example.org"}]}"#,
        )
        .unwrap();
        assert_eq!(
            r.identifiers,
            [
                Identifier::dns("example.org"),
                Identifier::dns("*.example.org")
            ]
        );
        assert_eq!(
            (r.not_before, r.not_after, r.replaces, r.profile),
            (None, None, None, None)
        );
    }

    #[test]
    fn new_order_full() {
        let r: NewOrderRequest = parse(
            r#"{"identifiers":[{"type":"dns","value":"a.example"}],"notBefore":"2025-01-01T00:00:00Z","notAfter":"2025-01-08T00:00:00Z","replaces":"aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE","profile":"shortlived"}"#,
        )
        .unwrap();
        assert_eq!(r.not_before.as_deref(), Some("2025-01-01T00:00:00Z"));
        assert_eq!(r.not_after.as_deref(), Some("2025-01-08T00:00:00Z"));
        assert_eq!(
            r.replaces.as_deref(),
            Some("aYhba4dGQEHhs3uEe6CuLN4ByNQ.AIdlQyE")
        );
        assert_eq!(r.profile.as_deref(), Some("shortlived"));
    }

    #[test]
    fn new_order_requires_identifiers() {
        let e = parse::<NewOrderRequest>(r#"{"notAfter": "x"}"#).unwrap_err();
        assert!(e.to_string().contains("missing field `identifiers`"), "{e}");
        let e = parse::<NewOrderRequest>(r#"{"identifiers": [{"type": "dns"}]}"#).unwrap_err();
        assert!(e.to_string().contains("`value`"), "{e}");
    }

    #[test]
    fn finalize_and_revocation() {
        let r: FinalizeRequest = parse(r#"{"csr": "MIIBkzCB_QIBADAA"}"#).unwrap();
        assert_eq!(r.csr, "MIIBkzCB_QIBADAA");
        assert!(parse::<FinalizeRequest>("{}").is_err());
        let r: RevocationRequest = parse(r#"{"certificate": "MIIB", "reason": 4}"#).unwrap();
        assert_eq!((r.certificate.as_str(), r.reason), ("MIIB", Some(4)));
        let r: RevocationRequest = parse(r#"{"certificate": "MIIB"}"#).unwrap();
        assert_eq!(r.reason, None);
        assert!(parse::<RevocationRequest>(r#"{"certificate": "MIIB", "reason": -1}"#).is_err());
    }

    #[test]
    fn key_change() {
        let jwk = crate::test_keys::p256().public;
        let payload = serde_json::json!({
            "account": "https://acme.example/acme/acct/7",
            "oldKey": jwk.to_json(),
        });
        let r: KeyChangeRequest = parse(&payload.to_string()).unwrap();
        assert_eq!(r.account, "https://acme.example/acme/acct/7");
        assert_eq!(Jwk::from_json(&r.old_key).unwrap(), jwk);
    }
}
