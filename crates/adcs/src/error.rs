//! The one error type of the crate.

use std::time::Duration;

use msrpc::IcprError;

/// Why an exchange with a CA did not produce a certificate.
///
/// [`Error::is_refusal`] splits them: a refusal is the CA's (or certreq's)
/// final answer about the request; everything else (unreachable,
/// authentication, timeouts, faults, local I/O) may heal on a later try.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The RPC exchange failed (may heal).
    #[error("CA {ca_name} ({host}): {source}{}", suffix(.hint))]
    Exchange {
        /// `ca-name` as written.
        ca_name: String,
        /// RPC host.
        host: String,
        /// What the client saw.
        source: Box<IcprError>,
        /// [`crate::PRIVACY_HINT`] when it applies.
        hint: Option<&'static str>,
    },
    /// The CA denied the request (final).
    #[error("{source}{}", suffix(.hint))]
    Denied {
        /// The denial.
        source: Box<IcprError>,
        /// [`crate::PRIVACY_HINT`] when it applies.
        hint: Option<&'static str>,
    },
    /// The CA said issued but sent no certificate (may heal).
    #[error("CA {ca_name} reported request {request_id} issued but sent no certificate")]
    NoCertificate {
        /// `ca-name` as written.
        ca_name: String,
        /// The CA's request id.
        request_id: u32,
    },
    /// The CA's PKCS #7 chain cannot be read (final).
    #[error("CA {ca_name} sent an unreadable chain: {reason}")]
    UnreadableChain {
        /// `ca-name` as written.
        ca_name: String,
        /// Parser message.
        reason: String,
    },
    /// The CA's certificate cannot be read (final).
    #[error("CA {ca_name} sent an unreadable certificate: {reason}")]
    UnreadableCertificate {
        /// `ca-name` as written.
        ca_name: String,
        /// Parser message.
        reason: String,
    },
    /// The CA reported a failed disposition (final).
    #[error("CA {ca_name} refused request {request_id} (0x{code:08x}): {message}")]
    Failed {
        /// `ca-name` as written.
        ca_name: String,
        /// The CA's request id.
        request_id: u32,
        /// Disposition code.
        code: u32,
        /// The CA's message.
        message: String,
    },
    /// The CA refused an administrative call (revoke, resubmit, deny,
    /// properties) or a DCOM activation (final until an operator changes
    /// something).
    #[error("CA {ca_name}: {op} refused with {symbol} (0x{hresult:08x}): {explanation}")]
    AdminRefused {
        /// `ca-name` as written.
        ca_name: String,
        /// What was called, e.g. `ICertAdminD::RevokeCertificate`.
        op: &'static str,
        /// The HRESULT.
        hresult: u32,
        /// Its symbolic name.
        symbol: &'static str,
        /// What to do about it.
        explanation: &'static str,
    },
    /// An argument was refused before anything was sent (final).
    #[error("{0}")]
    InvalidArgument(String),
    /// Local file or directory work of the certreq fallback failed (may heal).
    #[error("{0}")]
    Scratch(String),
    /// certreq is not where the target says (may heal).
    #[error("certreq not found at {}", .0.display())]
    CertreqMissing(std::path::PathBuf),
    /// certreq could not be started (may heal).
    #[error("cannot run {}: {source}", .path.display())]
    CertreqSpawn {
        /// certreq's path.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// certreq ran out of time (may heal).
    #[error("certreq did not finish within {0:?}")]
    CertreqTimeout(Duration),
    /// certreq said issued but wrote no certificate (may heal).
    #[error("certreq reported issued but wrote no certificate: {0}")]
    CertreqNoCertificate(std::io::Error),
    /// certreq wrote a certificate that cannot be read (final).
    #[error("certreq returned an unreadable certificate: {0}")]
    CertreqUnreadable(String),
    /// certreq reported a denial or no outcome (final).
    #[error("certreq (exit {exit}): {message}")]
    CertreqDenied {
        /// certreq's exit code (-1 when killed).
        exit: i32,
        /// certreq's message.
        message: String,
    },
}

impl Error {
    /// Whether this is a final answer about the request (denied, failed,
    /// unreadable), not a failure that may heal.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            Error::Denied { .. }
                | Error::UnreadableChain { .. }
                | Error::UnreadableCertificate { .. }
                | Error::Failed { .. }
                | Error::AdminRefused { .. }
                | Error::InvalidArgument(_)
                | Error::CertreqUnreadable(_)
                | Error::CertreqDenied { .. }
        )
    }
}

fn suffix(hint: &Option<&'static str>) -> String {
    match hint {
        Some(h) => format!("; {h}"),
        None => String::new(),
    }
}
