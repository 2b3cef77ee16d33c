//! Backups and hand-run migrations of the SQLite engine.
//!
//! A backup is `VACUUM INTO` on a connection of its own: it reads one
//! consistent snapshot (a WAL read transaction) while the server goes on
//! writing, and writes a compact, self-contained database file (no WAL).
//! The checks open the copy read-only and immutable, so checking never
//! writes beside it.

use std::fs::OpenOptions;
use std::io::Read;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, OpenFlags};

use super::{migrate, open_reader, SqliteStore};
use crate::store::backup::{BackupError, BackupInfo, Check, Migration, MigrationPlan};
use crate::store::StoreError;

/// Tables every schema version has.
const CORE_TABLES: &[&str] = &[
    "accounts",
    "orders",
    "authorizations",
    "challenges",
    "certificates",
    "jobs",
];

fn io(msg: String) -> BackupError {
    BackupError::Store(StoreError::Io(msg))
}

fn sql(e: rusqlite::Error) -> BackupError {
    BackupError::Store(super::Error::Sql(e).into())
}

impl SqliteStore {
    pub(in crate::store) async fn backup(
        &self,
        dest: &Path,
        check: Check,
    ) -> Result<Option<BackupInfo>, BackupError> {
        if dest.exists() {
            return Err(io(format!(
                "{} exists; a backup never overwrites a file: choose a new name",
                dest.display()
            )));
        }
        let name = dest
            .file_name()
            .ok_or_else(|| io(format!("{} is not a file name", dest.display())))?;
        let dir = match dest.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let tmp = dir.join(format!(
            ".{}.partial-{}",
            name.to_string_lossy(),
            std::process::id()
        ));
        let made = self.copy_into(&tmp);
        if let Err(e) = made {
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        // Appears under its name only when complete; a link fails rather
        // than replace a file created meanwhile.
        let linked = std::fs::hard_link(&tmp, dest);
        let _ = std::fs::remove_file(&tmp);
        linked.map_err(|e| io(format!("cannot create {}: {e}", dest.display())))?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        match check {
            Check::None => Ok(None),
            _ => Self::verify_backup(dest, check).map(Some),
        }
    }

    /// `VACUUM INTO` a new private file at `tmp`, synced to disk.
    fn copy_into(&self, tmp: &Path) -> Result<(), BackupError> {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        options
            .open(tmp)
            .map_err(|e| io(format!("cannot create {}: {e}", tmp.display())))?;
        let target = tmp
            .to_str()
            .ok_or_else(|| io(format!("{} is not valid UTF-8", tmp.display())))?;
        // A connection of its own: the snapshot is read without holding
        // the writer, so the server's requests go on meanwhile.
        let conn = open_reader(&self.inner.path).map_err(sql)?;
        conn.execute("VACUUM INTO ?1", [target]).map_err(sql)?;
        drop(conn);
        std::fs::File::open(tmp)
            .and_then(|f| f.sync_all())
            .map_err(|e| io(format!("cannot sync {}: {e}", tmp.display())))
    }

    /// Checks a backup file; see [`Check`].
    pub(in crate::store) fn verify_backup(
        file: &Path,
        check: Check,
    ) -> Result<BackupInfo, BackupError> {
        let suspect = |problems: Vec<String>| BackupError::Suspect {
            file: file.display().to_string(),
            problems,
        };
        let mut header = [0u8; 16];
        let mut f = std::fs::File::open(file)
            .map_err(|e| io(format!("cannot read {}: {e}", file.display())))?;
        if f.read_exact(&mut header).is_err() || &header != b"SQLite format 3\0" {
            return Err(suspect(vec!["not an SQLite database file".into()]));
        }
        drop(f);
        let conn = open_immutable(file).map_err(|e| suspect(vec![format!("cannot open: {e}")]))?;
        let mut problems = Vec::new();
        let pragma = if check == Check::Full {
            "PRAGMA integrity_check(20)"
        } else {
            "PRAGMA quick_check(20)"
        };
        match rows(&conn, pragma) {
            Ok(r) if r.len() == 1 && r[0] == "ok" => {}
            Ok(r) => problems.extend(r.into_iter().map(|l| format!("integrity: {l}"))),
            // A damaged file often fails before the check can report.
            Err(e) => return Err(suspect(vec![format!("integrity check failed: {e}")])),
        }
        let version = match migrate::current(&conn) {
            Ok(v) => v,
            Err(e) => {
                problems.push(format!(
                    "cannot read the schema version: {}",
                    StoreError::from(e)
                ));
                return Err(suspect(problems));
            }
        };
        let latest = migrate::latest();
        if version == 0 {
            problems.push("schema version 0: not a certeasy database".into());
        } else if version > latest {
            problems.push(format!(
                "schema version {version} is newer than this binary's {latest}; verify it with the certeasy that wrote it"
            ));
        }
        let present = schema_objects(&conn).map_err(sql)?;
        for t in CORE_TABLES {
            if !present.iter().any(|o| o.0 == "table" && o.1 == *t) {
                problems.push(format!("table {t} is missing"));
            }
        }
        // Objects are compared with the backup's schema version, or with
        // the newest one when its version is unknown (to name what is
        // foreign in another application's database).
        let known = (1..=latest).contains(&version);
        let reference = if known { version } else { latest };
        let expected = expected_schema(reference).map_err(sql)?;
        for o in &present {
            match expected.iter().find(|e| e.0 == o.0 && e.1 == o.1) {
                None => problems.push(format!(
                    "{} {} is not part of schema version {reference}",
                    o.0, o.1
                )),
                Some(e) if known && check == Check::Full && normalise(&e.2) != normalise(&o.2) => {
                    problems.push(format!(
                        "{} {} differs from schema version {version}",
                        o.0, o.1
                    ));
                }
                Some(_) => {}
            }
        }
        if known {
            for e in &expected {
                if !present.iter().any(|o| o.0 == e.0 && o.1 == e.1)
                    && !CORE_TABLES.contains(&e.1.as_str())
                {
                    problems.push(format!("{} {} is missing", e.0, e.1));
                }
            }
        }
        if check == Check::Full && problems.is_empty() {
            match rows(&conn, "PRAGMA foreign_key_check") {
                Ok(r) if r.is_empty() => {}
                Ok(r) => problems.push(format!(
                    "{} rows break a foreign key (first: {})",
                    r.len(),
                    r[0]
                )),
                Err(e) => problems.push(format!("foreign key check failed: {e}")),
            }
        }
        if !problems.is_empty() {
            return Err(suspect(problems));
        }
        let count = |table: &str| -> Result<i64, BackupError> {
            conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0))
                .map_err(|e| suspect(vec![format!("cannot read {table}: {e}")]))
        };
        Ok(BackupInfo {
            schema_version: version,
            certificates: count("certificates")?,
            orders: count("orders")?,
            accounts: count("accounts")?,
        })
    }

    pub(in crate::store) fn migration_plan(path: &Path) -> super::Result<MigrationPlan> {
        let current = if path.exists() {
            let conn = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )?;
            migrate::current(&conn)?
        } else {
            0
        };
        let latest = migrate::latest();
        if current > latest {
            return Err(StoreError::TooNew {
                path: path.display().to_string(),
                found: current,
                supported: latest,
            }
            .into());
        }
        Ok(MigrationPlan {
            current,
            latest,
            pending: migrate::MIGRATIONS
                .iter()
                .filter(|m| m.0 > current)
                .map(|m| Migration {
                    version: m.0,
                    name: m.1,
                })
                .collect(),
        })
    }
}

/// Opens a file that nobody writes: read-only, no locks, no `-shm`.
fn open_immutable(file: &Path) -> rusqlite::Result<Connection> {
    let mut uri = String::from("file:");
    for c in file.to_string_lossy().chars() {
        match c {
            '%' => uri.push_str("%25"),
            '?' => uri.push_str("%3f"),
            '#' => uri.push_str("%23"),
            c => uri.push(c),
        }
    }
    uri.push_str("?immutable=1");
    Connection::open_with_flags(
        uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
}

/// Every row of a statement, each row's columns joined with spaces.
fn rows(conn: &Connection, sql: &str) -> rusqlite::Result<Vec<String>> {
    let mut st = conn.prepare(sql)?;
    let n = st.column_count();
    let out = st
        .query_map([], |r| {
            let mut cols = Vec::with_capacity(n);
            for i in 0..n {
                let v: rusqlite::types::Value = r.get(i)?;
                cols.push(match v {
                    rusqlite::types::Value::Null => "NULL".to_string(),
                    rusqlite::types::Value::Integer(i) => i.to_string(),
                    rusqlite::types::Value::Real(f) => f.to_string(),
                    rusqlite::types::Value::Text(t) => t,
                    rusqlite::types::Value::Blob(b) => format!("<{} bytes>", b.len()),
                });
            }
            Ok(cols.join(" "))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(out)
}

/// (type, name, sql) of the schema's objects, SQLite's own and the legacy
/// sqlx bookkeeping left out.
fn schema_objects(conn: &Connection) -> rusqlite::Result<Vec<(String, String, String)>> {
    let mut st = conn.prepare(
        "SELECT type, name, COALESCE(sql, '') FROM sqlite_master \
         WHERE name NOT LIKE 'sqlite_%' AND name NOT LIKE '_sqlx%' ORDER BY type, name",
    )?;
    let out = st
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect();
    out
}

/// The schema that the migrations up to `version` create.
fn expected_schema(version: i64) -> rusqlite::Result<Vec<(String, String, String)>> {
    let conn = Connection::open_in_memory()?;
    for (v, _, sql) in migrate::MIGRATIONS {
        if *v <= version {
            conn.execute_batch(sql)?;
        }
    }
    schema_objects(&conn)
}

/// SQL text without differences of whitespace.
fn normalise(sql: &str) -> String {
    sql.split_whitespace().collect::<Vec<_>>().join(" ")
}
