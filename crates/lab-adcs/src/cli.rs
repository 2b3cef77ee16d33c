//! Command line: `serve`, `approve`, `deny`, `list`, `status`, `request`.
//!
//! Exit codes: 0 success (for `request`: a certificate was written);
//! 1 error (connection, authentication, fault…); 2 `request` left the
//! request pending (clap also uses 2 for usage errors: scripts should read
//! the printed `Disposition:` line); 3 `request` was denied.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use msrpc::auth::{AuthLevel, AuthMethod, ClientAuth, Credentials};
use msrpc::client::{ClientOptions, Timeouts};
use msrpc::icpr::Disposition;
use msrpc::{EndpointSelection, IcprClient, IcprError};

use crate::ca::{der_to_pem, pem_to_der};
use crate::config::Config;
use crate::service::{start, Lab, DENIED_BY_MANAGER};

/// lab-adcs — LAB-ONLY ADCS look-alike (endpoint mapper + MS-ICPR over DCE/RPC, NTLM).
#[derive(Debug, Parser)]
#[command(name = "lab-adcs", version)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the lab CA (endpoint mapper + ICertPassage).
    Serve {
        /// Configuration file.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Override listen.epm-port (0 = any free port).
        #[arg(long)]
        epm_port: Option<u16>,
        /// Override listen.icpr-port (0 = any free port).
        #[arg(long)]
        icpr_port: Option<u16>,
        /// Override listen.address.
        #[arg(long)]
        address: Option<std::net::Ipv4Addr>,
        /// Override listen.dcom-port (0 = any free port).
        #[arg(long)]
        dcom_port: Option<u16>,
    },
    /// Print the status of a request or certificate: `issued`, `pending`,
    /// `denied` or `revoked <reason>`.
    Status {
        /// Configuration file (default ./lab-adcs.yml).
        #[arg(short = 'f', long = "file", default_value = "lab-adcs.yml")]
        file: PathBuf,
        /// Request id.
        #[arg(required_unless_present = "serial", conflicts_with = "serial")]
        id: Option<u32>,
        /// Certificate serial number (hexadecimal; colons allowed).
        #[arg(long)]
        serial: Option<String>,
    },
    /// Issue a pending request.
    Approve {
        /// Configuration file.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Request id.
        id: u32,
    },
    /// Deny a pending request.
    Deny {
        /// Configuration file.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Request id.
        id: u32,
        /// HRESULT to record (hex, default 0x80070005 E_ACCESSDENIED).
        #[arg(long, value_parser = parse_hex)]
        hresult: Option<u32>,
    },
    /// List requests.
    List {
        /// Configuration file.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
    },
    /// Client: submit a CSR to (or retrieve from) any ICertPassage server.
    Request(Box<RequestArgs>),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LevelArg {
    Privacy,
    Integrity,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum MethodArg {
    Ntlm,
    Negotiate,
    Kerberos,
}

#[derive(Debug, Args)]
struct RequestArgs {
    /// CA host (name or address).
    #[arg(long)]
    host: String,
    /// Endpoint mapper port.
    #[arg(long, default_value_t = 135, conflicts_with = "port")]
    epm_port: u16,
    /// Fixed ICertPassage port (skips the endpoint mapper).
    #[arg(long)]
    port: Option<u16>,
    /// Domain.
    #[arg(long)]
    domain: String,
    /// User name.
    #[arg(long)]
    user: String,
    /// File holding the password (first line).
    #[arg(long)]
    password_file: PathBuf,
    /// CA name (`CA Common Name`; a `HOST\` prefix is accepted).
    #[arg(long)]
    ca: String,
    /// Certificate template (for --csr).
    #[arg(long, required_unless_present = "retrieve")]
    template: Option<String>,
    /// CSR file (PEM or DER).
    #[arg(
        long,
        conflicts_with = "retrieve",
        required_unless_present = "retrieve"
    )]
    csr: Option<PathBuf>,
    /// Retrieve request ID instead of submitting.
    #[arg(long)]
    retrieve: Option<u32>,
    /// Authentication level.
    #[arg(long, value_enum, default_value = "privacy")]
    auth_level: LevelArg,
    /// KDC for Kerberos (e.g. tcp://dc.corp.example:88).
    #[arg(long)]
    kdc: Option<String>,
    /// Service principal of the CA for Kerberos (e.g. HOST/ca.corp.example).
    #[arg(long)]
    spn: Option<String>,
    /// Authentication method (ntlm: auth type 10; negotiate/kerberos: auth type 9).
    #[arg(long, value_enum, default_value = "ntlm")]
    auth: MethodArg,
    /// Where to write the certificate (PEM).
    #[arg(long)]
    out: PathBuf,
    /// Per-call timeout in seconds.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
}

fn parse_hex(s: &str) -> Result<u32, String> {
    let t = s.trim_start_matches("0x").trim_start_matches("0X");
    u32::from_str_radix(t, 16).map_err(|e| format!("{s:?}: {e}"))
}

/// Entry point.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LAB_ADCS_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("lab-adcs: cannot start the runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match rt.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("lab-adcs: {e}");
            ExitCode::from(1)
        }
    }
}

fn open(file: &std::path::Path) -> Result<Lab, String> {
    let cfg = Config::load(file).map_err(|e| e.to_string())?;
    Lab::open(cfg).map_err(|e| e.to_string())
}

async fn run(cli: Cli) -> Result<ExitCode, String> {
    match cli.command {
        Command::Serve {
            file,
            epm_port,
            icpr_port,
            address,
            dcom_port,
        } => {
            let mut cfg = Config::load(&file).map_err(|e| e.to_string())?;
            if let Some(p) = dcom_port {
                cfg.listen.dcom_port = p;
            }
            let lab = Arc::new(Lab::open(cfg).map_err(|e| e.to_string())?);
            let l = &lab.config().listen;
            let address = address.unwrap_or(l.address);
            let running = start(
                lab.clone(),
                address,
                epm_port.unwrap_or(l.epm_port),
                icpr_port.unwrap_or(l.icpr_port),
            )
            .await
            .map_err(|e| {
                format!("cannot listen on {address}: {e} (port 135 needs root or --epm-port)")
            })?;
            println!(
                "lab-adcs ready: ca={} epm={} icpr={} dcom={} ca-cert={} state={}",
                lab.config().ca.name,
                running.epm_addr,
                running.icpr_addr,
                running.dcom_addr,
                lab.ca().cert_path().display(),
                lab.state().path().display()
            );
            let _ = std::io::stdout().flush();
            tokio::select! {
                r = running.wait() => r.map_err(|e| e.to_string())?,
                _ = tokio::signal::ctrl_c() => {}
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Approve { file, id } => {
            let lab = open(&file)?;
            let rec = lab.approve(id).map_err(|e| e.to_string())?;
            println!("request {} issued", rec.id);
            Ok(ExitCode::SUCCESS)
        }
        Command::Deny { file, id, hresult } => {
            let lab = open(&file)?;
            let rec = lab
                .deny(id, hresult.unwrap_or(DENIED_BY_MANAGER))
                .map_err(|e| e.to_string())?;
            println!(
                "request {} denied (0x{:08x})",
                rec.id,
                rec.hresult.unwrap_or(0)
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::List { file } => {
            let lab = open(&file)?;
            let s = lab.state().read().map_err(|e| e.to_string())?;
            for r in s.requests.values() {
                println!(
                    "{}\t{:?}\t{}\t{}\t{}",
                    r.id, r.status, r.template, r.requester, r.message
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Status { file, id, serial } => {
            let lab = open(&file)?;
            let rec = match (id, serial) {
                (Some(id), _) => lab
                    .state()
                    .view(|s| s.requests.get(&id).cloned())
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("no request {id}"))?,
                (None, Some(serial)) => lab
                    .find_by_serial(&serial)
                    .map_err(|e| e.to_string())?
                    .ok_or_else(|| format!("no certificate with serial number {serial}"))?,
                (None, None) => return Err("a request id or --serial is required".into()),
            };
            println!("{}", Lab::status_line(&rec));
            Ok(ExitCode::SUCCESS)
        }
        Command::Request(a) => request(*a).await,
    }
}

async fn request(a: RequestArgs) -> Result<ExitCode, String> {
    let password = std::fs::read_to_string(&a.password_file)
        .map_err(|e| format!("{}: {e}", a.password_file.display()))?
        .lines()
        .next()
        .unwrap_or("")
        .to_owned();
    let auth = ClientAuth {
        method: match a.auth {
            MethodArg::Ntlm => AuthMethod::Ntlm,
            MethodArg::Negotiate => AuthMethod::Negotiate,
            MethodArg::Kerberos => AuthMethod::Kerberos,
        },
        level: match a.auth_level {
            LevelArg::Privacy => AuthLevel::Privacy,
            LevelArg::Integrity => AuthLevel::Integrity,
        },
        credentials: Credentials {
            domain: a.domain.clone(),
            username: a.user.clone(),
            password,
        },
        spn: a.spn.clone().or_else(|| Some(format!("host/{}", a.host))),
        kdc: a.kdc.clone(),
        keytab: None,
    };
    let opts = ClientOptions {
        timeouts: Timeouts {
            call: Duration::from_secs(a.timeout),
            ..Timeouts::default()
        },
        ..ClientOptions::default()
    };
    let endpoint = match a.port {
        Some(p) => EndpointSelection::Fixed(p),
        None => EndpointSelection::EndpointMapper { port: a.epm_port },
    };
    let mut client = IcprClient::connect(&a.host, endpoint, &auth, &opts)
        .await
        .map_err(|e| e.to_string())?;
    let reply = match (a.retrieve, &a.csr) {
        (Some(id), _) => client.retrieve(&a.ca, id).await,
        (None, Some(csr)) => {
            let raw = std::fs::read(csr).map_err(|e| format!("{}: {e}", csr.display()))?;
            let der = match std::str::from_utf8(&raw) {
                Ok(t) if t.contains("-----BEGIN") => {
                    pem_to_der(t).ok_or_else(|| format!("{}: bad PEM", csr.display()))?
                }
                _ => raw,
            };
            client
                .submit(&a.ca, a.template.as_deref().unwrap_or(""), &der)
                .await
        }
        (None, None) => return Err("either --csr or --retrieve is required".into()),
    };
    match reply {
        Ok(r) => {
            println!("Request ID: {}", r.request_id);
            println!("Message: {}", r.message);
            match (r.disposition, r.cert_der) {
                (Disposition::Issued, Some(der)) => {
                    std::fs::write(&a.out, der_to_pem("CERTIFICATE", &der))
                        .map_err(|e| format!("{}: {e}", a.out.display()))?;
                    println!("Disposition: issued");
                    println!("Certificate written to {}", a.out.display());
                    Ok(ExitCode::SUCCESS)
                }
                _ => {
                    println!("Disposition: pending (taken under submission); retrieve later with --retrieve {}", r.request_id);
                    Ok(ExitCode::from(2))
                }
            }
        }
        Err(IcprError::Denied {
            request_id,
            hresult,
            symbol,
            explanation,
            ca_message,
        }) => {
            println!("Request ID: {request_id}");
            println!("Message: {ca_message}");
            println!("Disposition: denied 0x{hresult:08x} {symbol}: {explanation}");
            Ok(ExitCode::from(3))
        }
        Err(e) => Err(e.to_string()),
    }
}
