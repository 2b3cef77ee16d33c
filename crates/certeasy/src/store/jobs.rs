//! Durable jobs: the persistence half of the job engine (`crate::jobs`).

use super::Store;

/// Kinds of job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Validate one challenge (subject = challenge id).
    Validate,
    /// Issue the certificate of one order (subject = order id).
    Issue,
    /// Revoke one certificate at its CA (subject = certificate id).
    Revoke,
}

impl JobKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Validate => "validate",
            JobKind::Issue => "issue",
            JobKind::Revoke => "revoke",
        }
    }

    /// The kind of a stored name.
    pub(super) fn parse(s: &str) -> Option<JobKind> {
        match s {
            "validate" => Some(JobKind::Validate),
            "issue" => Some(JobKind::Issue),
            "revoke" => Some(JobKind::Revoke),
            _ => None,
        }
    }
}

/// The queue's depth, for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JobStats {
    /// Jobs without a live lease (waiting for a worker or for their time).
    pub queued: i64,
    /// Jobs whose lease has not run out (being run).
    pub running: i64,
    /// Creation time of the oldest job (unix ms), None when the queue is empty.
    pub oldest_created_at: Option<i64>,
}

/// A queued job as an operator sees it (`certeasy cert show`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInfo {
    /// Attempts so far.
    pub attempts: i64,
    /// When it runs next (unix ms; while it runs: when its lease ends).
    pub next_run: i64,
    /// The last attempt's error.
    pub last_error: Option<String>,
}

/// A claimed job. A job is identified by its kind and subject: there is at
/// most one job per (kind, subject), and subjects are never reused.
#[derive(Debug, Clone)]
pub struct ClaimedJob {
    /// Kind.
    pub kind: JobKind,
    /// Subject id.
    pub subject: String,
    /// Attempts including this one.
    pub attempts: i64,
    /// Who holds the lease (rescheduling checks it).
    pub lease_owner: String,
    /// When the lease runs out (unix ms); then anyone may claim the job.
    pub lease_until: i64,
}

impl Store {
    delegate! {
        /// Enqueues a job already leased to `owner` for `lease_ms` (negative:
        /// an expired lease, claimable at once), in the caller's transaction,
        /// for direct hand-off to a worker of this node (no claim round
        /// trip). None when the same (kind, subject) is already queued.
        pub async fn enqueue_leased_job(
            tx: &mut Tx,
            kind: JobKind,
            subject: &str,
            owner: &str,
            lease_ms: i64,
        ) -> Result<Option<ClaimedJob>>;

        /// Extends the lease of a job still held by its owner; false when it
        /// was lost (expired and claimed by someone else).
        pub async fn renew_lease(&self, job: &ClaimedJob, lease_until: i64) -> Result<bool>;

        /// Claims the oldest runnable job: a queued job whose time has come, or a
        /// running job whose lease expired (its worker died). Counts the attempt.
        pub async fn claim_job(&self, owner: &str, lease_ms: i64) -> Result<Option<ClaimedJob>>;

        /// Removes a finished job, in the transaction that records its effect.
        pub async fn complete_job(tx: &mut Tx, job: &ClaimedJob) -> Result<()>;

        /// Removes a finished job on its own.
        pub async fn delete_job(&self, job: &ClaimedJob) -> Result<()>;

        /// Puts a job still held by its owner back in the queue to run at
        /// `run_at` (unix ms), without an owner; nothing when someone else
        /// holds it.
        pub async fn retry_job(&self, job: &ClaimedJob, run_at: i64, error: &str) -> Result<()>;

        /// Time (unix ms) at which the next job becomes runnable, if any.
        pub async fn next_job_time(&self) -> Result<Option<i64>>;

        /// The job (kind, subject), if it is queued.
        pub async fn job_info(&self, kind: JobKind, subject: &str) -> Result<Option<JobInfo>>;

        /// Number of jobs in the queue (any state).
        pub async fn job_count(&self) -> Result<i64>;

        /// The queue at `now` (unix ms), for the metrics: jobs waiting,
        /// jobs leased, creation time of the oldest job.
        pub async fn job_stats(&self, now: i64) -> Result<JobStats>;
    }
}
