//! certeasy: an on-premise ACME server (RFC 8555) in front of a company CA.
//!
//! Layers, each importing only those below it (a test checks this):
//! [`cli`] → [`server`] (the composition root) → [`tls`] → [`wfe`] (HTTP,
//! JWS, nonces) → [`ra`] (state machines; the jobs' work) → [`error`] →
//! [`policy`] (which policy, authorities, validator) → {[`jobs`] engine,
//! [`ca`], [`nonce`], [`limits`]} → [`audit`] → [`store`] → [`telemetry`]
//! (logs, request ids, metrics) → [`config`] → [`fsutil`].
//! See `docs/architecture.md`.

#![forbid(unsafe_code)]

pub mod audit;
pub mod ca;
pub mod cli;
pub mod config;
pub mod error;
pub mod fsutil;
pub mod jobs;
pub mod limits;
pub mod nonce;
pub mod policy;
pub mod ra;
pub mod server;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod wfe;
