//! What operators and their tools see of a running server: the request
//! span and metrics around every request, `/healthz` and `/readyz` on the
//! ACME listener, and the Prometheus `/metrics` listener.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue, Response, StatusCode};
use axum::middleware::Next;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::ra::Ra;
use crate::telemetry::{self, metrics};
use crate::tls::ListenerCerts;

/// Middleware of every route: a fresh request id, the `request` span that
/// makes every log line of the request carry it, the `X-Request-Id`
/// header, and the request's metrics.
pub(super) async fn track(req: Request, next: Next) -> Response<Body> {
    let route = metrics::route_index(
        req.extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str),
    );
    let route_name = route
        .and_then(|i| metrics::ROUTES.get(i))
        .map_or("other", |r| r.1);
    let id = telemetry::new_request_id();
    let span = tracing::info_span!("request", request_id = %id, method = %req.method(), route = route_name);
    let started = Instant::now();
    let handled = async move {
        tracing::debug!(target: "server", "request started");
        let resp = next.run(req).await;
        tracing::debug!(target: "server", status = resp.status().as_u16(), "request done");
        resp
    };
    let mut resp = telemetry::scope_request_id(id.clone(), handled)
        .instrument(span)
        .await;
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert("x-request-id", v);
    }
    metrics::http_request(route, resp.status().as_u16(), started.elapsed());
    resp
}

/// What `/readyz` checks.
pub(super) struct Readiness {
    pub(super) ra: Arc<Ra>,
    pub(super) certs: Arc<ListenerCerts>,
}

/// `/healthz` and `/readyz`.
pub(super) fn health_router(r: Arc<Readiness>) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(r)
}

/// GET /healthz: the process is up.
async fn healthz() -> &'static str {
    "ok\n"
}

/// GET /readyz: the database answers, every policy has a healthy
/// authority, and every listener certificate is within its validity.
async fn readyz(State(r): State<Arc<Readiness>>) -> Response<Body> {
    let db = r.ra.store.ping().await.is_ok();
    let authorities = r.ra.catalogue.authorities().every_policy_served();
    let invalid = r.certs.invalid_bundles();
    let listener = invalid.is_empty();
    let mut body = serde_json::json!({
        "database": db,
        "authorities": authorities,
        "listener_certificate": listener,
    });
    if !listener {
        body["listener_certificate_problems"] = serde_json::json!(invalid);
    }
    let mut resp = Response::new(Body::from(body.to_string()));
    *resp.status_mut() = if db && authorities && listener {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    resp
}

/// Binds the metrics listener (plain HTTP, `GET /metrics`) and serves it
/// until `stop`.
pub(super) async fn start_metrics(
    addr: SocketAddr,
    ra: Arc<Ra>,
    stop: CancellationToken,
) -> anyhow::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    use anyhow::Context;
    metrics::install()?;
    metrics::register_authorities(ra.config.authorities.iter().map(|a| a.name.as_str()));
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on metrics.listen {addr}"))?;
    let bound = listener.local_addr()?;
    let app = Router::new().route("/metrics", get(scrape)).with_state(ra);
    let upkeep_stop = stop.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(metrics::UPKEEP_INTERVAL);
        loop {
            tokio::select! {
                _ = every.tick() => metrics::upkeep(),
                _ = upkeep_stop.cancelled() => return,
            }
        }
    });
    let task = tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::error!(target: "server", error = %e, "metrics listener failed");
        }
    });
    tracing::info!(target: "server", listen = %bound, "serving Prometheus metrics at /metrics");
    Ok((bound, task))
}

/// GET /metrics: reads what lives in the database (queue, expiring
/// certificates) and the authorities' health, then renders every metric.
async fn scrape(State(ra): State<Arc<Ra>>) -> Response<Body> {
    let now = crate::store::now_ms();
    match ra.store.job_stats(now).await {
        Ok(j) => {
            let age = j
                .oldest_created_at
                .map_or(0, |t| u64::try_from(now - t).unwrap_or(0));
            metrics::jobs(j.queued, j.running, Duration::from_millis(age));
        }
        Err(e) => {
            tracing::warn!(target: "server", error = %e, "metrics: cannot read the job queue")
        }
    }
    let window = i64::try_from(ra.config.metrics.expiring_within.as_millis()).unwrap_or(i64::MAX);
    match ra
        .store
        .count_certs_expiring(now, now.saturating_add(window))
        .await
    {
        Ok(n) => metrics::certificates_expiring(n),
        Err(e) => {
            tracing::warn!(target: "server", error = %e, "metrics: cannot count expiring certificates")
        }
    }
    match ra.store.count_ca_revocations_pending().await {
        Ok(n) => metrics::revocations_pending(n),
        Err(e) => {
            tracing::warn!(target: "server", error = %e, "metrics: cannot count pending revocations")
        }
    }
    let authorities = ra.catalogue.authorities();
    for a in &ra.config.authorities {
        metrics::authority_up(&a.name, authorities.is_healthy(&a.name));
    }
    let text = metrics::render().unwrap_or_default();
    let mut resp = Response::new(Body::from(text));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    resp
}
