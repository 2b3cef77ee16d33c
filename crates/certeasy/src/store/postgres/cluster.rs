//! A node's hold on its worker id and its job wake-ups, on a connection of
//! its own (see `store::cluster`).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use tokio::task::JoinHandle;
use tokio_postgres::AsyncMessage;
use tokio_util::sync::CancellationToken;

use super::jobs::JOBS_CHANNEL;
use super::{describe, PgStore, Result};
use crate::store::cluster::Membership;
use crate::store::StoreError;

/// First key of the worker-id advisory locks (the second is the id's hash).
const NODE_LOCK_CLASS: i32 = 0x000a_0de1;

/// Pause before reconnecting after the connection was lost.
const RECONNECT_AFTER: Duration = Duration::from_secs(1);

impl PgStore {
    pub(in crate::store) async fn join_cluster(
        &self,
        worker_id: &str,
        wake: Arc<dyn Fn() + Send + Sync>,
    ) -> Result<Membership> {
        let stop = CancellationToken::new();
        let session = self
            .node_session(worker_id, wake.clone(), stop.clone())
            .await?;
        let store = self.clone();
        let id = worker_id.to_string();
        let watch = stop.clone();
        let task = tokio::spawn(async move {
            let mut session = session;
            loop {
                // The session ends when the connection is lost, or when the
                // node leaves (after unlocking its id).
                let _ = (&mut session).await;
                if watch.is_cancelled() {
                    return;
                }
                // Lost (server restart, network): hold the id again and
                // listen again once the server is back.
                tracing::warn!(target: "store", worker_id = %id, "lost the cluster connection; reconnecting");
                loop {
                    tokio::select! {
                        _ = tokio::time::sleep(RECONNECT_AFTER) => {}
                        _ = watch.cancelled() => return,
                    }
                    match store.node_session(&id, wake.clone(), watch.clone()).await {
                        Ok(s) => {
                            session = s;
                            // Jobs may have been queued meanwhile.
                            wake();
                            break;
                        }
                        Err(e) => {
                            tracing::error!(target: "store", worker_id = %id, error = %StoreError::from(e), "cannot rejoin the cluster");
                        }
                    }
                }
            }
        });
        Ok(Membership::new(stop, task))
    }

    /// Opens the node's connection, takes the worker-id lock and listens.
    /// The returned task ends when the connection is lost, or on `stop`
    /// once the lock is released and the connection closed.
    async fn node_session(
        &self,
        worker_id: &str,
        wake: Arc<dyn Fn() + Send + Sync>,
        stop: CancellationToken,
    ) -> Result<JoinHandle<()>> {
        let app = format!("certeasy node {worker_id}");
        let (client, mut messages) = self.dedicated(&app).await?;
        // Drives the connection until it ends (the client dropped, or the
        // connection lost), waking the workers on every notification.
        let driver = tokio::spawn(async move {
            while let Some(m) = messages.next().await {
                match m {
                    Ok(AsyncMessage::Notification(_)) => wake(),
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(target: "store", error = %describe(&e), "cluster connection failed");
                        return;
                    }
                }
            }
        });
        let held: bool = client
            .query_one(
                "SELECT pg_try_advisory_lock($1, hashtext($2))",
                &[&NODE_LOCK_CLASS, &worker_id],
            )
            .await?
            .try_get(0)?;
        if !held {
            let holder = client
                .query_opt(
                    "SELECT COALESCE(client_addr::text, 'local socket'), backend_start::text FROM pg_stat_activity \
                     WHERE application_name = $1 AND pid <> pg_backend_pid() LIMIT 1",
                    &[&app],
                )
                .await?
                .map(|r| {
                    format!(
                        " (connected from {} since {})",
                        r.get::<_, String>(0),
                        r.get::<_, String>(1)
                    )
                })
                .unwrap_or_default();
            drop(client);
            let _ = driver.await;
            return Err(StoreError::Conflict {
                message: format!(
                    "worker id {worker_id:?} is held by a live node{holder}; give each node its own workers.worker-id"
                ),
                source: "worker id held".into(),
            }
            .into());
        }
        client
            .batch_execute(&format!("LISTEN {JOBS_CHANNEL}"))
            .await?;
        let id = worker_id.to_string();
        Ok(tokio::spawn(async move {
            let mut driver = driver;
            tokio::select! {
                _ = &mut driver => return,
                _ = stop.cancelled() => {}
            }
            // Leaving: the id is free at once for a node started next.
            if let Err(e) = client
                .query_one(
                    "SELECT pg_advisory_unlock($1, hashtext($2))",
                    &[&NODE_LOCK_CLASS, &id],
                )
                .await
            {
                tracing::warn!(target: "store", error = %describe(&e), "cannot release the worker id; it is released when the connection closes");
            }
            drop(client);
            let _ = driver.await;
        }))
    }
}
