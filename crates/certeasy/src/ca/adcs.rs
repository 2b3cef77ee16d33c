//! `type: adcs`: the native bridge of `certeasy_adcs` (MS-ICPR over
//! DCE/RPC, in process; MS-WCCE and MS-CSRA over DCOM) as an authority. This adapter only maps answers:
//! a denial is final ([`AuthorityError::Refused`]); unreachable,
//! authentication, timeouts and faults may heal
//! ([`AuthorityError::Transient`]) and count against the authority's health.

use certeasy_adcs::admin::CaAdmin;
use certeasy_adcs::{AdcsTarget, Enrolled, Enrollment};

use super::{AuthorityError, Signed};

/// A native ADCS authority.
pub struct AdcsCa {
    e: Enrollment,
    admin: CaAdmin,
}

impl AdcsCa {
    /// Prepares the client side (no I/O).
    pub fn new(t: &AdcsTarget) -> AdcsCa {
        AdcsCa {
            e: Enrollment::new(t),
            admin: CaAdmin::new(t),
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

    /// Revokes the certificate with serial number `serial_hex` at the CA
    /// (MS-CSRA `ICertAdminD::RevokeCertificate` over DCOM) for RFC 5280
    /// `reason`, effective `at`. The CA's refusal (e.g. the service account
    /// lacks "Issue and Manage Certificates", unknown serial) is
    /// [`AuthorityError::Refused`] with an actionable message; unreachable,
    /// authentication failures and timeouts are [`AuthorityError::Transient`].
    pub async fn revoke(
        &self,
        serial_hex: &str,
        reason: u32,
        at: std::time::SystemTime,
    ) -> Result<(), AuthorityError> {
        self.admin
            .revoke(serial_hex, reason, at)
            .await
            .map_err(authority_error)
    }

    /// The MS-CSRA client of this CA (operator commands, `adcs check`).
    pub fn admin(&self) -> &CaAdmin {
        &self.admin
    }

    /// Longest a request may stay pending.
    pub fn default_timeout(&self) -> std::time::Duration {
        self.e.default_timeout()
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
