//! `certeasy migrate -f CONFIG [--dry-run]`: brings the database to this
//! binary's schema (what `serve` does at startup), or lists what would
//! run. Exit codes: 0 done; 1 the database cannot be migrated (newer than
//! this binary, a migration failed: the database stays at the last
//! version that applied); 2 invalid configuration or usage.

use std::path::Path;
use std::process::ExitCode;

use crate::store::Store;

/// Runs `migrate`.
pub fn run(config: &Path, dry_run: bool) -> ExitCode {
    let config = match crate::config::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let path = &config.database_path;
    let plan = match Store::migration_plan_sqlite(path) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("certeasy: {e}");
            return ExitCode::from(1);
        }
    };
    println!(
        "{}: schema version {}, this binary's {}",
        path.display(),
        plan.current,
        plan.latest
    );
    if plan.pending.is_empty() {
        println!("nothing to migrate");
        return ExitCode::SUCCESS;
    }
    for m in &plan.pending {
        println!(
            "{} migration {} ({})",
            if dry_run { "would apply" } else { "applying" },
            m.version,
            m.name
        );
    }
    if dry_run {
        return ExitCode::SUCCESS;
    }
    let rt = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(async {
        if let Err(e) = crate::fsutil::create_private_dir(&config.workdir) {
            eprintln!(
                "certeasy: cannot create workdir {}: {e}",
                config.workdir.display()
            );
            return ExitCode::from(1);
        }
        match Store::open_sqlite(path).await {
            Ok(store) => {
                store.close().await;
                println!("database at schema version {}", plan.latest);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("certeasy: {e}");
                ExitCode::from(1)
            }
        }
    })
}
