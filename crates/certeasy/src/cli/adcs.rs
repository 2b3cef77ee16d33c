//! `certeasy adcs check`, `certeasy adcs request` and `certeasy adcs
//! approve|deny`: diagnose an ADCS authority step by step
//! ([`certeasy_adcs::preflight`]), submit one CSR by hand, and decide a
//! request pending at the CA ([`certeasy_adcs::admin`], MS-CSRA over DCOM). This module reads arguments and the configuration, and
//! prints.

use std::path::Path;
use std::process::ExitCode;

use certeasy_adcs::admin::CaAdmin;
use certeasy_adcs::preflight::{self, Expectations, Verdict};
use certeasy_adcs::{AdcsTarget, Enrolled, Enrollment};

use crate::config::{AuthorityKind, Config, ExpectationsExt};

fn adcs_authorities<'a>(
    config: &'a Config,
    only: Option<&str>,
) -> Result<Vec<(&'a str, &'a AdcsTarget)>, String> {
    let list: Vec<(&str, &AdcsTarget)> = config
        .authorities
        .iter()
        .filter(|a| only.is_none_or(|n| n == a.name))
        .filter_map(|a| match &a.kind {
            AuthorityKind::Adcs(s) => Some((a.name.as_str(), s.as_ref())),
            AuthorityKind::Builtin(_) | AuthorityKind::AdcsCli(_) => None,
        })
        .collect();
    match (list.is_empty(), only) {
        (true, Some(n)) => Err(format!(
            "no authority named {n:?} of type adcs in the configuration"
        )),
        (true, None) => Err("the configuration has no authority of type adcs".to_string()),
        (false, _) => Ok(list),
    }
}

fn runtime() -> Option<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()
}

/// `certeasy adcs check`.
pub fn check(file: &Path, authority: Option<&str>, submit: bool) -> ExitCode {
    let config = match crate::config::load(file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let list = match adcs_authorities(&config, authority) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    let Some(rt) = runtime() else {
        return ExitCode::from(1);
    };
    let mut failed = 0;
    for (name, s) in list {
        let Some(expect) = Expectations::for_authority(&config, name) else {
            continue;
        };
        for l in rt.block_on(preflight::check_authority(name, s, &expect, submit)) {
            if matches!(l.verdict, Verdict::Fail(_)) {
                failed += 1;
            }
            println!("{l}");
        }
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        println!("{failed} check(s) failed");
        ExitCode::from(1)
    }
}

/// `certeasy adcs request`: submits one CSR (PEM or DER), or retrieves a
/// request id; writes the certificate chain when issued.
pub fn request(
    file: &Path,
    authority: &str,
    csr: Option<&Path>,
    retrieve: Option<u32>,
    out: Option<&Path>,
) -> ExitCode {
    let config = match crate::config::load(file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let s = match adcs_authorities(&config, Some(authority)) {
        Ok(mut l) => l.remove(0).1,
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    let ca = Enrollment::new(s);
    let Some(rt) = runtime() else {
        return ExitCode::from(1);
    };
    let result = match (csr, retrieve) {
        (Some(path), None) => {
            let der = match read_csr(path) {
                Ok(d) => d,
                Err(e) => {
                    eprintln!("{}: {e}", path.display());
                    return ExitCode::from(2);
                }
            };
            rt.block_on(ca.submit(&der))
        }
        (None, Some(id)) => rt.block_on(ca.retrieve(id)),
        _ => {
            eprintln!("give exactly one of --csr FILE or --retrieve ID");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(Enrolled::Issued {
            leaf_der,
            chain_der,
        }) => {
            let pem = pki::pem_chain(&leaf_der, &chain_der);
            println!(
                "issued: serial {}",
                pki::serial_hex_of_cert(&leaf_der).unwrap_or_default()
            );
            match out {
                Some(p) => match std::fs::write(p, pem) {
                    Ok(()) => {
                        println!("certificate chain written to {}", p.display());
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("cannot write {}: {e}", p.display());
                        ExitCode::from(1)
                    }
                },
                None => {
                    print!("{pem}");
                    ExitCode::SUCCESS
                }
            }
        }
        Ok(Enrolled::Pending {
            request_id,
            message,
        }) => {
            println!("pending: request id {request_id}: {message}");
            println!("after a CA officer issues it: certeasy adcs request -f {} --authority {authority} --retrieve {request_id}", file.display());
            ExitCode::from(3)
        }
        Err(e) => {
            eprintln!("failed: {e}");
            ExitCode::from(1)
        }
    }
}

/// What an operator decides about a pending request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Issue it (`ResubmitRequest`).
    Approve,
    /// Deny it (`DenyRequest`).
    Deny,
}

/// `certeasy adcs approve|deny`: exit 0 when the CA did it, 1 when the CA
/// refused or could not be reached (the message says what to fix), 2 for a
/// configuration error.
pub fn decide(file: &Path, authority: &str, request_id: u32, d: Decision) -> ExitCode {
    let config = match crate::config::load(file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let s = match adcs_authorities(&config, Some(authority)) {
        Ok(mut l) => l.remove(0).1,
        Err(e) => {
            eprintln!("{}: {e}", file.display());
            return ExitCode::from(2);
        }
    };
    let Some(rt) = runtime() else {
        return ExitCode::from(1);
    };
    let admin = CaAdmin::new(s);
    match d {
        Decision::Approve => match rt.block_on(admin.resubmit(request_id)) {
            Ok(msrpc_disp::ISSUED) => {
                println!("request {request_id} issued by {}; the ACME order completes at its next retrieval", s.ca_name);
                ExitCode::SUCCESS
            }
            Ok(msrpc_disp::UNDER_SUBMISSION) => {
                println!("request {request_id} is still pending at {} (the CA's policy took it under submission again)", s.ca_name);
                ExitCode::from(3)
            }
            Ok(other) => {
                println!("request {request_id}: the CA answered disposition {other} (not issued)");
                ExitCode::from(1)
            }
            Err(e) => {
                eprintln!("approve failed: {e}");
                ExitCode::from(1)
            }
        },
        Decision::Deny => match rt.block_on(admin.deny(request_id)) {
            Ok(()) => {
                println!("request {request_id} denied at {}", s.ca_name);
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("deny failed: {e}");
                ExitCode::from(1)
            }
        },
    }
}

/// `CR_DISP_*` values `ResubmitRequest` answers with.
mod msrpc_disp {
    /// `CR_DISP_ISSUED`.
    pub const ISSUED: u32 = 3;
    /// `CR_DISP_UNDER_SUBMISSION`.
    pub const UNDER_SUBMISSION: u32 = 5;
}

fn read_csr(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    if let Ok(text) = std::str::from_utf8(&bytes) {
        if let Some(start) = text.find("-----BEGIN CERTIFICATE REQUEST-----") {
            let body: String = text[start..]
                .lines()
                .skip(1)
                .take_while(|l| !l.starts_with("-----END"))
                .collect();
            use base64::Engine;
            return base64::engine::general_purpose::STANDARD
                .decode(body.trim())
                .map_err(|e| format!("bad PEM: {e}"));
        }
    }
    Ok(bytes)
}
