//! Command line: one function per subcommand.
//!
//! Exit codes: 0 success; 1 runtime failure (cannot bind, database, CA
//! material), a failed `adcs check` or a broken audit log (`audit
//! verify`); 2 invalid configuration or usage, a suspect backup
//! (`backup`), or a refused answer or existing file (`init`); 3 `adcs
//! request` left pending at the CA; 130 `serve` stopped by a second signal.

pub mod adcs;
pub mod audit;
pub mod backup;
pub mod cert;
pub mod docs;
pub mod eab;
pub mod init;
pub mod migrate;
#[cfg(windows)]
pub mod winservice;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// certeasy — on-premise ACME server for your company CA.
#[derive(Debug, Parser)]
#[command(name = "certeasy", version, about)]
pub struct Cli {
    /// Subcommand.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the ACME server.
    Serve {
        /// Configuration file.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
    },
    /// Check a configuration exactly as `serve` does at startup, without side effects.
    Validate {
        /// Configuration file.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
    },
    /// Print the version.
    Version,
    /// Write a first configuration by answering questions (docs/init.md).
    Init(init::InitArgs),
    /// The tamper-evident audit log.
    Audit {
        /// Audit subcommand.
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Online backup of the database, and checks of a backup file.
    Backup {
        /// Backup subcommand.
        #[command(subcommand)]
        command: BackupCommand,
    },
    /// Bring the database to this binary's schema (serve does it at
    /// startup); --dry-run lists the migrations that would run.
    Migrate {
        /// Configuration file.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Only list what would run.
        #[arg(long)]
        dry_run: bool,
    },
    /// Microsoft ADCS tools.
    Adcs {
        /// ADCS subcommand.
        #[command(subcommand)]
        command: AdcsCommand,
    },
    /// External account binding keys.
    Eab {
        /// EAB subcommand.
        #[command(subcommand)]
        command: eab::EabCommand,
    },
    /// Issued certificates.
    Cert {
        /// Certificate subcommand.
        #[command(subcommand)]
        command: cert::CertCommand,
    },
    /// Print the shell completion script, e.g.
    /// `certeasy completions bash > /etc/bash_completion.d/certeasy`.
    Completions {
        /// Shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Write the manual pages (certeasy.1, certeasy-serve.1, …) into a
    /// directory.
    Manpages {
        /// Existing directory to write into.
        #[arg(long)]
        dir: PathBuf,
    },
    /// Run as a Windows service (started by the Service Control Manager;
    /// see docs/operations.md).
    #[cfg(windows)]
    Service {
        /// Configuration file.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
    },
}

/// `certeasy audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Walk every segment of the audit log in order and report the first
    /// break (file, line, reason): removed, inserted, reordered or modified
    /// lines, a wrong key, a truncated last line, a missing segment. Exit 0
    /// when intact, 1 when broken.
    Verify {
        /// Configuration file (the database holds the key).
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// The log's base path (default: audit.path), e.g. a copy.
        #[arg(long)]
        path: Option<PathBuf>,
    },
}

/// `certeasy backup …`.
#[derive(Debug, Subcommand)]
pub enum BackupCommand {
    /// Write a consistent copy of the database while the server runs.
    /// Never overwrites a file. Exit 2 when the copy fails its check.
    Create {
        /// Configuration file.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// The backup file to create.
        #[arg(long)]
        output: PathBuf,
        /// How to check the copy.
        #[arg(long, value_enum, default_value = "quick")]
        check: backup::CreateCheck,
    },
    /// Check a backup file. Exit 2 when it is suspect.
    Verify {
        /// The backup file.
        #[arg(long)]
        input: PathBuf,
        /// How thoroughly.
        #[arg(long, value_enum, default_value = "full")]
        check: backup::VerifyCheck,
    },
}

/// `certeasy adcs …`.
#[derive(Debug, Subcommand)]
pub enum AdcsCommand {
    /// Check each ADCS authority step by step: DNS, endpoint mapper, RPC port,
    /// authentication, (with --submit) a test submission, and (with an ldap
    /// section) the template, its publication on the CA and the service
    /// account's rights in Active Directory. Exit 0 only when every check
    /// passes.
    Check {
        /// Configuration file.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Only this authority.
        #[arg(long)]
        authority: Option<String>,
        /// Also submit a throwaway CSR to the template.
        #[arg(long)]
        submit: bool,
    },
    /// Submit one CSR (PEM or DER) through an ADCS authority, or retrieve an
    /// earlier request. Exit 0 when a certificate was obtained, 3 when pending.
    Request {
        /// Configuration file.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Authority name.
        #[arg(long)]
        authority: String,
        /// CSR file.
        #[arg(long)]
        csr: Option<PathBuf>,
        /// Request id to retrieve.
        #[arg(long)]
        retrieve: Option<u32>,
        /// Where to write the certificate chain (PEM); stdout otherwise.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Approve (issue) a request pending at the CA (MS-CSRA
    /// ICertAdminD::ResubmitRequest over DCOM; needs "Issue and Manage
    /// Certificates"). Exit 0 when the CA issued it.
    Approve {
        /// Configuration file.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Authority name.
        #[arg(long)]
        authority: String,
        /// The CA's request id.
        request_id: u32,
    },
    /// Deny a request pending at the CA (MS-CSRA ICertAdminD::DenyRequest
    /// over DCOM; needs "Issue and Manage Certificates").
    Deny {
        /// Configuration file.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Authority name.
        #[arg(long)]
        authority: String,
        /// The CA's request id.
        request_id: u32,
    },
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    match cli.command {
        Command::Version => {
            println!(
                "certeasy {} (schema {})",
                env!("CARGO_PKG_VERSION"),
                crate::store::Store::schema_version()
            );
            ExitCode::SUCCESS
        }
        Command::Validate { file } => match crate::config::load(&file) {
            Ok(config) => {
                for w in &config.warnings {
                    eprintln!("warning: {}", w.in_file(&file));
                }
                println!("{}: configuration is valid", file.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(2)
            }
        },
        Command::Serve { file } => serve_until(file, None),
        Command::Init(args) => init::run(&args),
        Command::Audit {
            command: AuditCommand::Verify { file, path },
        } => audit::verify(&file, path.as_deref()),
        Command::Eab { command } => eab::run(command),
        Command::Cert { command } => cert::run(command),
        Command::Completions { shell } => docs::completions(shell),
        Command::Manpages { dir } => docs::manpages(&dir),
        #[cfg(windows)]
        Command::Service { file } => winservice::run(file),
        Command::Backup {
            command:
                BackupCommand::Create {
                    file,
                    output,
                    check,
                },
        } => backup::create(&file, &output, check),
        Command::Backup {
            command: BackupCommand::Verify { input, check },
        } => backup::verify(&input, check),
        Command::Migrate { file, dry_run } => migrate::run(&file, dry_run),
        Command::Adcs {
            command:
                AdcsCommand::Check {
                    file,
                    authority,
                    submit,
                },
        } => adcs::check(&file, authority.as_deref(), submit),
        Command::Adcs {
            command:
                AdcsCommand::Request {
                    file,
                    authority,
                    csr,
                    retrieve,
                    out,
                },
        } => adcs::request(&file, &authority, csr.as_deref(), retrieve, out.as_deref()),
        Command::Adcs {
            command:
                AdcsCommand::Approve {
                    file,
                    authority,
                    request_id,
                },
        } => adcs::decide(&file, &authority, request_id, adcs::Decision::Approve),
        Command::Adcs {
            command:
                AdcsCommand::Deny {
                    file,
                    authority,
                    request_id,
                },
        } => adcs::decide(&file, &authority, request_id, adcs::Decision::Deny),
    }
}

/// `serve`: runs until a signal, or until `stop` is cancelled (the Windows
/// service's Stop control).
fn serve_until(file: PathBuf, stop: Option<tokio_util::sync::CancellationToken>) -> ExitCode {
    let config = match crate::config::load(&file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = crate::telemetry::logs::init(&config.logs) {
        eprintln!("certeasy: {e}");
        return ExitCode::from(1);
    }
    for w in &config.warnings {
        tracing::warn!(target: "server", "{}", w.in_file(&file));
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
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
        let server = match crate::server::start(config).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(target: "server", "startup failed: {e:#}");
                eprintln!("certeasy: startup failed: {e:#}");
                return ExitCode::from(1);
            }
        };
        tracing::info!(target: "server", listen = %server.addr, "certeasy is serving");
        if let Some(stop) = stop {
            let server_stop = server.stop_token();
            tokio::spawn(async move {
                stop.cancelled().await;
                server_stop.cancel();
            });
        }
        println!("ACME directory: {}", server.directory_url());
        if server.root_pem.exists() {
            println!("Built-in CA root to trust: {}", server.root_pem.display());
        }
        server.wait().await;
        ExitCode::SUCCESS
    })
}
