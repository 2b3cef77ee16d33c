//! certeasy: an on-premise ACME server (RFC 8555) in front of a company CA.
//!
//! Request flow: [`wfe`] (HTTP, JWS, nonces) → [`ra`] (state machines,
//! policy) → [`store`] + [`jobs`]; jobs call the validation authority
//! (`certeasy-va`) and the [`ca`] layer. See `docs/architecture.md`.

#![forbid(unsafe_code)]

pub mod ca;
pub mod cli;
pub mod config;
pub mod error;
pub mod fsutil;
pub mod jobs;
pub mod logging;
pub mod ra;
pub mod server;
pub mod services;
pub mod store;
pub mod tls;
pub mod wfe;
