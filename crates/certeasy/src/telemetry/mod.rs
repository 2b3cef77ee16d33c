//! Telemetry: logs, request ids and Prometheus metrics.
//!
//! - [`logs`]: the subscriber (format, destination, rotation, per-component
//!   levels from one list of components).
//! - Request ids: every HTTP request and every job attempt runs inside a
//!   tracing span carrying a `request_id`, so every log line of that request
//!   or job names it; the id of the current request is also returned in the
//!   `X-Request-Id` header and in problem documents. [`scope_request_id`]
//!   sets it for a future, [`request_id`] reads it.
//! - [`metrics`]: pre-registered metric handles, recorded by the layers
//!   above with one call each, and rendered for the `/metrics` listener.
//!
//! This module sits below `store` and above `config`: it knows nothing of
//! the database or HTTP routing; the composition root (`server`) feeds it
//! what must be read from elsewhere (queue depth, expiring certificates).

pub mod logs;
pub mod metrics;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

tokio::task_local! {
    static REQUEST_ID: Arc<str>;
}

/// A fresh request id: a random per-process prefix and a counter (unique,
/// no system call per request).
pub fn new_request_id() -> Arc<str> {
    static PREFIX: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| {
        use ring::rand::SecureRandom;
        let mut b = [0u8; 4];
        let _ = ring::rand::SystemRandom::new().fill(&mut b);
        hex::encode(b)
    });
    Arc::from(format!(
        "{prefix}-{:x}",
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ))
}

/// The id of the request (or job) the current task serves; a fresh one
/// outside any (a handler called directly by a test).
pub fn request_id() -> Arc<str> {
    REQUEST_ID
        .try_with(Arc::clone)
        .unwrap_or_else(|_| new_request_id())
}

/// Runs `f` with `id` as the current request id (see [`request_id`]).
pub async fn scope_request_id<F: Future>(id: Arc<str>, f: F) -> F::Output {
    REQUEST_ID.scope(id, f).await
}
