//! Durable jobs: the persistence half of the job engine (`crate::jobs`).
//!
//! Several nodes claim from one table: the claim selects the oldest
//! runnable job `FOR UPDATE SKIP LOCKED`, so concurrent claims take
//! different jobs and never wait for each other, and a job whose lease ran
//! out (its node died) is claimed like a queued one. A job enqueued
//! claimable at once (not handed to a worker of this node) is announced
//! with `NOTIFY certeasy_jobs` at commit, so idle nodes wake up for it.

use deadpool_postgres::Object;

use super::{execute, params, query_one, query_opt, PgStore, PgTx, Result};
use crate::store::jobs::JobInfo;
use crate::store::{now_ms, ClaimedJob, JobKind, JobStats, StoreError};

/// The channel of job wake-ups.
pub(in crate::store) const JOBS_CHANNEL: &str = "certeasy_jobs";

// The methods of `Store` for this area (their contracts are documented
// there), in SQL.
impl PgStore {
    pub(in crate::store) async fn enqueue_leased_job(
        tx: &mut PgTx,
        kind: JobKind,
        subject: &str,
        owner: &str,
        lease_ms: i64,
    ) -> Result<Option<ClaimedJob>> {
        let now = now_ms();
        let lease_until = now + lease_ms;
        let inserted = execute(
            tx.c(),
            "INSERT INTO jobs (kind, subject, state, run_at, lease_owner, lease_until, attempts, created_at) \
             VALUES ($1, $2, 'running', $3, $4, $5, 1, $3) ON CONFLICT (kind, subject) DO NOTHING",
            params![kind.as_str(), subject, now, owner, lease_until],
        )
        .await?;
        if inserted == 1 && lease_ms <= 0 {
            execute(tx.c(), "SELECT pg_notify($1, '')", params![JOBS_CHANNEL]).await?;
        }
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
        let n = execute(
            &self.conn().await?,
            "UPDATE jobs SET lease_until = $1 WHERE kind = $2 AND subject = $3 AND state = 'running' AND lease_owner = $4",
            params![lease_until, job.kind.as_str(), job.subject, job.lease_owner],
        )
        .await?;
        Ok(n == 1)
    }

    pub(in crate::store) async fn claim_job(
        &self,
        owner: &str,
        lease_ms: i64,
    ) -> Result<Option<ClaimedJob>> {
        let now = now_ms();
        let lease_until = now + lease_ms;
        let row = query_opt(
            &self.conn().await?,
            "WITH next AS (SELECT kind, subject FROM jobs \
                 WHERE (state = 'queued' AND run_at <= $3) OR (state = 'running' AND lease_until < $3) \
                 ORDER BY run_at LIMIT 1 FOR UPDATE SKIP LOCKED) \
             UPDATE jobs SET state = 'running', lease_owner = $1, lease_until = $2, attempts = jobs.attempts + 1 \
             FROM next WHERE jobs.kind = next.kind AND jobs.subject = next.subject \
             RETURNING jobs.kind, jobs.subject, jobs.attempts",
            params![owner, lease_until, now],
        )
        .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let kind: String = row.try_get(0)?;
        Ok(Some(ClaimedJob {
            kind: JobKind::parse(&kind)
                .ok_or_else(|| StoreError::Corrupt(format!("unknown job kind {kind:?}")))?,
            subject: row.try_get(1)?,
            attempts: row.try_get(2)?,
            lease_owner: owner.to_string(),
            lease_until,
        }))
    }

    pub(in crate::store) async fn complete_job(tx: &mut PgTx, job: &ClaimedJob) -> Result<()> {
        delete_job_on(tx.c(), job).await
    }

    pub(in crate::store) async fn delete_job(&self, job: &ClaimedJob) -> Result<()> {
        delete_job_on(&self.conn().await?, job).await
    }

    pub(in crate::store) async fn retry_job(
        &self,
        job: &ClaimedJob,
        run_at: i64,
        error: &str,
    ) -> Result<()> {
        execute(
            &self.conn().await?,
            "UPDATE jobs SET state = 'queued', run_at = $1, lease_owner = NULL, lease_until = NULL, last_error = $2 \
             WHERE kind = $3 AND subject = $4 AND lease_owner = $5",
            params![run_at, error, job.kind.as_str(), job.subject, job.lease_owner],
        )
        .await?;
        Ok(())
    }

    pub(in crate::store) async fn next_job_time(&self) -> Result<Option<i64>> {
        Ok(query_one(
            &self.conn().await?,
            "SELECT MIN(CASE WHEN state = 'queued' THEN run_at ELSE lease_until END) FROM jobs",
            &[],
        )
        .await?
        .try_get(0)?)
    }

    pub(in crate::store) async fn job_stats(&self, now: i64) -> Result<JobStats> {
        let row = query_one(
            &self.conn().await?,
            "SELECT COUNT(*) FILTER (WHERE lease_until IS NULL OR lease_until <= $1), \
                    COUNT(*) FILTER (WHERE lease_until > $1), MIN(created_at) FROM jobs",
            params![now],
        )
        .await?;
        Ok(JobStats {
            queued: row.try_get(0)?,
            running: row.try_get(1)?,
            oldest_created_at: row.try_get(2)?,
        })
    }

    pub(in crate::store) async fn job_info(
        &self,
        kind: JobKind,
        subject: &str,
    ) -> Result<Option<JobInfo>> {
        query_opt(
            &self.conn().await?,
            "SELECT attempts, COALESCE(CASE WHEN state = 'queued' THEN run_at ELSE lease_until END, run_at), last_error \
             FROM jobs WHERE kind = $1 AND subject = $2",
            params![kind.as_str(), subject],
        )
        .await?
        .map(|r| {
            Ok(JobInfo {
                attempts: r.try_get(0)?,
                next_run: r.try_get(1)?,
                last_error: r.try_get(2)?,
            })
        })
        .transpose()
    }

    pub(in crate::store) async fn job_count(&self) -> Result<i64> {
        Ok(
            query_one(&self.conn().await?, "SELECT COUNT(*) FROM jobs", &[])
                .await?
                .try_get(0)?,
        )
    }
}

async fn delete_job_on(c: &Object, job: &ClaimedJob) -> Result<()> {
    execute(
        c,
        "DELETE FROM jobs WHERE kind = $1 AND subject = $2",
        params![job.kind.as_str(), job.subject],
    )
    .await?;
    Ok(())
}
