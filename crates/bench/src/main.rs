//! `certeasy-bench`: a load generator that drives complete ACME issuances
//! against any ACME directory (certeasy, Pebble, …) and a seeder that fills
//! a certeasy SQLite database with realistic rows.
//!
//! See `docs/performance.md` for how `scripts/bench.sh` uses it.

#![forbid(unsafe_code)]

mod acme;
mod http;
mod jws;
mod procstat;
mod responder;
mod run;
mod seed;
mod stats;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

/// Command line.
#[derive(Parser, Debug)]
#[command(
    name = "certeasy-bench",
    version,
    about = "ACME issuance benchmark and certeasy database seeder"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// Drive complete issuances against an ACME directory and report.
    Run(RunArgs),
    /// Fill a certeasy SQLite database with realistic rows.
    Seed(SeedArgs),
}

/// Key type of the certificate requests.
#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum KeyKind {
    /// ECDSA P-256, a fresh key per CSR.
    P256,
    /// RSA 2048 (one key per client, a fresh CSR per order).
    Rsa2048,
    /// RSA 3072 (one key per client, a fresh CSR per order).
    Rsa3072,
}

/// Options of `run`.
#[derive(clap::Args, Debug, Clone)]
pub struct RunArgs {
    /// ACME directory URL (https://…; http:// is accepted too).
    #[arg(long)]
    pub directory: String,
    /// PEM file of the root(s) that issued the server's TLS certificate.
    #[arg(long, conflicts_with = "insecure")]
    pub ca_root: Option<PathBuf>,
    /// Do not verify the server's TLS certificate.
    #[arg(long)]
    pub insecure: bool,
    /// Concurrent clients (each with its own account and connection).
    #[arg(long, default_value_t = 1)]
    pub clients: usize,
    /// Issuances per client.
    #[arg(long, conflicts_with = "duration")]
    pub orders_per_client: Option<u64>,
    /// Run for this long instead (e.g. `30s`, `2m`).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Names per order: `N` or a range `LO..HI` (cycled through).
    #[arg(long, default_value = "1")]
    pub sans: String,
    /// Key type of the CSRs.
    #[arg(long, value_enum, default_value = "p256")]
    pub key: KeyKind,
    /// DNS suffix under which names are ordered (served by the in-process DNS).
    #[arg(long, default_value = "bench.test")]
    pub suffix: String,
    /// Address of the in-process http-01 responder.
    #[arg(long, default_value = "127.0.0.1:5002")]
    pub http01_listen: SocketAddr,
    /// Address of the in-process authoritative DNS for the suffix (UDP+TCP).
    #[arg(long, default_value = "127.0.0.1:5053")]
    pub dns_listen: SocketAddr,
    /// PID of the server, to report its CPU time per issuance and peak RSS.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Delay between two polls of an order.
    #[arg(long, value_parser = parse_duration, default_value = "2ms")]
    pub poll_interval: Duration,
    /// Give up on one issuance after this long.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub issuance_timeout: Duration,
    /// Tokio worker threads of the load generator.
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Print one JSON object instead of the text report.
    #[arg(long)]
    pub json: bool,
    /// Label copied into the report (e.g. `certeasy` or `pebble`).
    #[arg(long, default_value = "")]
    pub label: String,
}

/// Options of `seed`.
#[derive(clap::Args, Debug, Clone)]
pub struct SeedArgs {
    /// certeasy workdir: the database is `DIR/db.sqlite` (created if needed).
    #[arg(long)]
    pub workdir: PathBuf,
    /// Accounts to create.
    #[arg(long, default_value_t = 1000)]
    pub accounts: u64,
    /// Certificates to create (each with its valid order, authz, challenge).
    #[arg(long)]
    pub certs: u64,
    /// Rows per transaction (certificates).
    #[arg(long, default_value_t = 20_000)]
    pub batch: u64,
    /// Percentage of certificates revoked.
    #[arg(long, default_value_t = 2)]
    pub revoked_percent: u64,
    /// Authority name written into the certificate rows.
    #[arg(long, default_value = "builtin")]
    pub authority: String,
    /// Issuance policy name written into the order rows.
    #[arg(long, default_value = "bench")]
    pub policy: String,
}

/// Parses `300ms`, `2ms`, `500us`, `30s`, `2m`, `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .ok_or_else(|| format!("{s:?}: a unit is required (us, ms, s, m, h)"))?;
    let (num, unit) = s.split_at(split);
    let v: f64 = num.parse().map_err(|e| format!("{s:?}: {e}"))?;
    let secs = match unit {
        "us" => v / 1e6,
        "ms" => v / 1e3,
        "s" => v,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (us, ms, s, m, h)")),
    };
    if !(0.0..=86400.0 * 7.0).contains(&secs) {
        return Err(format!("{s:?}: out of range"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let threads = match &cli.cmd {
        Cmd::Run(a) => a.threads.max(1),
        Cmd::Seed(_) => 2,
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("certeasy-bench: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let res = rt.block_on(async move {
        match cli.cmd {
            Cmd::Run(a) => run::run(a).await,
            Cmd::Seed(a) => seed::seed(a).await.map(|_| true),
        }
    });
    match res {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(3),
        Err(e) => {
            eprintln!("certeasy-bench: {e:#}");
            ExitCode::from(1)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("2ms"), Ok(Duration::from_millis(2)));
        assert_eq!(parse_duration("30s"), Ok(Duration::from_secs(30)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("500us"), Ok(Duration::from_micros(500)));
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("5d").is_err());
    }
}
