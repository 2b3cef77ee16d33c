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
use crate::store::{now_ms, EabKeyRow, Store};

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

/// Why an `eab` subcommand failed: the exit code (2 usage or
/// configuration, 1 runtime) and the message for stderr.
#[derive(Debug)]
pub struct Failure {
    /// Exit code.
    pub code: u8,
    /// What went wrong.
    pub message: String,
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

fn load(file: &Path) -> Result<Config, Failure> {
    crate::config::load(file).map_err(|e| usage(e.to_string()))
}

fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| runtime_error(format!("cannot start the async runtime: {e}")))
}

async fn open(config: &Config) -> Result<Store, Failure> {
    crate::fsutil::create_private_dir(&config.workdir).map_err(|e| {
        runtime_error(format!(
            "cannot create workdir {}: {e}",
            config.workdir.display()
        ))
    })?;
    Store::open(config)
        .await
        .map_err(|e| runtime_error(format!("database {}: {e}", config.database_display())))
}

/// Runs an `eab` subcommand and prints its outcome.
pub fn run(cmd: EabCommand) -> ExitCode {
    let printed = match cmd {
        EabCommand::Add {
            file,
            label,
            policies,
            profiles,
            names,
            expires,
            json,
        } => add(
            &file,
            &KeySpec {
                label,
                policies,
                profiles,
                names,
                expires,
            },
        )
        .map(|k| {
            if json {
                serde_json::json!({"kid": k.kid, "hmac-key": k.hmac_key, "label": k.label})
                    .to_string()
            } else {
                format!("kid: {}\nhmac-key: {}", k.kid, k.hmac_key)
            }
        }),
        EabCommand::List { file, json } => list(&file).map(|keys| render_list(&keys, json)),
        EabCommand::Revoke { file, kid } => revoke(&file, &kid).map(|bound| match bound {
            Some(a) => format!("key {kid} revoked; account {a} deactivated"),
            None => format!("key {kid} revoked (it had not bound an account)"),
        }),
    };
    match printed {
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

/// What `eab add` is asked to create.
#[derive(Debug, Clone, Default)]
pub struct KeySpec {
    /// Label.
    pub label: String,
    /// Allowed policies (empty: any).
    pub policies: Vec<String>,
    /// Allowed profiles (empty: any).
    pub profiles: Vec<String>,
    /// Name scope rules (empty: any).
    pub names: Vec<String>,
    /// Binding deadline, as a duration from now (`30d`).
    pub expires: Option<String>,
}

/// A key just created: the only time its HMAC key is shown.
#[derive(Debug, Clone)]
pub struct NewKey {
    /// Key id.
    pub kid: String,
    /// HMAC key, base64url without padding.
    pub hmac_key: String,
    /// Label.
    pub label: String,
}

/// `certeasy eab add`: checks the spec against the configuration, creates
/// the installation's sealing key if needed, stores the sealed key.
pub fn add(file: &Path, spec: &KeySpec) -> Result<NewKey, Failure> {
    let config = load(file)?;
    let KeySpec {
        label,
        policies,
        profiles,
        names,
        expires,
    } = spec.clone();
    if label.trim().is_empty() {
        return Err(usage("--label must not be empty"));
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
    if !names.is_empty() {
        if let Err(e) = pki::Scope::new(&names, &[]) {
            return Err(usage(format!("--names: {e}")));
        }
    }
    let now = now_ms();
    let expires_at = match &expires {
        None => None,
        Some(raw) => match crate::config::duration::parse_duration(raw) {
            Ok(d) if !d.is_zero() => {
                Some(now + i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 2))
            }
            Ok(_) => return Err(usage("--expires must be longer than zero")),
            Err(e) => return Err(usage(format!("--expires {raw:?}: {e}"))),
        },
    };
    let master = crate::ra::eab::load_or_create_key(&config.workdir)
        .map_err(|e| runtime_error(format!("{e:#}")))?;
    // 32 bytes of HMAC key; 12 random bytes of key id, in hex behind a
    // prefix so that it never reads as a command-line option.
    let mut random = [0u8; 44];
    SystemRandom::new()
        .fill(&mut random)
        .map_err(|_| runtime_error("the system random number generator failed"))?;
    let (hmac_key, kid_bytes) = random.split_at(32);
    let kid = format!("kid-{}", hex::encode(kid_bytes));
    let sealed_key = crate::ra::eab::seal(&master, &kid, hmac_key)
        .map_err(|e| runtime_error(format!("{e:#}")))?;
    let row = EabKeyRow {
        kid: kid.clone(),
        label: label.clone(),
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
    let audit = crate::audit::Audit::for_node(&config)
        .map_err(|e| runtime_error(format!("audit log: {e:#}")))?;
    runtime()?.block_on(async {
        let store = open(&config).await?;
        let r = store.insert_eab_key(&row).await;
        if r.is_ok() {
            let event = crate::audit::Event::new("eab.create")
                .detail("kid", row.kid.as_str())
                .detail("label", row.label.as_str())
                .detail("policies", row.policies.clone())
                .detail("profiles", row.profiles.clone())
                .detail("names", row.names.clone())
                .detail("expires_at", row.expires_at);
            audit.record_alone(&store, event).await;
        }
        store.close().await;
        r.map_err(|e| runtime_error(format!("cannot store the key: {e}")))
    })?;
    Ok(NewKey {
        kid,
        hmac_key: URL_SAFE_NO_PAD.encode(hmac_key),
        label,
    })
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

/// `certeasy eab list`: every key (their HMAC keys stay sealed).
pub fn list(file: &Path) -> Result<Vec<EabKeyRow>, Failure> {
    let config = load(file)?;
    runtime()?.block_on(async {
        let store = open(&config).await?;
        let r = store.eab_keys().await;
        store.close().await;
        r.map_err(|e| runtime_error(format!("cannot read the keys: {e}")))
    })
}

/// The `eab list` output: a tab-separated table, or JSON.
pub fn render_list(keys: &[EabKeyRow], json: bool) -> String {
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
        return serde_json::Value::Array(list).to_string();
    }
    let mut out = String::from("KID\tLABEL\tSTATUS\tACCOUNT\tPOLICIES\tPROFILES\tNAMES\tEXPIRES");
    for k in keys {
        out.push_str(&format!(
            "\n{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            k.kid,
            k.label,
            status(k, now),
            k.account_id.as_deref().unwrap_or("-"),
            any(&k.policies),
            any(&k.profiles),
            any(&k.names),
            time(k.expires_at)
        ));
    }
    out
}

/// `certeasy eab revoke`: revokes the key and deactivates the account it
/// bound (cancelling its pending work) in one transaction; the account, if
/// any.
pub fn revoke(file: &Path, kid: &str) -> Result<Option<String>, Failure> {
    let config = load(file)?;
    let audit = crate::audit::Audit::for_node(&config)
        .map_err(|e| runtime_error(format!("audit log: {e:#}")))?;
    runtime()?.block_on(async {
        let store = open(&config).await?;
        let r = revoke_in(&store, &audit, kid).await;
        store.close().await;
        r
    })
}

async fn revoke_in(
    store: &Store,
    audit: &crate::audit::Audit,
    kid: &str,
) -> Result<Option<String>, Failure> {
    let fail = |e: crate::store::StoreError| runtime_error(format!("cannot revoke: {e}"));
    let problem = acme_wire::Problem::new(
        acme_wire::ProblemType::Unauthorized,
        "the external account binding key of this account was revoked; its pending orders and authorizations were cancelled",
    )
    .to_json()
    .to_string();
    let mut tx = store.begin().await.map_err(fail)?;
    let Some(bound) = Store::revoke_eab_key(&mut tx, kid, now_ms())
        .await
        .map_err(fail)?
    else {
        tx.rollback().await.map_err(fail)?;
        let exists = store.eab_key(kid).await.map_err(fail)?.is_some();
        return Err(runtime_error(if exists {
            format!("key {kid} is already revoked")
        } else {
            format!("no key {kid}")
        }));
    };
    if let Some(account) = &bound {
        if Store::deactivate_account_tx(&mut tx, account)
            .await
            .map_err(fail)?
        {
            Store::cancel_account_work(&mut tx, account, &problem)
                .await
                .map_err(fail)?;
        }
    }
    let mut event = crate::audit::Event::new("eab.revoke").detail("kid", kid);
    if let Some(account) = &bound {
        event = event.account(account).detail("account_deactivated", true);
    }
    audit.record(&mut tx, event).await.map_err(fail)?;
    tx.commit().await.map_err(fail)?;
    Ok(bound)
}
