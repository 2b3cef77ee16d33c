//! ACME (RFC 8555) on the wire, without I/O.
//!
//! - [`b64u_encode`] / [`b64u_decode`]: strict base64url.
//! - [`Jwk`]: strict public JWK parsing, SPKI import, RFC 7638 thumbprints.
//! - [`Jws`]: the flattened JWS of RFC 8555 §6.2, verified for RS256, ES256,
//!   ES384, ES512 and EdDSA (Ed25519); [`ExternalAccountBinding`] for the
//!   MAC-signed JWS of RFC 8555 §7.3.4.
//! - [`Problem`]: problem documents with the exact ACME error URNs.
//! - Request payloads and resource representations as serde types, with
//!   the status of each object as an enum ([`OrderStatus`] and its kin).
//! - Challenge helpers: key authorizations, dns-01 and tls-alpn-01 digests,
//!   tokens.
//!
//! Every fallible function returns the single error type [`WireError`], which
//! converts into a [`Problem`].

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod alg;
mod b64;
mod challenge;
mod eab;
mod error;
mod identifier;
mod json;
mod jwk;
mod jws;
mod problem;
mod request;
mod resource;
mod spki_der;
mod status;
#[cfg(test)]
mod test_keys;

pub use alg::Algorithm;
pub use b64::{b64u_decode, b64u_encode};
pub use challenge::{dns01_txt_value, key_authorization, new_token, tls_alpn01_digest};
pub use eab::{ExternalAccountBinding, MacAlgorithm};
pub use error::WireError;
pub use identifier::Identifier;
pub use jwk::{EcCurve, Jwk, MAX_RSA_BITS, MIN_RSA_BITS};
pub use jws::{Jws, KeyRef, ProtectedHeader};
pub use problem::{Problem, ProblemType, Subproblem};
pub use request::{
    AccountUpdateRequest, FinalizeRequest, KeyChangeRequest, NewAccountRequest, NewOrderRequest,
    RevocationRequest,
};
pub use resource::{
    AccountResource, AuthorizationResource, ChallengeResource, Directory, DirectoryMeta,
    OrderResource, OrdersList, RenewalInfo, SuggestedWindow,
};
pub use status::{
    AccountStatus, AuthorizationStatus, CertificateStatus, ChallengeStatus, OrderStatus,
    UnknownStatus,
};
