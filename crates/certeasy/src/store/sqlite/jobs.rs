//! Durable jobs: the persistence half of the job engine (`crate::jobs`).

use rusqlite::{params, Connection, OptionalExtension};

use super::{Result, SqliteStore, SqliteTx};
use crate::store::jobs::JobInfo;
use crate::store::{now_ms, ClaimedJob, JobKind, JobStats, StoreError};

// The methods of `Store` for this area (their contracts are documented
// there), in SQL.
impl SqliteStore {
    pub(in crate::store) async fn enqueue_leased_job(
        tx: &mut SqliteTx,
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

    pub(in crate::store) async fn renew_lease(
        &self,
        job: &ClaimedJob,
        lease_until: i64,
    ) -> Result<bool> {
        self.write(|c| {
            let n = c
                .prepare_cached("UPDATE jobs SET lease_until = ? WHERE kind = ? AND subject = ? AND state = 'running' AND lease_owner = ?")?
                .execute(params![lease_until, job.kind.as_str(), job.subject, job.lease_owner])?;
            Ok(n == 1)
        })
        .await
    }

    pub(in crate::store) async fn claim_job(
        &self,
        owner: &str,
        lease_ms: i64,
    ) -> Result<Option<ClaimedJob>> {
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
                .ok_or_else(|| StoreError::Corrupt(format!("unknown job kind {kind:?}")))?,
            subject,
            attempts,
            lease_owner: owner.to_string(),
            lease_until,
        }))
    }

    pub(in crate::store) async fn complete_job(tx: &mut SqliteTx, job: &ClaimedJob) -> Result<()> {
        delete_job_on(tx.conn(), job)
    }

    pub(in crate::store) async fn delete_job(&self, job: &ClaimedJob) -> Result<()> {
        self.write(|c| delete_job_on(c, job)).await
    }

    pub(in crate::store) async fn retry_job(
        &self,
        job: &ClaimedJob,
        run_at: i64,
        error: &str,
    ) -> Result<()> {
        self.write(|c| {
            c.prepare_cached("UPDATE jobs SET state = 'queued', run_at = ?, lease_owner = NULL, lease_until = NULL, last_error = ? WHERE kind = ? AND subject = ? AND lease_owner = ?")?
                .execute(params![run_at, error, job.kind.as_str(), job.subject, job.lease_owner])?;
            Ok(())
        })
        .await
    }

    pub(in crate::store) async fn next_job_time(&self) -> Result<Option<i64>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT MIN(CASE WHEN state = 'queued' THEN run_at ELSE lease_until END) FROM jobs",
            )?
            .query_row([], |r| r.get(0))?)
        })
    }

    pub(in crate::store) async fn job_stats(&self, now: i64) -> Result<JobStats> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT COALESCE(SUM(lease_until IS NULL OR lease_until <= ?1), 0), \
                        COALESCE(SUM(lease_until > ?1), 0), MIN(created_at) FROM jobs",
            )?
            .query_row(params![now], |r| {
                Ok(JobStats {
                    queued: r.get(0)?,
                    running: r.get(1)?,
                    oldest_created_at: r.get(2)?,
                })
            })?)
        })
    }

    pub(in crate::store) async fn job_info(
        &self,
        kind: JobKind,
        subject: &str,
    ) -> Result<Option<JobInfo>> {
        self.read(|c| {
            Ok(c.prepare_cached(
                "SELECT attempts, CASE WHEN state = 'queued' THEN run_at ELSE lease_until END, last_error \
                 FROM jobs WHERE kind = ? AND subject = ?",
            )?
            .query_row(params![kind.as_str(), subject], |r| {
                Ok(JobInfo {
                    attempts: r.get(0)?,
                    next_run: r.get(1)?,
                    last_error: r.get(2)?,
                })
            })
            .optional()?)
        })
    }

    pub(in crate::store) async fn job_count(&self) -> Result<i64> {
        self.read(|c| Ok(c.query_row("SELECT COUNT(*) FROM jobs", [], |r| r.get(0))?))
    }
}

fn delete_job_on(c: &Connection, job: &ClaimedJob) -> Result<()> {
    c.prepare_cached("DELETE FROM jobs WHERE kind = ? AND subject = ?")?
        .execute(params![job.kind.as_str(), job.subject])?;
    Ok(())
}
