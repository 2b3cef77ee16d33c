//! Protocol rules of RFC 8555 at the edges: `alg: none`, a certificate key
//! equal to the account key, a backdated notBefore, the base URL of an
//! HTTP/2 request, and key types an authority cannot issue for.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::raw::{Key, Raw, Resp};
use common::{csr, ready_order, Harness};
use http::StatusCode;
use serde_json::{json, Value};

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

async fn finalize_with(raw: &Raw, key: &Key, kid: &str, order: &Value, der: &[u8]) -> Resp {
    let body = json!({"csr": b64(der)}).to_string();
    raw.post(key, Some(kid), order["finalize"].as_str().unwrap(), &body)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_csr_with_the_account_key_is_a_bad_public_key() {
    let h = Harness::start().await;
    let raw = raw_for(&h);
    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    let order = ready_order(&h, &raw, &key, &kid, &["same-key.test"]).await;
    let account_key = rcgen::KeyPair::try_from(key.pkcs8()).unwrap();
    let mut params = rcgen::CertificateParams::new(vec!["same-key.test".to_string()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    let der = params
        .serialize_request(&account_key)
        .unwrap()
        .der()
        .to_vec();
    let r = finalize_with(&raw, &key, &kid, &order, &der).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json());
    assert_eq!(r.problem_type(), "badPublicKey", "{}", r.json());
    assert!(
        r.json()["detail"].as_str().unwrap().contains("account key"),
        "{}",
        r.json()
    );
    // The refusal left the order ready: a CSR with another key finalizes.
    let (der, _) = csr(&["same-key.test"], &rcgen::PKCS_ECDSA_P256_SHA256);
    let r = finalize_with(&raw, &key, &kid, &order, &der).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
}
