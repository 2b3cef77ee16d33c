//! Store tests on a real SQLite file.

use super::jobs::{ClaimedJob, JobKind};
use super::*;

async fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_sqlite(&dir.path().join("db.sqlite"))
        .await
        .unwrap();
    (dir, store)
}

#[tokio::test]
async fn reopening_is_idempotent_and_wal_is_on() {
    let (dir, store) = open().await;
    store.close().await;
    let store = Store::open_sqlite(&dir.path().join("db.sqlite"))
        .await
        .unwrap();
    let mode: String = store
        .read(|c| Ok(c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(mode, "wal");
    let fk: i64 = store
        .write(|c| Ok(c.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(fk, 1);
    assert_eq!(
        store.read(migrate::current).unwrap(),
        Store::schema_version()
    );
}

#[tokio::test]
async fn database_from_a_newer_binary_is_refused_untouched() {
    let (dir, store) = open().await;
    store
        .write(|c| Ok(c.pragma_update(None, "user_version", 9999)?))
        .await
        .unwrap();
    store.close().await;
    let path = dir.path().join("db.sqlite");
    let err = Store::open_sqlite(&path).await.unwrap_err();
    let msg = err.to_string();
    assert!(
        matches!(err, StoreError::TooNew { found: 9999, .. }),
        "{msg}"
    );
    assert!(msg.contains("newer than this binary"), "{msg}");
}

#[tokio::test]
async fn a_database_migrated_by_sqlx_builds_keeps_its_version_and_gets_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    {
        // What a build that used sqlx left: its bookkeeping table at
        // version 3 and the schema of migrations 1 to 3.
        let c = rusqlite::Connection::open(&path).unwrap();
        c.execute_batch(
            "CREATE TABLE _sqlx_migrations (version BIGINT PRIMARY KEY, description TEXT NOT NULL, \
             installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP, success BOOLEAN NOT NULL, \
             checksum BLOB NOT NULL, execution_time BIGINT NOT NULL);",
        )
        .unwrap();
        for (v, _, sql) in &migrate::MIGRATIONS[..3] {
            c.execute_batch(sql).unwrap();
            c.execute(
                "INSERT INTO _sqlx_migrations VALUES (?, 'x', CURRENT_TIMESTAMP, 1, x'00', 0)",
                [v],
            )
            .unwrap();
        }
    }
    let store = Store::open_sqlite(&path).await.unwrap();
    assert_eq!(
        serial_index_columns(&store),
        ["serial", "authority"],
        "migrations 4 and 5 were applied"
    );
    assert_eq!(
        store.read(migrate::current).unwrap(),
        Store::schema_version()
    );
}

fn serial_index_columns(store: &Store) -> Vec<String> {
    store
        .read(|c| {
            let mut stmt =
                c.prepare("SELECT name FROM pragma_index_info('certificates_by_serial')")?;
            let names = stmt.query_map([], |r| r.get(0))?;
            Ok(names.collect::<rusqlite::Result<Vec<String>>>()?)
        })
        .unwrap()
}

#[tokio::test]
async fn migration_5_keeps_the_jobs_in_flight() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db.sqlite");
    {
        let c = rusqlite::Connection::open(&path).unwrap();
        for (_, _, sql) in &migrate::MIGRATIONS[..4] {
            c.execute_batch(sql).unwrap();
        }
        c.pragma_update(None, "user_version", 4).unwrap();
        c.execute_batch(
            "INSERT INTO jobs (kind, subject, state, attempts, run_at, last_error, created_at) \
             VALUES ('issue', 'order-1', 'queued', 2, 0, 'CA unreachable', 0)",
        )
        .unwrap();
    }
    let store = Store::open_sqlite(&path).await.unwrap();
    let job = store
        .claim_job("w", 60_000)
        .await
        .unwrap()
        .expect("the job survived");
    assert_eq!(
        (job.kind, job.subject.as_str(), job.attempts),
        (JobKind::Issue, "order-1", 3)
    );
    let without_rowid: String = store
        .read(|c| {
            Ok(c.query_row(
                "SELECT sql FROM sqlite_master WHERE name = 'jobs'",
                [],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert!(without_rowid.contains("WITHOUT ROWID"), "{without_rowid}");
    assert_eq!(serial_index_columns(&store), ["serial", "authority"]);
}

#[tokio::test]
async fn a_dropped_transaction_rolls_back_and_frees_the_writer() {
    let (_dir, store) = open().await;
    {
        let mut tx = store.begin().await.unwrap();
        Store::enqueue_leased_job(&mut tx, JobKind::Issue, "o", "nobody", -1)
            .await
            .unwrap();
    }
    assert_eq!(store.job_count().await.unwrap(), 0);
    // The writer is free again: a new transaction commits.
    let mut tx = store.begin().await.unwrap();
    Store::enqueue_leased_job(&mut tx, JobKind::Issue, "o", "nobody", -1)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(store.job_count().await.unwrap(), 1);
}

#[tokio::test]
async fn nonce_uses_are_recorded_once_and_purged_after_expiry() {
    let (_dir, store) = open().await;
    assert!(store.use_nonce("n1", now_ms() + 60_000).await.unwrap());
    assert!(!store.use_nonce("n1", now_ms() + 60_000).await.unwrap());
    assert!(store.use_nonce("old", now_ms() - 1).await.unwrap());
    assert_eq!(store.purge_nonces().await.unwrap(), 1);
    assert!(
        !store.use_nonce("n1", now_ms() + 60_000).await.unwrap(),
        "unexpired uses are kept"
    );
}

#[tokio::test]
async fn enqueue_is_idempotent_per_subject() {
    let (_dir, store) = open().await;
    let mut tx = store.begin().await.unwrap();
    let first =
        Store::enqueue_leased_job(&mut tx, JobKind::Issue, "order-1", "node/handoff", 30_000)
            .await
            .unwrap()
            .expect("a new job is handed out");
    assert_eq!(
        (first.attempts, first.lease_owner.as_str()),
        (1, "node/handoff")
    );
    let again =
        Store::enqueue_leased_job(&mut tx, JobKind::Issue, "order-1", "node/handoff", 30_000)
            .await
            .unwrap();
    assert!(again.is_none(), "the second enqueue hands out nothing");
    Store::enqueue_leased_job(
        &mut tx,
        JobKind::Validate,
        "order-1",
        "node/handoff",
        30_000,
    )
    .await
    .unwrap()
    .expect("another kind is another job");
    tx.commit().await.unwrap();
    assert_eq!(store.job_count().await.unwrap(), 2);
    // Leased at enqueue: nobody claims them before the lease runs out.
    assert!(store.claim_job("w", 30_000).await.unwrap().is_none());
}

#[tokio::test]
async fn an_uncommitted_enqueue_leaves_no_job() {
    let (_dir, store) = open().await;
    let mut tx = store.begin().await.unwrap();
    Store::enqueue_leased_job(&mut tx, JobKind::Issue, "order-1", "nobody", -1)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(store.job_count().await.unwrap(), 0);
    assert!(store.claim_job("w", 1000).await.unwrap().is_none());
}

#[tokio::test]
async fn claimed_job_is_leased_then_reclaimed_after_expiry() {
    let (_dir, store) = open().await;
    let mut tx = store.begin().await.unwrap();
    Store::enqueue_leased_job(&mut tx, JobKind::Validate, "chall-1", "nobody", -1)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // A lease in the past stands for a worker that died.
    // Enqueued with an expired lease: claimable at once.
    let job = store.claim_job("dead-worker", -1).await.unwrap().unwrap();
    assert_eq!(job.attempts, 2);
    assert_eq!(job.subject, "chall-1");
    let again = store
        .claim_job("live-worker", 60_000)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((again.kind, &again.subject), (job.kind, &job.subject));
    assert_eq!(again.attempts, 3);
    // Now leased for a minute: nobody else gets it.
    assert!(store.claim_job("third", 60_000).await.unwrap().is_none());
}

#[tokio::test]
async fn retry_requeues_for_later_and_only_for_the_lease_owner() {
    let (_dir, store) = open().await;
    let mut tx = store.begin().await.unwrap();
    Store::enqueue_leased_job(&mut tx, JobKind::Issue, "o", "nobody", -1)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let job = store.claim_job("w1", 60_000).await.unwrap().unwrap();
    // A stale worker cannot reschedule a job it no longer owns.
    let stale = ClaimedJob {
        lease_owner: "someone-else".into(),
        ..job.clone()
    };
    store.retry_job(&stale, now_ms(), "x").await.unwrap();
    assert!(store.claim_job("w2", 60_000).await.unwrap().is_none());
    store
        .retry_job(&job, now_ms() + 3_600_000, "CA unreachable")
        .await
        .unwrap();
    assert!(
        store.claim_job("w2", 60_000).await.unwrap().is_none(),
        "not due yet"
    );
    let next = store.next_job_time().await.unwrap().unwrap();
    assert!(next > now_ms() + 3_000_000);
    store.retry_job(&job, now_ms(), "x").await.unwrap();
    // Owner was cleared by the first retry; the second one did not apply.
    assert!(store.claim_job("w2", 60_000).await.unwrap().is_none());
}

#[tokio::test]
async fn one_certificate_per_order_is_enforced_by_the_schema() {
    let (_dir, store) = open().await;
    let mut tx = store.begin().await.unwrap();
    let acct = AccountRow {
        id: "a".into(),
        thumbprint: "t".into(),
        jwk: "{}".into(),
        contact: vec![],
        status: "valid".into(),
        tos_agreed: true,
        created_at: 0,
    };
    Store::insert_account(&mut tx, &acct).await.unwrap();
    let order = OrderRow {
        id: "o".into(),
        account_id: "a".into(),
        status: "processing".into(),
        policy: "p".into(),
        names: vec!["x.test".into()],
        not_before: None,
        not_after: None,
        expires: now_ms() + 1000,
        error: None,
        csr: None,
        replaces: None,
        profile: None,
        created_at: now_ms(),
        ca_pending: None,
    };
    Store::insert_order(
        &mut tx,
        &NewOrder {
            order,
            authzs: vec![],
        },
    )
    .await
    .unwrap();
    let cert = |id: &str, serial: &str| CertRow {
        id: id.into(),
        order_id: "o".into(),
        account_id: "a".into(),
        authority: "ca".into(),
        serial: serial.into(),
        names: vec!["x.test".into()],
        leaf_der: vec![1],
        chain_pem: String::new(),
        not_before: 0,
        not_after: 1,
        revoked_at: None,
        revocation_reason: None,
    };
    Store::insert_cert(&mut tx, &cert("c1", "01"))
        .await
        .unwrap();
    assert!(Store::insert_cert(&mut tx, &cert("c2", "02"))
        .await
        .is_err());
}

async fn commit_jobs(store: &Store, from: u32, n: u32) {
    for i in from..from + n {
        let mut tx = store.begin().await.unwrap();
        Store::enqueue_leased_job(&mut tx, JobKind::Issue, &format!("order-{i}"), "w", 60_000)
            .await
            .unwrap();
        tx.commit().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checkpointer_folds_the_wal_into_the_database_and_restarts_it() {
    // A checkpoint every 10 commits for the test (the server: 400).
    let every = 10;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_with(&dir.path().join("db.sqlite"), every)
        .await
        .unwrap();
    let db = dir.path().join("db.sqlite");
    let wal = dir.path().join("db.sqlite-wal");
    let before = std::fs::metadata(&db).unwrap().len();
    // Automatic checkpoints are off on the writer: these commits stay in the
    // WAL until the checkpointer thread, asked every N commits, runs.
    commit_jobs(&store, 0, 2 * every).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let mut after = before;
    while after <= before && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        after = std::fs::metadata(&db).unwrap().len();
    }
    assert!(
        after > before,
        "the database file grew from {before} bytes: pages were checkpointed"
    );
    // The WAL starts over after each round instead of growing with every
    // commit: 300 commits of ~50 pages leave a file of a few rounds' size
    // (the checkpointer lags behind this loop), not the 60 MB they wrote.
    let value = "x".repeat(200 * 1024);
    for i in 0..300 {
        store
            .write(|c| {
                c.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                    (format!("filler-{}", i % 8), value.as_str()),
                )?;
                Ok(())
            })
            .await
            .unwrap();
    }
    let size = std::fs::metadata(&wal).unwrap().len();
    assert!(
        size < 30 * 1024 * 1024,
        "the WAL is {size} bytes after 300 commits of 200 KiB: it never started over"
    );
}

#[test]
fn ids_are_url_safe_and_sort_in_creation_order() {
    assert_eq!(super::sortable_encode(0), "-".repeat(22));
    assert_eq!(
        super::sortable_encode(u128::MAX),
        format!("{}k", "z".repeat(21))
    );
    // Order is kept bit by bit, in every position of the 128 bits.
    for bit in 0..127 {
        let (lo, hi) = (1u128 << bit, 1u128 << (bit + 1));
        assert!(
            super::sortable_encode(lo) < super::sortable_encode(hi),
            "bit {bit}"
        );
        assert!(
            super::sortable_encode(hi - 1) < super::sortable_encode(hi),
            "bit {bit}"
        );
    }
    // A later millisecond sorts later whatever the random parts.
    let now = now_ms();
    assert!(super::id_at(now, [0xff; 10]) < super::id_at(now + 1, [0; 10]));
    assert!(super::id_at(now, [0; 10]) < super::id_at(now, [0, 0, 0, 0, 0, 0, 0, 0, 0, 1]));
    let id = super::new_id();
    assert_eq!(id.len(), 22);
    assert!(id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
    assert_ne!(super::new_id(), super::new_id(), "the random part differs");
}

#[cfg(unix)]
fn mode_of(p: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[cfg(unix)]
#[tokio::test]
async fn database_files_are_private_whatever_the_umask() {
    // A database path outside any workdir, in a directory others may read:
    // the file and its -wal / -shm companions are 0600 all the same.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("elsewhere.sqlite");
    let store = Store::open_sqlite(&path).await.unwrap();
    store
        .write(|c| Ok(c.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1)")?))
        .await
        .unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let p = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        assert!(p.exists(), "{} missing", p.display());
        assert_eq!(mode_of(&p), 0o600, "{}", p.display());
    }
    store.close().await;
}

#[cfg(unix)]
#[tokio::test]
async fn an_existing_readable_database_is_tightened() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, store) = open().await;
    store.close().await;
    let path = dir.path().join("db.sqlite");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let store = Store::open_sqlite(&path).await.unwrap();
    assert_eq!(mode_of(&path), 0o600);
    store.close().await;
}

fn account_row(id: &str) -> AccountRow {
    AccountRow {
        id: id.into(),
        thumbprint: format!("thumb-{id}"),
        jwk: "{}".into(),
        contact: vec![],
        status: "valid".into(),
        tos_agreed: true,
        created_at: 0,
    }
}

/// An order `id` of `account` in `status` with one authorization `z-{id}`
/// (`authz_status`) holding one challenge `c-{id}` (`chall_status`).
fn order_with(
    id: &str,
    account: &str,
    status: &str,
    authz_status: &str,
    chall_status: &str,
) -> NewOrder {
    NewOrder {
        order: OrderRow {
            id: id.into(),
            account_id: account.into(),
            status: status.into(),
            policy: "p".into(),
            names: vec![format!("{id}.test")],
            not_before: None,
            not_after: None,
            expires: now_ms() + 60_000,
            error: None,
            csr: None,
            replaces: None,
            profile: None,
            created_at: now_ms(),
            ca_pending: None,
        },
        authzs: vec![NewAuthz {
            authz: AuthzRow {
                id: format!("z-{id}"),
                order_id: id.into(),
                account_id: account.into(),
                identifier: format!("{id}.test"),
                wildcard: false,
                status: authz_status.into(),
                expires: now_ms() + 60_000,
            },
            challenges: vec![ChallengeRow {
                id: format!("c-{id}"),
                authz_id: format!("z-{id}"),
                kind: "http-01".into(),
                token: format!("token-{id}"),
                status: chall_status.into(),
                validated: None,
                error: None,
            }],
        }],
    }
}

#[tokio::test]
async fn cancelling_an_accounts_work_spares_jobs_a_worker_holds_and_other_accounts() {
    let (_dir, store) = open().await;
    let mut tx = store.begin().await.unwrap();
    for a in ["a", "b"] {
        Store::insert_account(&mut tx, &account_row(a))
            .await
            .unwrap();
    }
    let orders = [
        // (order, account, status, authz, challenge, job: kind and lease)
        ("idle", "a", "pending", "pending", "pending", None),
        ("ready", "a", "ready", "valid", "valid", None),
        (
            "val-free",
            "a",
            "pending",
            "pending",
            "processing",
            Some((JobKind::Validate, -1)),
        ),
        (
            "val-held",
            "a",
            "pending",
            "pending",
            "processing",
            Some((JobKind::Validate, 60_000)),
        ),
        (
            "iss-free",
            "a",
            "processing",
            "valid",
            "valid",
            Some((JobKind::Issue, -1)),
        ),
        (
            "iss-held",
            "a",
            "processing",
            "valid",
            "valid",
            Some((JobKind::Issue, 60_000)),
        ),
        ("done", "a", "valid", "valid", "valid", None),
        (
            "other",
            "b",
            "pending",
            "pending",
            "processing",
            Some((JobKind::Validate, -1)),
        ),
    ];
    for (id, account, status, authz, chall, job) in orders {
        Store::insert_order(&mut tx, &order_with(id, account, status, authz, chall))
            .await
            .unwrap();
        if let Some((kind, lease)) = job {
            let subject = match kind {
                JobKind::Validate => format!("c-{id}"),
                JobKind::Issue => id.to_string(),
            };
            Store::enqueue_leased_job(&mut tx, kind, &subject, "w", lease)
                .await
                .unwrap();
        }
    }
    Store::cancel_account_work(&mut tx, "a", "{\"detail\":\"deactivated\"}")
        .await
        .unwrap();
    tx.commit().await.unwrap();

    let order = |id: &str| {
        let store = store.clone();
        let id = id.to_string();
        async move { store.order(&id).await.unwrap().unwrap().status }
    };
    let authz = |id: &str| {
        let store = store.clone();
        let id = format!("z-{id}");
        async move { store.authz(&id).await.unwrap().unwrap().status }
    };
    let chall = |id: &str| {
        let store = store.clone();
        let id = format!("c-{id}");
        async move { store.challenge(&id).await.unwrap().unwrap().status }
    };
    for id in ["idle", "ready", "val-free", "val-held", "iss-free"] {
        assert_eq!(order(id).await, "invalid", "{id}");
        let error = store.order(id).await.unwrap().unwrap().error;
        assert_eq!(
            error.as_deref(),
            Some("{\"detail\":\"deactivated\"}"),
            "{id}"
        );
    }
    assert_eq!(order("iss-held").await, "processing", "its worker decides");
    assert_eq!(order("done").await, "valid");
    assert_eq!(order("other").await, "pending", "another account");
    for id in ["idle", "val-free", "val-held"] {
        assert_eq!(authz(id).await, "deactivated", "{id}");
    }
    assert_eq!(authz("ready").await, "valid");
    assert_eq!(authz("other").await, "pending");
    assert_eq!(chall("val-free").await, "invalid");
    assert_eq!(chall("val-held").await, "processing", "its worker decides");
    assert_eq!(chall("other").await, "processing");
    let jobs: Vec<String> = store
        .read(|c| {
            let mut stmt = c.prepare("SELECT subject FROM jobs ORDER BY subject")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
        .unwrap();
    assert_eq!(jobs, ["c-other", "c-val-held", "iss-held"]);
}

#[tokio::test]
async fn account_writes_apply_only_to_a_valid_account_with_the_signing_key() {
    let (_dir, store) = open().await;
    let mut tx = store.begin().await.unwrap();
    Store::insert_account(&mut tx, &account_row("a"))
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let contact = ["mailto:x@example.com".to_string()];
    let update = AccountChange {
        contact: Some(&contact),
        ..AccountChange::default()
    };
    assert!(store
        .update_account("a", "another-key", &update)
        .await
        .unwrap()
        .is_none());
    let row = store
        .update_account("a", "thumb-a", &update)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (row.contact.as_slice(), row.status.as_str()),
        (&contact[..], "valid")
    );
    // A key change from a key that is no longer the account's: nothing.
    let mut tx = store.begin().await.unwrap();
    assert!(Store::change_account_key(&mut tx, "a", "old", "new", "{}")
        .await
        .unwrap()
        .is_none());
    let rekeyed = Store::change_account_key(&mut tx, "a", "thumb-a", "thumb-new", "{}")
        .await
        .unwrap()
        .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(rekeyed.thumbprint, "thumb-new");
    let deactivate = AccountChange {
        deactivate: true,
        ..AccountChange::default()
    };
    let row = store
        .update_account("a", "thumb-new", &deactivate)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((row.status.as_str(), row.contact.len()), ("deactivated", 1));
    // Once deactivated, neither a contact update nor a key change applies.
    assert!(store
        .update_account("a", "thumb-new", &update)
        .await
        .unwrap()
        .is_none());
    let mut tx = store.begin().await.unwrap();
    assert!(
        Store::change_account_key(&mut tx, "a", "thumb-new", "t3", "{}")
            .await
            .unwrap()
            .is_none()
    );
    tx.commit().await.unwrap();
    let stored = store.account("a").await.unwrap().unwrap();
    assert_eq!(
        (stored.status.as_str(), stored.thumbprint.as_str()),
        ("deactivated", "thumb-new")
    );
}
