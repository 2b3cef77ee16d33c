//! One account cannot starve the others or multiply the validator's
//! traffic: validations of one account run at most
//! `workers.validations-per-account` at a time, an authorization is
//! validated by one challenge, and `rate-limiting.pending-authorizations`
//! caps what an account holds open.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, Mutex};

use common::raw::{Key, Raw};
use common::{answer_http01, new_order, Harness, Options};
use http::StatusCode;
use serde_json::{json, Value};
use tokio::net::TcpListener;

/// An address whose http-01 port accepts connections and never answers.
const BLACKHOLE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// Accepts on `BLACKHOLE:port` and holds every connection open, silent,
/// until the returned task is aborted.
async fn blackhole(port: u16) -> tokio::task::JoinHandle<()> {
    let listener = TcpListener::bind((BLACKHOLE, port)).await.unwrap();
    tokio::spawn(async move {
        let held = Arc::new(Mutex::new(Vec::new()));
        while let Ok((sock, _)) = listener.accept().await {
            held.lock().unwrap().push(sock);
        }
    })
}

async fn challenge_of(raw: &Raw, key: &Key, kid: &str, authz_url: &str, kind: &str) -> Value {
    let a = raw.post(key, Some(kid), authz_url, "").await.json();
    a["challenges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == json!(kind))
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_with_blackholed_validations_does_not_starve_another() {
    let h = Harness::start_with(Options {
        // Two workers, so one per account by default; challenge POSTs do
        // not wait for their validation.
        workers_yaml: Some(
            "workers:\n  workers: 2\n  idle-max: 1s\n  lease: 30s\n  base-backoff: 100ms\n  max-backoff: 1s\n  validation-wait: 1ms\n".into(),
        ),
        ..Options::default()
    })
    .await;
    let hole = blackhole(h.http_port).await;
    let raw = Raw::new(h.server().addr, &h.base(), &h.root_pem());

    // Account A: 50 validations against names that hang.
    let a_key = Key::generate();
    let a_kid = raw.new_account(&a_key).await;
    let names: Vec<String> = (0..50).map(|i| format!("hang-{i}.test")).collect();
    for n in &names {
        h.dns.set_a(n, IpAddr::V4(BLACKHOLE));
    }
    let name_refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let (_, order) = new_order(&raw, &a_key, &a_kid, &name_refs).await;
    let mut hanging = Vec::new();
    let posts = order["authorizations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|authz| {
            let (raw, key, kid) = (&raw, &a_key, &a_kid);
            async move {
                let ch = challenge_of(raw, key, kid, authz.as_str().unwrap(), "http-01").await;
                let r = raw
                    .post(key, Some(kid), ch["url"].as_str().unwrap(), "{}")
                    .await;
                assert_eq!(r.status, StatusCode::OK, "{}", r.json());
                ch["url"].as_str().unwrap().to_owned()
            }
        });
    hanging.extend(futures::future::join_all(posts).await);

    // Account B: one validation that answers at once.
    let b_key = Key::generate();
    let b_kid = raw.new_account(&b_key).await;
    let (_, b_order) = new_order(&raw, &b_key, &b_kid, &["quick.test"]).await;
    let b_authz = b_order["authorizations"][0].as_str().unwrap().to_owned();
    let r = answer_http01(&h, &raw, &b_key, &b_kid, &b_authz, true).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    let mut b_status = Value::Null;
    for _ in 0..500 {
        b_status = raw.post(&b_key, Some(&b_kid), &b_authz, "").await.json()["status"].clone();
        if b_status != json!("pending") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(b_status, json!("valid"));

    // B was decided while A's validations still hang: B did not wait for
    // the workers A's validations would otherwise have held.
    let mut still_processing = 0;
    for url in &hanging {
        let ch = raw.post(&a_key, Some(&a_kid), url, "").await.json();
        if ch["status"] == json!("processing") {
            still_processing += 1;
        }
    }
    assert!(
        still_processing >= 40,
        "only {still_processing} of A's 50 validations were still running when B's was decided"
    );
    hole.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_challenge_while_the_first_runs_is_refused() {
    let h = Harness::start_with(Options {
        workers_yaml: Some(
            "workers:\n  workers: 2\n  idle-max: 1s\n  lease: 30s\n  validation-wait: 1ms\n".into(),
        ),
        ..Options::default()
    })
    .await;
    let hole = blackhole(h.http_port).await;
    let raw = Raw::new(h.server().addr, &h.base(), &h.root_pem());
    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    h.dns.set_a("slow.test", IpAddr::V4(BLACKHOLE));
    let (_, order) = new_order(&raw, &key, &kid, &["slow.test"]).await;
    let authz = order["authorizations"][0].as_str().unwrap().to_owned();
    let http = challenge_of(&raw, &key, &kid, &authz, "http-01").await;
    let r = raw
        .post(&key, Some(&kid), http["url"].as_str().unwrap(), "{}")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["status"], json!("processing"));
    let dns = challenge_of(&raw, &key, &kid, &authz, "dns-01").await;
    let r = raw
        .post(&key, Some(&kid), dns["url"].as_str().unwrap(), "{}")
        .await;
    assert_eq!(r.problem_type(), "malformed", "{}", r.json());
    let detail = r.json()["detail"].as_str().unwrap().to_owned();
    assert!(
        detail.contains("http-01 challenge was already answered"),
        "{detail}"
    );
    hole.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pending_authorizations_are_capped_per_account_with_an_exact_retry_after() {
    let h = Harness::start_with(Options {
        extra_sections: "rate-limiting:\n  pending-authorizations:\n    max: 3\n".into(),
        ..Options::default()
    })
    .await;
    let raw = Raw::new(h.server().addr, &h.base(), &h.root_pem());
    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    let (_, first) = new_order(&raw, &key, &kid, &["p1.test", "p2.test"]).await;
    let first_expires = time::OffsetDateTime::parse(
        first["expires"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();

    let body = json!({"identifiers": [{"type": "dns", "value": "p3.test"}, {"type": "dns", "value": "p4.test"}]}).to_string();
    let before = time::OffsetDateTime::now_utc();
    let r = raw
        .post(&key, Some(&kid), &raw.url("new-order"), &body)
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.json());
    assert_eq!(r.problem_type(), "rateLimited");
    let detail = r.json()["detail"].as_str().unwrap().to_owned();
    assert!(
        detail.contains("pending-authorizations") && detail.contains("3"),
        "{detail}"
    );
    // Room for this order comes when the first order's authorizations expire.
    let retry: i64 = r.header("retry-after").unwrap().parse().unwrap();
    let expected = (first_expires - before).whole_seconds();
    assert!(
        (expected - 5..=expected + 1).contains(&retry),
        "Retry-After {retry}, expected about {expected}"
    );

    // Another account is not affected.
    let other = Key::generate();
    let other_kid = raw.new_account(&other).await;
    new_order(&raw, &other, &other_kid, &["o1.test", "o2.test"]).await;

    // Validating one authorization frees its place.
    let authz = first["authorizations"][0].as_str().unwrap();
    let r = answer_http01(&h, &raw, &key, &kid, authz, true).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    for _ in 0..500 {
        if raw.post(&key, Some(&kid), authz, "").await.json()["status"] == json!("valid") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let r = raw
        .post(&key, Some(&kid), &raw.url("new-order"), &body)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
}
