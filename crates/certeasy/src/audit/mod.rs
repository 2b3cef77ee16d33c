//! The tamper-evident audit log (SPEC §8): who changed what, when, from
//! where — written so that removing, inserting, reordering or editing a
//! line is detected by `certeasy audit verify`.
//!
//! Why an outbox: an event must exist exactly when the state change it
//! reports committed — never for a change that rolled back, never lost for
//! one that committed, even across a crash. So callers record an [`Event`]
//! with [`Audit::record`] *inside the transaction of the change*; it lands
//! in the database's outbox with the change or not at all. The node's
//! [`writer`] drains the outbox in order into an HMAC-chained JSONL file
//! (format in [`chain`]), fsyncs, and only then deletes the drained rows
//! while recording the chain's end — and after a crash between the two it
//! trims, from the file's last complete line, what was already written.
//! The request path pays one small INSERT per event; the file I/O and the
//! MACs happen on the writer's task, in batches.
//!
//! A failure to write the file never blocks issuance: events stay in the
//! outbox, the failure is logged and counted (`certeasy_audit_write_failures_total`),
//! and the writer retries with back-off.
//!
//! Identity: the installation id (`server_id`) lives in
//! `%WORKDIR%/server_id` ([`server_id`]) and is registered in the database
//! with its chain; the chain's key is a per-installation secret kept in the
//! database (`meta.audit_key`) and never logged.

pub mod chain;
pub mod segments;
pub mod verify;
pub mod writer;

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value};
use tokio::sync::{mpsc, oneshot, Notify};

use crate::store::{self, now_ms, AuditRow, Store, Tx};

/// Key of the audit secret in the database's `meta` table.
pub const KEY_META: &str = "audit_key";

/// Name of the file in the workdir holding the installation id.
pub const SERVER_ID_FILE: &str = "server_id";

/// The node's installation id, from `%WORKDIR%/server_id` (created with a
/// fresh id on first start).
pub fn server_id(workdir: &Path) -> anyhow::Result<String> {
    use anyhow::Context;
    let path = workdir.join(SERVER_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(s) => {
            let id = s.trim();
            let ok = !id.is_empty()
                && id.len() <= 64
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
            anyhow::ensure!(
                ok,
                "{} does not hold an installation id (1 to 64 letters, digits, '-' or '_'); restore it from a backup, or delete it to start a new audit chain",
                path.display()
            );
            Ok(id.to_string())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = store::new_id();
            crate::fsutil::replace_file(&path, format!("{id}\n").as_bytes(), false)
                .with_context(|| format!("cannot write {}", path.display()))?;
            Ok(id)
        }
        Err(e) => Err(e).with_context(|| format!("cannot read {}", path.display())),
    }
}

/// Where a request came from: set by the web front end around each
/// request, read when an event is recorded on that request's task.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    /// The client's address (after the trusted-proxy rule).
    pub ip: Option<IpAddr>,
    /// Its `User-Agent`.
    pub user_agent: Option<String>,
}

tokio::task_local! {
    static ORIGIN: Origin;
}

/// Runs `f` with `origin` as the source of the events it records.
pub async fn with_origin<F: std::future::Future>(origin: Origin, f: F) -> F::Output {
    ORIGIN.scope(origin, f).await
}

/// One audit event, built by the code that makes the change.
#[derive(Debug, Clone)]
pub struct Event {
    name: &'static str,
    account_id: Option<String>,
    decision: Option<&'static str>,
    reason: Option<String>,
    details: Map<String, Value>,
}

impl Event {
    /// An event named `name` (`order.create`, …; SPEC §8 lists them).
    pub fn new(name: &'static str) -> Event {
        Event {
            name,
            account_id: None,
            decision: None,
            reason: None,
            details: Map::new(),
        }
    }

    /// The account concerned.
    pub fn account(mut self, id: &str) -> Event {
        self.account_id = Some(id.to_string());
        self
    }

    /// A decision (`allow`, `deny`).
    pub fn decision(mut self, d: &'static str) -> Event {
        self.decision = Some(d);
        self
    }

    /// Why.
    pub fn reason(mut self, r: impl Into<String>) -> Event {
        self.reason = Some(r.into());
        self
    }

    /// An event-specific member of `details`.
    pub fn detail(mut self, name: &str, v: impl Into<Value>) -> Event {
        self.details.insert(name.to_string(), v.into());
        self
    }

    /// The event's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    fn row(self) -> AuditRow {
        let origin = ORIGIN.try_with(Origin::clone).unwrap_or_default();
        AuditRow {
            id: 0,
            ts: now_ms(),
            event: self.name.to_string(),
            account_id: self.account_id,
            source_ip: origin.ip.map(|ip| ip.to_string()),
            user_agent: origin.user_agent,
            decision: self.decision.map(str::to_string),
            reason: self.reason,
            details: (!self.details.is_empty()).then(|| Value::Object(self.details).to_string()),
        }
    }
}

/// The recording side of the audit log, held by the layers that make
/// changes. Cheap to clone; a disabled log records nothing.
#[derive(Debug, Clone, Default)]
pub struct Audit {
    inner: Option<Arc<Shared>>,
}

#[derive(Debug)]
struct Shared {
    server_id: String,
    /// Wakes the writer: events were recorded.
    wake: Notify,
    /// Requests to drain now, answered when done.
    flush: mpsc::Sender<oneshot::Sender<bool>>,
}

impl Audit {
    /// A log that records nothing (`audit.enabled: false`).
    pub fn disabled() -> Audit {
        Audit { inner: None }
    }

    /// The recording side for a process that is not the node's server
    /// (an operator command): its events go to the node's outbox, and the
    /// node's server writes them — at once if it runs, else at its next
    /// start.
    pub fn for_node(config: &crate::config::Config) -> anyhow::Result<Audit> {
        if !config.audit.enabled {
            return Ok(Audit::disabled());
        }
        let (flush, _) = mpsc::channel(1);
        Ok(Audit {
            inner: Some(Arc::new(Shared {
                server_id: server_id(&config.workdir)?,
                wake: Notify::new(),
                flush,
            })),
        })
    }

    /// Records `e` in `tx`, the transaction of the change it reports.
    pub async fn record(&self, tx: &mut Tx, e: Event) -> store::Result<()> {
        let Some(s) = &self.inner else {
            return Ok(());
        };
        Store::audit_append(tx, &s.server_id, &e.row()).await?;
        s.wake.notify_one();
        Ok(())
    }

    /// Records `e`, which reports no state change (a refusal), in a
    /// transaction of its own. A failure is logged and counted, never
    /// returned: the refusal stands either way.
    pub async fn record_alone(&self, store: &Store, e: Event) {
        if self.inner.is_none() {
            return;
        }
        let name = e.name;
        let result = async {
            let mut tx = store.begin().await?;
            self.record(&mut tx, e).await?;
            tx.commit().await
        }
        .await;
        if let Err(err) = result {
            self.failed();
            tracing::error!(target: "audit", event = name, error = %err, "audit event could not be recorded");
        }
    }

    /// Waits until the writer has written every event committed before
    /// this call; false when it could not (write failure, log disabled or
    /// stopped).
    pub async fn flush(&self) -> bool {
        let Some(s) = &self.inner else {
            return false;
        };
        let (tx, rx) = oneshot::channel();
        if s.flush.send(tx).await.is_err() {
            return false;
        }
        rx.await.unwrap_or(false)
    }

    /// Counts an audit write failure (`certeasy_audit_write_failures_total`).
    fn failed(&self) {
        crate::telemetry::metrics::audit_write_failed();
    }
}
