//! `certeasy backup create|verify` and `certeasy migrate`: an online
//! backup taken under load is consistent; a damaged or foreign file is
//! reported suspect (exit 2); an existing file is never overwritten; a
//! restored backup serves the certificates it holds; migrations can be
//! listed and applied by hand, and a database newer than the binary is
//! refused by `migrate` and `serve`.
#![allow(clippy::unwrap_used, missing_docs)]

mod common;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::raw::{Key, Raw};
use common::Harness;
use http::StatusCode;
use serde_json::json;

fn certeasy(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_certeasy"))
        .args(args)
        .env_remove("APP_LOG_LEVEL")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Issues a certificate for `name` with the raw client: (certificate URL,
/// PEM chain).
async fn issue(h: &Harness, raw: &Raw, key: &Key, kid: &str, name: &str) -> (String, String) {
    let order = common::ready_order(h, raw, key, kid, &[name]).await;
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
    let order_url = r.location();
    let mut o = r.json();
    for _ in 0..400 {
        if o["status"] != json!("processing") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        o = raw.post(key, Some(kid), &order_url, "").await.json();
    }
    assert_eq!(o["status"], json!("valid"), "{o}");
    let url = o["certificate"].as_str().unwrap().to_string();
    let pem = raw.post(key, Some(kid), &url, "").await;
    assert_eq!(pem.status, StatusCode::OK);
    (url, String::from_utf8(pem.body.to_vec()).unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_under_load_is_consistent() {
    let h = Arc::new(Harness::start().await);
    let raw = Arc::new(Raw::new(h.server().addr, &h.base(), &h.root_pem()));
    let key = Arc::new(Key::generate());
    let kid = raw.new_account(&key).await;
    issue(&h, &raw, &key, &kid, "first.test").await;
    // Two clients issue without pause while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let mut load = Vec::new();
    for c in 0..2 {
        let (h, raw, key, kid, stop) = (
            h.clone(),
            raw.clone(),
            key.clone(),
            kid.clone(),
            stop.clone(),
        );
        load.push(tokio::spawn(async move {
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) {
                issue(&h, &raw, &key, &kid, &format!("load{c}-{n}.test")).await;
                n += 1;
            }
            n
        }));
    }
    let out_dir = tempfile::tempdir().unwrap();
    let backup = out_dir.path().join("certeasy.backup");
    let config = h.config_path.clone();
    let b = backup.clone();
    let out = tokio::task::spawn_blocking(move || {
        certeasy(&[
            "backup",
            "create",
            "-f",
            path(&config),
            "--output",
            path(&b),
            "--check",
            "full",
        ])
    })
    .await
    .unwrap();
    stop.store(true, Ordering::SeqCst);
    let mut issued_meanwhile = 0;
    for l in load {
        issued_meanwhile += l.await.unwrap();
    }
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("backup is sound"), "{}", text(&out));
    assert!(issued_meanwhile > 0);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&backup).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // Only the backup is left in the output directory (no partial file).
    assert_eq!(std::fs::read_dir(out_dir.path()).unwrap().count(), 1);
    let out = certeasy(&[
        "backup",
        "verify",
        "--input",
        path(&backup),
        "--check",
        "full",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    // A consistent snapshot: every certificate belongs to a valid order,
    // every order in processing still has its job.
    let info = certeasy::store::Store::verify_backup(&backup, certeasy::store::backup::Check::Full)
        .unwrap();
    assert!(info.certificates >= 1);
    let conn = rusqlite::Connection::open(&backup).unwrap();
    let q = |sql: &str| -> i64 { conn.query_row(sql, [], |r| r.get(0)).unwrap() };
    assert_eq!(q("SELECT COUNT(*) FROM certificates c JOIN orders o ON o.id = c.order_id WHERE o.status != 'valid'"), 0);
    assert_eq!(q("SELECT COUNT(*) FROM orders o WHERE o.status = 'valid' AND NOT EXISTS (SELECT 1 FROM certificates c WHERE c.order_id = o.id)"), 0);
    assert_eq!(q("SELECT COUNT(*) FROM orders o WHERE o.status = 'processing' AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.kind = 'issue' AND j.subject = o.id)"), 0);
    let live = h.server().ra.store.count_certs().await.unwrap();
    assert!(info.certificates <= live);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_foreign_and_existing_files() {
    let h = Harness::start().await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.backup");
    let out = certeasy(&[
        "backup",
        "create",
        "-f",
        path(&h.config_path),
        "--output",
        path(&good),
        "--check",
        "quick",
    ]);
    assert!(out.status.success(), "{}", text(&out));

    // Never overwritten: exit 1, the file unchanged.
    let existing = dir.path().join("existing");
    std::fs::write(&existing, "keep me").unwrap();
    let out = certeasy(&[
        "backup",
        "create",
        "-f",
        path(&h.config_path),
        "--output",
        path(&existing),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("never overwrites"), "{}", text(&out));
    assert_eq!(std::fs::read_to_string(&existing).unwrap(), "keep me");

    // Damaged pages: garbage written over the second half of the file.
    let bytes = std::fs::read(&good).unwrap();
    let mut damaged = bytes.clone();
    let half = damaged.len() / 2;
    for (i, b) in damaged[half..].iter_mut().enumerate() {
        *b = (i * 7 + 13) as u8;
    }
    let f = dir.path().join("damaged.backup");
    std::fs::write(&f, &damaged).unwrap();
    let out = certeasy(&["backup", "verify", "--input", path(&f), "--check", "full"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("suspect backup"), "{}", text(&out));

    // Truncated.
    let f = dir.path().join("truncated.backup");
    std::fs::write(&f, &bytes[..bytes.len() / 3]).unwrap();
    let out = certeasy(&["backup", "verify", "--input", path(&f), "--check", "quick"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));

    // Not a database at all.
    let f = dir.path().join("noise.backup");
    std::fs::write(&f, vec![0x5a; 8192]).unwrap();
    let out = certeasy(&["backup", "verify", "--input", path(&f)]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("not an SQLite database"),
        "{}",
        text(&out)
    );

    // Another application's SQLite database.
    let f = dir.path().join("foreign.sqlite");
    let conn = rusqlite::Connection::open(&f).unwrap();
    conn.execute_batch("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT); INSERT INTO notes (body) VALUES ('hello');")
        .unwrap();
    drop(conn);
    let out = certeasy(&["backup", "verify", "--input", path(&f), "--check", "quick"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("not a certeasy database"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("table notes is not part"),
        "{}",
        text(&out)
    );

    // A certeasy database whose schema was altered.
    let f = dir.path().join("altered.backup");
    std::fs::copy(&good, &f).unwrap();
    let conn = rusqlite::Connection::open(&f).unwrap();
    conn.execute_batch("DROP INDEX certificates_by_serial;")
        .unwrap();
    drop(conn);
    let out = certeasy(&["backup", "verify", "--input", path(&f), "--check", "full"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("certificates_by_serial is missing"),
        "{}",
        text(&out)
    );

    // A missing input is not a suspect backup but a failure to read.
    let out = certeasy(&[
        "backup",
        "verify",
        "--input",
        path(&dir.path().join("absent")),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restored_backup_serves_its_certificates() {
    let mut h = Harness::start().await;
    let raw = Raw::new(h.server().addr, &h.base(), &h.root_pem());
    let key = Key::generate();
    let kid = raw.new_account(&key).await;
    let before = vec![
        issue(&h, &raw, &key, &kid, "kept1.test").await,
        issue(&h, &raw, &key, &kid, "kept2.test").await,
    ];
    let dir = tempfile::tempdir().unwrap();
    let backup = dir.path().join("before.backup");
    let out = certeasy(&[
        "backup",
        "create",
        "-f",
        path(&h.config_path),
        "--output",
        path(&backup),
        "--check",
        "full",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let (after_url, _) = issue(&h, &raw, &key, &kid, "lost.test").await;

    // The documented restore: stop, verify, replace the database file (and
    // drop its -wal and -shm), start.
    let addr = h.server().addr;
    h.stop().await;
    let out = certeasy(&[
        "backup",
        "verify",
        "--input",
        path(&backup),
        "--check",
        "full",
    ]);
    assert!(out.status.success(), "{}", text(&out));
    let db = h.dir.path().join("work/db.sqlite");
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", db.display()));
    }
    std::fs::copy(&backup, &db).unwrap();
    let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
    let config = certeasy::config::load(&h.config_path).unwrap();
    h.server = Some(
        certeasy::server::start_with_listener(config, listener)
            .await
            .unwrap(),
    );

    for (url, pem) in &before {
        let r = raw.post(&key, Some(&kid), url, "").await;
        assert_eq!(r.status, StatusCode::OK, "{url}");
        assert_eq!(&String::from_utf8(r.body.to_vec()).unwrap(), pem);
    }
    let r = raw.post(&key, Some(&kid), &after_url, "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "issued after the backup");
    // And it goes on issuing.
    issue(&h, &raw, &key, &kid, "again.test").await;
}

#[tokio::test]
async fn migrate_lists_applies_and_refuses_a_newer_database() {
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
    let latest = certeasy::store::Store::schema_version();
    let db = dir.path().join("work/db.sqlite");

    let out = certeasy(&["migrate", "-f", path(&config), "--dry-run"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        text(&out).matches("would apply migration").count() as i64,
        latest,
        "{}",
        text(&out)
    );
    assert!(!db.exists(), "a dry run creates nothing");

    let out = certeasy(&["migrate", "-f", path(&config)]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains(&format!("database at schema version {latest}")),
        "{}",
        text(&out)
    );
    let out = certeasy(&["migrate", "-f", path(&config), "--dry-run"]);
    assert!(text(&out).contains("nothing to migrate"), "{}", text(&out));

    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.pragma_update(None, "user_version", latest + 1)
        .unwrap();
    drop(conn);
    for args in [
        vec!["migrate", "-f", path(&config)],
        vec!["serve", "-f", path(&config)],
    ] {
        let out = certeasy(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {}", text(&out));
        assert!(
            text(&out).contains(&format!(
                "schema version {}, newer than this binary's {latest}",
                latest + 1
            )),
            "{args:?}: {}",
            text(&out)
        );
    }
}
