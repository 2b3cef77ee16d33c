//! Errors of the RPC runtime (client and server).

use crate::auth::AuthError;
use crate::ndr::NdrError;
use crate::pdu::PduError;

/// Failure of an RPC operation below the interface level.
#[derive(Debug, thiserror::Error)]
pub enum RpcError {
    /// Socket error.
    #[error("network I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// A phase did not finish in time.
    #[error("timed out during {0}")]
    Timeout(&'static str),
    /// The peer closed the connection (possibly in the middle of a call).
    #[error("connection closed by the peer{0}")]
    ConnectionClosed(&'static str),
    /// Malformed PDU.
    #[error("malformed PDU: {0}")]
    Pdu(#[from] PduError),
    /// Malformed NDR stub data.
    #[error("malformed NDR data: {0}")]
    Ndr(#[from] NdrError),
    /// Authentication or message protection failure.
    #[error("authentication: {0}")]
    Auth(#[from] AuthError),
    /// bind_nak received.
    #[error("bind rejected by the server (reason {0})")]
    BindRejected(u16),
    /// The presentation context was refused.
    #[error("interface refused by the server (result {result}, reason {reason})")]
    ContextRejected {
        /// `result`.
        result: u16,
        /// `reason`.
        reason: u16,
    },
    /// fault PDU received.
    #[error("RPC fault 0x{status:08x} ({})", crate::icpr::explain(*status).0)]
    Fault {
        /// Fault status.
        status: u32,
    },
    /// A COM method returned a failure HRESULT (DCOM activation, IRemUnknown,
    /// or an interface method whose caller wants it as an error).
    #[error("{op} failed with HRESULT 0x{status:08x} ({})", crate::icpr::explain(*status).0)]
    Hresult {
        /// What was called.
        op: &'static str,
        /// HRESULT.
        status: u32,
    },
    /// Unexpected PDU or state.
    #[error("RPC protocol error: {0}")]
    Protocol(String),
}
