//! What is specific to the PostgreSQL engine; they run when
//! `CERTEASY_TEST_PG_DSN` names a server (scripts/test.sh starts one) and
//! pass trivially otherwise, saying so.

use crate::store::tests::test_pg_settings;
use crate::store::{JobKind, Store, StoreError};

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let Some(pg) = test_pg_settings() else {
        eprintln!("CERTEASY_TEST_PG_DSN unset: skipped");
        return;
    };
    let store = Store::open_postgres(&pg).await.unwrap();
    drop(store);
    let (client, conn) = tokio_postgres::connect(&pg.dsn, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!(
            "UPDATE {}.certeasy_schema SET version = version + 1",
            pg.schema
        ))
        .await
        .unwrap();
    match Store::open_postgres(&pg).await {
        Err(StoreError::TooNew {
            found, supported, ..
        }) => assert_eq!(found, supported + 1),
        other => panic!("expected TooNew, got {other:?}"),
    }
}

#[tokio::test]
async fn nodes_starting_together_migrate_once() {
    let Some(pg) = test_pg_settings() else {
        eprintln!("CERTEASY_TEST_PG_DSN unset: skipped");
        return;
    };
    let (a, b, c) = tokio::join!(
        Store::open_postgres(&pg),
        Store::open_postgres(&pg),
        Store::open_postgres(&pg)
    );
    for s in [a, b, c] {
        s.unwrap().ping().await.unwrap();
    }
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_error() {
    let Some(mut pg) = test_pg_settings() else {
        eprintln!("CERTEASY_TEST_PG_DSN unset: skipped");
        return;
    };
    // A port nothing listens on (bound, then released).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    pg.dsn = format!("host=127.0.0.1 port={port} user=nobody dbname=nothing");
    let e = Store::open_postgres(&pg).await.unwrap_err().to_string();
    assert!(
        e.contains("cannot connect to PostgreSQL 127.0.0.1:") && e.contains("refused"),
        "{e}"
    );
}

#[tokio::test]
async fn a_worker_id_is_held_by_one_live_node_and_free_once_it_leaves() {
    let Some(pg) = test_pg_settings() else {
        eprintln!("CERTEASY_TEST_PG_DSN unset: skipped");
        return;
    };
    let store = Store::open_postgres(&pg).await.unwrap();
    let id = format!("node-{}", pg.schema);
    let nothing = std::sync::Arc::new(|| {});
    let first = store
        .join_cluster(&id, nothing.clone())
        .await
        .unwrap()
        .expect("PostgreSQL has a cluster to join");
    match store.join_cluster(&id, nothing.clone()).await {
        Err(StoreError::Conflict { message, .. }) => {
            assert!(message.contains("held by a live node"), "{message}")
        }
        other => panic!("a second node with the same id joined: {other:?}"),
    }
    // Another id is free.
    let other = store
        .join_cluster(&format!("{id}-b"), nothing.clone())
        .await
        .unwrap()
        .unwrap();
    first.leave().await;
    let again = store.join_cluster(&id, nothing).await.unwrap().unwrap();
    again.leave().await;
    other.leave().await;
}

#[tokio::test]
async fn a_job_any_node_may_run_wakes_the_other_nodes() {
    let Some(pg) = test_pg_settings() else {
        eprintln!("CERTEASY_TEST_PG_DSN unset: skipped");
        return;
    };
    let store = Store::open_postgres(&pg).await.unwrap();
    let (tx, mut woken) = tokio::sync::mpsc::unbounded_channel();
    let membership = store
        .join_cluster(
            &format!("listener-{}", pg.schema),
            std::sync::Arc::new(move || {
                let _ = tx.send(());
            }),
        )
        .await
        .unwrap()
        .unwrap();
    // Handed to a worker of the enqueuing node: no announcement.
    let mut t = store.begin().await.unwrap();
    Store::enqueue_leased_job(&mut t, JobKind::Issue, "mine", "n/handoff", 30_000)
        .await
        .unwrap();
    // Claimable by anyone at once: announced at commit.
    Store::enqueue_leased_job(&mut t, JobKind::Issue, "anyone", "n/handoff", -1)
        .await
        .unwrap();
    t.commit().await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(30), woken.recv())
        .await
        .expect("the notification arrives")
        .expect("the channel is open");
    assert!(woken.try_recv().is_err(), "one notification, for one job");
    membership.leave().await;
}
