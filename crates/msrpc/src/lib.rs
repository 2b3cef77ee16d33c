//! DCE/RPC (MS-RPCE) over `ncacn_ip_tcp`, in process, for talking to
//! Microsoft ADCS without `certreq.exe`.
//!
//! Layers, bottom up:
//! * [`uuid`], [`pdu`]: connection-oriented PDUs, fragments, auth verifiers;
//! * [`ndr`]: NDR 2.0 marshalling for the constructs used here;
//! * [`auth`]: NTLM / Negotiate (Kerberos) via `sspi`, packet integrity and privacy;
//! * [`transport`], [`client`], [`server`]: async runtime (tokio);
//! * [`epm`]: endpoint mapper towers and `ept_map`;
//! * [`icpr`], [`icpr_client`]: MS-ICPR `ICertPassage::CertServerRequest`;
//! * [`dcom`]: MS-DCOM activation, ORPC headers, `IRemUnknown2`;
//! * [`csra`]: MS-CSRA `ICertAdminD(2)` and MS-WCCE `ICertRequestD(2)` marshalling.
//!
//! The crate knows nothing of ACME. See `docs/msrpc.md` for the design notes
//! and what was verified against which peer.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod auth;
pub mod auth_error;
pub mod client;
pub mod csra;
pub mod dce_kerberos;
pub mod dcom;
pub mod epm;
pub mod error;
pub mod gss;
pub mod icpr;
pub mod icpr_client;
pub mod keytab;
pub mod ndr;
pub mod pdu;
pub mod server;
pub mod transport;
pub mod uuid;

pub use auth::{AuthLevel, AuthMethod, ClientAuth, CredentialStore, Credentials};
pub use client::{ClientOptions, RpcClient, Timeouts};
pub use error::RpcError;
pub use icpr::{CertServerRequest, CertServerResponse, Disposition};
pub use icpr_client::{EndpointSelection, IcprClient, IcprError, IcprReply};
pub use server::{CallContext, EndpointMapper, RpcService, ServerConfig};
