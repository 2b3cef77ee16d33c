//! `type: adcs-cli`: the `certreq.exe` fallback of `certeasy_adcs` (the
//! only code of the workspace that starts a process) as an authority. Its
//! scratch directories live under `%WORKDIR%/adcs-cli/`, which this adapter
//! keeps private (mode 0700) before each exchange.

use std::time::Duration;

use certeasy_adcs::{Certreq, CertreqTarget};

use super::adcs::{authority_error, signed};
use super::{AuthorityError, Signed};

/// The certreq-driving authority.
pub struct AdcsCliCa {
    c: Certreq,
}

impl AdcsCliCa {
    /// A certreq-driving authority.
    pub fn new(t: CertreqTarget) -> AdcsCliCa {
        AdcsCliCa { c: Certreq::new(t) }
    }

    /// Longest a request may stay pending.
    pub fn default_timeout(&self) -> Duration {
        self.c.default_timeout()
    }

    /// Submits a CSR.
    pub async fn submit(
        &self,
        csr_der: &[u8],
        template: Option<&str>,
    ) -> Result<Signed, AuthorityError> {
        self.prepare()?;
        signed(self.c.submit_for(csr_der, template).await)
    }

    /// Retrieves a pending request.
    pub async fn retrieve(&self, request_id: u32) -> Result<Signed, AuthorityError> {
        self.prepare()?;
        signed(self.c.retrieve(request_id).await)
    }

    /// Revocation is not done through certreq: the fallback only submits
    /// and retrieves (revoke at the CA with `certutil -revoke`, or use the
    /// native `type: adcs` connector, which revokes over MS-CSRA).
    pub fn revoke(&self, serial_hex: &str) -> Result<(), AuthorityError> {
        Err(AuthorityError::Refused(format!(
            "the adcs-cli (certreq) connector cannot revoke at the CA: a CA officer must run `certutil -revoke {serial_hex}` on the CA, or use the native `type: adcs` connector"
        )))
    }

    /// Health: certreq exists and is executable.
    pub fn probe(&self) -> Result<(), AuthorityError> {
        self.c.probe().map_err(authority_error)
    }

    /// Creates the scratch root (or tightens it to 0700).
    fn prepare(&self) -> Result<(), AuthorityError> {
        let dir = &self.c.target().scratch_dir;
        crate::fsutil::create_private_dir(dir)
            .map_err(|e| AuthorityError::Transient(format!("cannot create {}: {e}", dir.display())))
    }
}
