//! Schema migrations of the PostgreSQL engine, embedded in the binary and
//! applied at start-up, numbered like SQLite's (one schema version for
//! every engine).
//!
//! The version is the one row of `certeasy_schema`. Nodes starting together
//! migrate one at a time: the run holds a transaction-level advisory lock,
//! re-reads the version under it, and applies the missing migrations with
//! the version bump in that one transaction (PostgreSQL's DDL is
//! transactional), so a crash leaves the previous version, never half a
//! migration.

use deadpool_postgres::Object;

use super::{describe, Result};
use crate::store::StoreError;

/// (version, name, SQL), in order.
pub(super) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "stateless nonces",
        include_str!("../../../migrations/postgres/0002_stateless_nonces.sql"),
    ),
    (
        3,
        "pending CA requests",
        include_str!("../../../migrations/postgres/0003_pending_ca_requests.sql"),
    ),
    (
        4,
        "certificate serial index",
        include_str!("../../../migrations/postgres/0004_certificate_serial_index.sql"),
    ),
    (
        5,
        "lean indexes",
        include_str!("../../../migrations/postgres/0005_lean_indexes.sql"),
    ),
    (
        6,
        "pending orders by account",
        include_str!("../../../migrations/postgres/0006_pending_orders_by_account.sql"),
    ),
    (
        7,
        "audit outbox and limit events",
        include_str!("../../../migrations/postgres/0007_audit_and_limits.sql"),
    ),
    (
        8,
        "ari, eab, profiles",
        include_str!("../../../migrations/postgres/0008_ari_eab_profiles.sql"),
    ),
    (
        9,
        "revocation at the CA, CRLs",
        include_str!("../../../migrations/postgres/0009_revocation.sql"),
    ),
    (
        10,
        "listener certificates shared by the nodes",
        include_str!("../../../migrations/postgres/0010_listener_certificates.sql"),
    ),
];

/// Advisory lock key of the migration run (any constant of this
/// application's own).
const MIGRATION_LOCK: i64 = 0x6365_7274_6561_7379; // "certeasy"

/// Newest schema version this binary knows.
pub(super) fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// Creates the schema when missing, refuses a database from a newer binary
/// (before touching it), then applies what is missing.
pub(super) async fn run(c: &Object, schema: &str, label: &str) -> Result<()> {
    c.batch_execute("BEGIN").await?;
    let out = run_locked(c, schema, label).await;
    match out {
        Ok(()) => c.batch_execute("COMMIT").await?,
        Err(_) => {
            let _ = c.batch_execute("ROLLBACK").await;
        }
    }
    out
}

async fn run_locked(c: &Object, schema: &str, label: &str) -> Result<()> {
    c.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await?;
    // Under the lock: nodes starting together create the schema once.
    let exists = c
        .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&schema])
        .await?;
    if exists.is_none() {
        // The identifier is plain (checked by the configuration).
        c.batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .map_err(|e| {
                StoreError::Io(format!(
                    "cannot create schema {schema} in {label}: {}",
                    describe(&e)
                ))
            })?;
    }
    c.batch_execute("CREATE TABLE IF NOT EXISTS certeasy_schema (version BIGINT NOT NULL)")
        .await?;
    let found: i64 = match c
        .query_opt("SELECT version FROM certeasy_schema", &[])
        .await?
    {
        Some(row) => row.try_get(0)?,
        None => {
            c.execute("INSERT INTO certeasy_schema (version) VALUES (0)", &[])
                .await?;
            0
        }
    };
    let supported = latest();
    if found > supported {
        return Err(StoreError::TooNew {
            path: label.to_string(),
            found,
            supported,
        }
        .into());
    }
    for &(version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > found) {
        let apply = async {
            c.batch_execute(sql).await?;
            c.execute("UPDATE certeasy_schema SET version = $1", &[&version])
                .await?;
            Ok::<(), tokio_postgres::Error>(())
        };
        apply.await.map_err(|source| StoreError::Migrate {
            version,
            name,
            source: Box::new(source),
        })?;
    }
    Ok(())
}
