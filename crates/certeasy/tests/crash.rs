//! Crash safety: the `certeasy` binary is killed with SIGKILL while
//! validation jobs are running and issuance jobs are queued, then restarted.
//! Every order must end `valid` or `invalid`, and no order may get two
//! certificates.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use common::raw::{Key, Raw};
use http::StatusCode;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, Semaphore};

/// An http-01 responder that reports each request and holds it until the
/// gate opens, so the test knows a validation is in flight.
async fn gated_responder(
    tokens: Arc<Mutex<HashMap<String, String>>>,
    gate: Arc<Semaphore>,
) -> (u16, mpsc::UnboundedReceiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            let Ok((mut sock, _)) = listener.accept().await else {
                return;
            };
            let (tokens, gate, tx) = (tokens.clone(), gate.clone(), tx.clone());
            tokio::spawn(async move {
                let mut buf = vec![0u8; 4096];
                let mut n = 0;
                while !buf[..n].windows(4).any(|w| w == b"\r\n\r\n") {
                    match sock.read(&mut buf[n..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(m) => n += m,
                    }
                }
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let token = req
                    .split_whitespace()
                    .nth(1)
                    .unwrap_or("")
                    .trim_start_matches("/.well-known/acme-challenge/")
                    .to_string();
                let _ = tx.send(token.clone());
                let _permit = gate.acquire().await;
                let body = tokens
                    .lock()
                    .unwrap()
                    .get(&token)
                    .cloned()
                    .unwrap_or_default();
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(resp.as_bytes()).await;
            });
        }
    });
    (port, rx)
}

/// Starts the binary and waits for its "ACME directory" line.
async fn spawn_server(config: &std::path::Path) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_certeasy"))
        .args(["serve", "-f"])
        .arg(config)
        .env("APP_LOG_LEVEL", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    common::wait_until_serving(child.stdout.take().unwrap()).await;
    child
}

async fn order_state(raw: &Raw, key: &Key, kid: &str, url: &str) -> serde_json::Value {
    raw.post(key, Some(kid), url, "").await.json()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_during_processing_loses_nothing_and_issues_once() {
    let dir = tempfile::tempdir().unwrap();
    let dns = certeasy_va::testing::TestDns::start("test").await.unwrap();
    let tokens: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let gate = Arc::new(Semaphore::new(0));
    let (http_port, mut arrived) = gated_responder(tokens.clone(), gate.clone()).await;
    let port = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        common::config_text(
            dir.path(),
            port,
            dns.addr(),
            http_port,
            1,
            &common::Options::default(),
        ),
    )
    .unwrap();

    let mut server = spawn_server(&config).await;
    let base = format!("https://localhost:{port}");
    let raw = Raw::new(
        format!("127.0.0.1:{port}").parse().unwrap(),
        &base,
        &dir.path().join("work/ca/root.pem"),
    );
    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    let thumb = acme_wire::Jwk::from_json(&key.jwk()).unwrap().thumbprint();

    // Six orders; each answers its http-01 challenge. The responder holds
    // every validation request, so the server has jobs running when killed.
    let mut orders = Vec::new();
    for i in 0..6 {
        let name = format!("crash{i}.test");
        dns.set_a(&name, IpAddr::V4(Ipv4Addr::LOCALHOST));
        let r = raw
            .post(
                &key,
                Some(&kid),
                &raw.url("new-order"),
                &json!({"identifiers": [{"type": "dns", "value": name}]}).to_string(),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED);
        let order_url = r.location();
        let authz = raw
            .post(
                &key,
                Some(&kid),
                r.json()["authorizations"][0].as_str().unwrap(),
                "",
            )
            .await
            .json();
        let ch = common::http01_challenge(&authz);
        let token = ch["token"].as_str().unwrap().to_string();
        tokens
            .lock()
            .unwrap()
            .insert(token.clone(), acme_wire::key_authorization(&token, &thumb));
        let r = raw
            .post(&key, Some(&kid), ch["url"].as_str().unwrap(), "{}")
            .await;
        assert_eq!(r.json()["status"], json!("processing"));
        orders.push((name, order_url));
    }
    // Wait until validations are in flight (two workers), then kill -9.
    arrived.recv().await.unwrap();
    arrived.recv().await.unwrap();
    server.kill().unwrap();
    server.wait().unwrap();

    // Restart; let validations through. Leased jobs of the dead process are
    // reclaimed when their lease (5s) expires.
    gate.add_permits(1_000);
    let mut server = spawn_server(&config).await;
    let mut finalized = Vec::new();
    for (name, url) in &orders {
        let mut state = order_state(&raw, &key, &kid, url).await;
        for _ in 0..600 {
            if state["status"] != json!("pending") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            state = order_state(&raw, &key, &kid, url).await;
        }
        assert_eq!(state["status"], json!("ready"), "{name}: {state}");
        let (der, _) = common::csr(&[name.as_str()], &rcgen::PKCS_ECDSA_P256_SHA256);
        let r = raw
            .post(
                &key,
                Some(&kid),
                state["finalize"].as_str().unwrap(),
                &json!({"csr": acme_wire::b64u_encode(&der)}).to_string(),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.json());
        finalized.push(url.clone());
    }
    // Kill again right after the last finalize: issuance jobs may be queued
    // or running; a restart must finish them exactly once.
    server.kill().unwrap();
    server.wait().unwrap();
    let mut server = spawn_server(&config).await;
    let mut valid = 0;
    for url in &finalized {
        let mut state = order_state(&raw, &key, &kid, url).await;
        for _ in 0..600 {
            if state["status"] != json!("processing") {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            state = order_state(&raw, &key, &kid, url).await;
        }
        let status = state["status"].as_str().unwrap().to_string();
        assert!(status == "valid" || status == "invalid", "{url}: {state}");
        if status == "valid" {
            valid += 1;
            assert!(state["certificate"].is_string());
        }
    }
    assert_eq!(valid, orders.len(), "every order should issue");

    // Graceful stop (SIGTERM), then count certificates in the database.
    let pid = server.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = server.wait().unwrap();
    assert!(status.success(), "graceful shutdown exit status {status}");
    let store = certeasy::store::Store::open_sqlite(&dir.path().join("work/db.sqlite"))
        .await
        .unwrap();
    assert_eq!(
        store.count_certs().await.unwrap(),
        orders.len() as i64,
        "exactly one certificate per order"
    );
    assert_eq!(store.job_count().await.unwrap(), 0, "no job left behind");

    // The audit log survived both kills: it verifies, and every committed
    // change has its event exactly once (two kills may have left lines
    // written but not yet trimmed from the outbox, or a torn line).
    let verify = Command::new(env!("CARGO_BIN_EXE_certeasy"))
        .args(["audit", "verify", "-f"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        verify.status.success(),
        "audit verify: {}{}",
        String::from_utf8_lossy(&verify.stdout),
        String::from_utf8_lossy(&verify.stderr)
    );
    let log = common::audit_lines(&dir.path().join("work/audit.log"));
    let count = |event: &str| log.iter().filter(|l| l["event"] == json!(event)).count();
    assert_eq!(count("account.create"), 1);
    assert_eq!(count("order.create"), orders.len());
    assert_eq!(count("challenge.validate"), orders.len());
    assert_eq!(count("authorization.validate"), orders.len());
    assert_eq!(count("order.finalize"), orders.len());
    assert_eq!(count("certificate.issue"), orders.len());
    let seqs: Vec<i64> = log.iter().map(|l| l["seq"].as_i64().unwrap()).collect();
    assert_eq!(seqs, (1..=seqs.len() as i64).collect::<Vec<_>>());
}
