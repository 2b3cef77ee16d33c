//! Schema migrations, embedded in the binary and applied at start-up.
//!
//! The schema version is SQLite's `PRAGMA user_version`; each migration runs
//! in its own transaction together with the version bump, so a crash leaves
//! the database at the previous version, never half-migrated. Databases
//! created by builds that used sqlx record their version in
//! `_sqlx_migrations` instead; it is read once and carried over.

use std::path::Path;

use rusqlite::{Connection, OptionalExtension};

use super::Result;
use crate::store::StoreError;

/// (version, name, SQL), in order.
pub(super) const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "stateless nonces",
        include_str!("../../../migrations/sqlite/0002_stateless_nonces.sql"),
    ),
    (
        3,
        "pending CA requests",
        include_str!("../../../migrations/sqlite/0003_pending_ca_requests.sql"),
    ),
    (
        4,
        "certificate serial index",
        include_str!("../../../migrations/sqlite/0004_certificate_serial_index.sql"),
    ),
    (
        5,
        "lean indexes",
        include_str!("../../../migrations/sqlite/0005_lean_indexes.sql"),
    ),
    (
        6,
        "pending orders by account",
        include_str!("../../../migrations/sqlite/0006_pending_orders_by_account.sql"),
    ),
    (
        7,
        "audit outbox and limit events",
        include_str!("../../../migrations/sqlite/0007_audit_and_limits.sql"),
    ),
    (
        8,
        "ari, eab, profiles",
        include_str!("../../../migrations/sqlite/0008_ari_eab_profiles.sql"),
    ),
    (
        9,
        "revocation at the CA, CRLs",
        include_str!("../../../migrations/sqlite/0009_revocation.sql"),
    ),
    (
        10,
        "listener certificates shared by the nodes",
        include_str!("../../../migrations/sqlite/0010_listener_certificates.sql"),
    ),
];

/// Newest schema version this binary knows.
pub(super) fn latest() -> i64 {
    MIGRATIONS.last().map_or(0, |m| m.0)
}

/// The database's schema version.
pub(super) fn current(conn: &Connection) -> Result<i64> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version != 0 {
        return Ok(version);
    }
    let legacy: Option<String> = conn
        .query_row(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
            [],
            |r| r.get(0),
        )
        .optional()?;
    if legacy.is_none() {
        return Ok(0);
    }
    let max: Option<i64> =
        conn.query_row("SELECT MAX(version) FROM _sqlx_migrations", [], |r| {
            r.get(0)
        })?;
    Ok(max.unwrap_or(0))
}

/// Refuses a database from a newer binary (before touching it), then applies
/// what is missing.
pub(super) fn run(conn: &Connection, path: &Path) -> Result<()> {
    let found = current(conn)?;
    let supported = latest();
    if found > supported {
        return Err(StoreError::TooNew {
            path: path.display().to_string(),
            found,
            supported,
        }
        .into());
    }
    if found > 0 {
        // Carries a legacy version over; a no-op otherwise.
        conn.pragma_update(None, "user_version", found)?;
    }
    for &(version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > found) {
        let apply = || -> rusqlite::Result<()> {
            conn.execute_batch("BEGIN IMMEDIATE")?;
            let done = conn
                .execute_batch(sql)
                .and_then(|()| conn.pragma_update(None, "user_version", version))
                .and_then(|()| conn.execute_batch("COMMIT"));
            if done.is_err() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            done
        };
        apply().map_err(|source| StoreError::Migrate {
            version,
            name,
            source: Box::new(source),
        })?;
    }
    Ok(())
}
