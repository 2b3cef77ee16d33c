//! The DCOM half of the preflight: enrollment over `ICertRequestD2` (when
//! the target may use it), the CA's published templates through
//! `ICertAdminD2::GetCAProperty`, and whether the service account may
//! revoke (an `ICertAdminD` call that changes nothing).

use super::{CheckLine, Verdict};
use crate::admin::{CaAdmin, ManageVerdict};
use crate::{AdcsTarget, Enrollment, Error, Transport};

const DCOM_FIX: &str = "allow TCP 135 and the CA's dynamic RPC range (49152-65535 by default) from this host to the CA, and check that the service account may activate the Certificate Services DCOM objects (\"Certificate Service DCOM Access\" group)";

fn is_auth_failure(e: &Error) -> bool {
    matches!(e, Error::Exchange { source, .. } if matches!(**source, msrpc::IcprError::Authentication(_)))
}

/// The credentials were refused: with ICertPassage checked, its
/// authentication line already failed with the fix, so the DCOM lines are
/// skipped rather than failing three more times for the same reason.
fn auth_failed(line: &mut impl FnMut(String, Verdict), t: &AdcsTarget, e: &Error) {
    if t.transport == Transport::Dcom {
        line(
            format!("authentication over DCOM: {e}"),
            Verdict::Fail("check auth.domain, auth.username and the password (password-file/password-env); the account must be enabled and not locked".into()),
        );
    } else {
        line(
            "DCOM checks skipped: the CA refused the credentials (see the authentication line above)".into(),
            Verdict::Skipped,
        );
    }
}

/// Runs the DCOM checks of one target.
pub async fn check_dcom(name: &str, t: &AdcsTarget) -> Vec<CheckLine> {
    let mut out = Vec::new();
    let mut line = |what: String, verdict: Verdict| {
        out.push(CheckLine {
            authority: name.to_string(),
            what,
            verdict,
        })
    };
    // Everything below activates through the endpoint mapper's port: when
    // it does not answer, say so once instead of timing out per check.
    let scm = (t.host.as_str(), t.endpoint_mapper_port);
    match tokio::time::timeout(t.request_timeout, tokio::net::TcpStream::connect(scm)).await {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => {
            line(
                format!(
                    "DCOM activation port {}:{}: {e}; DCOM checks skipped",
                    t.host, t.endpoint_mapper_port
                ),
                Verdict::Fail(DCOM_FIX.into()),
            );
            return out;
        }
        Err(_) => {
            line(
                format!(
                    "DCOM activation port {}:{}: no answer within {:?}; DCOM checks skipped",
                    t.host, t.endpoint_mapper_port, t.request_timeout
                ),
                Verdict::Fail(DCOM_FIX.into()),
            );
            return out;
        }
    }
    if t.transport != Transport::Icpr {
        let mut d = t.clone();
        d.transport = Transport::Dcom;
        match Enrollment::new(&d).probe().await {
            Err(e) if is_auth_failure(&e) => {
                auth_failed(&mut line, t, &e);
                return out;
            }
            Ok(()) => line(
                format!(
                    "enrollment over DCOM (ICertRequestD2, activation through port {}) answers",
                    t.endpoint_mapper_port
                ),
                Verdict::Pass,
            ),
            Err(e) => line(
                format!("enrollment over DCOM: {e}"),
                Verdict::Fail(if t.transport == Transport::Dcom {
                    DCOM_FIX.into()
                } else {
                    format!("needed only when the CA refuses ICertPassage (enrollment-interface: auto): {DCOM_FIX}")
                }),
            ),
        }
    }
    let admin = CaAdmin::new(t);
    match admin.templates().await {
        Ok(list) => {
            let names: Vec<&str> = list.iter().map(|(n, _)| n.as_str()).collect();
            line(
                format!(
                    "the CA publishes {} template(s) (ICertAdminD2::GetCAProperty): {}",
                    names.len(),
                    names.join(", ")
                ),
                Verdict::Pass,
            );
            if names.iter().any(|n| n.eq_ignore_ascii_case(&t.template)) {
                line(
                    format!("template {} is published on the CA", t.template),
                    Verdict::Pass,
                );
            } else {
                line(
                    format!("template {} is not among the CA's templates", t.template),
                    Verdict::Fail("publish it on the CA (Certificate Templates → New → Certificate Template to Issue) or fix certificate-template (the template's name, not its display name)".into()),
                );
            }
        }
        Err(e) if is_auth_failure(&e) => {
            auth_failed(&mut line, t, &e);
            return out;
        }
        Err(e @ Error::AdminRefused { .. }) => line(
            format!("the CA's template list: {e}"),
            Verdict::Fail(
                "reading CA properties needs the CA's Read permission for the service account"
                    .into(),
            ),
        ),
        Err(e) => {
            line(
                format!("the CA's template list (DCOM): {e}"),
                Verdict::Fail(DCOM_FIX.into()),
            );
            line(
                "revocation rights: not checked (DCOM unreachable)".into(),
                Verdict::Skipped,
            );
            return out;
        }
    }
    match admin.management_check().await {
        Ok(ManageVerdict::CanManage(hr)) => line(
            format!(
                "the service account may revoke, approve and deny (the CA answered an ICertAdminD::DenyRequest of a request id it does not hold with 0x{hr:08x}, not E_ACCESSDENIED); certificate manager restrictions per template cannot be seen this way"
            ),
            Verdict::Pass,
        ),
        Ok(ManageVerdict::Denied) if t.disable_ca_revocation => line(
            "the service account lacks \"Issue and Manage Certificates\"; revocation at the CA is disabled (disable-ca-revocation: true), so revocations stay local".into(),
            Verdict::Skipped,
        ),
        Ok(ManageVerdict::Denied) => line(
            "the service account cannot revoke at the CA: ICertAdminD answered E_ACCESSDENIED".into(),
            Verdict::Fail("grant the service account \"Issue and Manage Certificates\" on the CA (CA console → Properties → Security), or set disable-ca-revocation: true to keep revocations local".into()),
        ),
        Err(e) => line(
            format!("revocation rights: {e}"),
            Verdict::Fail(DCOM_FIX.into()),
        ),
    }
    out
}
