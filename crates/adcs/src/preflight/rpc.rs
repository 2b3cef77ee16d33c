//! The RPC path to the CA, step by step: DNS, endpoint mapper, TCP port,
//! bind and one authenticated call (the health probe of
//! [`Enrollment::probe`]), and on request a test submission. Each step
//! depends on the one before.

use std::net::SocketAddr;

use msrpc::{EndpointSelection, IcprError};

use super::{CheckLine, Verdict};
use crate::enrollment::ProbeFailure;
use crate::{AdcsTarget, Enrolled, Enrollment};

/// The RPC checks: DNS, endpoint mapper, port, authentication, and with
/// `submit` a test submission. Each step depends on the one before.
pub async fn check_rpc(name: &str, s: &AdcsTarget, submit: bool) -> Vec<CheckLine> {
    let mut out = Vec::new();
    let mut line = |what: String, verdict: Verdict| {
        out.push(CheckLine {
            authority: name.to_string(),
            what,
            verdict,
        })
    };
    let ca = Enrollment::new(s);
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
    match ca.probe_at(EndpointSelection::Fixed(port)).await {
        Ok(()) => line(
            format!(
                "authenticated as {who} ({:?}, packet {:?}); CA {:?} answers",
                s.method, s.auth_level, s.ca
            ),
            Verdict::Pass,
        ),
        Err(ProbeFailure::Bind(e)) => {
            line(
                format!("bind as {who} ({:?}, {:?}): {e}", s.method, s.auth_level),
                Verdict::Fail(auth_fix(&ca, &e)),
            );
            return out;
        }
        Err(ProbeFailure::Call(e)) => {
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

fn auth_fix(ca: &Enrollment, e: &IcprError) -> String {
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

async fn test_submission(name: &str, ca: &Enrollment, s: &AdcsTarget) -> Vec<CheckLine> {
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
        Ok(Enrolled::Issued { leaf_der, chain_der }) => {
            let serial = pki::serial_hex_of_cert(&leaf_der).unwrap_or_default();
            line(format!("test submission to template {:?} issued (serial {serial}, chain of {} certificates)", s.template, chain_der.len()), Verdict::Pass);
        }
        Ok(Enrolled::Pending { request_id, message }) => line(
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
