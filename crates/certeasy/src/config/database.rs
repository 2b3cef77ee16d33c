//! `database`: where certeasy keeps its state. Only SQLite is available in
//! this build; `postgres` is refused with that reason rather than as an
//! unknown value, since the spec names it.
//!
//! The validated value is the SQLite file's path (`Config::database_path`).

use std::path::PathBuf;

use serde::Deserialize;

use super::checker::Checker;

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
    /// PostgreSQL DSN.
    #[serde(default)]
    dsn: Option<String>,
}

impl Default for Database {
    fn default() -> Self {
        Database {
            kind: DatabaseType::Sqlite,
            path: None,
            dsn: None,
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

impl Checker<'_> {
    /// Checks `database`; the SQLite file's path.
    pub(super) fn check_database(&mut self, d: &Database) -> PathBuf {
        match d.kind {
            DatabaseType::Sqlite => {
                if d.dsn.is_some() {
                    self.issue("database.dsn", "dsn applies only to type: postgres");
                }
                match &d.path {
                    Some(p) => self.work_path("database.path", p),
                    None => self.workdir.join("db.sqlite"),
                }
            }
            DatabaseType::Postgres => {
                self.issue(
                    "database.type",
                    "postgres is not available in this build yet; use sqlite (the default)",
                );
                PathBuf::new()
            }
        }
    }
}
