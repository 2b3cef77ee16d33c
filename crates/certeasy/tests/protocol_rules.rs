//! Protocol rules of RFC 8555 at the edges: `alg: none`, a certificate key
//! equal to the account key, a backdated notBefore, the base URL of an
//! HTTP/2 request, and key types an authority cannot issue for.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use common::lab::lab;
use common::raw::{Key, Raw, Resp};
use common::{binding, csr, ready_order, Harness, Options};
use http::StatusCode;
use serde_json::{json, Value};
use time::format_description::well_known::Rfc3339;

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

fn rfc3339_from_now(offset: time::Duration) -> String {
    (time::OffsetDateTime::now_utc() + offset)
        .format(&Rfc3339)
        .unwrap()
}

#[tokio::test]
async fn a_not_before_in_the_past_beyond_the_clock_skew_allowance_is_refused() {
    let h = Harness::start().await;
    let raw = raw_for(&h);
    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    let order = |not_before: String| {
        json!({"identifiers": [{"type": "dns", "value": "nb.test"}], "notBefore": not_before})
            .to_string()
    };
    let r = raw
        .post(
            &key,
            Some(&kid),
            &raw.url("new-order"),
            &order(rfc3339_from_now(-time::Duration::hours(1))),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json());
    assert_eq!(r.problem_type(), "malformed");
    let detail = r.json()["detail"].as_str().unwrap().to_string();
    assert!(
        detail.contains("notBefore") && detail.contains("5 minutes"),
        "{detail}"
    );
    // Within the allowance (a client clock a minute fast or slow): accepted.
    let r = raw
        .post(
            &key,
            Some(&kid),
            &raw.url("new-order"),
            &order(rfc3339_from_now(-time::Duration::minutes(1))),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
}

#[tokio::test]
async fn a_not_after_is_measured_from_the_start_the_certificate_will_have() {
    let h = Harness::start().await;
    let raw = raw_for(&h);
    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    let order = |not_after: String| {
        json!({"identifiers": [{"type": "dns", "value": "na.test"}], "notAfter": not_after})
            .to_string()
    };
    // The test authority signs for at most 90 days (its validity), from a
    // start backdated by a minute when no notBefore is asked for: this
    // notAfter would make a certificate of 90 days and 40 s.
    let too_long = rfc3339_from_now(time::Duration::days(90) - time::Duration::seconds(20));
    let r = raw
        .post(&key, Some(&kid), &raw.url("new-order"), &order(too_long))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json());
    let detail = r.json()["detail"].as_str().unwrap().to_string();
    assert!(detail.contains("exceeds the maximum"), "{detail}");
    let fits = rfc3339_from_now(time::Duration::days(90) - time::Duration::minutes(2));
    let r = raw
        .post(&key, Some(&kid), &raw.url("new-order"), &order(fits))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_not_before_that_grew_old_before_finalize_is_refused() {
    let h = Harness::start().await;
    let raw = raw_for(&h);
    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    let body = json!({
        "identifiers": [{"type": "dns", "value": "old-nb.test"}],
        "notBefore": rfc3339_from_now(time::Duration::ZERO),
    });
    let r = raw
        .post(&key, Some(&kid), &raw.url("new-order"), &body.to_string())
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
    let (order_url, order) = (r.location(), r.json());
    let authz = order["authorizations"][0].as_str().unwrap();
    let r = common::answer_http01(&h, &raw, &key, &kid, authz, true).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    for _ in 0..400 {
        let o = raw.post(&key, Some(&kid), &order_url, "").await.json();
        if o["status"] != json!("pending") {
            assert_eq!(o["status"], json!("ready"), "{o}");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // An hour passes (the order lives for days): its notBefore is now old.
    let db = rusqlite::Connection::open(h.dir.path().join("work/db.sqlite")).unwrap();
    db.busy_timeout(std::time::Duration::from_secs(10)).unwrap();
    let order_id = order_url.rsplit('/').next().unwrap();
    let changed = db
        .execute(
            "UPDATE orders SET not_before = not_before - 3600000 WHERE id = ?",
            [order_id],
        )
        .unwrap();
    assert_eq!(changed, 1);
    let (der, _) = csr(&["old-nb.test"], &rcgen::PKCS_ECDSA_P256_SHA256);
    let r = finalize_with(&raw, &key, &kid, &order, &der).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json());
    assert_eq!(r.problem_type(), "malformed");
    let detail = r.json()["detail"].as_str().unwrap().to_string();
    assert!(detail.contains("5 minutes"), "{detail}");
}

/// GET `url` over HTTP/2 (ALPN h2), whose requests carry `:authority` and
/// no Host header.
async fn get_h2(h: &Harness, url: &str) -> (http::Version, Value) {
    use http_body_util::{BodyExt, Empty};
    let tcp = tokio::net::TcpStream::connect(h.server().addr)
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let tls = common::tls_connector(&h.root_pem(), &[b"h2"])
        .connect(name, tcp)
        .await
        .unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(url)
        .body(Empty::<bytes::Bytes>::new())
        .unwrap();
    assert!(req.headers().get(http::header::HOST).is_none());
    let resp = sender.send_request(req).await.unwrap();
    let version = resp.version();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (version, serde_json::from_slice(&body).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_request_gets_the_urls_of_the_server_url_it_addressed() {
    let mut h = Harness::start().await;
    let port = h.server().addr.port();
    let first = format!("https://localhost:{port}");
    let second = format!("https://acme-alias.test:{port}");
    let config = std::fs::read_to_string(&h.config_path).unwrap();
    let one = format!("url: [\"{first}\"]");
    assert!(config.contains(&one));
    std::fs::write(
        &h.config_path,
        config.replace(&one, &format!("url: [\"{first}\", \"{second}\"]")),
    )
    .unwrap();
    h.restart().await;
    for base in [&second, &first] {
        let (version, dir) = get_h2(&h, &format!("{base}/acme/directory")).await;
        assert_eq!(version, http::Version::HTTP_2);
        assert_eq!(
            dir["newNonce"],
            json!(format!("{base}/acme/new-nonce")),
            "{dir}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_bound_only_to_adcs_refuses_ed25519_keys_at_finalize() {
    let l = lab().await;
    let opts = Options {
        authority_extra: l.authority("lab", "WebServer", "Passw0rd!"),
        extra_sections: binding("lab", "first_available"),
        ..Options::default()
    };
    let h = Harness::start_with(opts).await;
    let raw = raw_for(&h);
    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    let order = ready_order(&h, &raw, &key, &kid, &["ed.test"]).await;
    let (der, _) = csr(&["ed.test"], &rcgen::PKCS_ED25519);
    let r = finalize_with(&raw, &key, &kid, &order, &der).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.json());
    assert_eq!(r.problem_type(), "badPublicKey", "{}", r.json());
    let detail = r.json()["detail"].as_str().unwrap().to_string();
    assert!(
        detail.contains("Ed25519") && detail.contains("lab"),
        "{detail}"
    );
    // The order is still ready; an ECDSA key is issued by ADCS.
    let (der, _) = csr(&["ed.test"], &rcgen::PKCS_ECDSA_P256_SHA256);
    let r = finalize_with(&raw, &key, &kid, &order, &der).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_adcs_first_and_the_built_in_ca_second_ed25519_is_signed_by_the_built_in_ca() {
    // ADCS cannot issue for Ed25519; first_available must not ask it (its
    // refusal would be final) but go to the authority that can.
    let l = lab().await;
    let opts = Options {
        authority_extra: l.authority("lab", "WebServer", "Passw0rd!"),
        extra_sections: binding("lab, builtin", "first_available"),
        ..Options::default()
    };
    let h = Harness::start_with(opts).await;
    let account = h.account().await;
    let (der, _) = csr(&["ed-mixed.test"], &rcgen::PKCS_ED25519);
    let pem = h
        .issue(
            &account,
            &["ed-mixed.test"],
            instant_acme::ChallengeType::Http01,
            &der,
        )
        .await
        .unwrap();
    assert_eq!(common::signer(&h, &pem).await, "builtin");
    let (der, _) = csr(&["ec-mixed.test"], &rcgen::PKCS_ECDSA_P256_SHA256);
    let pem = h
        .issue(
            &account,
            &["ec-mixed.test"],
            instant_acme::ChallengeType::Http01,
            &der,
        )
        .await
        .unwrap();
    assert_eq!(
        common::signer(&h, &pem).await,
        "lab",
        "other keys still go to ADCS first"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_in_ca_issues_for_ed25519_keys() {
    let h = Harness::start().await;
    let raw = raw_for(&h);
    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    let order = ready_order(&h, &raw, &key, &kid, &["ed-builtin.test"]).await;
    let (der, _) = csr(&["ed-builtin.test"], &rcgen::PKCS_ED25519);
    let r = finalize_with(&raw, &key, &kid, &order, &der).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    assert_eq!(r.json()["status"], json!("valid"), "{}", r.json());
}
