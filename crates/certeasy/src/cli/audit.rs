//! `certeasy audit verify`: checks the node's audit log against the
//! installation's key and the chain's end recorded in the database.
//!
//! Exit codes: 0 the log is intact; 1 a break was found (printed as
//! `FILE:LINE: reason`) or the log cannot be checked; 2 configuration or
//! usage error.

use std::path::Path;
use std::process::ExitCode;

use crate::audit::{chain::ChainKey, verify, KEY_META, SERVER_ID_FILE};
use crate::store::Store;

/// Runs `audit verify`.
pub fn verify(file: &Path, path: Option<&Path>) -> ExitCode {
    let config = match crate::config::load(file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let base = path.map_or_else(|| config.audit.path.clone(), Path::to_path_buf);
    if config.postgres.is_none() && !config.database_path.exists() {
        eprintln!(
            "no database at {}: audit verify needs the installation's database (it holds the audit key)",
            config.database_display()
        );
        return ExitCode::from(1);
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(async move {
        let store = match Store::open(&config).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("database {}: {e}", config.database_display());
                return ExitCode::from(1);
            }
        };
        let key = match store.meta(KEY_META).await {
            Ok(Some(k)) => k,
            Ok(None) => {
                eprintln!("the database {} holds no audit key: this installation has not written an audit log yet", config.database_display());
                return ExitCode::from(1);
            }
            Err(e) => {
                eprintln!("cannot read the audit key: {e}");
                return ExitCode::from(1);
            }
        };
        let Some(key) = ChainKey::from_hex(&key) else {
            eprintln!("meta.{KEY_META} in the database is not hex");
            return ExitCode::from(1);
        };
        let mut report = match verify::verify(&base, &key) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("cannot read the audit log {}: {e}", base.display());
                return ExitCode::from(1);
            }
        };
        let server_id = report.server_id.clone().or_else(|| {
            std::fs::read_to_string(config.workdir.join(SERVER_ID_FILE))
                .ok()
                .map(|s| s.trim().to_string())
        });
        let recorded = match &server_id {
            Some(id) => match store.audit_chain(id).await {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("cannot read the chain's end from the database: {e}");
                    return ExitCode::from(1);
                }
            },
            None => None,
        };
        verify::check_end(&mut report, &base, recorded.as_ref());
        for (f, line) in &report.recovered {
            println!(
                "{}:{line}: a line torn by a crash, recovered by the server (its event follows in full)",
                f.display()
            );
        }
        if let Some(b) = &report.first_break {
            eprintln!("audit log broken: {b}");
            eprintln!(
                "({} lines in {} segments verified before the break)",
                report.lines, report.segments
            );
            return ExitCode::from(1);
        }
        if let Some((f, line)) = &report.torn_tail {
            println!(
                "{}:{line}: the last line is incomplete: it is being written (is the node running?)",
                f.display()
            );
        }
        println!(
            "audit log {} is intact: {} lines in {} segments, last seq {}{}",
            base.display(),
            report.lines,
            report.segments,
            report.last_seq,
            server_id
                .map(|s| format!(", server_id {s}"))
                .unwrap_or_default()
        );
        ExitCode::SUCCESS
    })
}
