//! ACME challenge validation for certeasy (the "VA").
//!
//! This crate validates `http-01`, `dns-01` (RFC 8555 §8.3, §8.4) and
//! `tls-alpn-01` (RFC 8737) challenges under a [`ValidationProfile`]: the DNS
//! zones the profile covers (and which resolver answers for each), and the
//! [`IpPolicy`] that decides which resolved addresses may be contacted.
//!
//! It knows nothing of the ACME server: it takes a profile and a challenge and
//! answers with a [`ValidationRecord`] or a [`ValidationFailure`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use certeasy_va::*;
//!
//! let profile = ValidationProfile {
//!     name: "internal".into(),
//!     timeout: Duration::from_secs(10),
//!     zones: vec![ZoneConfig {
//!         suffixes: vec!["corp.example".into()],
//!         servers: ZoneServers::Explicit(vec!["192.0.2.53:53".parse()?]),
//!         protocol: DnsProtocol::Udp,
//!         authoritative: false,
//!         dnssec: false,
//!     }],
//!     ip_policy: IpPolicy::new(&["10.0.0.0/8".into()], &[])?,
//!     http01_port: 80,
//!     tls_alpn01_port: 443,
//! };
//! let va = Validator::new(profile)?;
//! let record = va.dns01("www.corp.example", "expected-digest").await?;
//! println!("{}", record.hostname);
//! # Ok(()) }
//! ```
//!
//! Design notes (details on each item):
//! - one [`Validator`] per profile; it builds one DNS client per zone at
//!   construction and reuses it (no response cache, see [`Validator::new`]);
//!   only the record types a challenge needs are asked for, and CNAMEs are
//!   followed by the crate within the profile's zones;
//! - every address is checked against the IP policy *before* a socket is
//!   opened to it, on every hop — and so are the addresses of authoritative
//!   name servers found in DNS;
//! - a failure detail never carries content read from a redirect target,
//!   nor any response body bytes: it must not become a way to read internal
//!   servers through the validator;
//! - with the `test-dns` feature, [`testing::TestDns`] is an in-process
//!   authoritative DNS server for tests.
#![forbid(unsafe_code)]

mod dns;
mod dns01;
mod error;
mod http01;
mod net;
mod policy;
mod profile;
mod record;
mod tls;
mod tlsalpn01;
mod validator;

#[cfg(feature = "test-dns")]
pub mod testing;

pub use error::{FailureKind, VaConfigError, ValidationFailure};
pub use policy::{IpPolicy, PolicyError};
pub use profile::{DnsProtocol, ValidationProfile, ZoneConfig, ZoneServers};
pub use record::ValidationRecord;
pub use tlsalpn01::{ACME_TLS_ALPN_PROTOCOL, ID_PE_ACME_IDENTIFIER};
pub use validator::Validator;
