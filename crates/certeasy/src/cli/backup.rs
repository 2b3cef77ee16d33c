//! `certeasy backup create|verify`: online backups of the database and
//! checks of a backup file.
//!
//! Exit codes: 0 done (and, with a check, the backup passed it); 1 the
//! backup could not be made or read (database missing, output exists,
//! disk full); 2 invalid configuration or usage, or the backup is suspect
//! (it failed its check: a damaged file, a foreign database, a schema
//! this binary does not know).

use std::path::Path;
use std::process::ExitCode;

use clap::ValueEnum;

use crate::store::backup::{BackupError, BackupInfo, Check};
use crate::store::Store;

/// `--check` of `backup create`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CreateCheck {
    /// No check.
    None,
    /// Structure, schema version and tables.
    Quick,
    /// Full integrity check, foreign keys, schema object by object.
    Full,
}

/// `--check` of `backup verify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum VerifyCheck {
    /// Structure, schema version and tables.
    Quick,
    /// Full integrity check, foreign keys, schema object by object.
    Full,
}

fn report(file: &Path, info: &BackupInfo) {
    println!(
        "{}: backup is sound (schema {}, {} accounts, {} orders, {} certificates)",
        file.display(),
        info.schema_version,
        info.accounts,
        info.orders,
        info.certificates
    );
}

fn failed(e: &BackupError) -> ExitCode {
    eprintln!("certeasy: {e}");
    match e {
        BackupError::Suspect { .. } => ExitCode::from(2),
        BackupError::Store(_) => ExitCode::from(1),
    }
}

/// `certeasy backup create -f CONFIG --output F [--check …]`.
pub fn create(config: &Path, output: &Path, check: CreateCheck) -> ExitCode {
    let config = match crate::config::load(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let check = match check {
        CreateCheck::None => Check::None,
        CreateCheck::Quick => Check::Quick,
        CreateCheck::Full => Check::Full,
    };
    let rt = match tokio::runtime::Builder::new_current_thread().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    rt.block_on(async {
        let store = match Store::open_sqlite_existing(&config.database_path).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("certeasy: database {}: {e}", config.database_path.display());
                return ExitCode::from(1);
            }
        };
        match store.backup(output, check).await {
            Ok(Some(info)) => {
                report(output, &info);
                ExitCode::SUCCESS
            }
            Ok(None) => {
                println!("{}: backup written (not checked)", output.display());
                ExitCode::SUCCESS
            }
            Err(e) => failed(&e),
        }
    })
}

/// `certeasy backup verify --input F [--check …]`.
pub fn verify(input: &Path, check: VerifyCheck) -> ExitCode {
    let check = match check {
        VerifyCheck::Quick => Check::Quick,
        VerifyCheck::Full => Check::Full,
    };
    match Store::verify_backup(input, check) {
        Ok(info) => {
            report(input, &info);
            ExitCode::SUCCESS
        }
        Err(e) => failed(&e),
    }
}
