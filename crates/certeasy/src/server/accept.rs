//! Admission of connections (`max-connections`, `max-connections-per-ip`),
//! the registry of live connections (to stop them at shutdown), and the
//! accept loop's back-off and rate-limited log lines.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use super::conn::{Shared, Timeouts};
use crate::config::ServerSettings;

/// At most one log line of a kind per this interval; the next one counts
/// the lines left out.
pub(crate) const LOG_INTERVAL: Duration = Duration::from_secs(5);

/// First pause after a failed accept(); doubled on each failure in a row.
const BACKOFF_MIN: Duration = Duration::from_millis(5);
/// Longest pause between accept() attempts while they fail.
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// The connections open now, and the caps they are admitted under.
pub(crate) struct Connections {
    max_total: usize,
    max_per_ip: usize,
    /// Peers exempt from the per-IP cap: the trusted reverse proxies, which
    /// carry many clients' connections.
    exempt: Vec<ipnet::IpNet>,
    timeouts: Timeouts,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
    live: Vec<Option<Arc<Shared>>>,
    free: Vec<usize>,
}

/// Why a connection was not admitted.
#[derive(Debug, thiserror::Error)]
pub(crate) enum Refused {
    /// `max-connections` reached.
    #[error("server.max-connections ({0}) reached")]
    Total(usize),
    /// `max-connections-per-ip` reached for this peer.
    #[error("server.max-connections-per-ip ({1}) reached for {0}")]
    PerIp(IpAddr, usize),
}

impl Connections {
    pub(crate) fn new(s: &ServerSettings) -> Arc<Connections> {
        Arc::new(Connections {
            max_total: s.max_connections,
            max_per_ip: s.max_connections_per_ip,
            exempt: s.trusted_proxies.clone(),
            timeouts: Timeouts::new(s),
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Admits a connection from `ip` (the TCP peer) if both caps allow it.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refused> {
        let ip = ip.to_canonical();
        let counted = !self.exempt.iter().any(|n| n.contains(&ip));
        let mut st = self.state();
        if st.total >= self.max_total {
            return Err(Refused::Total(self.max_total));
        }
        if counted {
            let n = st.per_ip.entry(ip).or_insert(0);
            if *n >= self.max_per_ip {
                return Err(Refused::PerIp(ip, self.max_per_ip));
            }
            *n += 1;
        }
        st.total += 1;
        let shared = Arc::new(Shared::new(self.timeouts));
        let index = match st.free.pop() {
            Some(i) => {
                if let Some(e) = st.live.get_mut(i) {
                    *e = Some(shared.clone());
                }
                i
            }
            None => {
                st.live.push(Some(shared.clone()));
                st.live.len() - 1
            }
        };
        Ok(Slot {
            conns: self.clone(),
            index,
            ip: counted.then_some(ip),
            shared,
        })
    }

    /// Asks every open connection to finish (server shutdown).
    pub(crate) fn stop_all(&self) {
        for s in self.state().live.iter().flatten() {
            s.stop();
        }
    }

    /// Connections open now.
    pub(crate) fn open(&self) -> usize {
        self.state().total
    }
}

/// An admitted connection's place; dropping it frees the place.
pub(crate) struct Slot {
    conns: Arc<Connections>,
    index: usize,
    ip: Option<IpAddr>,
    shared: Arc<Shared>,
}

impl Slot {
    /// The connection's shared state.
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut st = self.conns.state();
        st.total = st.total.saturating_sub(1);
        if let Some(e) = st.live.get_mut(self.index) {
            *e = None;
            st.free.push(self.index);
        }
        if let Some(ip) = self.ip {
            if let Some(n) = st.per_ip.get_mut(&ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    st.per_ip.remove(&ip);
                }
            }
        }
    }
}

/// Allows one log line per [`LOG_INTERVAL`] and counts the others.
#[derive(Debug, Default)]
pub(crate) struct RateLimited {
    last: Option<Instant>,
    suppressed: u64,
}

impl RateLimited {
    /// Some(lines left out since the last one) if a line may be logged now.
    pub(crate) fn allow(&mut self) -> Option<u64> {
        let now = Instant::now();
        if self.last.is_some_and(|l| now - l < LOG_INTERVAL) {
            self.suppressed += 1;
            return None;
        }
        self.last = Some(now);
        Some(std::mem::take(&mut self.suppressed))
    }
}

/// Pauses between failing accept() calls: 5 ms doubling to 1 s, reset by
/// a successful accept. While they fail, a warning at most every
/// [`LOG_INTERVAL`]; when accept works again, a line with the count (also
/// rate-limited: at the descriptor limit accept flaps with every close).
#[derive(Debug, Default)]
pub(crate) struct AcceptBackoff {
    delay: Duration,
    /// Failures since the last "works again" line.
    failures: u64,
    first: Option<Instant>,
    failure_log: RateLimited,
    recovery_log: RateLimited,
}

impl AcceptBackoff {
    /// Records a failed accept(); returns how long to pause.
    pub(crate) fn failed(&mut self, e: &std::io::Error) -> Duration {
        self.failures += 1;
        self.first.get_or_insert_with(Instant::now);
        self.delay = if self.delay.is_zero() {
            BACKOFF_MIN
        } else {
            (self.delay * 2).min(BACKOFF_MAX)
        };
        if let Some(suppressed) = self.failure_log.allow() {
            let note = if suppressed > 0 {
                format!("; {suppressed} more failures suppressed since the last line")
            } else {
                String::new()
            };
            tracing::warn!(
                target: "server",
                error = %e,
                "accept failed: {e}; pausing accept, next attempt in {:?} (check the open-file limit and server.max-connections){note}",
                self.delay
            );
        }
        self.delay
    }

    /// Records a successful accept().
    pub(crate) fn succeeded(&mut self) {
        if self.delay.is_zero() {
            return;
        }
        self.delay = Duration::ZERO;
        if self.recovery_log.allow().is_none() {
            return;
        }
        let since = self.first.take().map(|f| f.elapsed()).unwrap_or_default();
        tracing::warn!(
            target: "server",
            "accept works again after {} failed attempts over {since:?} ({} of them suppressed from the log)",
            std::mem::take(&mut self.failures),
            self.failure_log.suppressed
        );
    }
}

/// Errors of accept() that concern one connection (the peer gave up
/// before it was accepted): the next accept() may succeed at once.
pub(crate) fn is_per_connection(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::*;
    matches!(
        e.kind(),
        ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | WouldBlock
    )
}
