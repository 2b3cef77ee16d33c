//! `certeasy adcs check` and `certeasy adcs request`: diagnose an ADCS
//! authority step by step, and submit one CSR by hand.

use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

use msrpc::{EndpointSelection, IcprClient, IcprError};

use super::adcs_ldap::{check_ldap, Expectations};
use crate::ca::AdcsCa;
use crate::config::{AdcsSettings, AuthorityKind, Config};

/// Outcome of one check line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Passed.
    Pass,
    /// Failed, with the fix.
    Fail(String),
    /// Not checked, with the reason.
    Skipped,
}

/// One line of `adcs check`.
#[derive(Debug, Clone)]
pub struct CheckLine {
    /// Authority name.
    pub authority: String,
    /// What was checked, and what was found.
    pub what: String,
    /// Verdict.
    pub verdict: Verdict,
}

impl std::fmt::Display for CheckLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.verdict {
            Verdict::Pass => write!(f, "✓ [{}] {}", self.authority, self.what),
            Verdict::Fail(fix) => write!(f, "✗ [{}] {} — fix: {fix}", self.authority, self.what),
            Verdict::Skipped => write!(f, "– [{}] {}", self.authority, self.what),
        }
    }
}

fn adcs_authorities<'a>(
    config: &'a Config,
    only: Option<&str>,
) -> Result<Vec<(&'a str, &'a AdcsSettings)>, String> {
    let list: Vec<(&str, &AdcsSettings)> = config
        .authorities
        .iter()
        .filter(|a| only.is_none_or(|n| n == a.name))
        .filter_map(|a| match &a.kind {
            AuthorityKind::Adcs(s) => Some((a.name.as_str(), s.as_ref())),
            AuthorityKind::Fake(_) | AuthorityKind::AdcsCli(_) => None,
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

/// Runs every check of one ADCS authority: the RPC path to the CA, then
/// (independently, when `ldap` is configured) the template, publication and
/// rights checks over LDAP.
pub async fn check_authority(
    name: &str,
    s: &AdcsSettings,
    expect: &Expectations,
    submit: bool,
) -> Vec<CheckLine> {
    let mut out = check_rpc(name, s, submit).await;
    out.extend(check_ldap(name, s, expect).await);
    out
}

/// The RPC checks: DNS, endpoint mapper, port, authentication, and with
/// `submit` a test submission. Each step depends on the one before.
async fn check_rpc(name: &str, s: &AdcsSettings, submit: bool) -> Vec<CheckLine> {
    let mut out = Vec::new();
    let mut line = |what: String, verdict: Verdict| {
        out.push(CheckLine {
            authority: name.to_string(),
            what,
            verdict,
        })
    };
    let ca = AdcsCa::new(s);
    let first_port = s.port.unwrap_or(s.endpoint_mapper_port);
    let addr: SocketAddr = match tokio::net::lookup_host((s.host.as_str(), first_port))
        .await
        .ok()
        .and_then(|mut a| a.next())
    {
        Some(a) => {
            line(
                format!("host {} resolves to {}", s.host, a.ip()),
                Verdict::Pass,
            );
            a
        }
        None => {
            line(
                format!("host {} does not resolve", s.host),
                Verdict::Fail(
                    "check the HOST part of ca-name (or host:) and this machine's DNS".into(),
                ),
            );
            return out;
        }
    };
    let port = match s.port {
        Some(p) => {
            line(
                format!("fixed ICertPassage port {p} configured (endpoint mapper not used)"),
                Verdict::Pass,
            );
            p
        }
        None => match msrpc::client::ept_map(addr, msrpc::icpr::ICPR_INTERFACE, ca.options()).await
        {
            Ok(p) => {
                line(
                    format!("endpoint mapper {addr} maps ICertPassage to TCP port {p}"),
                    Verdict::Pass,
                );
                p
            }
            Err(e) => {
                line(
                    format!("endpoint mapper {addr}: {e}"),
                    Verdict::Fail("allow TCP 135 from this host to the CA and make sure Certificate Services runs; or set port: to a fixed ICertPassage port".into()),
                );
                return out;
            }
        },
    };
    let target = SocketAddr::new(addr.ip(), port);
    match tokio::time::timeout(s.request_timeout, tokio::net::TcpStream::connect(target)).await {
        Ok(Ok(_)) => line(format!("TCP {target} reachable"), Verdict::Pass),
        Ok(Err(e)) => {
            line(format!("TCP {target}: {e}"), Verdict::Fail("allow the CA's dynamic RPC ports (49152-65535 by default) or pin ICertPassage to a fixed port".into()));
            return out;
        }
        Err(_) => {
            line(
                format!("TCP {target}: no answer within {:?}", s.request_timeout),
                Verdict::Fail("a firewall drops the RPC port; allow it from this host".into()),
            );
            return out;
        }
    }
    let who = if s.domain.is_empty() {
        s.username.clone()
    } else {
        format!("{}\\{}", s.domain, s.username)
    };
    let mut client = match IcprClient::connect(
        &s.host,
        EndpointSelection::Fixed(port),
        ca.auth(),
        ca.options(),
    )
    .await
    {
        Ok(c) => c,
        Err(e) => {
            line(
                format!("bind as {who} ({:?}, {:?}): {e}", s.method, s.auth_level),
                Verdict::Fail(auth_fix(&ca, &e)),
            );
            return out;
        }
    };
    match client.retrieve(&s.ca, crate::ca::PROBE_REQUEST_ID).await {
        Err(e) if crate::ca::is_access_denied(&e) => {
            line(
                format!("call as {who}: {e}"),
                Verdict::Fail(auth_fix(&ca, &e)),
            );
            return out;
        }
        Ok(_) | Err(IcprError::Denied { .. }) => line(
            format!(
                "authenticated as {who} ({:?}, packet {:?}); CA {:?} answers",
                s.method, s.auth_level, s.ca
            ),
            Verdict::Pass,
        ),
        Err(e) => {
            line(
                format!("call as {who}: {e}"),
                Verdict::Fail(auth_fix(&ca, &e)),
            );
            return out;
        }
    }
    if submit {
        out.extend(test_submission(name, &ca, s).await);
    } else {
        out.push(CheckLine {
            authority: name.to_string(),
            what: format!(
                "test submission to template {:?} not run (add --submit)",
                s.template
            ),
            verdict: Verdict::Skipped,
        });
    }
    out
}

fn auth_fix(ca: &AdcsCa, e: &IcprError) -> String {
    if let Some(hint) = ca.privacy_hint(e) {
        return hint.to_owned();
    }
    match e {
        IcprError::Authentication(_) => "check auth.domain, auth.username and the password (password-file/password-env); the account must be enabled and not locked".into(),
        IcprError::Fault { .. } => "check ca-name (the CA common name after the backslash) and that the account has Enroll rights on the CA".into(),
        IcprError::Timeout(_) => "the CA did not answer in time; check the network path and request-timeout".into(),
        _ => "see the message; check reachability and the CA's event log".into(),
    }
}

async fn test_submission(name: &str, ca: &AdcsCa, s: &AdcsSettings) -> Vec<CheckLine> {
    let mut out = Vec::new();
    let mut line = |what: String, verdict: Verdict| {
        out.push(CheckLine {
            authority: name.to_string(),
            what,
            verdict,
        })
    };
    let csr = match throwaway_csr() {
        Ok(c) => c,
        Err(e) => {
            line(
                format!("cannot build a test CSR: {e}"),
                Verdict::Fail("report this as a bug".into()),
            );
            return out;
        }
    };
    match ca.submit(&csr).await {
        Ok(crate::ca::Signed::Issued { leaf_der, chain_der }) => {
            let serial = pki::serial_hex_of_cert(&leaf_der).unwrap_or_default();
            line(format!("test submission to template {:?} issued (serial {serial}, chain of {} certificates)", s.template, chain_der.len()), Verdict::Pass);
        }
        Ok(crate::ca::Signed::Pending { request_id, message }) => line(
            format!("test submission to template {:?} is pending (request {request_id}: {message}); ACME orders will wait up to default-timeout for a CA officer", s.template),
            Verdict::Pass,
        ),
        Err(e) => line(format!("test submission to template {:?}: {e}", s.template), Verdict::Fail("publish the template on this CA and give the service account Enroll on it".into())),
    }
    out
}

/// A P-256 CSR for a name no CA would mistake for a real one.
fn throwaway_csr() -> Result<Vec<u8>, rcgen::Error> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)?;
    let mut params =
        rcgen::CertificateParams::new(vec!["certeasy-adcs-check.invalid".to_string()])?;
    params.distinguished_name = rcgen::DistinguishedName::new();
    Ok(params.serialize_request(&key)?.der().to_vec())
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
        for l in rt.block_on(check_authority(name, s, &expect, submit)) {
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
    let ca = AdcsCa::new(s);
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
        Ok(crate::ca::Signed::Issued {
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
        Ok(crate::ca::Signed::Pending {
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
