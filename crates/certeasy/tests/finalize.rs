//! Finalize, challenges and the job hand-off: a fast CA issues within the
//! finalize request, a quick validation ends within the challenge POST;
//! with a short `finalize-wait` the client polls until the order is valid.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::time::Duration;

use common::raw::{Key, Raw};
use common::{answer_http01, csr, new_order, ready_order, Harness, Options};
use http::StatusCode;
use serde_json::{json, Value};

async fn finalize(raw: &Raw, key: &Key, kid: &str, order: &Value, name: &str) -> (String, Value) {
    let (der, _) = csr(&[name], &rcgen::PKCS_ECDSA_P256_SHA256);
    let body = json!({"csr": acme_wire::b64u_encode(&der)}).to_string();
    let r = raw
        .post(key, Some(kid), order["finalize"].as_str().unwrap(), &body)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    (r.location(), r.json())
}

#[tokio::test]
async fn a_fast_ca_answers_finalize_with_the_valid_order_and_its_certificate() {
    let h = Harness::start().await;
    let raw = Raw::new(h.server().addr, &h.base(), &h.root_pem());
    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    let order = ready_order(&h, &raw, &key, &kid, &["sync.test"]).await;
    let (_, answer) = finalize(&raw, &key, &kid, &order, "sync.test").await;
    assert_eq!(answer["status"], json!("valid"), "{answer}");
    let cert_url = answer["certificate"].as_str().expect("certificate URL");
    let chain = raw.post(&key, Some(&kid), cert_url, "").await;
    assert_eq!(chain.status, StatusCode::OK);
}

/// A finalize repeated with the same CSR (the client's retry after a lost
/// answer) gets the order, not an error, and issues nothing more; another
/// CSR is refused with orderNotReady.
#[tokio::test]
async fn a_repeated_finalize_with_the_same_csr_answers_with_the_order() {
    let h = Harness::start().await;
    let raw = Raw::new(h.server().addr, &h.base(), &h.root_pem());
    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    let order = ready_order(&h, &raw, &key, &kid, &["again.test"]).await;
    let (der, _) = csr(&["again.test"], &rcgen::PKCS_ECDSA_P256_SHA256);
    let body = json!({"csr": acme_wire::b64u_encode(&der)}).to_string();
    let url = order["finalize"].as_str().unwrap();
    let first = raw.post(&key, Some(&kid), url, &body).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.json());
    let again = raw.post(&key, Some(&kid), url, &body).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.json());
    assert!(
        matches!(
            again.json()["status"].as_str(),
            Some("processing" | "valid")
        ),
        "{}",
        again.json()
    );
    let certs = h.server().ra.store.count_certs().await.unwrap();
    assert!(certs <= 1, "one certificate at most for the order: {certs}");
    let (other, _) = csr(&["again.test"], &rcgen::PKCS_ECDSA_P256_SHA256);
    let body = json!({"csr": acme_wire::b64u_encode(&other)}).to_string();
    let r = raw.post(&key, Some(&kid), url, &body).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.json());
    assert_eq!(r.problem_type(), "orderNotReady");
}

/// Orders `name` and answers its http-01 challenge (serving the key
/// authorization only when `serve`): the challenge POST's answer and the
/// order URL.
async fn answer_challenge(
    h: &Harness,
    raw: &Raw,
    key: &Key,
    kid: &str,
    name: &str,
    serve: bool,
) -> (Value, String) {
    let (order_url, order) = new_order(raw, key, kid, &[name]).await;
    let authz_url = order["authorizations"][0].as_str().unwrap();
    let r = answer_http01(h, raw, key, kid, authz_url, serve).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    (r.json(), order_url)
}

#[tokio::test]
async fn a_quick_validation_answers_the_challenge_post_with_its_outcome() {
    let h = Harness::start().await;
    let raw = Raw::new(h.server().addr, &h.base(), &h.root_pem());
    let key = Key::generate();
    let kid = raw.new_account(&key).await;

    let (answer, order_url) = answer_challenge(&h, &raw, &key, &kid, "quick.test", true).await;
    assert_eq!(answer["status"], json!("valid"), "{answer}");
    assert!(answer["validated"].is_string(), "{answer}");
    let order = raw.post(&key, Some(&kid), &order_url, "").await.json();
    assert_eq!(
        order["status"],
        json!("ready"),
        "the first poll finds it ready: {order}"
    );

    let (answer, order_url) = answer_challenge(&h, &raw, &key, &kid, "wrong.test", false).await;
    assert_eq!(answer["status"], json!("invalid"), "{answer}");
    assert!(answer["error"]["type"].is_string(), "{answer}");
    let order = raw.post(&key, Some(&kid), &order_url, "").await.json();
    assert_eq!(order["status"], json!("invalid"), "{order}");
}

#[tokio::test]
async fn with_a_short_finalize_wait_the_client_polls_and_every_order_completes() {
    let h = Harness::start_with(Options {
        workers_yaml: Some(
            "workers:\n  workers: 1\n  idle-max: 1s\n  lease: 10m\n  queue-size: 1\n  finalize-wait: 1ms\n"
                .into(),
        ),
        ..Options::default()
    })
    .await;
    let raw = Raw::new(h.server().addr, &h.base(), &h.root_pem());
    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    let names = ["q1.test", "q2.test", "q3.test"];
    let mut ready = Vec::new();
    for name in names {
        ready.push(ready_order(&h, &raw, &key, &kid, &[name]).await);
    }
    let mut orders = Vec::new();
    for (order, name) in ready.iter().zip(names) {
        let (url, answer) = finalize(&raw, &key, &kid, order, name).await;
        if answer["status"] == json!("processing") {
            let retry = raw.post(&key, Some(&kid), &url, "").await;
            assert!(
                retry.json()["status"] != json!("processing")
                    || retry.header("retry-after").is_some()
            );
        }
        orders.push(url);
    }
    for url in &orders {
        let mut state = Value::Null;
        for _ in 0..500 {
            state = raw.post(&key, Some(&kid), url, "").await.json();
            if state["status"] == json!("valid") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(state["status"], json!("valid"), "{state}");
    }
}

/// The EKU OIDs of a leaf, in order.
fn leaf_ekus(pem: &str) -> Vec<String> {
    use der::Decode;
    let leaf = common::pem_certs(pem).remove(0);
    let cert = x509_cert::Certificate::from_der(&leaf).unwrap();
    let ext = cert
        .tbs_certificate()
        .extensions()
        .unwrap()
        .iter()
        .find(|e| e.extn_id.to_string() == "2.5.29.37")
        .expect("an extKeyUsage");
    x509_cert::ext::pkix::ExtendedKeyUsage::from_der(ext.extn_value.as_bytes())
        .unwrap()
        .0
        .iter()
        .map(ToString::to_string)
        .collect()
}

/// A CSR asking for serverAuth + clientAuth, as several common clients send.
fn server_and_client_auth_csr(name: &str) -> Vec<u8> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
    let mut params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
    params.distinguished_name = rcgen::DistinguishedName::new();
    params.extended_key_usages = vec![
        rcgen::ExtendedKeyUsagePurpose::ServerAuth,
        rcgen::ExtendedKeyUsagePurpose::ClientAuth,
    ];
    params.serialize_request(&key).unwrap().der().to_vec()
}

const SERVER_AUTH: &str = "1.3.6.1.5.5.7.3.1";
const CLIENT_AUTH: &str = "1.3.6.1.5.5.7.3.2";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_auth_request_is_issued_with_the_policys_ekus() {
    // The policy does not allow clientAuth: the CSR is accepted (its EKU is
    // a request) and the certificate carries serverAuth only.
    let h = Harness::start().await;
    let account = h.account().await;
    let der = server_and_client_auth_csr("both.test");
    let pem = h
        .issue(
            &account,
            &["both.test"],
            instant_acme::ChallengeType::Http01,
            &der,
        )
        .await
        .unwrap();
    assert_eq!(leaf_ekus(&pem), vec![SERVER_AUTH]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_auth_is_granted_where_the_policy_allows_it() {
    let h = Harness::start_with(Options {
        policy_extra: "    csr:\n      allowed-extra-eku: [clientAuth]\n".into(),
        ..Options::default()
    })
    .await;
    let account = h.account().await;
    let der = server_and_client_auth_csr("granted.test");
    let pem = h
        .issue(
            &account,
            &["granted.test"],
            instant_acme::ChallengeType::Http01,
            &der,
        )
        .await
        .unwrap();
    assert_eq!(leaf_ekus(&pem), vec![SERVER_AUTH, CLIENT_AUTH]);
    // Not asked, not granted.
    let (plain, _) = csr(&["plain.test"], &rcgen::PKCS_ECDSA_P256_SHA256);
    let pem = h
        .issue(
            &account,
            &["plain.test"],
            instant_acme::ChallengeType::Http01,
            &plain,
        )
        .await
        .unwrap();
    assert_eq!(leaf_ekus(&pem), vec![SERVER_AUTH]);
}
