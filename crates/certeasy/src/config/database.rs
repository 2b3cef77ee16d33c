//! `database`: where certeasy keeps its state. `type: sqlite` (the
//! default) is one file in the workdir; `type: postgres` is a PostgreSQL
//! server that several nodes may share (Active/Active,
//! docs/high-availability.md).
//!
//! The validated values are the SQLite file's path
//! (`Config::database_path`) and, for PostgreSQL, [`PostgresSettings`]
//! (`Config::postgres`). A PostgreSQL password never sits in the
//! configuration: a DSN that carries one is refused, and the password comes
//! from `password-file` or `password-env`.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

use super::checker::Checker;
use super::duration::{secs, ConfDuration};

/// `database`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub(super) struct Database {
    /// Engine.
    #[serde(rename = "type", default = "default_db")]
    kind: DatabaseType,
    /// SQLite file.
    #[serde(default)]
    path: Option<String>,
    /// PostgreSQL DSN (URL or `key=value` form), without a password.
    #[serde(default)]
    dsn: Option<String>,
    /// File holding the PostgreSQL password.
    #[serde(default)]
    password_file: Option<String>,
    /// Environment variable holding the PostgreSQL password.
    #[serde(default)]
    password_env: Option<String>,
    /// Connections in the pool.
    #[serde(default)]
    pool_size: Option<u32>,
    /// Time allowed to open a connection.
    #[serde(default)]
    connect_timeout: Option<ConfDuration>,
    /// Time allowed to one statement (the server cancels it then).
    #[serde(default)]
    statement_timeout: Option<ConfDuration>,
    /// TLS to the server.
    #[serde(default)]
    sslmode: Option<SslMode>,
    /// CA certificates (PEM) the server's certificate must chain to.
    #[serde(default)]
    ca_file: Option<String>,
    /// Schema holding certeasy's tables.
    #[serde(default)]
    schema: Option<String>,
}

impl Default for Database {
    fn default() -> Self {
        Database {
            kind: DatabaseType::Sqlite,
            path: None,
            dsn: None,
            password_file: None,
            password_env: None,
            pool_size: None,
            connect_timeout: None,
            statement_timeout: None,
            sslmode: None,
            ca_file: None,
            schema: None,
        }
    }
}

fn default_db() -> DatabaseType {
    DatabaseType::Sqlite
}

/// Database engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum DatabaseType {
    /// SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// TLS to the PostgreSQL server (libpq's `sslmode` words).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// Plain TCP (or a Unix socket).
    Disable,
    /// TLS when the server offers it, certificate checked against the CA
    /// file (or the system roots) when it does.
    Prefer,
    /// TLS always; the certificate chain and the host name are checked
    /// (`verify-ca` and `verify-full` are accepted as the same).
    Require,
    /// Same as `require`.
    VerifyCa,
    /// Same as `require`.
    VerifyFull,
}

/// A validated `database` section of `type: postgres`.
#[derive(Clone)]
pub struct PostgresSettings {
    /// The DSN as written (no password in it).
    pub dsn: String,
    /// The password read from `password-file` or `password-env`.
    pub password: Option<String>,
    /// Connections in the pool.
    pub pool_size: usize,
    /// Time allowed to open a connection.
    pub connect_timeout: Duration,
    /// Time allowed to one statement.
    pub statement_timeout: Duration,
    /// TLS to the server.
    pub sslmode: SslMode,
    /// CA certificates (DER) the server's certificate must chain to; the
    /// system roots when empty.
    pub ca_certs: Vec<Vec<u8>>,
    /// Schema holding the tables (created when missing).
    pub schema: String,
}

impl std::fmt::Debug for PostgresSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresSettings")
            .field("dsn", &self.dsn)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("pool_size", &self.pool_size)
            .field("connect_timeout", &self.connect_timeout)
            .field("statement_timeout", &self.statement_timeout)
            .field("sslmode", &self.sslmode)
            .field("schema", &self.schema)
            .finish_non_exhaustive()
    }
}

/// Default connections in the pool.
const DEFAULT_POOL_SIZE: u32 = 16;

/// Whether `s` is a plain SQL identifier (what `schema` may be: it is
/// written into `search_path`).
fn plain_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && s.len() <= 63
}

impl Checker<'_> {
    /// Checks `database`: the SQLite file's path, and the PostgreSQL
    /// settings for `type: postgres`.
    pub(super) fn check_database(&mut self, d: &Database) -> (PathBuf, Option<PostgresSettings>) {
        match d.kind {
            DatabaseType::Sqlite => {
                let postgres_only = [
                    ("dsn", d.dsn.is_some()),
                    ("password-file", d.password_file.is_some()),
                    ("password-env", d.password_env.is_some()),
                    ("pool-size", d.pool_size.is_some()),
                    ("connect-timeout", d.connect_timeout.is_some()),
                    ("statement-timeout", d.statement_timeout.is_some()),
                    ("sslmode", d.sslmode.is_some()),
                    ("ca-file", d.ca_file.is_some()),
                    ("schema", d.schema.is_some()),
                ];
                for (key, set) in postgres_only {
                    if set {
                        self.issue(
                            format!("database.{key}"),
                            format!("{key} applies only to type: postgres"),
                        );
                    }
                }
                let path = match &d.path {
                    Some(p) => self.work_path("database.path", p),
                    None => self.workdir.join("db.sqlite"),
                };
                (path, None)
            }
            DatabaseType::Postgres => (PathBuf::new(), self.check_postgres(d)),
        }
    }

    fn check_postgres(&mut self, d: &Database) -> Option<PostgresSettings> {
        if d.path.is_some() {
            self.issue("database.path", "path applies only to type: sqlite");
        }
        let Some(dsn) = &d.dsn else {
            self.issue(
                "database.dsn",
                "type: postgres needs a dsn, e.g. \"host=db.example port=5432 user=certeasy dbname=certeasy\"",
            );
            return None;
        };
        let parsed = match dsn.parse::<tokio_postgres::Config>() {
            Ok(c) => Some(c),
            Err(e) => {
                self.issue("database.dsn", format!("not a PostgreSQL DSN: {e}"));
                None
            }
        };
        if let Some(c) = &parsed {
            if c.get_password().is_some() {
                self.issue(
                    "database.dsn",
                    "the DSN carries a password: remove it and put the password in password-file or password-env",
                );
            }
            if c.get_hosts().is_empty() {
                self.issue("database.dsn", "the DSN names no host");
            }
            if c.get_user().is_none() {
                self.issue("database.dsn", "the DSN names no user");
            }
        }
        let password = match (&d.password_file, &d.password_env) {
            (Some(f), None) => self
                .secret_file("database.password-file", f)
                .and_then(|bytes| match String::from_utf8(bytes) {
                    Ok(s) => Some(s),
                    Err(_) => {
                        self.issue("database.password-file", "the password is not UTF-8");
                        None
                    }
                }),
            (None, Some(var)) => self.secret_env("database.password-env", var),
            (None, None) => None,
            (Some(_), Some(_)) => {
                self.issue(
                    "database.password-env",
                    "set only one of password-file and password-env",
                );
                None
            }
        };
        let pool_size = match d.pool_size.unwrap_or(DEFAULT_POOL_SIZE) {
            0 => {
                self.issue("database.pool-size", "the pool needs at least 1 connection");
                1
            }
            n => n as usize,
        };
        let connect_timeout = d.connect_timeout.unwrap_or(secs::<10>()).get();
        let statement_timeout = d.statement_timeout.unwrap_or(secs::<30>()).get();
        let sslmode = d.sslmode.unwrap_or(SslMode::Prefer);
        let ca_certs = match &d.ca_file {
            Some(f) => {
                if sslmode == SslMode::Disable {
                    self.issue(
                        "database.ca-file",
                        "ca-file has no use with sslmode: disable",
                    );
                }
                self.pem_certs_file("database.ca-file", f, "")
                    .map(|(_, certs)| certs)
                    .unwrap_or_default()
            }
            None => Vec::new(),
        };
        let schema = d.schema.clone().unwrap_or_else(|| "public".into());
        if !plain_identifier(&schema) {
            self.issue(
                "database.schema",
                format!(
                    "{schema:?} is not a plain lower-case SQL identifier (a-z, 0-9, _; at most 63)"
                ),
            );
        }
        parsed?;
        Some(PostgresSettings {
            dsn: dsn.clone(),
            password,
            pool_size,
            connect_timeout,
            statement_timeout,
            sslmode,
            ca_certs,
            schema,
        })
    }
}

impl super::Config {
    /// The database for messages: the SQLite file, or the PostgreSQL DSN
    /// and schema (no password: the DSN carries none).
    pub fn database_display(&self) -> String {
        match &self.postgres {
            Some(pg) => format!("PostgreSQL \"{}\" (schema {})", pg.dsn, pg.schema),
            None => self.database_path.display().to_string(),
        }
    }
}
