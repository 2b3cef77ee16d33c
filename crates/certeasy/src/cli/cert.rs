//! `certeasy cert renew-early`: ask clients, through ARI (RFC 9773), to
//! renew certificates now — one certificate, every certificate of a name,
//! or all of an authority or policy (a CA incident).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use super::eab::Failure;
use crate::store::{now_ms, RenewEarly, Store};

/// `certeasy cert …`.
#[derive(Debug, Subcommand)]
pub enum CertCommand {
    /// Move the ARI renewal window of unexpired, unrevoked certificates to
    /// now; clients that check ARI renew within `renewal-info.window-width`.
    RenewEarly {
        /// Configuration file.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// The certificate with this serial (hex, as in `openssl x509 -serial`).
        #[arg(long, group = "which")]
        serial: Option<String>,
        /// Every certificate carrying this DNS name.
        #[arg(long, group = "which")]
        name: Option<String>,
        /// Every certificate signed by this authority.
        #[arg(long, group = "which")]
        authority: Option<String>,
        /// Every certificate issued under this issuance policy.
        #[arg(long, group = "which")]
        policy: Option<String>,
    },
}

/// Which certificates to renew early, as given on the command line.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// `--serial`.
    pub serial: Option<String>,
    /// `--name`.
    pub name: Option<String>,
    /// `--authority`.
    pub authority: Option<String>,
    /// `--policy`.
    pub policy: Option<String>,
}

fn usage(message: impl Into<String>) -> Failure {
    Failure {
        code: 2,
        message: message.into(),
    }
}

fn runtime_error(message: impl Into<String>) -> Failure {
    Failure {
        code: 1,
        message: message.into(),
    }
}

/// Runs a `cert` subcommand and prints its outcome.
pub fn run(cmd: CertCommand) -> ExitCode {
    let CertCommand::RenewEarly {
        file,
        serial,
        name,
        authority,
        policy,
    } = cmd;
    let sel = Selection {
        serial,
        name,
        authority,
        policy,
    };
    match renew_early(&file, &sel) {
        Ok(n) => {
            println!("{n} certificate(s) marked for early renewal");
            ExitCode::SUCCESS
        }
        Err(f) => {
            eprintln!("{}", f.message);
            ExitCode::from(f.code)
        }
    }
}

/// `certeasy cert renew-early`: how many certificates were marked; none
/// matching is a failure (exit 1).
pub fn renew_early(file: &Path, sel: &Selection) -> Result<u64, Failure> {
    let config = crate::config::load(file).map_err(|e| usage(e.to_string()))?;
    let which = match sel.clone() {
        Selection {
            serial: Some(s),
            name: None,
            authority: None,
            policy: None,
        } => {
            let hex = s
                .trim()
                .trim_start_matches("0x")
                .replace(':', "")
                .to_ascii_lowercase();
            if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(usage(format!(
                    "--serial {s:?} is not a hexadecimal serial number"
                )));
            }
            let trimmed = hex.trim_start_matches('0');
            RenewEarly::Serial(if trimmed.is_empty() {
                "0".into()
            } else {
                trimmed.into()
            })
        }
        Selection {
            serial: None,
            name: Some(n),
            authority: None,
            policy: None,
        } => match pki::DnsName::parse(&n) {
            Ok(d) => RenewEarly::Name(d.as_str().to_string()),
            Err(e) => return Err(usage(format!("--name {n:?}: {e}"))),
        },
        Selection {
            serial: None,
            name: None,
            authority: Some(a),
            policy: None,
        } => {
            if config.authority(&a).is_none() {
                return Err(usage(format!(
                    "--authority {a:?}: no such authority in {}",
                    file.display()
                )));
            }
            RenewEarly::Authority(a)
        }
        Selection {
            serial: None,
            name: None,
            authority: None,
            policy: Some(p),
        } => {
            if !config.policies.iter().any(|x| x.name == p) {
                return Err(usage(format!(
                    "--policy {p:?}: no such issuance policy in {}",
                    file.display()
                )));
            }
            RenewEarly::Policy(p)
        }
        _ => {
            return Err(usage(
                "give exactly one of --serial, --name, --authority, --policy",
            ))
        }
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| runtime_error(format!("cannot start the async runtime: {e}")))?;
    rt.block_on(async {
        let store = Store::open(&config)
            .await
            .map_err(|e| runtime_error(format!("database {}: {e}", config.database_display())))?;
        let r = store.renew_early(&which, now_ms()).await;
        store.close().await;
        match r {
            Ok(0) => Err(runtime_error("no unexpired, unrevoked certificate matches")),
            Ok(n) => Ok(n),
            Err(e) => Err(runtime_error(e.to_string())),
        }
    })
}
