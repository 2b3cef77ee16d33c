//! `lab-adcs`: a small, **lab-only** certification authority that speaks the
//! same wire protocol as Microsoft ADCS — DCE/RPC endpoint mapper plus MS-ICPR
//! `ICertPassage` with NTLMv2 at packet privacy, and over DCOM MS-CSRA
//! `ICertAdminD(2)` and MS-WCCE `ICertRequestD(2)` — so certeasy's native ADCS
//! bridge (and independent clients such as Certipy) can be tested without
//! Windows. Not a production CA: its key is stored unencrypted and its
//! accounts come from a YAML file.
#![forbid(unsafe_code)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod ca;
pub mod cli;
pub mod config;
pub mod dcom;
pub mod service;
pub mod state;
