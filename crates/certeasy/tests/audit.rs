//! The audit log, on real files written by a running server: every event
//! once, in the transaction of its change; `certeasy audit verify` passes on
//! an untouched log and names the first break of every kind of tampering;
//! seq resumes across restarts and segments; a torn line, lines written
//! before a crash, and lines missing from the file are handled at start.

#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use certeasy::store::{AuditRow, ChainRow, Store};
use common::raw::{Key, Raw};
use common::{csr, ready_order, Harness, Options};
use http::{Method, StatusCode};
use serde_json::{json, Value};

/// Runs `certeasy audit verify`; (success, stdout + stderr).
fn verify(config: &Path, path: Option<&Path>) -> (bool, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_certeasy"));
    cmd.args(["audit", "verify", "-f"]).arg(config);
    if let Some(p) = path {
        cmd.arg("--path").arg(p);
    }
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "exit {:?}: {text}",
        out.status.code()
    );
    (out.status.success(), text)
}

fn work(h: &Harness) -> PathBuf {
    h.dir.path().join("work")
}

fn segment(h: &Harness, n: u32) -> PathBuf {
    work(h).join(format!("audit.{n:06}.log"))
}

/// An account, an issued certificate, its revocation: a dozen events.
async fn some_activity(h: &Harness, raw: &Raw) {
    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    let o = ready_order(h, raw, &key, &kid, &["audited.test"]).await;
    let (der, _) = csr(&["audited.test"], &rcgen::PKCS_ECDSA_P256_SHA256);
    let body = json!({"csr": acme_wire::b64u_encode(&der)}).to_string();
    let r = raw
        .post(&key, Some(&kid), o["finalize"].as_str().unwrap(), &body)
        .await;
    let cert_url = r.json()["certificate"].as_str().unwrap().to_string();
    let pem = raw.post(&key, Some(&kid), &cert_url, "").await;
    let leaf = pki::pem_to_der_certs(std::str::from_utf8(&pem.body).unwrap())
        .unwrap()
        .remove(0);
    let body = json!({"certificate": acme_wire::b64u_encode(&leaf), "reason": 4}).to_string();
    let r = raw
        .post(&key, Some(&kid), &raw.url("revoke-cert"), &body)
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

async fn harness(extra_sections: &str) -> (Harness, Raw) {
    let h = Harness::start_with(Options {
        extra_sections: extra_sections.to_string(),
        ..Default::default()
    })
    .await;
    let raw = Raw::new(h.server().addr, &h.base(), &h.root_pem());
    (h, raw)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_change_is_one_event_with_its_origin() {
    let (mut h, raw) = harness("rate-limiting:\n  pending-authorizations: {max: 1}\n").await;
    some_activity(&h, &raw).await;
    // A refused order rolls back: no order.create, one ratelimit.deny.
    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    common::new_order(&raw, &key, &kid, &["one.test"]).await;
    let ids = json!({"identifiers": [{"type": "dns", "value": "two.test"}]}).to_string();
    let r = raw
        .post(&key, Some(&kid), &raw.url("new-order"), &ids)
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    h.stop().await;

    let log = common::audit_lines(&work(&h).join("audit.log"));
    let events: Vec<&str> = log.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(
        events,
        [
            "account.create",
            "order.create",
            "challenge.validate",
            "authorization.validate",
            "order.finalize",
            "certificate.issue",
            "certificate.revoke",
            "account.create",
            "order.create",
            "ratelimit.deny",
        ]
    );
    let revoke = &log[6];
    assert_eq!(revoke["details"]["reason"], json!(4));
    assert_eq!(revoke["source_ip"], json!("127.0.0.1"));
    assert_eq!(log[8]["details"]["names"], json!(["one.test"]));
    let issue = &log[5];
    assert_eq!(issue["details"]["names"], json!(["audited.test"]));
    assert!(issue["details"]["serial"].is_string());
    // Job events carry no request origin; request events do.
    assert_eq!(log[0]["source_ip"], json!("127.0.0.1"));
    for (i, l) in log.iter().enumerate() {
        assert_eq!(l["seq"], json!(i + 1));
        assert_eq!(l["schema"], json!(1));
    }
    let server_id = std::fs::read_to_string(work(&h).join("server_id")).unwrap();
    assert_eq!(log[0]["server_id"], json!(server_id.trim()));
    let (ok, out) = verify(&h.config_path, None);
    assert!(ok, "{out}");
    assert!(out.contains("is intact: 10 lines in 1 segments"), "{out}");
    // The secret is in the database and nowhere in the log.
    let store = Store::open_sqlite(&work(&h).join("db.sqlite"))
        .await
        .unwrap();
    let secret = store.meta("audit_key").await.unwrap().unwrap();
    let text = std::fs::read_to_string(segment(&h, 1)).unwrap();
    assert!(!text.contains(&secret));
}

/// Writes `lines` (each without newline) as the only segment of a copy
/// of the log under `dir`; its base path.
fn tampered(dir: &Path, name: &str, lines: &[String], final_newline: bool) -> PathBuf {
    let d = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    let mut text = lines.join("\n");
    if final_newline {
        text.push('\n');
    }
    std::fs::write(d.join("audit.000001.log"), text).unwrap();
    d.join("audit.log")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_the_first_break_of_every_kind_of_tampering() {
    let (mut h, raw) = harness("").await;
    some_activity(&h, &raw).await;
    h.stop().await;
    let (ok, out) = verify(&h.config_path, None);
    assert!(ok, "{out}");
    let lines: Vec<String> = std::fs::read_to_string(segment(&h, 1))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    assert_eq!(lines.len(), 7);
    let scratch = tempfile::tempdir().unwrap();
    let check = |name: &str, lines: Vec<String>, newline: bool, expect: &str| {
        let base = tampered(scratch.path(), name, &lines, newline);
        let (ok, out) = verify(&h.config_path, Some(&base));
        assert!(!ok, "{name}: verify passed: {out}");
        assert!(out.contains(expect), "{name}: expected {expect:?} in {out}");
    };
    // The untouched copy verifies.
    let base = tampered(scratch.path(), "copy", &lines, true);
    assert!(verify(&h.config_path, Some(&base)).0);

    let mut v = lines.clone();
    v.remove(2);
    check(
        "removed",
        v,
        true,
        "audit.000001.log:3: lines with seq 3 to 3 were removed",
    );

    let mut v = lines.clone();
    v[3] = v[3].replacen("audited.test", "audite0.test", 1);
    check(
        "modified",
        v,
        true,
        "audit.000001.log:4: the line's MAC does not verify",
    );

    let mut v = lines.clone();
    v[4] = v[4].replacen("\"ts\":\"2", "\"ts\":\"1", 1);
    check(
        "modified-time",
        v,
        true,
        "audit.000001.log:5: the line's MAC does not verify",
    );

    let mut v = lines.clone();
    let copy = v[1].clone();
    v.insert(5, copy);
    check(
        "duplicated",
        v,
        true,
        "audit.000001.log:6: seq 2 comes after seq 5",
    );

    let mut v = lines.clone();
    let forged = v[2].replacen("\"seq\":3", "\"seq\":4", 1);
    v.insert(3, forged);
    check(
        "forged",
        v,
        true,
        "audit.000001.log:4: the line's MAC does not verify",
    );

    let mut v = lines.clone();
    v.swap(2, 3);
    check(
        "reordered",
        v,
        true,
        "audit.000001.log:3: seq 4 comes before seq 3, which is at line 4: lines were reordered",
    );

    let mut v = lines.clone();
    let last = v.pop().unwrap();
    v.push(last[..last.len() / 2].to_string());
    check(
        "truncated",
        v,
        false,
        "audit.000001.log:7: the last line is truncated",
    );

    let mut v = lines.clone();
    v.truncate(5);
    check(
        "cut-at-end",
        v,
        true,
        "the log ends at seq 5 but the database records seq 7 as written",
    );

    let mut v = lines.clone();
    v[2] = "{\"not\":\"an audit line\"}".to_string();
    check(
        "garbage",
        v,
        true,
        "audit.000001.log:3: not a complete audit line",
    );

    // Another installation's key (its own database) fails at line 1.
    let (mut other, _) = harness("").await;
    other.stop().await;
    let base = tampered(scratch.path(), "other-key", &lines, true);
    let (ok, out) = verify(&other.config_path, Some(&base));
    assert!(!ok);
    assert!(
        out.contains("audit.000001.log:1: the first line's MAC does not verify: this is not the key of the installation"),
        "{out}"
    );
}

/// `n` refused requests, each one `ratelimit.deny` event of about 600
/// bytes (the User-Agent is kept up to 256 characters).
async fn refusals(raw: &Raw, n: usize) {
    let ua = "x".repeat(300);
    let url = raw.url("new-nonce");
    futures::stream::iter(0..n)
        .for_each_concurrent(16, |_| {
            let (ua, url) = (ua.clone(), url.clone());
            async move {
                let r = raw
                    .send_with(Method::HEAD, &url, None, Vec::new(), &[("user-agent", &ua)])
                    .await;
                assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
            }
        })
        .await;
}

use futures::StreamExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seq_resumes_across_restarts_and_segments_which_are_never_renamed() {
    let sections = "audit:\n  rotate: {max-size-mb: 1}\nrate-limiting:\n  global: {requests-per-minute: 1, burst: 1}\n";
    let (mut h, raw) = harness(sections).await;
    let r = raw
        .send(Method::HEAD, &raw.url("new-nonce"), None, Vec::new())
        .await;
    assert_eq!(r.status, StatusCode::OK);
    refusals(&raw, 2000).await;
    h.stop().await;
    let first = std::fs::metadata(segment(&h, 1)).unwrap();
    assert!(segment(&h, 2).exists(), "more than 1 MiB: a second segment");
    h.restart().await;
    let raw = Raw::new(h.server().addr, &h.base(), &h.root_pem());
    // The buckets are in memory: a restart gives the address its burst.
    let r = raw
        .send(Method::HEAD, &raw.url("new-nonce"), None, Vec::new())
        .await;
    assert_eq!(r.status, StatusCode::OK);
    refusals(&raw, 2000).await;
    h.stop().await;
    assert!(segment(&h, 3).exists(), "a third segment");
    {
        use std::os::unix::fs::MetadataExt;
        let again = std::fs::metadata(segment(&h, 1)).unwrap();
        assert_eq!(
            (again.ino(), again.len()),
            (first.ino(), first.len()),
            "segment 1 untouched"
        );
    }
    let log = common::audit_lines(&work(&h).join("audit.log"));
    assert_eq!(log.len(), 4000);
    for (i, l) in log.iter().enumerate() {
        assert_eq!(
            l["seq"],
            json!(i + 1),
            "seq continues across restart and segments"
        );
    }
    let (ok, out) = verify(&h.config_path, None);
    assert!(ok, "{out}");
    assert!(out.contains("4000 lines in 3 segments"), "{out}");

    // A segment missing at a rotation boundary.
    let scratch = tempfile::tempdir().unwrap();
    for n in [1, 3] {
        std::fs::copy(
            segment(&h, n),
            scratch.path().join(format!("audit.{n:06}.log")),
        )
        .unwrap();
    }
    let (ok, out) = verify(&h.config_path, Some(&scratch.path().join("audit.log")));
    assert!(!ok);
    assert!(
        out.contains("audit.000003.log: segment 2 is missing"),
        "{out}"
    );
    // The first segment missing.
    std::fs::remove_file(scratch.path().join("audit.000001.log")).unwrap();
    std::fs::copy(segment(&h, 2), scratch.path().join("audit.000002.log")).unwrap();
    let (ok, out) = verify(&h.config_path, Some(&scratch.path().join("audit.log")));
    assert!(!ok);
    assert!(out.contains("segment 1 is missing"), "{out}");
    // The last segment missing: the database knows where the chain ends.
    std::fs::copy(segment(&h, 1), scratch.path().join("audit.000001.log")).unwrap();
    std::fs::remove_file(scratch.path().join("audit.000003.log")).unwrap();
    let (ok, out) = verify(&h.config_path, Some(&scratch.path().join("audit.log")));
    assert!(!ok);
    assert!(
        out.contains("but the database records seq 4000 as written"),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_refuses_a_log_last_written_by_another_node() {
    let (mut h, raw) = harness("").await;
    some_activity(&h, &raw).await;
    h.stop().await;
    std::fs::write(work(&h).join("server_id"), "another-node\n").unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = certeasy::config::load(&h.config_path).unwrap();
    let err = certeasy::server::start_with_listener(config, listener)
        .await
        .err()
        .expect("refused");
    let msg = format!("{err:#}");
    assert!(msg.contains("was last written by server_id"), "{msg}");
    assert!(msg.contains("but this node is another-node"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_on_the_same_log_is_refused_while_the_first_runs() {
    let (mut h, raw) = harness("").await;
    some_activity(&h, &raw).await;
    // A second server on the same configuration (same workdir, same
    // server_id, same audit.path): two writers would interleave one chain.
    let config_path = h.config_path.clone();
    let second = || async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let config = certeasy::config::load(&config_path).unwrap();
        certeasy::server::start_with_listener(config, listener).await
    };
    let err = second().await.err().expect("refused while the first runs");
    let msg = format!("{err:#}");
    assert!(
        msg.contains("is being written by another certeasy process"),
        "{msg}"
    );
    assert!(msg.contains("own audit.path"), "{msg}");
    // The first one's log is intact and it goes on; once it has stopped,
    // the file is free again.
    some_activity(&h, &raw).await;
    h.stop().await;
    let again = second().await.expect("starts once the first has stopped");
    again.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crash_leftovers_are_recovered_without_losing_or_repeating_an_event() {
    let (mut h, raw) = harness("").await;
    some_activity(&h, &raw).await;
    h.stop().await;
    let text = std::fs::read_to_string(segment(&h, 1)).unwrap();
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 7);

    // The state a crash between the fsync and the commit leaves: the last
    // three lines are in the file, their events still in the outbox and
    // the chain's recorded end three lines back.
    {
        let store = Store::open_sqlite(&work(&h).join("db.sqlite"))
            .await
            .unwrap();
        let server_id = lines[0]["server_id"].as_str().unwrap().to_string();
        let mut tx = store.begin().await.unwrap();
        for l in &lines[4..] {
            let row = AuditRow {
                ts: 0,
                event: l["event"].as_str().unwrap().to_string(),
                details: Some(l["details"].to_string()),
                ..Default::default()
            };
            Store::audit_append(&mut tx, &server_id, &row)
                .await
                .unwrap();
        }
        let end = ChainRow {
            seq: 4,
            mac: lines[3]["mac"].as_str().unwrap().to_string(),
            segment: 1,
        };
        Store::audit_advance(&mut tx, &server_id, 0, &end)
            .await
            .unwrap();
        tx.commit().await.unwrap();
        store.close().await;
    }
    // And a line torn by the crash after them.
    let torn = "{\"ts\":\"2026-12-06T10:00:00.000Z\",\"schema\":1,\"seq\":8,\"ser";
    std::fs::write(segment(&h, 1), format!("{text}{torn}")).unwrap();

    h.restart().await;
    let raw = Raw::new(h.server().addr, &h.base(), &h.root_pem());
    raw.new_account(&Key::generate()).await;
    h.stop().await;
    let (ok, out) = verify(&h.config_path, None);
    assert!(ok, "{out}");
    assert!(
        out.contains("audit.000001.log:8: a line torn by a crash, recovered"),
        "{out}"
    );
    let log = common::audit_lines(&work(&h).join("audit.log"));
    let events: Vec<&str> = log.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(
        events,
        [
            "account.create",
            "order.create",
            "challenge.validate",
            "authorization.validate",
            "order.finalize",
            "certificate.issue",
            "certificate.revoke",
            "audit.recover",
            "account.create",
        ],
        "the trimmed events are not written twice"
    );
    assert_eq!(log[7]["details"]["kind"], json!("torn-line"));
    assert_eq!(log[7]["seq"], json!(8));
    assert_eq!(log[8]["seq"], json!(9));

    // Lines removed from the file while the node was down: recorded at
    // start, and verify reports it.
    let text = std::fs::read_to_string(segment(&h, 1)).unwrap();
    let kept: Vec<&str> = text.lines().collect();
    std::fs::write(
        segment(&h, 1),
        format!("{}\n", kept[..kept.len() - 1].join("\n")),
    )
    .unwrap();
    h.restart().await;
    h.stop().await;
    let (ok, out) = verify(&h.config_path, None);
    assert!(!ok, "{out}");
    assert!(
        out.contains("the server found lines with seq 9 to 9 missing"),
        "{out}"
    );
}

#[tokio::test]
async fn a_disabled_log_writes_nothing() {
    let (mut h, raw) = harness("audit:\n  enabled: false\n").await;
    raw.new_account(&Key::generate()).await;
    assert!(!h.server().ra.audit.flush().await);
    h.stop().await;
    assert!(!segment(&h, 1).exists());
}
