//! Maintenance of a database outside the serving path: online backups,
//! checks of a backup file, and schema migrations run by hand.
//!
//! These are operations of the engine (SQLite copies its file with
//! `VACUUM INTO`; another engine brings its own way), so the CLI calls
//! them through this neutral contract and never sees SQL.

use std::path::Path;

use super::{Engine, Result, Store};

/// How thoroughly a backup is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Check {
    /// Not at all.
    None,
    /// The file opens as a database of this application at a known schema
    /// version, with every table, and the engine's quick structural check
    /// passes.
    Quick,
    /// Quick, plus the engine's full integrity check, every foreign key,
    /// and the schema compared object by object with what the migrations
    /// create.
    Full,
}

/// What a check found out about a backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupInfo {
    /// Schema version of the backup.
    pub schema_version: i64,
    /// Certificates it holds.
    pub certificates: i64,
    /// Orders it holds.
    pub orders: i64,
    /// Accounts it holds.
    pub accounts: i64,
}

/// Why a backup is suspect (exit status 2 of `certeasy backup`), or could
/// not be made.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    /// The file is not a usable backup: the reasons found.
    #[error("suspect backup {file}: {}", problems.join("; "))]
    Suspect {
        /// The file.
        file: String,
        /// Every problem found.
        problems: Vec<String>,
    },
    /// The backup could not be made or read.
    #[error(transparent)]
    Store(#[from] super::StoreError),
}

/// A migration, as listed by `certeasy migrate --dry-run`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Migration {
    /// Schema version it brings the database to.
    pub version: i64,
    /// Its name.
    pub name: &'static str,
}

/// A database's schema against this binary's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MigrationPlan {
    /// The database's schema version (0: empty or new).
    pub current: i64,
    /// The newest version this binary knows.
    pub latest: i64,
    /// Migrations that would run, in order.
    pub pending: Vec<Migration>,
}

impl Store {
    /// Opens an existing SQLite database for maintenance: no migration is
    /// applied and no file is created (a missing database is an error).
    pub async fn open_sqlite_existing(path: &Path) -> Result<Store> {
        Ok(Store {
            engine: Engine::Sqlite(super::sqlite::SqliteStore::open_existing(path).await?),
        })
    }

    /// Writes a consistent copy of the database to `dest`, online (writers
    /// go on meanwhile), then checks it. `dest` must not exist: it is never
    /// overwritten. The copy is made under a temporary name beside `dest`
    /// (mode 0600) and appears under `dest` only once complete and checked;
    /// a suspect copy stays under `dest` so it can be inspected.
    pub async fn backup(
        &self,
        dest: &Path,
        check: Check,
    ) -> std::result::Result<Option<BackupInfo>, BackupError> {
        match &self.engine {
            Engine::Sqlite(s) => s.backup(dest, check).await,
            Engine::Postgres(_) => Err(BackupError::Store(super::StoreError::Io(
                "certeasy backup copies a SQLite database; back a PostgreSQL database up with pg_dump or the server's own backups (docs/high-availability.md)".into(),
            ))),
        }
    }

    /// Checks a backup file (`check` other than [`Check::None`]).
    pub fn verify_backup(
        file: &Path,
        check: Check,
    ) -> std::result::Result<BackupInfo, BackupError> {
        super::sqlite::SqliteStore::verify_backup(file, check)
    }

    /// The migrations the database at `path` needs, without applying them;
    /// [`StoreError::TooNew`](super::StoreError::TooNew) for a database
    /// newer than this binary.
    pub fn migration_plan_sqlite(path: &Path) -> Result<MigrationPlan> {
        Ok(super::sqlite::SqliteStore::migration_plan(path)?)
    }
}
