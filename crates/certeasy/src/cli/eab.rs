//! `certeasy eab add|list|revoke`: external account binding keys
//! (RFC 8555 §7.3.4). The HMAC key is printed once, at creation, and
//! stored sealed (see [`crate::ra::eab`]).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use clap::Subcommand;
use ring::rand::{SecureRandom, SystemRandom};

use crate::config::Config;
use crate::store::{new_id, now_ms, EabKeyRow, Store};

/// `certeasy eab …`.
#[derive(Debug, Subcommand)]
pub enum EabCommand {
    /// Create a key: prints `kid: …` and `hmac-key: …` (shown only now).
    Add {
        /// Configuration file.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Who or what the key is for.
        #[arg(long)]
        label: String,
        /// Issuance policy the account may use (repeat; default: any).
        #[arg(long = "policy")]
        policies: Vec<String>,
        /// ACME profile the account may use (repeat; default: any). The
        /// first one is used when an order names none.
        #[arg(long = "profile")]
        profiles: Vec<String>,
        /// Name scope rule (`.zone/N`, `*.zone`, `*..zone/N`, `=name`;
        /// repeat; default: any name the policies allow).
        #[arg(long = "names")]
        names: Vec<String>,
        /// The key can no longer bind after this long (e.g. 30d, 720h).
        #[arg(long)]
        expires: Option<String>,
        /// Print JSON instead of two lines.
        #[arg(long)]
        json: bool,
    },
    /// List keys (never their HMAC keys).
    List {
        /// Configuration file.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key; the account it bound is deactivated (its pending
    /// orders are cancelled; its certificates stay valid).
    Revoke {
        /// Configuration file.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Key id.
        kid: String,
    },
}

fn load(file: &Path) -> Result<Config, ExitCode> {
    crate::config::load(file).map_err(|e| {
        eprintln!("{e}");
        ExitCode::from(2)
    })
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("cannot start the async runtime: {e}");
            ExitCode::from(1)
        })
}

async fn open(config: &Config) -> Result<Store, ExitCode> {
    crate::fsutil::create_private_dir(&config.workdir).map_err(|e| {
        eprintln!("cannot create workdir {}: {e}", config.workdir.display());
        ExitCode::from(1)
    })?;
    Store::open_sqlite(&config.database_path)
        .await
        .map_err(|e| {
            eprintln!("database {}: {e}", config.database_path.display());
            ExitCode::from(1)
        })
}

/// Runs an `eab` subcommand.
pub fn run(cmd: EabCommand) -> ExitCode {
    match cmd {
        EabCommand::Add {
            file,
            label,
            policies,
            profiles,
            names,
            expires,
            json,
        } => add(&file, label, policies, profiles, names, expires, json),
        EabCommand::List { file, json } => list(&file, json),
        EabCommand::Revoke { file, kid } => revoke(&file, &kid),
    }
    .unwrap_or_else(|code| code)
}

fn usage(msg: String) -> ExitCode {
    eprintln!("{msg}");
    ExitCode::from(2)
}

fn add(
    file: &Path,
    label: String,
    policies: Vec<String>,
    profiles: Vec<String>,
    names: Vec<String>,
    expires: Option<String>,
    json: bool,
) -> Result<ExitCode, ExitCode> {
    let config = load(file)?;
    if label.trim().is_empty() {
        return Err(usage("--label must not be empty".into()));
    }
    for p in &policies {
        if !config.policies.iter().any(|x| &x.name == p) {
            let known: Vec<&str> = config.policies.iter().map(|x| x.name.as_str()).collect();
            return Err(usage(format!(
                "--policy {p:?}: no such issuance policy in {}; known: {}",
                file.display(),
                known.join(", ")
            )));
        }
    }
    for p in &profiles {
        let Some(profile) = config.profile(p) else {
            let known: Vec<&str> = config.profiles.iter().map(|x| x.name.as_str()).collect();
            return Err(usage(format!(
                "--profile {p:?}: no such ACME profile in {}; known: {}",
                file.display(),
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        };
        if !policies.is_empty() && !policies.contains(&profile.policy) {
            return Err(usage(format!(
                "--profile {p:?} maps to policy {:?}, which is not among the key's --policy values",
                profile.policy
            )));
        }
    }
    if let Err(e) = pki::Scope::new(&names, &[]) {
        return Err(usage(format!("--names: {e}")));
    }
    let now = now_ms();
    let expires_at = match &expires {
        None => None,
        Some(raw) => match crate::config::duration::parse_duration(raw) {
            Ok(d) if !d.is_zero() => {
                Some(now + i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2))
            }
            Ok(_) => return Err(usage("--expires must be longer than zero".into())),
            Err(e) => return Err(usage(format!("--expires {raw:?}: {e}"))),
        },
    };
    let master = crate::ra::eab::load_or_create_key(&config.workdir).map_err(|e| {
        eprintln!("{e:#}");
        ExitCode::from(1)
    })?;
    let mut hmac_key = [0u8; 32];
    SystemRandom::new().fill(&mut hmac_key).map_err(|_| {
        eprintln!("the system random number generator failed");
        ExitCode::from(1)
    })?;
    let kid = new_id();
    let sealed_key = crate::ra::eab::seal(&master, &kid, &hmac_key).map_err(|e| {
        eprintln!("{e:#}");
        ExitCode::from(1)
    })?;
    let row = EabKeyRow {
        kid: kid.clone(),
        label,
        sealed_key,
        policies,
        profiles,
        names,
        expires_at,
        created_at: now,
        revoked_at: None,
        account_id: None,
        bound_at: None,
    };
    let rt = runtime()?;
    rt.block_on(async {
        let store = open(&config).await?;
        let r = store.insert_eab_key(&row).await;
        store.close().await;
        r.map_err(|e| {
            eprintln!("cannot store the key: {e}");
            ExitCode::from(1)
        })
    })?;
    // audit: eab.create
    let hmac = URL_SAFE_NO_PAD.encode(hmac_key);
    if json {
        println!(
            "{}",
            serde_json::json!({"kid": kid, "hmac-key": hmac, "label": row.label})
        );
    } else {
        println!("kid: {kid}");
        println!("hmac-key: {hmac}");
    }
    Ok(ExitCode::SUCCESS)
}

fn status(k: &EabKeyRow, now: i64) -> &'static str {
    if k.revoked_at.is_some() {
        "revoked"
    } else if k.account_id.is_some() {
        "bound"
    } else if k.expires_at.is_some_and(|e| e <= now) {
        "expired"
    } else {
        "unused"
    }
}

fn time(ms: Option<i64>) -> String {
    ms.and_then(|ms| time::OffsetDateTime::from_unix_timestamp(ms / 1000).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "-".into())
}

fn list(file: &Path, json: bool) -> Result<ExitCode, ExitCode> {
    let config = load(file)?;
    let rt = runtime()?;
    let keys = rt.block_on(async {
        let store = open(&config).await?;
        let r = store.eab_keys().await;
        store.close().await;
        r.map_err(|e| {
            eprintln!("cannot read the keys: {e}");
            ExitCode::from(1)
        })
    })?;
    let now = now_ms();
    let any = |v: &[String]| {
        if v.is_empty() {
            "any".to_string()
        } else {
            v.join(",")
        }
    };
    if json {
        let list: Vec<serde_json::Value> = keys
            .iter()
            .map(|k| {
                serde_json::json!({
                    "kid": k.kid, "label": k.label, "status": status(k, now),
                    "account": k.account_id, "policies": k.policies, "profiles": k.profiles,
                    "names": k.names, "created": time(Some(k.created_at)),
                    "expires": k.expires_at.map(|e| time(Some(e))),
                    "bound": k.bound_at.map(|e| time(Some(e))),
                    "revoked": k.revoked_at.map(|e| time(Some(e))),
                })
            })
            .collect();
        println!("{}", serde_json::Value::Array(list));
        return Ok(ExitCode::SUCCESS);
    }
    println!("KID\tLABEL\tSTATUS\tACCOUNT\tPOLICIES\tPROFILES\tNAMES\tEXPIRES");
    for k in &keys {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            k.kid,
            k.label,
            status(k, now),
            k.account_id.as_deref().unwrap_or("-"),
            any(&k.policies),
            any(&k.profiles),
            any(&k.names),
            time(k.expires_at)
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn revoke(file: &Path, kid: &str) -> Result<ExitCode, ExitCode> {
    let config = load(file)?;
    let rt = runtime()?;
    rt.block_on(async {
        let store = open(&config).await?;
        let fail = |e: crate::store::StoreError| {
            eprintln!("cannot revoke: {e}");
            ExitCode::from(1)
        };
        let problem = acme_wire::Problem::new(
            acme_wire::ProblemType::Unauthorized,
            "the external account binding key of this account was revoked; its pending orders and authorizations were cancelled",
        )
        .to_json()
        .to_string();
        let mut tx = store.begin().await.map_err(fail)?;
        let Some(bound) = Store::revoke_eab_key(&mut tx, kid, now_ms()).await.map_err(fail)? else {
            tx.rollback().await.map_err(fail)?;
            let exists = store.eab_key(kid).await.map_err(fail)?.is_some();
            store.close().await;
            eprintln!(
                "{}",
                if exists {
                    format!("key {kid} is already revoked")
                } else {
                    format!("no key {kid}")
                }
            );
            return Err(ExitCode::from(1));
        };
        if let Some(account) = &bound {
            if Store::deactivate_account_tx(&mut tx, account).await.map_err(fail)? {
                Store::cancel_account_work(&mut tx, account, &problem)
                    .await
                    .map_err(fail)?;
            }
        }
        tx.commit().await.map_err(fail)?;
        store.close().await;
        // audit: eab.revoke
        match bound {
            Some(a) => println!("key {kid} revoked; account {a} deactivated"),
            None => println!("key {kid} revoked (it had not bound an account)"),
        }
        Ok(ExitCode::SUCCESS)
    })
}
