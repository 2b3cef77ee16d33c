//! Storage: every SQL statement of the server lives below this module.
//!
//! SQLite runs in WAL mode with `synchronous=NORMAL`. Writes go through a
//! pool of exactly one connection: SQLite serialises writers anyway, and a
//! single writer never hits `SQLITE_BUSY` when a read transaction would
//! upgrade to a write. Reads use a separate pool and run concurrently.
//!
//! Callers see typed rows and [`StoreError`]; the SQL dialect stays here so a
//! PostgreSQL backend can be added behind the same methods.

mod accounts;
mod certs;
pub mod jobs;
mod meta;
mod nonces;
mod orders;

use std::path::Path;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::SqlitePool;

pub use accounts::AccountRow;
pub use certs::CertRow;
pub use orders::{AuthzRow, ChallengeRow, NewAuthz, NewOrder, OrderRow};

/// The embedded migrations.
static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database refused or failed the statement.
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    /// Migrations could not be applied.
    #[error("database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The database was written by a newer certeasy.
    #[error("the database {path} has schema version {found}, newer than this binary's {supported}; run the newer certeasy or restore a backup taken before the upgrade")]
    TooNew {
        /// Database file.
        path: String,
        /// Version found.
        found: i64,
        /// Newest version this binary knows.
        supported: i64,
    },
    /// A stored value could not be decoded.
    #[error("corrupt stored value: {0}")]
    Corrupt(String),
}

/// Result alias.
pub type Result<T> = std::result::Result<T, StoreError>;

/// Handle to the database.
#[derive(Clone, Debug)]
pub struct Store {
    read: SqlitePool,
    write: SqlitePool,
}

/// A write transaction.
pub type Tx = sqlx::Transaction<'static, sqlx::Sqlite>;

impl Store {
    /// Opens (creating if needed) the SQLite file and applies migrations.
    pub async fn open_sqlite(path: &Path) -> Result<Store> {
        let url = format!("sqlite://{}", path.display());
        let opts = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10))
            .statement_cache_capacity(256);
        // No ping before each use: a local SQLite connection does not go
        // stale, and the ping was ~6% of the server's CPU under load.
        let write = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(1)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts.clone())
            .await?;
        Self::check_not_newer(&write, path).await?;
        MIGRATOR.run(&write).await?;
        let read = SqlitePoolOptions::new()
            .test_before_acquire(false)
            .max_connections(8)
            .min_connections(1)
            .idle_timeout(None)
            .max_lifetime(None)
            .connect_with(opts.read_only(true))
            .await?;
        Ok(Store { read, write })
    }

    /// Refuses a database migrated by a newer binary, before touching it.
    async fn check_not_newer(pool: &SqlitePool, path: &Path) -> Result<()> {
        let has_table: Option<(String,)> = sqlx::query_as(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_optional(pool)
        .await?;
        if has_table.is_none() {
            return Ok(());
        }
        let (found,): (Option<i64>,) = sqlx::query_as("SELECT MAX(version) FROM _sqlx_migrations")
            .fetch_one(pool)
            .await?;
        let supported = MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0);
        match found {
            Some(found) if found > supported => Err(StoreError::TooNew {
                path: path.display().to_string(),
                found,
                supported,
            }),
            _ => Ok(()),
        }
    }

    /// Newest schema version this binary knows.
    pub fn schema_version() -> i64 {
        MIGRATOR.iter().map(|m| m.version).max().unwrap_or(0)
    }

    /// Starts a write transaction.
    pub async fn begin(&self) -> Result<Tx> {
        Ok(self.write.begin().await?)
    }

    /// Pool for reads.
    pub(crate) fn reader(&self) -> &SqlitePool {
        &self.read
    }

    /// Pool for single-statement writes.
    pub(crate) fn writer(&self) -> &SqlitePool {
        &self.write
    }

    /// Cheap liveness probe for `/readyz`.
    pub async fn ping(&self) -> Result<()> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    /// Closes both pools (waits for checked-out connections).
    pub async fn close(&self) {
        self.read.close().await;
        self.write.close().await;
    }
}

/// Current time in unix milliseconds.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A fresh random identifier (128 bits, base64url).
pub fn new_id() -> String {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 16];
    // The OS RNG failing is not recoverable; ring reports it as an error we
    // cannot act on, so fall back to a time-derived value only to stay total.
    if ring::rand::SystemRandom::new().fill(&mut bytes).is_err() {
        bytes[..8].copy_from_slice(&now_ms().to_be_bytes());
    }
    acme_wire::b64u_encode(&bytes)
}

fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

fn parse_list(s: &str) -> Result<Vec<String>> {
    serde_json::from_str(s)
        .map_err(|e| StoreError::Corrupt(format!("expected a JSON list of strings: {e}")))
}

#[cfg(test)]
mod tests;
