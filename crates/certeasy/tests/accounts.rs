//! Accounts under concurrency: a deactivation or a key roll-over cannot be
//! undone by a request that authenticated before it, and deactivating an
//! account cancels what it left pending (RFC 8555 §7.3.6).
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::sync::Arc;

use acme_wire::{AccountStatus, AuthorizationStatus, OrderStatus};
use common::raw::{Key, Raw, Resp};
use common::{binding, csr, new_order, ready_order, Harness, Options};
use http::StatusCode;
use serde_json::json;
use tokio::task::JoinSet;

async fn setup_with(opts: Options) -> (Harness, Arc<Raw>) {
    let h = Harness::start_with(opts).await;
    let raw = Arc::new(Raw::new(h.server().addr, &h.base(), &h.root_pem()));
    (h, raw)
}

/// The last path segment of a resource URL (its id).
fn id_of(url: &str) -> String {
    url.rsplit('/').next().unwrap().to_string()
}

/// Sends pre-signed bodies to `url` all at once; the responses in order.
async fn send_all(raw: &Arc<Raw>, url: &str, bodies: Vec<Vec<u8>>) -> Vec<Resp> {
    let mut set = JoinSet::new();
    for (i, body) in bodies.into_iter().enumerate() {
        let raw = raw.clone();
        let url = url.to_string();
        set.spawn(async move { (i, raw.post_raw(&url, body).await) });
    }
    let mut out: Vec<(usize, Resp)> = set.join_all().await;
    out.sort_by_key(|(i, _)| *i);
    out.into_iter().map(|(_, r)| r).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_deactivation_racing_contact_updates_is_never_undone() {
    let (h, raw) = setup_with(Options::default()).await;
    for round in 0..50 {
        let key = Key::generate();
        let kid = raw.new_account(&key).await;
        // Every request is signed beforehand (one nonce each), then all
        // are sent at once; the deactivation sits among the updates.
        let mut bodies = Vec::new();
        for i in 0..20 {
            let nonce = raw.nonce().await;
            let payload = json!({"contact": [format!("mailto:r{round}-{i}@example.com")]});
            bodies.push(key.jws(Some(&kid), Some(&nonce), &kid, &payload.to_string()));
        }
        let nonce = raw.nonce().await;
        let deactivation = key.jws(
            Some(&kid),
            Some(&nonce),
            &kid,
            r#"{"status":"deactivated"}"#,
        );
        bodies.insert(10, deactivation);
        let answers = send_all(&raw, &kid, bodies).await;
        for (i, r) in answers.iter().enumerate() {
            if i == 10 {
                assert_eq!(r.status, StatusCode::OK, "round {round}: {}", r.json());
                assert_eq!(r.json()["status"], json!("deactivated"), "round {round}");
            } else if r.status != StatusCode::OK {
                assert_eq!(
                    r.status,
                    StatusCode::UNAUTHORIZED,
                    "round {round}: {}",
                    r.json()
                );
                assert_eq!(r.problem_type(), "unauthorized", "round {round}");
            }
        }
        // Whatever the interleaving, the account is deactivated and stays so.
        let r = raw.post(&key, Some(&kid), &kid, "").await;
        assert_eq!(
            r.status,
            StatusCode::UNAUTHORIZED,
            "round {round}: {}",
            r.json()
        );
        assert_eq!(r.problem_type(), "unauthorized", "round {round}");
        assert!(
            r.json()["detail"]
                .as_str()
                .unwrap()
                .contains("account is deactivated"),
            "{}",
            r.json()
        );
        let stored = h
            .server()
            .ra
            .store
            .account(&id_of(&kid))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(stored.status, AccountStatus::Deactivated, "round {round}");
    }
}

/// A key-change body: the outer JWS signed by `old` for `kid`, the inner by `new`.
fn key_change_body(raw: &Raw, old: &Key, new: &Key, kid: &str, nonce: &str) -> Vec<u8> {
    let url = raw.url("key-change");
    let header = json!({"alg": "ES256", "url": url, "jwk": new.jwk()});
    let payload = json!({"account": kid, "oldKey": old.jwk()}).to_string();
    let inner = String::from_utf8(new.jws_with_header(&header, &payload)).unwrap();
    old.jws(Some(kid), Some(nonce), &url, &inner)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_concurrent_key_changes_from_one_key_bind_exactly_one_new_key() {
    let (_h, raw) = setup_with(Options::default()).await;
    for round in 0..20 {
        let old = Key::generate();
        let kid = raw.new_account(&old).await;
        let candidates = [Key::generate(), Key::generate()];
        let mut bodies = Vec::new();
        for new in &candidates {
            let nonce = raw.nonce().await;
            bodies.push(key_change_body(&raw, &old, new, &kid, &nonce));
        }
        let answers = send_all(&raw, &raw.url("key-change"), bodies).await;
        let won: Vec<usize> = (0..2)
            .filter(|&i| answers[i].status == StatusCode::OK)
            .collect();
        assert_eq!(
            won.len(),
            1,
            "round {round}: {} / {}",
            answers[0].json(),
            answers[1].json()
        );
        let (winner, loser) = (&candidates[won[0]], &candidates[1 - won[0]]);
        let lost = &answers[1 - won[0]];
        assert!(
            lost.status.is_client_error(),
            "round {round}: {}",
            lost.json()
        );
        // The old key and the loser's key are refused, the winner's works.
        for refused in [&old, loser] {
            let r = raw.post(refused, Some(&kid), &kid, "").await;
            assert_ne!(r.status, StatusCode::OK, "round {round}: {}", r.json());
        }
        let r = raw.post(winner, Some(&kid), &kid, "").await;
        assert_eq!(r.status, StatusCode::OK, "round {round}: {}", r.json());
        // The loser's key is bound to no account.
        let r = raw
            .post(
                loser,
                None,
                &raw.url("new-account"),
                r#"{"onlyReturnExisting":true}"#,
            )
            .await;
        assert_eq!(r.problem_type(), "accountDoesNotExist", "round {round}");
    }
}

/// A second built-in CA that fails every request. Written with `type: fake`,
/// the deprecated name, so that a server started from it proves the alias
/// still loads end to end.
fn failing_authority() -> String {
    "  - name: flaky\n    type: fake\n    configuration:\n      common-name: \"flaky CA\"\n      password: \"pw\"\n      simulate-failure: transient\n".into()
}

/// Workers whose retries wait an hour: a job that failed once stays queued.
const SLOW_RETRIES: &str =
    "workers:\n  workers: 2\n  idle-max: 1s\n  lease: 5s\n  base-backoff: 1h\n  max-backoff: 1h\n";

/// finalize with a fresh P-256 CSR for `name`.
async fn finalize(raw: &Raw, key: &Key, kid: &str, order: &serde_json::Value, name: &str) -> Resp {
    let (der, _) = csr(&[name], &rcgen::PKCS_ECDSA_P256_SHA256);
    let body = json!({"csr": acme_wire::b64u_encode(&der)}).to_string();
    raw.post(key, Some(kid), order["finalize"].as_str().unwrap(), &body)
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deactivation_cancels_pending_orders_authorizations_and_queued_jobs() {
    let opts = Options {
        authority_extra: failing_authority(),
        extra_sections: binding("flaky", "first_available"),
        workers_yaml: Some(SLOW_RETRIES.into()),
        ..Options::default()
    };
    let (h, raw) = setup_with(opts).await;
    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    let (pending_url, pending) = new_order(&raw, &key, &kid, &["pending.test"]).await;
    let ready = ready_order(&h, &raw, &key, &kid, &["ready.test"]).await;
    let processing = ready_order(&h, &raw, &key, &kid, &["processing.test"]).await;
    let r = finalize(&raw, &key, &kid, &processing, "processing.test").await;
    assert_eq!(r.json()["status"], json!("processing"), "{}", r.json());
    let processing_id = id_of(&r.location());
    let store = &h.server().ra.store;
    assert_eq!(
        store.job_count().await.unwrap(),
        1,
        "the issuance waits for its retry"
    );

    let r = raw
        .post(&key, Some(&kid), &kid, r#"{"status":"deactivated"}"#)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());

    for id in [
        id_of(&pending_url),
        id_of(ready["finalize"].as_str().unwrap()),
        processing_id,
    ] {
        let o = store.order(&id).await.unwrap().unwrap();
        assert_eq!(
            o.status,
            OrderStatus::Invalid,
            "order {id} of {:?}",
            o.names
        );
        let error = o.error.unwrap_or_default();
        assert!(error.contains("deactivated"), "{error}");
    }
    for authz in pending["authorizations"].as_array().unwrap() {
        let a = store
            .authz(&id_of(authz.as_str().unwrap()))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(a.status, AuthorizationStatus::Deactivated);
    }
    // The ready order's authorization was valid and stays so.
    assert_eq!(
        store.job_count().await.unwrap(),
        0,
        "the queued issuance was removed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_issuance_job_for_a_deactivated_account_does_not_reach_the_ca() {
    let opts = Options {
        authority_extra: failing_authority(),
        extra_sections: binding("flaky", "first_available"),
        workers_yaml: Some(SLOW_RETRIES.into()),
        ..Options::default()
    };
    let (mut h, raw) = setup_with(opts).await;
    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    let ready = ready_order(&h, &raw, &key, &kid, &["late.test"]).await;
    let r = finalize(&raw, &key, &kid, &ready, "late.test").await;
    assert_eq!(r.json()["status"], json!("processing"), "{}", r.json());
    let order_id = id_of(&r.location());
    // While the server is down, the account is deactivated behind the
    // RA's back (as another node would), the job comes due and the
    // authority recovers.
    let addr = h.server().addr;
    h.stop().await;
    let db = rusqlite::Connection::open(h.dir.path().join("work/db.sqlite")).unwrap();
    db.execute(
        "UPDATE accounts SET status = 'deactivated' WHERE id = ?",
        [id_of(&kid)],
    )
    .unwrap();
    assert_eq!(db.execute("UPDATE jobs SET run_at = 0", []).unwrap(), 1);
    drop(db);
    let config = std::fs::read_to_string(&h.config_path).unwrap();
    std::fs::write(
        &h.config_path,
        config.replace("      simulate-failure: transient\n", ""),
    )
    .unwrap();
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let config = certeasy::config::load(&h.config_path).unwrap();
    h.server = Some(
        certeasy::server::start_with_listener(config, listener)
            .await
            .unwrap(),
    );
    let store = h.server().ra.store.clone();
    let mut order = store.order(&order_id).await.unwrap().unwrap();
    for _ in 0..400 {
        if order.status != OrderStatus::Processing {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        order = store.order(&order_id).await.unwrap().unwrap();
    }
    assert_eq!(order.status, OrderStatus::Invalid, "{order:?}");
    let error = order.error.unwrap_or_default();
    assert!(error.contains("deactivated"), "{error}");
    assert_eq!(store.job_count().await.unwrap(), 0);
}
