//! Microsoft ADCS as a library, with no knowledge of ACME or of the
//! certeasy server.
//!
//! - [`AdcsTarget`] / [`CertreqTarget`]: one CA as plain data, mapped from
//!   the configuration by the caller;
//! - [`enrollment`]: MS-ICPR `CertServerRequest` over DCE/RPC at packet
//!   privacy (submit, retrieve, the health probe);
//! - [`admin`]: MS-CSRA over DCOM (`ICertAdminD` revoke, resubmit, deny;
//!   `ICertAdminD2` templates) and MS-WCCE `ICertRequestD2` enrollment;
//! - [`certreq`]: the `certreq.exe` fallback, the only code of the
//!   workspace that starts a process;
//! - [`preflight`]: the step-by-step checks behind `certeasy adcs check`
//!   (RPC path, LDAP, security descriptors, template verdicts), returned
//!   as lines for any front end to print or serve.
//!
//! Every fallible operation returns [`Error`], whose messages say what to
//! fix; [`Error::is_refusal`] tells a final answer of the CA from a failure
//! that may heal.

#![forbid(unsafe_code)]

pub mod admin;
pub mod certreq;
pub mod enrollment;
mod error;
pub mod kdc;
pub mod pool;
pub mod preflight;
mod target;

pub use certreq::Certreq;
pub use enrollment::{Enrolled, Enrollment, PRIVACY_HINT, PROBE_REQUEST_ID};
pub use error::Error;
pub use msrpc::keytab::Keytab;
pub use msrpc::{AuthLevel, AuthMethod};
pub use target::{AdcsTarget, CertreqTarget, LdapBind, LdapTarget, Transport};
