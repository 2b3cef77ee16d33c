//! Durable jobs: the persistence half of the job engine (`crate::jobs`).

use rusqlite::{params, Connection, OptionalExtension};

use super::{now_ms, Result, Store, Tx};

/// Kinds of job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobKind {
    /// Validate one challenge (subject = challenge id).
    Validate,
    /// Issue the certificate of one order (subject = order id).
    Issue,
}

impl JobKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Validate => "validate",
            JobKind::Issue => "issue",
        }
    }

    fn parse(s: &str) -> Option<JobKind> {
        match s {
            "validate" => Some(JobKind::Validate),
            "issue" => Some(JobKind::Issue),
            _ => None,
        }
    }
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
    /// Enqueues a job already leased to `owner`, in the caller's
    /// transaction, for direct hand-off to a worker of this node (no claim
    /// round trip). None when the same (kind, subject) is already queued.
    pub async fn enqueue_leased_job(
        tx: &mut Tx,
        kind: JobKind,
        subject: &str,
        owner: &str,
        lease_ms: i64,
    ) -> Result<Option<ClaimedJob>> {
        let now = now_ms();
        let lease_until = now + lease_ms;
        let inserted = tx
            .conn()
            .prepare_cached("INSERT OR IGNORE INTO jobs (kind, subject, state, run_at, lease_owner, lease_until, attempts, created_at) VALUES (?, ?, 'running', ?, ?, ?, 1, ?)")?
            .execute(params![kind.as_str(), subject, now, owner, lease_until, now])?;
        Ok((inserted == 1).then(|| ClaimedJob {
            kind,
            subject: subject.to_string(),
            attempts: 1,
            lease_owner: owner.to_string(),
            lease_until,
        }))
    }

    /// Extends the lease of a job still held by its owner; false when it
    /// was lost (expired and claimed by someone else).
    pub async fn renew_lease(&self, job: &ClaimedJob, lease_until: i64) -> Result<bool> {
        self.write(|c| {
            let n = c
                .prepare_cached("UPDATE jobs SET lease_until = ? WHERE kind = ? AND subject = ? AND state = 'running' AND lease_owner = ?")?
                .execute(params![lease_until, job.kind.as_str(), job.subject, job.lease_owner])?;
            Ok(n == 1)
        })
        .await
    }

    /// Claims the oldest runnable job: a queued job whose time has come, or a
    /// running job whose lease expired (its worker died).
    pub async fn claim_job(&self, owner: &str, lease_ms: i64) -> Result<Option<ClaimedJob>> {
        let now = now_ms();
        let lease_until = now + lease_ms;
        let row: Option<(String, String, i64)> = self
            .write(|c| {
                Ok(c.prepare_cached(
                    "UPDATE jobs SET state = 'running', lease_owner = ?, lease_until = ?, attempts = attempts + 1 \
                     WHERE (kind, subject) = (SELECT kind, subject FROM jobs WHERE (state = 'queued' AND run_at <= ?) OR (state = 'running' AND lease_until < ?) \
                                              ORDER BY run_at LIMIT 1) \
                     RETURNING kind, subject, attempts",
                )?
                .query_row(params![owner, lease_until, now, now], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })
                .optional()?)
            })
            .await?;
        let Some((kind, subject, attempts)) = row else {
            return Ok(None);
        };
        Ok(Some(ClaimedJob {
            kind: JobKind::parse(&kind)
                .ok_or_else(|| super::StoreError::Corrupt(format!("unknown job kind {kind:?}")))?,
            subject,
            attempts,
            lease_owner: owner.to_string(),
            lease_until,
        }))
    }

    /// Removes a finished job, in the transaction that records its effect.
    pub async fn complete_job(tx: &mut Tx, job: &ClaimedJob) -> Result<()> {
        delete_job_on(tx.conn(), job)
    }

    /// Removes a finished job on its own.
    pub async fn delete_job(&self, job: &ClaimedJob) -> Result<()> {
        self.write(|c| delete_job_on(c, job)).await
    }

    /// Puts a job still held by its owner back in the queue to run at
    /// `run_at` (unix ms).
    pub async fn retry_job(&self, job: &ClaimedJob, run_at: i64, error: &str) -> Result<()> {
        self.write(|c| {
            c.prepare_cached("UPDATE jobs SET state = 'queued', run_at = ?, lease_owner = NULL, lease_until = NULL, last_error = ? WHERE kind = ? AND subject = ? AND lease_owner = ?")?
                .execute(params![run_at, error, job.kind.as_str(), job.subject, job.lease_owner])?;
            Ok(())
        })
        .await
    }

    /// Time (unix ms) at which the next job becomes runnable, if any.
    pub async fn next_job_time(&self) -> Result<Option<i64>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT MIN(CASE WHEN state = 'queued' THEN run_at ELSE lease_until END) FROM jobs",
            )?
            .query_row([], |r| r.get(0))?)
        })
    }

    /// Number of jobs in the queue (any state).
    pub async fn job_count(&self) -> Result<i64> {
        self.read(|c| Ok(c.query_row("SELECT COUNT(*) FROM jobs", [], |r| r.get(0))?))
    }
}

fn delete_job_on(c: &Connection, job: &ClaimedJob) -> Result<()> {
    c.prepare_cached("DELETE FROM jobs WHERE kind = ? AND subject = ?")?
        .execute(params![job.kind.as_str(), job.subject])?;
    Ok(())
}
