//! What is specific to the PostgreSQL engine; they run when
//! `CERTEASY_TEST_PG_DSN` names a server (scripts/test.sh starts one) and
//! pass trivially otherwise, saying so.

use crate::store::tests::test_pg_settings;
use crate::store::{Store, StoreError};

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
