//! `certeasy-bench run`: N concurrent clients doing complete issuances.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use certeasy_va::testing::TestDns;
use serde::Serialize;

use crate::acme::{Client, CsrKeys, Directory};
use crate::http::Target;
use crate::procstat::{status_kb, CpuClock};
use crate::responder::{self, Tokens};
use crate::stats::{Recorder, StepTimes, Summary};
use crate::RunArgs;

/// Errors kept verbatim in the report.
const FIRST_ERRORS: usize = 5;

/// The JSON report.
#[derive(Debug, Serialize)]
pub struct Report {
    /// `--label`.
    pub label: String,
    /// Directory URL.
    pub directory: String,
    /// Concurrent clients.
    pub clients: usize,
    /// Key type.
    pub key: String,
    /// Names per order (as given).
    pub sans: String,
    /// Poll interval, ms.
    pub poll_interval_ms: f64,
    /// Successful issuances.
    pub issued: u64,
    /// Failed issuances.
    pub failures: u64,
    /// The first few failure messages.
    pub first_errors: Vec<String>,
    /// Wall time of the timed phase, seconds.
    pub elapsed_s: f64,
    /// Successful issuances per second.
    pub issuances_per_s: f64,
    /// ACME requests per issuance (all requests / successes).
    pub requests_per_issuance: f64,
    /// Order polls per issuance.
    pub polls_per_issuance: f64,
    /// badNonce answers retried.
    pub bad_nonces: u64,
    /// TCP/TLS connections opened by the clients (keep-alive: ideally one
    /// per client).
    pub connections: u64,
    /// Server CPU (utime+stime) over the timed phase, seconds.
    pub server_cpu_s: Option<f64>,
    /// Server CPU per successful issuance, ms.
    pub server_cpu_ms_per_issuance: Option<f64>,
    /// Server peak RSS (VmHWM) at the end, MiB.
    pub server_peak_rss_mib: Option<f64>,
    /// Server RSS (VmRSS) at the end, MiB.
    pub server_rss_mib: Option<f64>,
    /// Load-generator CPU per successful issuance, ms (includes the DNS
    /// server and http-01 responder it hosts).
    pub client_cpu_ms_per_issuance: f64,
    /// Latencies per step (ms), `total` first.
    pub latency: Vec<Summary>,
}

struct ClientResult {
    rec: Recorder,
    issued: u64,
    failures: u64,
    errors: Vec<String>,
    requests: u64,
    polls: u64,
    bad_nonces: u64,
    connects: u64,
}

fn parse_sans(s: &str) -> Result<(usize, usize)> {
    let (lo, hi) = match s.split_once("..") {
        Some((a, b)) => (a.trim().parse()?, b.trim().parse()?),
        None => {
            let n = s.trim().parse()?;
            (n, n)
        }
    };
    if lo == 0 || hi < lo || hi > 100 {
        bail!("--sans {s:?}: want N or LO..HI with 1 <= LO <= HI <= 100");
    }
    Ok((lo, hi))
}

/// A short random run id so names never repeat across runs.
fn run_id() -> String {
    use ring::rand::SecureRandom;
    let mut b = [0u8; 4];
    let _ = ring::rand::SystemRandom::new().fill(&mut b);
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// Runs the benchmark; `Ok(false)` when any issuance failed.
pub async fn run(a: RunArgs) -> Result<bool> {
    if a.clients == 0 || a.clients > 1024 {
        bail!("--clients must be between 1 and 1024");
    }
    let (san_lo, san_hi) = parse_sans(&a.sans)?;
    if a.orders_per_client.is_none() && a.duration.is_none() {
        bail!("give --orders-per-client K or --duration D");
    }
    for addr in [a.http01_listen, a.dns_listen] {
        if !addr.ip().is_loopback() {
            bail!("{addr}: the benchmark listens on loopback addresses only");
        }
    }
    let suffix = a.suffix.trim_matches('.').to_ascii_lowercase();
    let uri: http::Uri = a
        .directory
        .parse()
        .with_context(|| format!("--directory {:?}", a.directory))?;
    let target = Target::new(&uri, a.ca_root.as_deref(), a.insecure).await?;

    let dns = Arc::new(
        TestDns::start_at(&suffix, a.dns_listen)
            .await
            .with_context(|| format!("starting the DNS server for {suffix} on {}", a.dns_listen))?,
    );
    let tokens = Tokens::default();
    responder::spawn(a.http01_listen, tokens.clone()).await?;

    let dir = Arc::new(Directory::fetch(&target, &a.directory).await?);

    // Accounts and CSR keys: set up, not timed.
    let mut clients = Vec::with_capacity(a.clients);
    for _ in 0..a.clients {
        let mut c = Client::new(target.clone(), dir.clone())?;
        c.create_account().await.context("creating an account")?;
        let keys = CsrKeys::new(a.key)?;
        clients.push((c, keys));
    }

    let cpu = CpuClock::new();
    let server_cpu0 = match a.server_pid {
        Some(p) => Some(cpu.cpu_seconds(Some(p))?),
        None => None,
    };
    let self_cpu0 = cpu.cpu_seconds(None)?;
    let start = Instant::now();
    let stop_at = a.duration.map(|d| start + d);
    let rid = run_id();

    let mut set = tokio::task::JoinSet::new();
    for (i, (mut c, keys)) in clients.into_iter().enumerate() {
        let dns = dns.clone();
        let tokens = tokens.clone();
        let suffix = suffix.clone();
        let rid = rid.clone();
        let per_client = a.orders_per_client;
        let poll = a.poll_interval;
        let timeout = a.issuance_timeout;
        set.spawn(async move {
            let mut r = ClientResult {
                rec: Recorder::default(),
                issued: 0,
                failures: 0,
                errors: Vec::new(),
                requests: 0,
                polls: 0,
                bad_nonces: 0,
                connects: 0,
            };
            // Hard bound on the loop even in duration mode.
            let max_orders = per_client.unwrap_or(10_000_000);
            for seq in 0..max_orders {
                if stop_at.is_some_and(|t| Instant::now() >= t) {
                    break;
                }
                let n = san_lo + (seq as usize) % (san_hi - san_lo + 1);
                let names: Vec<String> = (0..n)
                    .map(|k| format!("r{rid}-c{i}-o{seq}-n{k}.{suffix}"))
                    .collect();
                for name in &names {
                    dns.set_a(name, IpAddr::V4(Ipv4Addr::LOCALHOST));
                }
                let mut t = StepTimes::default();
                match c.issue(&names, &keys, &tokens, poll, timeout, &mut t).await {
                    Ok(()) => {
                        r.issued += 1;
                        r.rec.record(&t);
                    }
                    Err(e) => {
                        r.failures += 1;
                        if r.errors.len() < FIRST_ERRORS {
                            r.errors.push(format!("client {i} order {seq}: {e:#}"));
                        }
                    }
                }
                for name in &names {
                    dns.remove(name);
                }
            }
            r.requests = c.requests;
            r.polls = c.polls;
            r.bad_nonces = c.bad_nonces;
            r.connects = c.connects();
            r
        });
    }
    let mut rec = Recorder::default();
    let (mut issued, mut failures, mut requests, mut polls, mut bad_nonces, mut connections) =
        (0, 0, 0, 0, 0, 0);
    let mut errors = Vec::new();
    while let Some(r) = set.join_next().await {
        let r = r.map_err(|e| anyhow!("a client task failed: {e}"))?;
        issued += r.issued;
        failures += r.failures;
        requests += r.requests;
        polls += r.polls;
        bad_nonces += r.bad_nonces;
        connections += r.connects;
        errors.extend(r.errors);
        rec.merge(r.rec);
    }
    let elapsed = start.elapsed();
    let self_cpu = cpu.cpu_seconds(None)? - self_cpu0;
    let server_cpu = match (a.server_pid, server_cpu0) {
        (Some(p), Some(c0)) => Some(cpu.cpu_seconds(Some(p))? - c0),
        _ => None,
    };
    let mib = |b: u64| b as f64 / (1024.0 * 1024.0);
    let peak = a
        .server_pid
        .map(|p| status_kb(p, "VmHWM"))
        .transpose()?
        .map(mib);
    let rss = a
        .server_pid
        .map(|p| status_kb(p, "VmRSS"))
        .transpose()?
        .map(mib);
    errors.truncate(FIRST_ERRORS);
    let per = |x: f64| if issued > 0 { x / issued as f64 } else { 0.0 };
    let report = Report {
        label: a.label.clone(),
        directory: a.directory.clone(),
        clients: a.clients,
        key: format!("{:?}", a.key).to_ascii_lowercase(),
        sans: a.sans.clone(),
        poll_interval_ms: a.poll_interval.as_secs_f64() * 1000.0,
        issued,
        failures,
        first_errors: errors,
        elapsed_s: elapsed.as_secs_f64(),
        issuances_per_s: issued as f64 / elapsed.as_secs_f64().max(1e-9),
        requests_per_issuance: per(requests as f64),
        polls_per_issuance: per(polls as f64),
        bad_nonces,
        connections,
        server_cpu_s: server_cpu,
        server_cpu_ms_per_issuance: server_cpu.map(|c| per(c * 1000.0)),
        server_peak_rss_mib: peak,
        server_rss_mib: rss,
        client_cpu_ms_per_issuance: per(self_cpu * 1000.0),
        latency: rec.summaries(),
    };
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_text(&report);
    }
    Ok(failures == 0 && issued > 0)
}

fn print_text(r: &Report) {
    let label = if r.label.is_empty() {
        String::new()
    } else {
        format!("[{}] ", r.label)
    };
    println!(
        "{label}{} clients, key {}, sans {}: {} issued, {} failed in {:.2} s = {:.1} issuances/s",
        r.clients, r.key, r.sans, r.issued, r.failures, r.elapsed_s, r.issuances_per_s
    );
    println!(
        "  requests/issuance {:.1}, polls/issuance {:.1}, badNonce retries {}, connections {}, client CPU {:.2} ms/issuance",
        r.requests_per_issuance, r.polls_per_issuance, r.bad_nonces, r.connections, r.client_cpu_ms_per_issuance
    );
    if let (Some(c), Some(per)) = (r.server_cpu_s, r.server_cpu_ms_per_issuance) {
        println!(
            "  server CPU {:.2} s = {:.3} ms/issuance, peak RSS {:.1} MiB (now {:.1} MiB)",
            c,
            per,
            r.server_peak_rss_mib.unwrap_or(0.0),
            r.server_rss_mib.unwrap_or(0.0)
        );
    }
    println!(
        "  {:<11} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "step", "n", "mean", "p50", "p90", "p99", "max"
    );
    for s in &r.latency {
        println!(
            "  {:<11} {:>7} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            s.step, s.count, s.mean_ms, s.p50_ms, s.p90_ms, s.p99_ms, s.max_ms
        );
    }
    for e in &r.first_errors {
        println!("  error: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sans() {
        assert_eq!(parse_sans("1").ok(), Some((1, 1)));
        assert_eq!(parse_sans("1..3").ok(), Some((1, 3)));
        assert!(parse_sans("0").is_err());
        assert!(parse_sans("3..1").is_err());
    }

    #[test]
    fn run_ids_are_hex() {
        let r = run_id();
        assert_eq!(r.len(), 8);
        assert!(r.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
