//! Several nodes on one database: each node's hold on its worker id, and
//! the wake-ups that tell idle nodes a job is waiting.
//!
//! On PostgreSQL a node keeps one connection of its own outside the pool
//! ([`Store::join_cluster`]) which holds a session-level advisory lock on
//! its worker id — a second node with the same id is refused at start, and
//! the lock goes with the session when the node dies, so a killed node's id
//! is free again as soon as the server notices its connection closed — and
//! listens on the jobs channel (`LISTEN/NOTIFY`). SQLite is one node: there
//! is nothing to join.

use std::sync::Arc;

use super::{Engine, Result, Store};

/// A node's membership of the cluster: while it is held, the worker id is
/// this node's and notifications wake its workers. [`Membership::leave`]
/// releases the id before it returns; dropping it leaves too, without
/// waiting.
pub struct Membership {
    stop: tokio_util::sync::CancellationToken,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl std::fmt::Debug for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Membership")
    }
}

impl Membership {
    pub(super) fn new(
        stop: tokio_util::sync::CancellationToken,
        task: tokio::task::JoinHandle<()>,
    ) -> Membership {
        Membership {
            stop,
            task: Some(task),
        }
    }

    /// Leaves the cluster: the worker id is free when this returns.
    pub async fn leave(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl Store {
    /// Joins the cluster as `worker_id`; `wake` is called when another
    /// node queued a job that any node may run. None on SQLite (one node).
    /// Fails with [`StoreError::Conflict`](super::StoreError::Conflict)
    /// when a live node holds `worker_id`.
    pub async fn join_cluster(
        &self,
        worker_id: &str,
        wake: Arc<dyn Fn() + Send + Sync>,
    ) -> Result<Option<Membership>> {
        match &self.engine {
            Engine::Sqlite(_) => Ok(None),
            Engine::Postgres(s) => Ok(Some(s.join_cluster(worker_id, wake).await?)),
        }
    }
}

impl Store {
    /// Takes `n` tokens for `key` from the cluster's token bucket `name`
    /// (GCRA: one emission every `emission_ms`, `burst` at once), kept in
    /// the database so every node counts in the same bucket: `Ok(())`, or
    /// `Err(Some(ms))` until the tokens are there, or `Err(None)` when `n`
    /// is more than the bucket holds. None on SQLite (one node: the
    /// buckets stay in memory).
    pub async fn cluster_bucket_take(
        &self,
        name: &str,
        key: &str,
        n: i64,
        emission_ms: i64,
        burst: i64,
    ) -> Result<Option<std::result::Result<(), Option<i64>>>> {
        match &self.engine {
            Engine::Sqlite(_) => Ok(None),
            Engine::Postgres(s) => Ok(Some(
                s.cluster_bucket_take(name, key, n, emission_ms, burst, super::now_ms())
                    .await?,
            )),
        }
    }
}

impl Store {
    /// Forgets the cluster's token buckets that are full again; how many
    /// went (0 on SQLite).
    pub async fn cluster_buckets_prune(&self, now: i64) -> Result<u64> {
        match &self.engine {
            Engine::Sqlite(_) => Ok(0),
            Engine::Postgres(s) => Ok(s.cluster_buckets_prune(now).await?),
        }
    }
}
