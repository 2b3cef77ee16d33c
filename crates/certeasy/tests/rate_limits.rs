//! Every rate limit through real requests to a running server: the 429
//! `rateLimited` problem naming the limit, the exact `Retry-After`, the
//! reset after the window, the whitelist, the trusted-proxy rule, and one
//! `ratelimit.deny` audit event per refusal.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::time::Duration;

use common::raw::{Key, Raw, Resp};
use common::{csr, ready_order, Harness, Options};
use http::{Method, StatusCode};
use serde_json::{json, Value};

async fn start(limits: &str, server_extra: &str) -> (Harness, Raw) {
    let h = Harness::start_with(Options {
        extra_sections: format!("rate-limiting:\n{limits}"),
        server_extra: server_extra.to_string(),
        ..Default::default()
    })
    .await;
    let raw = Raw::new(h.server().addr, &h.base(), &h.root_pem());
    (h, raw)
}

fn retry_after(r: &Resp) -> u64 {
    r.header("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After: {}", r.json()))
        .parse()
        .unwrap()
}

fn assert_limited(r: &Resp, limit: &str) {
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.json());
    assert_eq!(r.problem_type(), "rateLimited");
    let detail = r.json()["detail"].as_str().unwrap().to_string();
    assert!(
        detail.starts_with(&format!("rate-limiting.{limit}")),
        "{detail}"
    );
}

async fn order(raw: &Raw, key: &Key, kid: &str, names: &[&str]) -> Resp {
    let ids: Vec<Value> = names
        .iter()
        .map(|n| json!({"type": "dns", "value": n}))
        .collect();
    raw.post(
        key,
        Some(kid),
        &raw.url("new-order"),
        &json!({ "identifiers": ids }).to_string(),
    )
    .await
}

async fn nonce_req(raw: &Raw, extra: &[(&str, &str)]) -> Resp {
    // GET: a refusal's problem document has a body (HEAD's would not).
    raw.send_with(Method::GET, &raw.url("new-nonce"), None, Vec::new(), extra)
        .await
}

/// The `ratelimit.deny` events written so far.
async fn denials(h: &Harness) -> Vec<Value> {
    assert!(h.server().ra.audit.flush().await, "audit flush");
    common::audit_lines(&h.dir.path().join("work/audit.log"))
        .into_iter()
        .filter(|l| l["event"] == json!("ratelimit.deny"))
        .collect()
}

#[tokio::test]
async fn global_refuses_beyond_the_burst_with_the_refill_time_and_resets() {
    let (h, raw) = start("  global: {requests-per-minute: 60, burst: 2}\n", "").await;
    assert_eq!(nonce_req(&raw, &[]).await.status, StatusCode::NO_CONTENT);
    assert_eq!(nonce_req(&raw, &[]).await.status, StatusCode::NO_CONTENT);
    let r = nonce_req(&raw, &[]).await;
    assert_limited(&r, "global");
    assert!(r.json()["detail"]
        .as_str()
        .unwrap()
        .contains("60 requests per minute (burst 2) from 127.0.0.1"));
    // One token per second: the next one is less than a second away.
    assert_eq!(retry_after(&r), 1);
    // Health probes are never limited.
    let health = raw
        .send(
            Method::GET,
            &format!("{}/readyz", h.base()),
            None,
            Vec::new(),
        )
        .await;
    assert_eq!(health.status, StatusCode::OK);
    // After Retry-After the client is served again.
    tokio::time::sleep(Duration::from_secs(retry_after(&r))).await;
    assert_eq!(nonce_req(&raw, &[]).await.status, StatusCode::NO_CONTENT);
    let events = denials(&h).await;
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["source_ip"], json!("127.0.0.1"));
    assert_eq!(events[0]["details"]["limit"], json!("rate-limiting.global"));
    assert_eq!(events[0]["decision"], json!("deny"));
}

#[tokio::test]
async fn the_whitelist_exempts_an_address_from_the_ip_limits() {
    let (_h, raw) = start(
        "  whitelist: [127.0.0.0/8]\n  global: {requests-per-minute: 1, burst: 1}\n  account-creation: {per-ip-per-hour: 1, burst: 1}\n",
        "",
    )
    .await;
    for _ in 0..5 {
        assert_eq!(nonce_req(&raw, &[]).await.status, StatusCode::NO_CONTENT);
    }
    for _ in 0..3 {
        raw.new_account(&Key::generate()).await;
    }
}

#[tokio::test]
async fn the_client_ip_header_counts_only_from_a_trusted_proxy() {
    let limits = "  global: {requests-per-minute: 1, burst: 2}\n";
    // Trusted: each forwarded client has its own bucket.
    let (_h, raw) = start(
        limits,
        "  remote-ip-header: X-Forwarded-For\n  trusted-proxies: [127.0.0.1/32]\n",
    )
    .await;
    let a = [("x-forwarded-for", "198.51.100.1")];
    let b = [("x-forwarded-for", "198.51.100.2")];
    assert_eq!(nonce_req(&raw, &a).await.status, StatusCode::NO_CONTENT);
    assert_eq!(nonce_req(&raw, &a).await.status, StatusCode::NO_CONTENT);
    let r = nonce_req(&raw, &a).await;
    assert_limited(&r, "global");
    assert!(r.json()["detail"]
        .as_str()
        .unwrap()
        .contains("from 198.51.100.1"));
    assert_eq!(nonce_req(&raw, &b).await.status, StatusCode::NO_CONTENT);
    // A forged entry left of the proxy's does not change the client.
    let forged = [("x-forwarded-for", "203.0.113.50, 198.51.100.1")];
    assert_limited(&nonce_req(&raw, &forged).await, "global");

    // Untrusted peer: the header is ignored, every request counts for the
    // peer's own address.
    let (_h, raw) = start(
        limits,
        "  remote-ip-header: X-Forwarded-For\n  trusted-proxies: [10.0.0.0/8]\n",
    )
    .await;
    assert_eq!(nonce_req(&raw, &a).await.status, StatusCode::NO_CONTENT);
    assert_eq!(nonce_req(&raw, &b).await.status, StatusCode::NO_CONTENT);
    let r = nonce_req(&raw, &[("x-forwarded-for", "198.51.100.3")]).await;
    assert_limited(&r, "global");
    assert!(
        r.json()["detail"]
            .as_str()
            .unwrap()
            .contains("from 127.0.0.1"),
        "{}",
        r.json()
    );
}

#[tokio::test]
async fn account_creation_is_limited_per_ip_but_existing_keys_are_not_counted() {
    let (h, raw) = start("  account-creation: {per-ip-per-hour: 2, burst: 2}\n", "").await;
    let first = Key::generate();
    raw.new_account(&first).await;
    raw.new_account(&Key::generate()).await;
    let payload = json!({"termsOfServiceAgreed": true}).to_string();
    let r = raw
        .post(&Key::generate(), None, &raw.url("new-account"), &payload)
        .await;
    assert_limited(&r, "account-creation");
    // Two per hour: the next new account in (just under) 30 minutes.
    let wait = retry_after(&r);
    assert!((1795..=1800).contains(&wait), "{wait}");
    // Looking up an existing account is not creating one.
    let r = raw
        .post(&first, None, &raw.url("new-account"), &payload)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    let events = denials(&h).await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0]["details"]["limit"],
        json!("rate-limiting.account-creation")
    );
    assert_eq!(events[0]["details"]["retry_after"], json!(wait));
}

#[tokio::test]
async fn orders_and_names_are_limited_per_account() {
    let (h, raw) = start(
        "  order-creation: {orders-per-account-per-hour: 6, order-burst: 2, san-budget-per-account-per-hour: 3}\n",
        "",
    )
    .await;
    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    assert_eq!(
        order(&raw, &key, &kid, &["o1.test", "o2.test"])
            .await
            .status,
        StatusCode::CREATED
    );
    // The second order fits the order bucket but not the name budget:
    // 3 names per hour, 1 left, 2 asked — one more is 20 minutes away.
    let r = order(&raw, &key, &kid, &["o3.test", "o4.test"]).await;
    assert_limited(&r, "order-creation");
    assert!(r.json()["detail"]
        .as_str()
        .unwrap()
        .contains("budget of 3 names per hour"));
    let wait = retry_after(&r);
    assert!((1195..=1200).contains(&wait), "{wait}");
    // Both order tokens are spent now: six per hour, one every 10 minutes.
    let r = order(&raw, &key, &kid, &["o5.test"]).await;
    assert_limited(&r, "order-creation");
    assert!(r.json()["detail"]
        .as_str()
        .unwrap()
        .contains("6 new orders per hour (burst 2)"));
    let wait = retry_after(&r);
    assert!((595..=600).contains(&wait), "{wait}");
    // Another account has its own budget.
    let other = Key::generate();
    let other_kid = raw.new_account(&other).await;
    assert_eq!(
        order(&raw, &other, &other_kid, &["o6.test"]).await.status,
        StatusCode::CREATED
    );
    let events = denials(&h).await;
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e["account_id"].is_string()));
}

/// Finalizes a ready order with a fresh key; the certificate's DER.
async fn issue(h: &Harness, raw: &Raw, key: &Key, kid: &str, name: &str) -> Vec<u8> {
    let o = ready_order(h, raw, key, kid, &[name]).await;
    let (der, _) = csr(&[name], &rcgen::PKCS_ECDSA_P256_SHA256);
    let body = json!({"csr": acme_wire::b64u_encode(&der)}).to_string();
    let r = raw
        .post(key, Some(kid), o["finalize"].as_str().unwrap(), &body)
        .await;
    let cert_url = r.json()["certificate"]
        .as_str()
        .expect("valid at once")
        .to_string();
    let pem = raw.post(key, Some(kid), &cert_url, "").await;
    pki::pem_to_der_certs(std::str::from_utf8(&pem.body).unwrap())
        .unwrap()
        .remove(0)
}

#[tokio::test]
async fn duplicate_certificates_are_limited_until_revoked_or_out_of_the_window() {
    let (h, raw) = start(
        "  duplicate-certificate: {max-per-window: 1, window: 1h}\n",
        "",
    )
    .await;
    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    let leaf = issue(&h, &raw, &key, &kid, "dup.test").await;
    let r = order(&raw, &key, &kid, &["dup.test"]).await;
    assert_limited(&r, "duplicate-certificate");
    let wait = retry_after(&r);
    assert!((3590..=3600).contains(&wait), "{wait}");
    // A different name set is another set.
    assert_eq!(
        order(&raw, &key, &kid, &["dup.test", "www.dup.test"])
            .await
            .status,
        StatusCode::CREATED
    );
    // Revoked certificates do not count.
    let body = json!({"certificate": acme_wire::b64u_encode(&leaf)}).to_string();
    let r = raw
        .post(&key, Some(&kid), &raw.url("revoke-cert"), &body)
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(
        order(&raw, &key, &kid, &["dup.test"]).await.status,
        StatusCode::CREATED
    );
}

#[tokio::test]
async fn failed_validations_block_the_name_until_they_leave_the_window() {
    let (h, raw) = start("  failed-validation: {max-per-window: 1, window: 3s}\n", "").await;
    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    let (_, o) = common::new_order(&raw, &key, &kid, &["fail.test"]).await;
    // The responder does not serve the token: the validation fails.
    let r = common::answer_http01(
        &h,
        &raw,
        &key,
        &kid,
        o["authorizations"][0].as_str().unwrap(),
        false,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let mut status = Value::Null;
    for _ in 0..200 {
        status = raw
            .post(
                &key,
                Some(&kid),
                o["authorizations"][0].as_str().unwrap(),
                "",
            )
            .await
            .json()["status"]
            .clone();
        if status != json!("pending") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(status, json!("invalid"));
    let r = order(&raw, &key, &kid, &["fail.test"]).await;
    assert_limited(&r, "failed-validation");
    assert!(r.json()["detail"]
        .as_str()
        .unwrap()
        .contains("validation of fail.test failed 1 times"));
    let wait = retry_after(&r);
    assert!((1..=3).contains(&wait), "{wait}");
    // Other names are not blocked; another account is not blocked.
    assert_eq!(
        order(&raw, &key, &kid, &["ok.test"]).await.status,
        StatusCode::CREATED
    );
    let other = Key::generate();
    let other_kid = raw.new_account(&other).await;
    assert_eq!(
        order(&raw, &other, &other_kid, &["fail.test"]).await.status,
        StatusCode::CREATED
    );
    // Once the failure has left the window, the name may be ordered again.
    tokio::time::sleep(Duration::from_secs(wait)).await;
    assert_eq!(
        order(&raw, &key, &kid, &["fail.test"]).await.status,
        StatusCode::CREATED
    );
    let events = denials(&h).await;
    assert_eq!(events.len(), 1);
    assert_eq!(
        events[0]["details"]["limit"],
        json!("rate-limiting.failed-validation")
    );
}

#[tokio::test]
async fn disabled_limits_never_refuse() {
    let (_h, raw) = start(
        "  global: {enabled: false, requests-per-minute: 1, burst: 1}\n  order-creation: {enabled: false, order-burst: 1}\n",
        "",
    )
    .await;
    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    for i in 0..4 {
        assert_eq!(
            order(&raw, &key, &kid, &[&format!("n{i}.test")])
                .await
                .status,
            StatusCode::CREATED
        );
    }
}
