//! `certeasy cert renew-early`: ask clients, through ARI (RFC 9773), to
//! renew certificates now — one certificate, every certificate of a name,
//! or all of an authority or policy (a CA incident).

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Subcommand;

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

/// Runs a `cert` subcommand.
pub fn run(cmd: CertCommand) -> ExitCode {
    let CertCommand::RenewEarly {
        file,
        serial,
        name,
        authority,
        policy,
    } = cmd;
    let config = match crate::config::load(&file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let which = match (serial, name, authority, policy) {
        (Some(s), None, None, None) => {
            let hex = s
                .trim()
                .trim_start_matches("0x")
                .replace(':', "")
                .to_ascii_lowercase();
            if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                eprintln!("--serial {s:?} is not a hexadecimal serial number");
                return ExitCode::from(2);
            }
            let trimmed = hex.trim_start_matches('0');
            RenewEarly::Serial(if trimmed.is_empty() {
                "0".into()
            } else {
                trimmed.into()
            })
        }
        (None, Some(n), None, None) => match pki::DnsName::parse(&n) {
            Ok(d) => RenewEarly::Name(d.as_str().to_string()),
            Err(e) => {
                eprintln!("--name {n:?}: {e}");
                return ExitCode::from(2);
            }
        },
        (None, None, Some(a), None) if config.authority(&a).is_some() => RenewEarly::Authority(a),
        (None, None, Some(a), None) => {
            eprintln!("--authority {a:?}: no such authority in {}", file.display());
            return ExitCode::from(2);
        }
        (None, None, None, Some(p)) if config.policies.iter().any(|x| x.name == p) => {
            RenewEarly::Policy(p)
        }
        (None, None, None, Some(p)) => {
            eprintln!(
                "--policy {p:?}: no such issuance policy in {}",
                file.display()
            );
            return ExitCode::from(2);
        }
        _ => {
            eprintln!("give exactly one of --serial, --name, --authority, --policy");
            return ExitCode::from(2);
        }
    };
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
    rt.block_on(async {
        let store = match Store::open_sqlite(&config.database_path).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("database {}: {e}", config.database_path.display());
                return ExitCode::from(1);
            }
        };
        let r = store.renew_early(&which, now_ms()).await;
        store.close().await;
        match r {
            Ok(0) => {
                eprintln!("no unexpired, unrevoked certificate matches");
                ExitCode::from(1)
            }
            Ok(n) => {
                println!("{n} certificate(s) marked for early renewal");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("{e}");
                ExitCode::from(1)
            }
        }
    })
}
