//! The PostgreSQL engine: every SQL statement for PostgreSQL lives below
//! this module, one file per area of [`Store`](super::Store), beside
//! `sqlite/`.
//!
//! tokio-postgres through a deadpool pool: each read takes a pooled
//! connection for one statement (prepared once per connection and cached);
//! a write transaction holds one connection from `BEGIN` to `COMMIT`.
//! Transactions run at READ COMMITTED: each statement sees what committed
//! before it, and the conditional `UPDATE … WHERE status IN (…)` the store
//! is built on re-checks its condition on the row it waited for, so a state
//! changes once however many nodes race for it. Where SQLite's single
//! writer made a read-then-write safe, the PostgreSQL statement takes a row
//! lock first (`FOR UPDATE` on the account, the authorization or the
//! certificate concerned) so the two engines keep the same semantics. Jobs
//! are claimed with `FOR UPDATE SKIP LOCKED`: nodes never wait for one
//! another's claims.
//!
//! A transaction dropped without commit is rolled back on its connection by
//! a spawned task, which then returns the connection to the pool (or drops
//! it, which also rolls back, when no runtime is there).

mod accounts;
mod audit;
mod certs;
mod cluster;
mod eab;
mod jobs;
mod limits;
mod listener;
mod meta;
mod migrate;
mod nonces;
mod orders;
mod revocation;

use std::str::FromStr;
use std::sync::Arc;

use acme_wire::UnknownStatus;
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Row, Statement};

use super::{BoxError, StoreError};
use crate::config::{PostgresSettings, SslMode};

/// An error of this engine: the driver's, the pool's, or one of the
/// store's own. It stays inside the engine; the [`Store`](super::Store)
/// methods turn it into a [`StoreError`].
#[derive(Debug)]
pub(super) enum Error {
    /// What tokio-postgres reported.
    Pg(tokio_postgres::Error),
    /// No connection could be had from the pool.
    Pool(deadpool_postgres::PoolError),
    /// A store error raised here.
    Store(StoreError),
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Self {
        Error::Pg(e)
    }
}

impl From<deadpool_postgres::PoolError> for Error {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => Error::Pg(e),
            e => Error::Pool(e),
        }
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::Store(e)
    }
}

/// The server's message with its detail, or the driver's error chain.
pub(super) fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut s = format!("{}: {}", db.severity(), db.message());
        if let Some(detail) = db.detail() {
            s.push_str(" (");
            s.push_str(detail);
            s.push(')');
        }
        return s;
    }
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

impl From<Error> for StoreError {
    fn from(e: Error) -> Self {
        match e {
            Error::Store(e) => e,
            Error::Pg(e) => {
                let message = describe(&e);
                if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
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
            Error::Pool(e) => StoreError::Backend {
                message: format!("no database connection: {e}"),
                source: Box::new(e) as BoxError,
            },
        }
    }
}

/// Result alias of this engine.
pub(super) type Result<T> = std::result::Result<T, Error>;

/// Reads the status column `idx` of a `table` row whose id is column 0; a
/// word the enum does not know is [`StoreError::Corrupt`] naming the table,
/// the id and the value.
fn status<T: FromStr<Err = UnknownStatus>>(r: &Row, idx: usize, table: &str) -> Result<T> {
    let value: &str = r.try_get(idx)?;
    value.parse().map_err(|e: UnknownStatus| {
        let id: &str = r.try_get(0).unwrap_or("?");
        StoreError::Corrupt(format!("{table} {id}: {e}")).into()
    })
}

/// Handle to a PostgreSQL database (cheap to clone).
#[derive(Clone)]
pub(super) struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    /// Host, port, database and schema, for messages.
    label: String,
    /// Connection settings (LISTEN needs a connection outside the pool).
    config: tokio_postgres::Config,
    /// TLS of those connections.
    tls: Tls,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("database", &self.inner.label)
            .finish_non_exhaustive()
    }
}

/// TLS to the server, chosen by `sslmode`.
#[derive(Clone)]
enum Tls {
    /// `sslmode: disable`.
    None,
    /// rustls, with the CA file's certificates or the system roots.
    Rustls(tokio_postgres_rustls::MakeRustlsConnect),
}

/// A write transaction: holds one pooled connection from `BEGIN` until it
/// is committed, rolled back, or dropped (which rolls back). The pooled
/// object is boxed so that the store's transaction enum stays as small as
/// SQLite's variant (an allocation per PostgreSQL transaction is nothing
/// beside its network round trips).
pub(super) struct PgTx {
    conn: Option<Box<Object>>,
}

impl PgTx {
    /// The transaction's connection.
    fn c(&self) -> &Object {
        // Only `commit`/`rollback` (which consume the transaction) and
        // `drop` take the connection out.
        #[allow(clippy::expect_used)]
        self.conn
            .as_ref()
            .expect("an open transaction has its connection")
    }

    /// Commits. On failure the transaction is rolled back when dropped.
    pub(super) async fn commit(mut self) -> Result<()> {
        self.c().batch_execute("COMMIT").await?;
        // Committed: the connection goes back to the pool as it is.
        drop(self.conn.take());
        Ok(())
    }

    /// Rolls back.
    pub(super) async fn rollback(mut self) -> Result<()> {
        self.c().batch_execute("ROLLBACK").await?;
        drop(self.conn.take());
        Ok(())
    }
}

impl Drop for PgTx {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else {
            return;
        };
        match tokio::runtime::Handle::try_current() {
            Ok(rt) => {
                rt.spawn(async move {
                    if conn.batch_execute("ROLLBACK").await.is_err() {
                        // Closing the connection rolls back too.
                        drop(Object::take(*conn));
                    }
                });
            }
            Err(_) => drop(Object::take(*conn)),
        }
    }
}

/// One statement with its parameters, on any connection.
macro_rules! params {
    ($($p:expr),* $(,)?) => {
        &[$(&$p as &(dyn tokio_postgres::types::ToSql + Sync)),*]
    };
}
pub(super) use params;

/// Runs prepared (and cached) statements on a connection.
async fn prepare(c: &Object, sql: &str) -> Result<Statement> {
    Ok(c.prepare_cached(sql).await?)
}

async fn query_opt(c: &Object, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>> {
    let st = prepare(c, sql).await?;
    Ok(c.query_opt(&st, params).await?)
}

async fn query(c: &Object, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
    let st = prepare(c, sql).await?;
    Ok(c.query(&st, params).await?)
}

async fn query_one(c: &Object, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
    let st = prepare(c, sql).await?;
    Ok(c.query_one(&st, params).await?)
}

async fn execute(c: &Object, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
    let st = prepare(c, sql).await?;
    Ok(c.execute(&st, params).await?)
}

impl PgStore {
    /// Connects (a first connection proves the server answers: a clear
    /// error at start-up, not at the first request) and applies migrations.
    pub(super) async fn open(s: &PostgresSettings) -> Result<PgStore> {
        let store = Self::connect(s)?;
        let conn = store.inner.pool.get().await.map_err(|e| {
            StoreError::Io(format!(
                "cannot connect to PostgreSQL {}: {}",
                store.inner.label,
                match &e {
                    deadpool_postgres::PoolError::Backend(e) => describe(e),
                    e => e.to_string(),
                }
            ))
        })?;
        migrate::run(&conn, &s.schema, &store.inner.label).await?;
        drop(conn);
        Ok(store)
    }

    /// The pool and its settings, without a connection yet.
    fn connect(s: &PostgresSettings) -> Result<PgStore> {
        let mut config = tokio_postgres::Config::from_str(&s.dsn)?;
        if let Some(p) = &s.password {
            config.password(p.as_bytes());
        }
        config.connect_timeout(s.connect_timeout);
        config.application_name("certeasy");
        // Every connection: the statement timeout and the schema (a plain
        // identifier: the checker allows only [a-z0-9_]).
        config.options(format!(
            "-c statement_timeout={} -c search_path={}",
            s.statement_timeout.as_millis(),
            s.schema
        ));
        let tls = match s.sslmode {
            SslMode::Disable => {
                config.ssl_mode(tokio_postgres::config::SslMode::Disable);
                Tls::None
            }
            mode => {
                config.ssl_mode(if mode == SslMode::Prefer {
                    tokio_postgres::config::SslMode::Prefer
                } else {
                    tokio_postgres::config::SslMode::Require
                });
                Tls::Rustls(rustls_connector(&s.ca_certs)?)
            }
        };
        let label = {
            let host = config
                .get_hosts()
                .first()
                .map(|h| match h {
                    tokio_postgres::config::Host::Tcp(h) => h.clone(),
                    tokio_postgres::config::Host::Unix(p) => p.display().to_string(),
                })
                .unwrap_or_default();
            let port = config.get_ports().first().copied().unwrap_or(5432);
            format!(
                "{host}:{port}/{} (schema {})",
                config.get_dbname().unwrap_or_default(),
                s.schema
            )
        };
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = match &tls {
            Tls::None => {
                Manager::from_config(config.clone(), tokio_postgres::NoTls, manager_config)
            }
            Tls::Rustls(t) => Manager::from_config(config.clone(), t.clone(), manager_config),
        };
        let pool = Pool::builder(manager)
            .max_size(s.pool_size)
            .runtime(Runtime::Tokio1)
            .create_timeout(Some(s.connect_timeout))
            .wait_timeout(Some(s.connect_timeout + s.statement_timeout))
            .build()
            .map_err(|e| StoreError::Io(format!("cannot build the connection pool: {e}")))?;
        Ok(PgStore {
            inner: Arc::new(Inner {
                pool,
                label,
                config,
                tls,
            }),
        })
    }

    /// Newest schema version of the PostgreSQL migrations.
    pub(super) fn schema_version() -> i64 {
        migrate::latest()
    }

    /// A pooled connection.
    async fn conn(&self) -> Result<Object> {
        Ok(self.inner.pool.get().await?)
    }

    /// Starts a write transaction (READ COMMITTED).
    pub(super) async fn begin(&self) -> Result<PgTx> {
        let conn = self.conn().await?;
        conn.batch_execute("BEGIN").await?;
        Ok(PgTx {
            conn: Some(Box::new(conn)),
        })
    }

    /// Liveness probe: one trivial statement.
    pub(super) async fn ping(&self) -> Result<()> {
        let c = self.conn().await?;
        query_one(&c, "SELECT 1", &[]).await?;
        Ok(())
    }

    /// Closes idle connections; the handle stays usable.
    pub(super) async fn close(&self) {
        let status = self.inner.pool.status();
        self.inner.pool.resize(0);
        self.inner.pool.resize(status.max_size);
    }

    /// Opens a connection outside the pool (for LISTEN and the worker-id
    /// lock), named `application_name`: the client and the stream of its
    /// connection's messages, which the caller must drive.
    async fn dedicated(
        &self,
        application_name: &str,
    ) -> Result<(
        tokio_postgres::Client,
        std::pin::Pin<
            Box<
                dyn futures::Stream<
                        Item = std::result::Result<
                            tokio_postgres::AsyncMessage,
                            tokio_postgres::Error,
                        >,
                    > + Send,
            >,
        >,
    )> {
        let inner = &self.inner;
        let mut config = inner.config.clone();
        config.application_name(application_name);
        match &inner.tls {
            Tls::None => {
                let (client, mut conn) = config.connect(tokio_postgres::NoTls).await?;
                let stream = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
                Ok((client, Box::pin(stream)))
            }
            Tls::Rustls(t) => {
                let (client, mut conn) = config.connect(t.clone()).await?;
                let stream = futures::stream::poll_fn(move |cx| conn.poll_message(cx));
                Ok((client, Box::pin(stream)))
            }
        }
    }
}

/// The rustls connector: the CA file's certificates, or the system roots.
fn rustls_connector(ca_certs: &[Vec<u8>]) -> Result<tokio_postgres_rustls::MakeRustlsConnect> {
    let mut roots = rustls::RootCertStore::empty();
    if ca_certs.is_empty() {
        for cert in rustls_native_certs::load_native_certs().certs {
            let _ = roots.add(cert);
        }
    } else {
        for der in ca_certs {
            roots
                .add(rustls_pki_types::CertificateDer::from(der.clone()))
                .map_err(|e| StoreError::Io(format!("database.ca-file: {e}")))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| StoreError::Io(format!("TLS to PostgreSQL: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(tokio_postgres_rustls::MakeRustlsConnect::new(config))
}

#[cfg(test)]
mod tests;
