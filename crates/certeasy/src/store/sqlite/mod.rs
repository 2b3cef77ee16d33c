//! The SQLite engine: every SQL statement for SQLite lives below this
//! module, one file per area of [`Store`](super::Store).
//!
//! SQLite runs in WAL mode with `synchronous=NORMAL`, through rusqlite, on
//! the calling task's thread: a statement on a cached prepared statement
//! costs microseconds, far less than handing it to a worker thread and back
//! (which was a third of the server's CPU with a thread-per-connection
//! driver; docs/performance.md). Writes go through exactly one connection
//! behind an async mutex: SQLite serialises writers anyway, and a single
//! writer never hits `SQLITE_BUSY` when a read transaction would upgrade to
//! a write. Reads run on the writer connection when it is idle (its page
//! cache stays valid across its own writes) and otherwise on a small pool of
//! read-only connections, concurrently with the open write transaction (WAL).

mod accounts;
mod audit;
mod backup;
mod certs;
mod eab;
mod jobs;
mod listener;
mod meta;
mod migrate;
mod nonces;
mod orders;
mod revocation;

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use acme_wire::UnknownStatus;
use rusqlite::types::Type;
use rusqlite::{Connection, OpenFlags, Row};
use tokio::sync::OwnedMutexGuard;

use super::{BoxError, StoreError};

/// An error of this engine: rusqlite's, or one of the store's own (a
/// corrupt value, a refused migration). It stays inside the engine; the
/// [`Store`](super::Store) methods turn it into a [`StoreError`].
#[derive(Debug)]
pub(super) enum Error {
    /// What rusqlite reported.
    Sql(rusqlite::Error),
    /// A store error raised here.
    Store(StoreError),
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Self {
        Error::Sql(e)
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Store(e)
    }
}

impl From<Error> for StoreError {
    fn from(e: Error) -> Self {
        match e {
            Error::Store(e) => e,
            // A value a row callback refused (see `status`).
            Error::Sql(rusqlite::Error::FromSqlConversionFailure(_, _, source))
                if source.is::<StoreError>() =>
            {
                *source
                    .downcast::<StoreError>()
                    .expect("the type was just checked")
            }
            Error::Sql(e) => {
                let message = e.to_string();
                if is_uniqueness_violation(&e) {
                    StoreError::Conflict {
                        message,
                        source: Box::new(e),
                    }
                } else {
                    StoreError::Backend {
                        message,
                        source: Box::new(e),
                    }
                }
            }
        }
    }
}

/// Reads the status column `idx` of a `table` row whose id is column 0.
/// A word the enum does not know fails with [`StoreError::Corrupt`] naming
/// the table, the id and the value (carried through rusqlite's conversion
/// error, since a row callback can only return rusqlite's errors). The text
/// is read in place: no allocation.
fn status<T: FromStr<Err = UnknownStatus>>(
    r: &Row<'_>,
    idx: usize,
    table: &str,
) -> rusqlite::Result<T> {
    let conversion = |e: BoxError| rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, e);
    let value = r.get_ref(idx)?.as_str().map_err(|e| conversion(e.into()))?;
    value.parse().map_err(|e: UnknownStatus| {
        let id = r.get_ref(0).ok().and_then(|v| v.as_str().ok());
        let id = id.unwrap_or("?");
        conversion(Box::new(StoreError::Corrupt(format!("{table} {id}: {e}"))))
    })
}

/// A UNIQUE or PRIMARY KEY constraint refused the statement.
fn is_uniqueness_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _)
        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
            || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY)
}

/// Result alias of this engine.
pub(super) type Result<T> = std::result::Result<T, Error>;

/// Read connections kept open between uses; more are opened under a burst
/// and closed again when returned to a full pool.
const IDLE_READERS: usize = 8;

/// Prepared statements cached per connection (the server has ~50 distinct
/// statements).
const STATEMENT_CACHE: usize = 128;

/// Handle to a SQLite database (cheap to clone).
#[derive(Clone)]
pub(super) struct SqliteStore {
    inner: Arc<Inner>,
}

struct Inner {
    path: PathBuf,
    write: Arc<tokio::sync::Mutex<Writer>>,
    read: Mutex<Vec<Connection>>,
    /// Checkpoint rounds completed (tests wait on it).
    #[cfg_attr(not(test), allow(dead_code))]
    rounds: tokio::sync::watch::Receiver<u64>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore")
            .field("path", &self.inner.path)
            .finish_non_exhaustive()
    }
}

/// The writer connection, and the signal that asks the checkpointer thread
/// to fold the WAL back into the database file.
struct Writer {
    conn: Connection,
    commits: u32,
    every_commits: u32,
    checkpoint: std::sync::mpsc::SyncSender<()>,
}

/// Commits between two checkpoints (a commit of this server writes a few
/// pages, so the WAL stays at a few MiB).
const COMMITS_PER_CHECKPOINT: u32 = 400;

/// The WAL file is cut back to this size when it starts over.
const WAL_SIZE_LIMIT: i64 = 64 * 1024 * 1024;

impl Writer {
    /// Counts a commit; every `every_commits` asks for a checkpoint (never
    /// waits: a request already pending is enough).
    fn committed(&mut self) {
        self.commits += 1;
        if self.commits >= self.every_commits {
            self.commits = 0;
            let _ = self.checkpoint.try_send(());
        }
    }
}

/// Runs checkpoints on a connection of its own, so requests do not wait
/// for the write-back: SQLite's automatic checkpoint runs inside the commit
/// that crosses the threshold and holds the writer for the whole copy and
/// its fsyncs (the 15–20 ms stalls at the 90th percentile of the
/// benchmark). Each round has two passes. A passive checkpoint runs beside
/// the writer and copies almost everything. But only a checkpoint that
/// copied every frame with no write in between lets the next transaction
/// start the WAL file over — without one the file grows for ever — so a
/// second pass holds the writer and copies the few frames written meanwhile
/// (8–16 ms measured at 8 clients, for its two fsyncs). Running that pass
/// only once the WAL held 64 MiB measured a worse p99 (53 ms against 36 ms
/// at 8 clients): the restart of a large WAL stalls the next commit longer.
/// The thread ends when the store is dropped.
fn start_checkpointer(
    path: &Path,
    requests: std::sync::mpsc::Receiver<()>,
    writer: std::sync::Weak<tokio::sync::Mutex<Writer>>,
    rounds: tokio::sync::watch::Sender<u64>,
) -> Result<()> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    configure(&conn)?;
    std::thread::Builder::new()
        .name("sqlite-checkpoint".into())
        .spawn(move || {
            let checkpoint = || {
                if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(PASSIVE)") {
                    tracing::warn!(target: "store", error = %e, "WAL checkpoint failed; retried after the next commits");
                }
            };
            while requests.recv().is_ok() {
                checkpoint();
                let Some(writer) = writer.upgrade() else { return };
                let quiet = writer.blocking_lock();
                checkpoint();
                drop(quiet);
                rounds.send_modify(|n| *n += 1);
            }
        })
        .map_err(|e| StoreError::Io(format!("cannot start the checkpoint thread: {e}")))?;
    Ok(())
}

/// A write transaction: holds the writer connection until it is committed,
/// rolled back, or dropped (which rolls back).
pub(super) struct SqliteTx {
    conn: OwnedMutexGuard<Writer>,
    open: bool,
}

impl SqliteTx {
    /// Commits. On failure the transaction is rolled back when dropped.
    pub(super) async fn commit(mut self) -> Result<()> {
        self.conn.conn.execute_batch("COMMIT")?;
        self.open = false;
        self.conn.committed();
        Ok(())
    }

    /// Rolls back.
    pub(super) async fn rollback(mut self) -> Result<()> {
        self.open = false;
        self.conn.conn.execute_batch("ROLLBACK")?;
        Ok(())
    }

    fn conn(&self) -> &Connection {
        &self.conn.conn
    }
}

impl Drop for SqliteTx {
    fn drop(&mut self) {
        if self.open {
            // Nothing to report to: the caller already returned an error.
            let _ = self.conn.conn.execute_batch("ROLLBACK");
        }
    }
}

fn configure(conn: &Connection) -> rusqlite::Result<()> {
    conn.busy_timeout(Duration::from_secs(10))?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
}

fn open_reader(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    configure(&conn)?;
    Ok(conn)
}

impl SqliteStore {
    /// Opens (creating if needed) the SQLite file and applies migrations.
    pub(super) async fn open(path: &Path) -> Result<SqliteStore> {
        Self::open_with(path, COMMITS_PER_CHECKPOINT).await
    }

    /// Opens an existing database without migrating it (maintenance: a
    /// backup of whatever version is there).
    pub(super) async fn open_existing(path: &Path) -> Result<SqliteStore> {
        if !path.is_file() {
            return Err(StoreError::Io(format!("no database at {}", path.display())).into());
        }
        Self::open_inner(path, COMMITS_PER_CHECKPOINT, false).await
    }

    async fn open_with(path: &Path, commits_per_checkpoint: u32) -> Result<SqliteStore> {
        Self::open_inner(path, commits_per_checkpoint, true).await
    }

    async fn open_inner(
        path: &Path,
        commits_per_checkpoint: u32,
        apply_migrations: bool,
    ) -> Result<SqliteStore> {
        // Mode 0600 whatever the umask, also outside the workdir; SQLite
        // gives the -wal and -shm files the database file's mode.
        crate::fsutil::prepare_private_db(path).map_err(|e| {
            StoreError::Io(format!(
                "cannot prepare {} with mode 0600: {e}",
                path.display()
            ))
        })?;
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        configure(&conn)?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        // Checkpoints run on their own thread (see `start_checkpointer`);
        // the WAL file is cut back to this size after a checkpoint.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.pragma_update(None, "journal_size_limit", WAL_SIZE_LIMIT)?;
        if apply_migrations {
            migrate::run(&conn, path)?;
        }
        let (checkpoint, requests) = std::sync::mpsc::sync_channel(1);
        let first_reader = open_reader(path)?;
        let write = Arc::new(tokio::sync::Mutex::new(Writer {
            conn,
            commits: 0,
            every_commits: commits_per_checkpoint,
            checkpoint,
        }));
        let (rounds_done, rounds) = tokio::sync::watch::channel(0);
        start_checkpointer(path, requests, Arc::downgrade(&write), rounds_done)?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path: path.to_path_buf(),
                write,
                read: Mutex::new(vec![first_reader]),
                rounds,
            }),
        })
    }

    /// Newest schema version of the SQLite migrations.
    pub(super) fn schema_version() -> i64 {
        migrate::latest()
    }

    /// Starts a write transaction (`BEGIN IMMEDIATE`: the write lock is
    /// taken now, so statements inside never wait for it).
    pub(super) async fn begin(&self) -> Result<SqliteTx> {
        let conn = self.inner.write.clone().lock_owned().await;
        conn.conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(SqliteTx { conn, open: true })
    }

    /// Runs `f` on a read connection: the writer's when it is idle (its page
    /// cache holds what was just written, where a read-only connection must
    /// drop its cache after every write and read the pages again), a pooled
    /// read-only connection when a write transaction is open.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        if let Ok(writer) = self.inner.write.try_lock() {
            return f(&writer.conn);
        }
        let pooled = self
            .inner
            .read
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .pop();
        let conn = match pooled {
            Some(conn) => conn,
            None => open_reader(&self.inner.path)?,
        };
        let out = f(&conn);
        let mut pool = self
            .inner
            .read
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if pool.len() < IDLE_READERS {
            pool.push(conn);
        }
        out
    }

    /// Runs `f` on the writer connection (one statement, autocommit).
    async fn write<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let mut writer = self.inner.write.lock().await;
        let out = f(&writer.conn);
        writer.committed();
        out
    }

    /// Liveness probe: one trivial statement.
    pub(super) async fn ping(&self) -> Result<()> {
        self.read(|c| Ok(c.query_row("SELECT 1", [], |_| Ok(()))?))
    }

    /// Closes idle read connections and folds the WAL into the database
    /// file, so a stopped server leaves one self-contained file. The handle
    /// stays usable (connections are reopened on demand).
    pub(super) async fn close(&self) {
        self.inner
            .read
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clear();
        let writer = self.inner.write.lock().await;
        if let Err(e) = writer.conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
            tracing::warn!(target: "store", error = %e, "checkpoint at shutdown failed; the WAL is replayed at the next start");
        }
    }
}

#[cfg(test)]
mod tests;
