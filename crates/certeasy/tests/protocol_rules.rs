//! Protocol rules of RFC 8555 at the edges: `alg: none`, a certificate key
//! equal to the account key, a backdated notBefore, the base URL of an
//! HTTP/2 request, and key types an authority cannot issue for.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::raw::{Key, Raw};
use common::Harness;
use http::StatusCode;
use serde_json::json;

fn raw_for(h: &Harness) -> Raw {
    Raw::new(h.server().addr, &h.base(), &h.root_pem())
}

fn b64(data: &[u8]) -> String {
    acme_wire::b64u_encode(data)
}

#[tokio::test]
async fn alg_none_is_a_bad_signature_algorithm_with_the_supported_list() {
    let h = Harness::start().await;
    let raw = raw_for(&h);
    let key = Key::generate();
    let url = raw.url("new-account");
    let header = json!({"alg": "none", "nonce": raw.nonce().await, "url": url, "jwk": key.jwk()});
    // An unsecured JWS (RFC 7515 Appendix A.5): the signature is empty.
    let body = json!({
        "protected": b64(header.to_string().as_bytes()),
        "payload": b64(br#"{"termsOfServiceAgreed":true}"#),
        "signature": "",
    });
    let r = raw.post_raw(&url, body.to_string().into_bytes()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json());
    assert_eq!(r.problem_type(), "badSignatureAlgorithm", "{}", r.json());
    let algorithms = r.json()["algorithms"].clone();
    assert!(
        algorithms
            .as_array()
            .is_some_and(|a| a.contains(&json!("ES256"))),
        "{}",
        r.json()
    );
}
