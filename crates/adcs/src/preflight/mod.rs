//! Preflight: the step-by-step checks of one ADCS target, each a
//! [`CheckLine`] that says what was found and, when it failed, how to fix
//! it. `certeasy adcs check` prints them; any other front end (a readiness
//! detail, a dashboard) can run and show the same lines.
//!
//! [`rpc`] follows the path to the CA (DNS, endpoint mapper, port,
//! authentication, optionally a test submission); [`dcom`] checks
//! enrollment over DCOM, the CA's templates and the right to revoke; [`ldap`] reads the
//! template, its publication and the service account's rights from Active
//! Directory, with the decisions in [`template`] and [`sd`]; [`sasl`] binds
//! it with Kerberos (SASL GSSAPI) and seals the session.

pub mod dcom;
mod entry;
pub mod ldap;
pub mod rpc;
pub mod sasl;
pub mod sd;
pub mod template;

pub use dcom::check_dcom;
pub use ldap::check_ldap;
pub use rpc::check_rpc;
pub use template::{AcceptedKeys, Expectations};

use crate::AdcsTarget;

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

/// Runs every check of one ADCS target named `name`: the RPC path to the
/// CA, then (independently, when `ldap` is configured) the template,
/// publication and rights checks over LDAP.
pub async fn check_authority(
    name: &str,
    t: &AdcsTarget,
    expect: &Expectations,
    submit: bool,
) -> Vec<CheckLine> {
    let mut out = if t.transport == crate::Transport::Dcom {
        vec![CheckLine {
            authority: name.to_string(),
            what: "ICertPassage not checked: enrollment-interface is dcom".into(),
            verdict: Verdict::Skipped,
        }]
    } else {
        check_rpc(name, t, submit).await
    };
    out.extend(check_dcom(name, t).await);
    out.extend(check_ldap(name, t, expect).await);
    out
}
