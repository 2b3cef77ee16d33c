//! One authentication per association: a small pool of authenticated
//! ICertPassage associations per authority.
//!
//! Every exchange takes an idle association (most recently used first) or
//! opens and authenticates a new one; after a CA-level answer (issued,
//! pending, denied) the association goes back to the pool. At most
//! [`POOL_SIZE`] associations are kept idle, each for at most
//! [`IDLE_TIMEOUT`]; an association that fails at the transport or security
//! layer is dropped. A request that fails that way on a *reused*
//! association (the CA restarted, a firewall dropped the idle connection,
//! the security context expired) is sent once more on a fresh, newly
//! authenticated one. Concurrent requests never share an association: each
//! holds its own for the length of one call. Size and idle timeout are per
//! authority ([`PoolSettings`]; defaults [`POOL_SIZE`], [`IDLE_TIMEOUT`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use msrpc::{IcprClient, IcprError, RpcError};

/// Idle associations kept per authority.
pub const POOL_SIZE: usize = 4;
/// How long an idle association is kept (Windows closes idle RPC
/// connections after some minutes; a Kerberos service ticket lives hours).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// RPC fault statuses that mean the association's security context is gone.
const CONTEXT_FAULTS: [u32; 3] = [
    0x1c00_001a, // nca_s_fault_context_mismatch
    0x0000_0721, // RPC_S_SEC_PKG_ERROR
    0x1c01_0002, // nca_s_unk_if (association reset on the server)
];

/// Size and idle timeout of an authority's pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolSettings {
    /// Idle associations kept (0: none, every request authenticates).
    pub size: usize,
    /// How long an idle association is kept.
    pub idle_timeout: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        PoolSettings {
            size: POOL_SIZE,
            idle_timeout: IDLE_TIMEOUT,
        }
    }
}

/// The idle associations of one authority and how many were opened.
#[derive(Debug, Default)]
pub(crate) struct Pool {
    idle: Mutex<Vec<(IcprClient, Instant)>>,
    opened: AtomicU64,
    settings: PoolSettings,
}

impl Pool {
    /// An empty pool with these settings.
    pub(crate) fn new(settings: PoolSettings) -> Pool {
        Pool {
            settings,
            ..Pool::default()
        }
    }

    /// An idle association younger than the idle timeout, if any (older
    /// ones are dropped, closing their connections).
    pub(crate) fn take(&self) -> Option<IcprClient> {
        let timeout = self.settings.idle_timeout;
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        idle.retain(|(_, since)| since.elapsed() < timeout);
        idle.pop().map(|(c, _)| c)
    }

    /// Returns an association after a CA-level answer.
    pub(crate) fn put(&self, c: IcprClient) {
        let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < self.settings.size {
            idle.push((c, Instant::now()));
        }
    }

    /// Counts a newly authenticated association.
    pub(crate) fn opened(&self) {
        self.opened.fetch_add(1, Ordering::Relaxed);
    }

    /// Associations authenticated so far.
    pub(crate) fn authentications(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }
}

/// True when `e` leaves the association usable (a CA-level answer).
pub(crate) fn keeps_association(e: &IcprError) -> bool {
    matches!(e, IcprError::Denied { .. })
}

/// True when `e`, seen on a reused association, means the association
/// (not the request) is at fault, so the request may be sent again on a
/// fresh one.
pub(crate) fn stale_association(e: &IcprError) -> bool {
    match e {
        IcprError::Rpc(RpcError::Io(_) | RpcError::ConnectionClosed(_)) => true,
        IcprError::Rpc(RpcError::Fault { status }) | IcprError::Fault { status, .. } => {
            CONTEXT_FAULTS.contains(status)
        }
        _ => false,
    }
}
