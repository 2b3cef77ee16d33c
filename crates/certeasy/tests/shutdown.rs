//! Graceful shutdown of the `certeasy` binary: SIGTERM during a burst of
//! issuances by several clients. Every request the server started to
//! handle gets its response, every accepted job completes or resumes after
//! a restart, and no order gets two certificates. A second signal ends the
//! process at once.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use common::raw::{Key, Raw, Resp};
use http::{Method, StatusCode};
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::Notify;

async fn spawn_server(config: &Path) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_certeasy"))
        .args(["serve", "-f"])
        .arg(config)
        .env_remove("APP_LOG_LEVEL")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    common::wait_until_serving(child.stdout.take().unwrap()).await;
    child
}

fn signal(child: &Child, sig: &str) {
    assert!(Command::new("kill")
        .args([sig, &child.id().to_string()])
        .status()
        .unwrap()
        .success());
}

/// Request ids of every response received.
type Ids = Arc<Mutex<HashSet<String>>>;

fn note(ids: &Ids, r: Result<Resp, String>) -> Result<Resp, String> {
    if let Ok(resp) = &r {
        ids.lock().unwrap().insert(
            resp.header("x-request-id")
                .expect("every response has an id"),
        );
    }
    r
}

async fn post(
    raw: &Raw,
    ids: &Ids,
    key: &Key,
    kid: &str,
    url: &str,
    payload: &str,
) -> Result<Resp, String> {
    let n = note(
        ids,
        raw.try_send(Method::HEAD, &raw.url("new-nonce"), None, vec![])
            .await,
    )?;
    let nonce = n.header("replay-nonce").unwrap();
    note(
        ids,
        raw.try_send(
            Method::POST,
            url,
            Some("application/jose+json"),
            key.jws(Some(kid), Some(&nonce), url, payload),
        )
        .await,
    )
}

#[derive(Default)]
struct Tracked {
    challenged: bool,
    finalized: bool,
}

struct Client {
    key: Key,
    kid: String,
    orders: Mutex<Vec<(String, Tracked)>>,
}

/// Issues until a request fails (the server went away). Counts finalized
/// orders in `finalized` and wakes `progress` after each.
#[allow(clippy::too_many_arguments)]
async fn burst(
    n: usize,
    client: Arc<Client>,
    raw: Arc<Raw>,
    ids: Ids,
    tokens: common::Tokens,
    dns: Arc<certeasy_va::testing::TestDns>,
    finalized: Arc<AtomicUsize>,
    progress: Arc<Notify>,
) {
    let (key, kid) = (&client.key, client.kid.as_str());
    let thumb = acme_wire::Jwk::from_json(&key.jwk()).unwrap().thumbprint();
    for i in 0.. {
        let name = format!("c{n}-{i}.test");
        dns.set_a(&name, IpAddr::V4(Ipv4Addr::LOCALHOST));
        let payload = json!({"identifiers": [{"type": "dns", "value": name}]}).to_string();
        let Ok(r) = post(&raw, &ids, key, kid, &raw.url("new-order"), &payload).await else {
            return;
        };
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
        let order_url = r.location();
        let order = r.json();
        let index = {
            let mut o = client.orders.lock().unwrap();
            o.push((order_url.clone(), Tracked::default()));
            o.len() - 1
        };
        let Ok(a) = post(
            &raw,
            &ids,
            key,
            kid,
            order["authorizations"][0].as_str().unwrap(),
            "",
        )
        .await
        else {
            return;
        };
        let ch = common::http01_challenge(&a.json());
        let token = ch["token"].as_str().unwrap().to_string();
        tokens
            .lock()
            .unwrap()
            .insert(token.clone(), acme_wire::key_authorization(&token, &thumb));
        let Ok(r) = post(&raw, &ids, key, kid, ch["url"].as_str().unwrap(), "{}").await else {
            return;
        };
        assert_eq!(r.status, StatusCode::OK, "{}", r.json());
        client.orders.lock().unwrap()[index].1.challenged = true;
        let mut state = json!(null);
        for _ in 0..400 {
            let Ok(r) = post(&raw, &ids, key, kid, &order_url, "").await else {
                return;
            };
            state = r.json();
            if state["status"] != json!("pending") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        assert_eq!(state["status"], json!("ready"), "{state}");
        let (der, _) = common::csr(&[name.as_str()], &rcgen::PKCS_ECDSA_P256_SHA256);
        let csr = json!({"csr": acme_wire::b64u_encode(&der)}).to_string();
        let Ok(r) = post(
            &raw,
            &ids,
            key,
            kid,
            state["finalize"].as_str().unwrap(),
            &csr,
        )
        .await
        else {
            return;
        };
        assert_eq!(r.status, StatusCode::OK, "{}", r.json());
        client.orders.lock().unwrap()[index].1.finalized = true;
        finalized.fetch_add(1, Ordering::SeqCst);
        progress.notify_one();
    }
}

/// Request ids the server logged as started (logs.services.server: debug).
fn started_ids(log: &Path) -> HashSet<String> {
    std::fs::read_to_string(log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|l| l["fields"]["message"] == json!("request started"))
        .map(|l| l["span"]["request_id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_a_burst_answers_every_accepted_request_and_issues_once() {
    let dir = tempfile::tempdir().unwrap();
    let dns = Arc::new(certeasy_va::testing::TestDns::start("test").await.unwrap());
    let tokens: common::Tokens = Default::default();
    let http_port = common::spawn_http01_responder(tokens.clone()).await;
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let opts = common::Options {
        extra_sections: "logs:\n  format: json\n  output: file\n  file: \"%WORKDIR%/certeasy.log\"\n  level: warn\n  services:\n    server: debug\n".into(),
        ..common::Options::default()
    };
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        common::config_text(dir.path(), port, dns.addr(), http_port, 1, &opts),
    )
    .unwrap();
    let mut server = spawn_server(&config).await;
    let raw = Arc::new(Raw::new(
        format!("127.0.0.1:{port}").parse().unwrap(),
        &format!("https://localhost:{port}"),
        &dir.path().join("work/ca/root.pem"),
    ));
    let ids: Ids = Arc::default();
    let finalized = Arc::new(AtomicUsize::new(0));
    let progress = Arc::new(Notify::new());
    let mut clients = Vec::new();
    let mut tasks = Vec::new();
    for n in 0..4 {
        let key = Key::generate();
        let nonce = note(
            &ids,
            raw.try_send(Method::HEAD, &raw.url("new-nonce"), None, vec![])
                .await,
        )
        .unwrap()
        .header("replay-nonce")
        .unwrap();
        let url = raw.url("new-account");
        let r = note(
            &ids,
            raw.try_send(
                Method::POST,
                &url,
                Some("application/jose+json"),
                key.jws(None, Some(&nonce), &url, r#"{"termsOfServiceAgreed":true}"#),
            )
            .await,
        )
        .unwrap();
        assert_eq!(r.status, StatusCode::CREATED);
        let kid = r.location();
        let client = Arc::new(Client {
            key,
            kid,
            orders: Mutex::default(),
        });
        clients.push(client.clone());
        tasks.push(tokio::spawn(burst(
            n,
            client,
            raw.clone(),
            ids.clone(),
            tokens.clone(),
            dns.clone(),
            finalized.clone(),
            progress.clone(),
        )));
    }
    // Signal in the middle of the burst: after some orders were finalized,
    // while the clients go on.
    while finalized.load(Ordering::SeqCst) < 8 {
        progress.notified().await;
    }
    signal(&server, "-TERM");
    for t in tasks {
        t.await.unwrap();
    }
    let status = server.wait().unwrap();
    assert!(status.success(), "graceful stop: {status}");

    // Every request the server started was answered.
    let started = started_ids(&dir.path().join("work/certeasy.log"));
    let received = ids.lock().unwrap().clone();
    assert!(started.len() > 50, "only {} requests", started.len());
    let unanswered: Vec<_> = started.difference(&received).collect();
    assert!(
        unanswered.is_empty(),
        "requests started but never answered: {unanswered:?}"
    );

    // After a restart every accepted job has completed or resumes.
    let mut server = spawn_server(&config).await;
    let mut valid = 0;
    let mut total_finalized = 0;
    for c in &clients {
        let orders: Vec<(String, bool, bool)> = c
            .orders
            .lock()
            .unwrap()
            .iter()
            .map(|(u, t)| (u.clone(), t.challenged, t.finalized))
            .collect();
        for (url, challenged, was_finalized) in orders {
            let mut state = json!(null);
            for _ in 0..600 {
                state = raw.post(&c.key, Some(&c.kid), &url, "").await.json();
                let s = state["status"].as_str().unwrap().to_string();
                let settled = match (challenged, was_finalized) {
                    (_, true) => s != "processing",
                    (true, false) => s != "pending",
                    _ => true,
                };
                if settled {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(25)).await;
            }
            let s = state["status"].as_str().unwrap();
            if was_finalized {
                total_finalized += 1;
                assert_eq!(s, "valid", "{url}: {state}");
            } else if challenged {
                // Finalize may have been accepted without its response
                // reaching the client before the stop.
                assert!(s == "ready" || s == "valid", "{url}: {state}");
            }
            if s == "valid" {
                valid += 1;
            }
        }
    }
    assert!(total_finalized >= 8);
    signal(&server, "-TERM");
    assert!(server.wait().unwrap().success());
    let store = certeasy::store::Store::open_sqlite(&dir.path().join("work/db.sqlite"))
        .await
        .unwrap();
    assert_eq!(
        store.count_certs().await.unwrap(),
        valid,
        "one certificate per valid order"
    );
    assert_eq!(store.job_count().await.unwrap(), 0, "no job left behind");
}

/// An http-01 responder that accepts connections and never answers.
async fn blackhole() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
            let _ = tx.send(());
        }
    });
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    port
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_signal_exits_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let dns = certeasy_va::testing::TestDns::start("test").await.unwrap();
    let http_port = blackhole().await;
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // A validation that never ends, and a drain that would wait for it
    // for ten minutes.
    let opts = common::Options {
        workers_yaml: Some("workers:\n  workers: 2\n  lease: 20m\n  drain-timeout: 10m\n".into()),
        extra_sections: "logs:\n  format: json\n  output: file\n  file: \"%WORKDIR%/certeasy.log\"\n  services:\n    jobs: debug\n".into(),
        ..common::Options::default()
    };
    let mut text = common::config_text(dir.path(), port, dns.addr(), http_port, 1, &opts);
    text = text.replace("timeout: 5s", "timeout: 10m");
    let config = dir.path().join("config.yml");
    std::fs::write(&config, text).unwrap();
    let server = spawn_server(&config).await;
    let raw = Raw::new(
        format!("127.0.0.1:{port}").parse().unwrap(),
        &format!("https://localhost:{port}"),
        &dir.path().join("work/ca/root.pem"),
    );
    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    dns.set_a("held.test", IpAddr::V4(Ipv4Addr::LOCALHOST));
    let (_, order) = common::new_order(&raw, &key, &kid, &["held.test"]).await;
    let a = raw
        .post(
            &key,
            Some(&kid),
            order["authorizations"][0].as_str().unwrap(),
            "",
        )
        .await
        .json();
    let ch = common::http01_challenge(&a);
    let r = raw
        .post(&key, Some(&kid), ch["url"].as_str().unwrap(), "{}")
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.json()["status"], json!("processing"));
    // Two signals back to back: the accept loop takes one and starts the
    // graceful stop (which would wait ten minutes for the validation), the
    // other ends the process.
    signal(&server, "-TERM");
    signal(&server, "-INT");
    let out = server.wait_with_output().unwrap();
    assert_eq!(
        out.status.code(),
        Some(certeasy::server::EXIT_SECOND_SIGNAL)
    );
}
