//! `workers`: the durable job engine's tuning. The defaults suit one node;
//! the checks catch the combinations that would make jobs spin (a minimum
//! above its maximum) or be cut off at shutdown (a drain shorter than the
//! request budget).

use std::num::NonZeroU64;
use std::time::Duration;

use serde::Deserialize;

use super::checker::Checker;
use super::duration::ConfDuration;

/// `workers` as written: the keys of [`Workers`], each of which may be
/// omitted. (Named `Workers` in serde's messages, as before the split.)
#[derive(Debug, Clone, Deserialize)]
#[serde(
    rename = "Workers",
    default,
    deny_unknown_fields,
    rename_all = "kebab-case"
)]
pub(super) struct WorkersSection {
    worker_id: Option<String>,
    workers: NonZeroU64,
    lease: ConfDuration,
    idle_min: ConfDuration,
    idle_max: ConfDuration,
    base_backoff: ConfDuration,
    max_backoff: ConfDuration,
    queue_size: NonZeroU64,
    finalize_wait: ConfDuration,
    validation_wait: ConfDuration,
    drain_timeout: ConfDuration,
    validations_per_account: Option<NonZeroU64>,
}

impl Default for WorkersSection {
    fn default() -> Self {
        WorkersSection {
            worker_id: None,
            workers: NonZeroU64::new(4).unwrap_or(NonZeroU64::MIN),
            lease: ConfDuration::secs(30),
            idle_min: ConfDuration::millis(200),
            idle_max: ConfDuration::secs(5),
            base_backoff: ConfDuration::secs(1),
            max_backoff: ConfDuration::secs(120),
            queue_size: NonZeroU64::new(1024).unwrap_or(NonZeroU64::MIN),
            finalize_wait: ConfDuration::secs(3),
            validation_wait: ConfDuration::secs(2),
            drain_timeout: ConfDuration::secs(30),
            validations_per_account: None,
        }
    }
}

/// Job engine settings after validation.
#[derive(Debug, Clone)]
pub struct Workers {
    /// Identity of this node's worker pool (default: derived from the host).
    pub worker_id: Option<String>,
    /// Concurrent workers.
    pub workers: NonZeroU64,
    /// Lease of a claimed job.
    pub lease: ConfDuration,
    /// Shortest idle poll interval.
    pub idle_min: ConfDuration,
    /// Longest idle poll interval (safety net behind wake-ups).
    pub idle_max: ConfDuration,
    /// First retry delay.
    pub base_backoff: ConfDuration,
    /// Longest retry delay.
    pub max_backoff: ConfDuration,
    /// Jobs handed to workers in memory at most; more wait in the database
    /// for a worker's poll.
    pub queue_size: NonZeroU64,
    /// How long finalize waits for the issuance before answering
    /// `processing`.
    pub finalize_wait: ConfDuration,
    /// How long the POST that answers a challenge waits for its validation
    /// before answering `processing`.
    pub validation_wait: ConfDuration,
    /// Time allowed to finish running jobs at shutdown.
    pub drain_timeout: ConfDuration,
    /// Validations of one account running at once on this node (default:
    /// half of `workers`, at least 1), so one account's slow or blackholed
    /// validations cannot take every worker.
    pub validations_per_account: Option<NonZeroU64>,
}

impl Workers {
    /// `validations-per-account`, or its default.
    pub fn validations_per_account(&self) -> u64 {
        self.validations_per_account
            .map_or((self.workers.get() / 2).max(1), NonZeroU64::get)
    }
}

/// The defaults of an omitted `workers` section.
impl Default for Workers {
    fn default() -> Self {
        WorkersSection::default().into()
    }
}

impl From<WorkersSection> for Workers {
    fn from(w: WorkersSection) -> Self {
        Workers {
            worker_id: w.worker_id,
            workers: w.workers,
            lease: w.lease,
            idle_min: w.idle_min,
            idle_max: w.idle_max,
            base_backoff: w.base_backoff,
            max_backoff: w.max_backoff,
            queue_size: w.queue_size,
            finalize_wait: w.finalize_wait,
            validation_wait: w.validation_wait,
            drain_timeout: w.drain_timeout,
            validations_per_account: w.validations_per_account,
        }
    }
}

impl Checker<'_> {
    /// Checks `workers` against itself and against the listener's
    /// `shutdown` budget.
    pub(super) fn check_workers(&mut self, w: WorkersSection, shutdown: Duration) -> Workers {
        if w.idle_min > w.idle_max {
            self.issue(
                "workers.idle-min",
                format!(
                    "idle-min {} is larger than idle-max {}",
                    w.idle_min, w.idle_max
                ),
            );
        }
        if w.base_backoff > w.max_backoff {
            self.issue(
                "workers.base-backoff",
                format!(
                    "base-backoff {} is larger than max-backoff {}",
                    w.base_backoff, w.max_backoff
                ),
            );
        }
        if shutdown > w.drain_timeout.get() {
            self.issue(
                "server.shutdown-timeout",
                format!(
                    "must be less than or equal to workers.drain-timeout ({}); raise drain-timeout or lower shutdown-timeout",
                    w.drain_timeout
                ),
            );
        }
        let _ = self.nonzero_duration("workers.lease", w.lease.get());
        w.into()
    }
}
