//! Tests of what is SQLite's own: WAL and pragmas, schema versions and
//! legacy migrations, the checkpointer, file modes. The behaviour every
//! engine shares is tested in `store/tests.rs`.

use super::migrate;
use super::SqliteStore;
use acme_wire::{AuthorizationStatus, ChallengeStatus, OrderStatus};

use crate::store::tests::{account_row, open_sqlite as open, order_with};
use crate::store::{Engine, JobKind, Store, StoreError};

/// The SQLite engine of a store opened by [`open`].
fn engine(store: &Store) -> &SqliteStore {
    match &store.engine {
        Engine::Sqlite(s) => s,
        Engine::Postgres(_) => unreachable!("open_sqlite opens SQLite"),
    }
}

#[tokio::test]
async fn reopening_is_idempotent_and_wal_is_on() {
    let (dir, store) = open().await;
    store.close().await;
    let store = Store::open_sqlite(&dir.path().join("db.sqlite"))
        .await
        .unwrap();
    let mode: String = engine(&store)
        .read(|c| Ok(c.query_row("PRAGMA journal_mode", [], |r| r.get(0))?))
        .unwrap();
    assert_eq!(mode, "wal");
    let fk: i64 = engine(&store)
        .write(|c| Ok(c.query_row("PRAGMA foreign_keys", [], |r| r.get(0))?))
        .await
        .unwrap();
    assert_eq!(fk, 1);
    assert_eq!(
        engine(&store).read(migrate::current).unwrap(),
        Store::schema_version()
    );
}

#[tokio::test]
async fn database_from_a_newer_binary_is_refused_untouched() {
    let (dir, store) = open().await;
    engine(&store)
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
        engine(&store).read(migrate::current).unwrap(),
        Store::schema_version()
    );
}

fn serial_index_columns(store: &Store) -> Vec<String> {
    engine(store)
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
    let without_rowid: String = engine(&store)
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
    let store = Store {
        engine: Engine::Sqlite(
            SqliteStore::open_with(&dir.path().join("db.sqlite"), every)
                .await
                .unwrap(),
        ),
    };
    let db = dir.path().join("db.sqlite");
    let wal = dir.path().join("db.sqlite-wal");
    let before = std::fs::metadata(&db).unwrap().len();
    let mut rounds = engine(&store).inner.rounds.clone();
    // Automatic checkpoints are off on the writer: these commits stay in the
    // WAL until the checkpointer thread, asked every N commits, runs.
    commit_jobs(&store, 0, 2 * every).await;
    next_round(&mut rounds).await;
    let after = std::fs::metadata(&db).unwrap().len();
    assert!(
        after > before,
        "the database file grew from {before} bytes: pages were checkpointed"
    );
    // The WAL starts over after each round instead of growing with every
    // commit: 300 commits of ~50 pages, waiting for a round after every
    // ten, leave a file of a few rounds' size, not the 60 MB they wrote.
    let value = "x".repeat(200 * 1024);
    for i in 0..300 {
        engine(&store)
            .write(|c| {
                c.execute(
                    "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                    (format!("filler-{}", i % 8), value.as_str()),
                )?;
                Ok(())
            })
            .await
            .unwrap();
        if (i + 1) % every == 0 {
            next_round(&mut rounds).await;
        }
    }
    let size = std::fs::metadata(&wal).unwrap().len();
    assert!(
        size < 30 * 1024 * 1024,
        "the WAL is {size} bytes after 300 commits of 200 KiB: it never started over"
    );
}

/// Waits until the checkpointer completes a round it had not completed
/// when last asked.
async fn next_round(rounds: &mut tokio::sync::watch::Receiver<u64>) {
    tokio::time::timeout(std::time::Duration::from_secs(60), rounds.changed())
        .await
        .expect("no checkpoint round within 60 s")
        .unwrap();
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
    engine(&store)
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

/// The message of a [`StoreError::Corrupt`].
fn corrupt<T: std::fmt::Debug>(r: Result<T, StoreError>) -> String {
    match r {
        Err(StoreError::Corrupt(message)) => message,
        other => panic!("expected a corrupt value, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unknown_status_in_the_database_is_corrupt_naming_table_id_and_value() {
    let (_dir, store) = open().await;
    let mut tx = store.begin().await.unwrap();
    Store::insert_account(&mut tx, &account_row("a"))
        .await
        .unwrap();
    let new = order_with(
        "o",
        "a",
        OrderStatus::Pending,
        AuthorizationStatus::Pending,
        ChallengeStatus::Pending,
    );
    Store::insert_order(&mut tx, &new).await.unwrap();
    tx.commit().await.unwrap();
    // What the engine wrote is the RFC 8555 word.
    let written: (String, String, String, String) = engine(&store)
        .read(|c| {
            Ok(c.query_row(
                "SELECT (SELECT status FROM accounts), (SELECT status FROM orders), \
                 (SELECT status FROM authorizations), (SELECT status FROM challenges)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )?)
        })
        .unwrap();
    assert_eq!(
        written,
        (
            "valid".into(),
            "pending".into(),
            "pending".into(),
            "pending".into()
        )
    );
    engine(&store)
        .write(|c| {
            Ok(c.execute_batch(
                "UPDATE accounts SET status = 'Valid'; UPDATE orders SET status = 'expired'; \
                 UPDATE authorizations SET status = 'ready'; UPDATE challenges SET status = ''",
            )?)
        })
        .await
        .unwrap();
    let account = "accounts a: unknown account status \"Valid\"";
    assert_eq!(corrupt(store.account("a").await), account);
    assert_eq!(
        corrupt(store.account_by_thumbprint("thumb-a").await),
        account
    );
    let order = "orders o: unknown order status \"expired\"";
    assert_eq!(corrupt(store.order("o").await), order);
    let authz = "authorizations z-o: unknown authorization status \"ready\"";
    assert_eq!(corrupt(store.authz("z-o").await), authz);
    let chall = "challenges c-o: unknown challenge status \"\"";
    assert_eq!(corrupt(store.challenge("c-o").await), chall);
    assert_eq!(corrupt(store.challenges_of_authz("z-o").await), chall);
    let mut tx = store.begin().await.unwrap();
    assert_eq!(corrupt(Store::order_tx(&mut tx, "o").await), order);
    assert_eq!(
        corrupt(Store::authzs_of_order_tx(&mut tx, "o").await),
        authz
    );
    tx.rollback().await.unwrap();
}
