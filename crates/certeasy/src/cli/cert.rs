//! `certeasy cert`: issued certificates.
//!
//! - `renew-early`: ask clients, through ARI (RFC 9773), to renew
//!   certificates now — one certificate, every certificate of a name, or
//!   all of an authority or policy (a CA incident).
//! - `revoke`: revoke a certificate as an operator; recorded like
//!   revoke-cert (with its audit event) and taken to the CA by a `revoke`
//!   job that any running certeasy node claims (docs/revocation.md).
//! - `show`: a certificate's state, including where its revocation stands
//!   at the CA ("revocation pending at the CA" until the CA confirms).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Subcommand;

use super::eab::Failure;
use crate::store::jobs::JobKind;
use crate::store::{now_ms, CertRow, RenewEarly, Store};

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
    /// Revoke a certificate: certeasy refuses it at once (ARI, and the
    /// built-in CA's CRL and OCSP); a running certeasy server then asks
    /// the CA that signed it to revoke it too, retrying until the CA
    /// answers.
    Revoke {
        /// Configuration file.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Serial of the certificate (hex, as in `openssl x509 -serial`).
        #[arg(long)]
        serial: String,
        /// RFC 5280 reason: a code (0, 1, 3, 4, 5, 9) or its name
        /// (unspecified, keyCompromise, affiliationChanged, superseded,
        /// cessationOfOperation, privilegeWithdrawn).
        #[arg(long, default_value = "0")]
        reason: String,
        /// The authority that signed it, when two authorities issued the
        /// same serial.
        #[arg(long)]
        authority: Option<String>,
    },
    /// Show a certificate's state, and where its revocation stands at the
    /// CA.
    Show {
        /// Configuration file.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Serial of the certificate (hex).
        #[arg(long)]
        serial: String,
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
    let result = match cmd {
        CertCommand::RenewEarly {
            file,
            serial,
            name,
            authority,
            policy,
        } => run_renew_early(&file, serial, name, authority, policy),
        CertCommand::Revoke {
            file,
            serial,
            reason,
            authority,
        } => revoke(&file, &serial, &reason, authority.as_deref()),
        CertCommand::Show { file, serial } => show(&file, &serial),
    };
    match result {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(f) => {
            eprintln!("{}", f.message);
            ExitCode::from(f.code)
        }
    }
}

fn run_renew_early(
    file: &Path,
    serial: Option<String>,
    name: Option<String>,
    authority: Option<String>,
    policy: Option<String>,
) -> Result<String, Failure> {
    let sel = Selection {
        serial,
        name,
        authority,
        policy,
    };
    renew_early(file, &sel).map(|n| format!("{n} certificate(s) marked for early renewal"))
}

/// A serial as given on the command line, as the store keeps it
/// (lower-case hex of the bytes, without leading zero bytes: `0a1b`, not
/// `a1b`); None when it is not hexadecimal.
fn normalise_serial(s: &str) -> Option<String> {
    let hex = s
        .trim()
        .trim_start_matches("0x")
        .replace(':', "")
        .to_ascii_lowercase();
    if hex.is_empty() || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let digits = hex.trim_start_matches('0');
    Some(match digits.len() {
        0 => "00".into(),
        n if n % 2 == 1 => format!("0{digits}"),
        _ => digits.into(),
    })
}

/// RFC 5280 reason names an operator may give, with their codes.
const REASON_NAMES: &[(&str, u32)] = &[
    ("unspecified", 0),
    ("keyCompromise", 1),
    ("affiliationChanged", 3),
    ("superseded", 4),
    ("cessationOfOperation", 5),
    ("privilegeWithdrawn", 9),
];

/// A reason code or name (case-insensitive).
fn parse_reason(raw: &str) -> Result<u32, Failure> {
    let raw = raw.trim();
    let code = match raw.parse::<u32>() {
        Ok(c) => Some(c),
        Err(_) => REASON_NAMES
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(raw))
            .map(|(_, c)| *c),
    };
    match code {
        Some(c) if crate::ra::revoke::ALLOWED_REASONS.contains(&c) => Ok(c),
        _ => Err(usage(format!(
            "--reason {raw:?} is not accepted; give one of {}",
            REASON_NAMES
                .iter()
                .map(|(n, c)| format!("{c} ({n})"))
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| runtime_error(format!("cannot start the async runtime: {e}")))
}

async fn open(config: &crate::config::Config) -> Result<Store, Failure> {
    Store::open_sqlite(&config.database_path)
        .await
        .map_err(|e| runtime_error(format!("database {}: {e}", config.database_path.display())))
}

/// The one certificate with `serial` (of `authority` when given).
async fn find(store: &Store, serial: &str, authority: Option<&str>) -> Result<CertRow, Failure> {
    let mut found: Vec<CertRow> = store
        .cert_by_serial(serial)
        .await
        .map_err(|e| runtime_error(e.to_string()))?
        .into_iter()
        .filter(|c| authority.is_none_or(|a| c.authority == a))
        .collect();
    match found.len() {
        0 => Err(runtime_error(format!(
            "no certificate with serial {serial}{} was issued by this certeasy",
            authority
                .map(|a| format!(" from authority {a}"))
                .unwrap_or_default()
        ))),
        1 => Ok(found.remove(0)),
        _ => Err(usage(format!(
            "serial {serial} was issued by several authorities ({}); add --authority NAME",
            found
                .iter()
                .map(|c| c.authority.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// `certeasy cert revoke`: records the revocation (and its `revoke` job)
/// and returns the certificate's state as [`show`] prints it.
pub fn revoke(
    file: &Path,
    serial: &str,
    reason: &str,
    authority: Option<&str>,
) -> Result<String, Failure> {
    let config = crate::config::load(file).map_err(|e| usage(e.to_string()))?;
    let serial_hex = normalise_serial(serial).ok_or_else(|| {
        usage(format!(
            "--serial {serial:?} is not a hexadecimal serial number"
        ))
    })?;
    let reason = parse_reason(reason)?;
    let audit = crate::audit::Audit::for_node(&config)
        .map_err(|e| runtime_error(format!("audit log: {e:#}")))?;
    runtime()?.block_on(async {
        let store = open(&config).await?;
        let r = async {
            let cert = find(&store, &serial_hex, authority).await?;
            let fail = |e: crate::store::StoreError| runtime_error(e.to_string());
            let mut tx = store.begin().await.map_err(fail)?;
            let recorded = crate::ra::revoke::record(
                &mut tx, &config, &audit, None, &cert, reason, "operator", None,
            )
            .await
            .map_err(fail)?;
            let Some(recorded) = recorded else {
                tx.rollback().await.map_err(fail)?;
                return Err(runtime_error(format!(
                    "certificate {} (serial {serial_hex}) is already revoked\n{}",
                    cert.id,
                    describe(&store, &cert).await?
                )));
            };
            tx.commit().await.map_err(fail)?;
            crate::ra::revoke::revoked(&cert, reason, recorded.state);
            describe(&store, &cert).await
        }
        .await;
        store.close().await;
        r
    })
}

/// `certeasy cert show`: the certificate's state.
pub fn show(file: &Path, serial: &str) -> Result<String, Failure> {
    let config = crate::config::load(file).map_err(|e| usage(e.to_string()))?;
    let serial_hex = normalise_serial(serial).ok_or_else(|| {
        usage(format!(
            "--serial {serial:?} is not a hexadecimal serial number"
        ))
    })?;
    runtime()?.block_on(async {
        let store = open(&config).await?;
        let r = async {
            let certs = store
                .cert_by_serial(&serial_hex)
                .await
                .map_err(|e| runtime_error(e.to_string()))?;
            if certs.is_empty() {
                return Err(runtime_error(format!(
                    "no certificate with serial {serial_hex} was issued by this certeasy"
                )));
            }
            let mut out = Vec::new();
            for c in &certs {
                out.push(describe(&store, c).await?);
            }
            Ok(out.join("\n\n"))
        }
        .await;
        store.close().await;
        r
    })
}

fn rfc3339(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| ms.to_string())
}

/// The lines `show` prints for one certificate.
async fn describe(store: &Store, c: &CertRow) -> Result<String, Failure> {
    let fail = |e: crate::store::StoreError| runtime_error(e.to_string());
    let mut lines = vec![
        format!("certificate: {}", c.id),
        format!("serial:      {}", c.serial),
        format!("authority:   {}", c.authority),
        format!("names:       {}", c.names.join(", ")),
        format!("not after:   {}", rfc3339(c.not_after)),
    ];
    match store.revocation(&c.id).await.map_err(fail)? {
        None if c.not_after <= now_ms() => lines.push("status:      expired".into()),
        None => lines.push("status:      valid".into()),
        Some(r) => {
            lines.push(format!(
                "status:      revoked at {} (reason {})",
                rfc3339(r.revoked_at),
                r.reason
            ));
            lines.push(format!("at the CA:   {}", r.ca.describe()));
            if let Some(at) = r.ca_at {
                lines.push(format!("CA answered: {}", rfc3339(at)));
            }
            if let Some(d) = &r.detail {
                lines.push(format!("CA said:     {d}"));
            }
            if let Some(j) = store.job_info(JobKind::Revoke, &c.id).await.map_err(fail)? {
                lines.push(format!(
                    "attempts:    {} (next {})",
                    j.attempts,
                    rfc3339(j.next_run)
                ));
                if let Some(e) = &j.last_error {
                    lines.push(format!("last error:  {e}"));
                }
            }
        }
    }
    Ok(lines.join("\n"))
}

/// `certeasy cert renew-early`: how many certificates were marked; none
/// matching is a failure (exit 1).
pub fn renew_early(file: &Path, sel: &Selection) -> Result<u64, Failure> {
    let config = crate::config::load(file).map_err(|e| usage(e.to_string()))?;
    let which =
        match sel.clone() {
            Selection {
                serial: Some(s),
                name: None,
                authority: None,
                policy: None,
            } => RenewEarly::Serial(normalise_serial(&s).ok_or_else(|| {
                usage(format!("--serial {s:?} is not a hexadecimal serial number"))
            })?),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serials_are_normalised_as_the_store_keeps_them() {
        assert_eq!(normalise_serial("0A:1B").as_deref(), Some("0a1b"));
        assert_eq!(normalise_serial("0x000a1b").as_deref(), Some("0a1b"));
        assert_eq!(normalise_serial("a1b").as_deref(), Some("0a1b"));
        assert_eq!(normalise_serial("7f01").as_deref(), Some("7f01"));
        assert_eq!(normalise_serial("0").as_deref(), Some("00"));
        assert_eq!(normalise_serial("xyz"), None);
        assert_eq!(normalise_serial(""), None);
    }

    #[test]
    fn reasons_are_codes_or_names() {
        assert_eq!(parse_reason("1").unwrap(), 1);
        assert_eq!(parse_reason("keycompromise").unwrap(), 1);
        assert_eq!(parse_reason("privilegeWithdrawn").unwrap(), 9);
        assert!(parse_reason("7").is_err());
        assert!(parse_reason("cACompromise").is_err());
    }
}
