//! Operations of the `certeasy` binary over a full run: JSON logs to a
//! rotated file with `APP_LOG_LEVEL` overriding the level, a request id in
//! every log line of a request or job, in the `X-Request-Id` header and in
//! problem documents; no secret in the debug-level logs; the Prometheus
//! endpoint, checked by `promtool check metrics`; `logs.services` names
//! checked against the list of components.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::{Child, Command, Stdio};

use base64::Engine as _;
use common::raw::{Key, Raw};
use http::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

async fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn spawn_server(config: &Path, level: &str) -> Child {
    let mut child = Command::new(env!("CARGO_BIN_EXE_certeasy"))
        .args(["serve", "-f"])
        .arg(config)
        .env("APP_LOG_LEVEL", level)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    common::wait_until_serving(child.stdout.take().unwrap()).await;
    child
}

/// Plain-HTTP GET; the body.
async fn http_get(port: u16, path: &str) -> (String, String) {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    s.write_all(
        format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .await
    .unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).await.unwrap();
    let text = String::from_utf8(out).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    (head.to_string(), body.to_string())
}

/// One issuance with the raw client through http-01: the order URL.
async fn issue(
    raw: &Raw,
    key: &Key,
    kid: &str,
    tokens: &common::Tokens,
    dns: &certeasy_va::testing::TestDns,
    name: &str,
) -> String {
    dns.set_a(name, IpAddr::V4(Ipv4Addr::LOCALHOST));
    let r = raw
        .post(
            key,
            Some(kid),
            &raw.url("new-order"),
            &json!({"identifiers": [{"type": "dns", "value": name}]}).to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.json());
    let order_url = r.location();
    let authz = raw
        .post(
            key,
            Some(kid),
            r.json()["authorizations"][0].as_str().unwrap(),
            "",
        )
        .await
        .json();
    let ch = common::http01_challenge(&authz);
    let token = ch["token"].as_str().unwrap().to_string();
    let thumb = acme_wire::Jwk::from_json(&key.jwk()).unwrap().thumbprint();
    tokens
        .lock()
        .unwrap()
        .insert(token.clone(), acme_wire::key_authorization(&token, &thumb));
    raw.post(key, Some(kid), ch["url"].as_str().unwrap(), "{}")
        .await;
    let mut order = raw.post(key, Some(kid), &order_url, "").await.json();
    for _ in 0..400 {
        if order["status"] != json!("pending") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        order = raw.post(key, Some(kid), &order_url, "").await.json();
    }
    assert_eq!(order["status"], json!("ready"), "{order}");
    let (der, _) = common::csr(&[name], &rcgen::PKCS_ECDSA_P256_SHA256);
    let r = raw
        .post(
            key,
            Some(kid),
            order["finalize"].as_str().unwrap(),
            &json!({"csr": acme_wire::b64u_encode(&der)}).to_string(),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.json());
    for _ in 0..400 {
        order = raw.post(key, Some(kid), &order_url, "").await.json();
        if order["status"] != json!("processing") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    assert_eq!(order["status"], json!("valid"), "{order}");
    let cert = raw
        .post(key, Some(kid), order["certificate"].as_str().unwrap(), "")
        .await;
    assert_eq!(cert.status, StatusCode::OK);
    order_url
}

fn sample(metrics: &str, name_and_labels: &str) -> f64 {
    metrics
        .lines()
        .find(|l| l.starts_with(name_and_labels))
        .unwrap_or_else(|| panic!("no sample {name_and_labels} in\n{metrics}"))
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

fn terminate(child: &mut Child) -> std::process::ExitStatus {
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    child.wait().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_run_logs_request_ids_no_secrets_and_scrapes_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let dns = certeasy_va::testing::TestDns::start("test").await.unwrap();
    let tokens: common::Tokens = Default::default();
    let http_port = common::spawn_http01_responder(tokens.clone()).await;
    let port = free_port().await;
    let metrics_port = free_port().await;
    let config = dir.path().join("config.yml");
    // The file says warn; APP_LOG_LEVEL=debug must win. A 1 MiB rotation
    // size with many backups: nothing may be lost.
    let opts = common::Options {
        extra_sections: format!(
            "logs:\n  level: warn\n  format: json\n  output: file\n  file: \"%WORKDIR%/log/certeasy.log\"\n  rotate:\n    max-size-mb: 1\n    max-backups: 100\nmetrics:\n  listen: \"127.0.0.1:{metrics_port}\"\n"
        ),
        ..common::Options::default()
    };
    std::fs::write(
        &config,
        common::config_text(dir.path(), port, dns.addr(), http_port, 1, &opts),
    )
    .unwrap();
    let mut server = spawn_server(&config, "debug").await;
    let base = format!("https://localhost:{port}");
    let raw = Raw::new(
        format!("127.0.0.1:{port}").parse().unwrap(),
        &base,
        &dir.path().join("work/ca/root.pem"),
    );
    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    for i in 0..3 {
        issue(&raw, &key, &kid, &tokens, &dns, &format!("ops{i}.test")).await;
    }

    // A refused request: the problem's detail and the header name its id.
    let url = raw.url("new-order");
    let r = raw
        .post_raw(&url, key.jws(Some(&kid), Some("bogus-nonce"), &url, "{}"))
        .await;
    assert_eq!(r.problem_type(), "badNonce");
    let problem_id = r.header("x-request-id").expect("x-request-id");
    let detail = r.json()["detail"].as_str().unwrap().to_string();
    assert!(
        detail.ends_with(&format!("(request id {problem_id})")),
        "{detail}"
    );
    // Every response carries an id, each a different one.
    let a = raw
        .send(http::Method::GET, &raw.url("directory"), None, vec![])
        .await;
    let b = raw
        .send(http::Method::GET, &format!("{base}/healthz"), None, vec![])
        .await;
    let (a, b) = (
        a.header("x-request-id").unwrap(),
        b.header("x-request-id").unwrap(),
    );
    assert_ne!(a, b);

    // Metrics: every family present, the run counted, and promtool agrees.
    let (head, metrics) = http_get(metrics_port, "/metrics").await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    for family in [
        "certeasy_http_requests_total",
        "certeasy_http_request_duration_seconds",
        "certeasy_orders_total",
        "certeasy_validations_total",
        "certeasy_validation_duration_seconds",
        "certeasy_issuance_duration_seconds",
        "certeasy_authority_up",
        "certeasy_jobs_queued",
        "certeasy_jobs_running",
        "certeasy_jobs_oldest_age_seconds",
        "certeasy_audit_write_failures_total",
        "certeasy_certificates_expiring_soon",
        "certeasy_build_info",
    ] {
        assert!(
            metrics.contains(&format!("# TYPE {family} ")),
            "{family} missing in\n{metrics}"
        );
    }
    assert_eq!(
        sample(
            &metrics,
            "certeasy_http_requests_total{route=\"new-order\",status=\"201\"}"
        ),
        3.0
    );
    assert_eq!(
        sample(
            &metrics,
            "certeasy_http_requests_total{route=\"new-order\",status=\"400\"}"
        ),
        1.0
    );
    assert_eq!(
        sample(&metrics, "certeasy_orders_total{state=\"valid\"}"),
        3.0
    );
    assert_eq!(
        sample(
            &metrics,
            "certeasy_validations_total{type=\"http-01\",outcome=\"valid\"}"
        ),
        3.0
    );
    assert_eq!(
        sample(
            &metrics,
            "certeasy_issuance_duration_seconds_count{authority=\"builtin\",outcome=\"issued\"}"
        ),
        3.0
    );
    assert_eq!(
        sample(&metrics, "certeasy_authority_up{authority=\"builtin\"}"),
        1.0
    );
    // The three certificates expire in 90 days, outside the 30-day window.
    assert_eq!(sample(&metrics, "certeasy_certificates_expiring_soon"), 0.0);
    assert_eq!(sample(&metrics, "certeasy_jobs_queued"), 0.0);
    let mut promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; scripts/test.sh installs it)");
    std::io::Write::write_all(&mut promtool.stdin.take().unwrap(), metrics.as_bytes()).unwrap();
    let out = promtool.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let status = terminate(&mut server);
    assert!(status.success(), "{status}");
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut server.stderr.take().unwrap(), &mut stderr).unwrap();

    // The log: JSON lines, debug level in effect.
    let log_dir = dir.path().join("work/log");
    let mut text = String::new();
    for e in std::fs::read_dir(&log_dir).unwrap() {
        text.push_str(&std::fs::read_to_string(e.unwrap().path()).unwrap());
    }
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    assert!(
        lines.iter().any(|l| l["level"] == json!("DEBUG")),
        "APP_LOG_LEVEL=debug not in effect"
    );
    let id_of = |l: &Value| -> Option<String> {
        l["spans"]
            .as_array()?
            .iter()
            .rev()
            .find_map(|s| s["request_id"].as_str().map(str::to_string))
    };
    // Every line logged by the layers that serve requests and run jobs
    // names its request or job.
    let mut ids = HashSet::new();
    for l in &lines {
        let target = l["target"].as_str().unwrap_or("");
        if ["wfe", "ra", "va", "jobs", "ca"].contains(&target) || target.starts_with("certeasy_va")
        {
            let msg = l["fields"]["message"].as_str().unwrap_or("");
            if target == "ca" && msg.contains("built-in CA") {
                continue; // the startup warning
            }
            let id = id_of(l).unwrap_or_else(|| panic!("no request id: {l}"));
            ids.insert(id);
        }
    }
    assert!(ids.len() > 3, "few request ids: {ids:?}");
    assert!(
        lines
            .iter()
            .any(|l| id_of(l).as_deref() == Some(problem_id.as_str())
                && l["fields"]["message"] == json!("request refused")),
        "no log line of the refused request {problem_id}"
    );
    assert!(
        lines.iter().any(|l| l["spans"]
            .as_array()
            .is_some_and(|s| s.iter().any(|s| s["name"] == json!("job")))),
        "no line of a job"
    );

    // No secret, at debug level: the CA password, the account's private
    // key, the listener's private key.
    let mut secrets = vec!["test-password".to_string()];
    let pkcs8 = key.pkcs8();
    secrets.push(base64::engine::general_purpose::STANDARD.encode(pkcs8)[..40].to_string());
    secrets.push(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(pkcs8)[..40].to_string());
    secrets.push(hex::encode(pkcs8)[..40].to_string());
    for e in std::fs::read_dir(dir.path().join("work/server-certificate-cache")).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        if text.contains("PRIVATE KEY") {
            for l in text
                .lines()
                .filter(|l| !l.starts_with("-----") && l.len() >= 40)
            {
                secrets.push(l.to_string());
            }
        }
    }
    assert!(secrets.len() > 4, "no listener key found");
    for s in &secrets {
        assert!(!text.contains(s.as_str()), "a secret is in the log: {s}");
        assert!(!stderr.contains(s.as_str()), "a secret is on stderr: {s}");
    }
}

#[tokio::test]
async fn unknown_log_component_is_refused_with_the_valid_names() {
    let dir = tempfile::tempdir().unwrap();
    let opts = common::Options {
        extra_sections: "logs:\n  services:\n    wfe: debug\n    webfrontend: debug\n".into(),
        ..common::Options::default()
    };
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        common::config_text(
            dir.path(),
            8443,
            "127.0.0.1:53".parse().unwrap(),
            80,
            443,
            &opts,
        ),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_certeasy"))
        .args(["validate", "-f"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("logs.services.webfrontend"), "{err}");
    for name in certeasy::config::LOG_COMPONENTS.iter().map(|c| c.0) {
        assert!(err.contains(name), "{name} not listed: {err}");
    }
    assert!(!err.contains("services.wfe"), "{err}");
}

#[tokio::test]
async fn an_unknown_app_log_level_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        common::config_text(
            dir.path(),
            8443,
            "127.0.0.1:53".parse().unwrap(),
            80,
            443,
            &common::Options::default(),
        ),
    )
    .unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_certeasy"))
        .args(["serve", "-f"])
        .arg(&config)
        .env("APP_LOG_LEVEL", "loud")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id().to_string();
    // A server that started anyway would serve for ever: bound the wait.
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    let out = match rx.recv_timeout(std::time::Duration::from_secs(60)) {
        Ok(out) => out.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").args(["-KILL", &pid]).status();
            panic!("certeasy serve started despite APP_LOG_LEVEL=loud");
        }
    };
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("APP_LOG_LEVEL=\"loud\" is not a level"),
        "{err}"
    );
    assert!(!dir.path().join("work").exists(), "nothing started");
}
