//! `type: adcs`: the native bridge of `certeasy_adcs` (MS-ICPR over
//! DCE/RPC, in process) as an authority. This adapter only maps answers:
//! a denial is final ([`AuthorityError::Refused`]); unreachable,
//! authentication, timeouts and faults may heal
//! ([`AuthorityError::Transient`]) and count against the authority's health.

use certeasy_adcs::{AdcsTarget, Enrolled, Enrollment};

use super::{AuthorityError, Signed};

/// A native ADCS authority.
pub struct AdcsCa {
    e: Enrollment,
}

impl AdcsCa {
    /// Prepares the client side (no I/O).
    pub fn new(t: &AdcsTarget) -> AdcsCa {
        AdcsCa {
            e: Enrollment::new(t),
        }
    }

    /// Submits a CSR for `template`, or the configured template.
    pub async fn submit(
        &self,
        csr_der: &[u8],
        template: Option<&str>,
    ) -> Result<Signed, AuthorityError> {
        signed(self.e.submit_for(csr_der, template).await)
    }

    /// Asks for the outcome of an earlier (pending) request.
    pub async fn retrieve(&self, request_id: u32) -> Result<Signed, AuthorityError> {
        signed(self.e.retrieve(request_id).await)
    }

    /// Health probe ([`Enrollment::probe`]).
    pub async fn probe(&self) -> Result<(), AuthorityError> {
        self.e.probe().await.map_err(authority_error)
    }

    /// Longest a request may stay pending.
    pub fn default_timeout(&self) -> std::time::Duration {
        self.e.default_timeout()
    }

    /// Revokes the certificate with serial `serial_hex` at the CA for
    /// RFC 5280 reason `reason`, effective `at` (MS-CSRA
    /// `ICertAdminD::RevokeCertificate`). Transient: retry later; Refused:
    /// the CA refused.
    pub async fn revoke(
        &self,
        serial_hex: &str,
        reason: u32,
        at: std::time::SystemTime,
    ) -> Result<(), AuthorityError> {
        let _ = (serial_hex, reason, at);
        Err(AuthorityError::Refused(
            "revocation at ADCS over MS-CSRA is not available in this build".into(),
        ))
    }
}

/// Maps an answer of `certeasy_adcs` (native or certreq) to the authority
/// layer's types.
pub(super) fn signed(r: Result<Enrolled, certeasy_adcs::Error>) -> Result<Signed, AuthorityError> {
    match r.map_err(authority_error)? {
        Enrolled::Issued {
            leaf_der,
            chain_der,
        } => Ok(Signed::Issued {
            leaf_der,
            chain_der,
        }),
        Enrolled::Pending {
            request_id,
            message,
        } => Ok(Signed::Pending {
            request_id,
            message,
        }),
    }
}

/// A refusal is final; everything else may heal.
pub(super) fn authority_error(e: certeasy_adcs::Error) -> AuthorityError {
    if e.is_refusal() {
        AuthorityError::Refused(e.to_string())
    } else {
        AuthorityError::Transient(e.to_string())
    }
}
