//! Prometheus metrics: names, handles and rendering.
//!
//! Metrics are off until [`install`] runs (the server calls it when
//! `metrics.listen` is set); before that every recording function is one
//! atomic load and a return. [`install`] sets the process-wide recorder of
//! the `metrics` crate (its Prometheus exporter renders the text format
//! 0.0.4) and registers every series whose labels are known in advance:
//! the request path increments a handle it looks up in a fixed table (an
//! atomic add; no label string is built or hashed per request). Only
//! values that cannot be listed in advance (an HTTP status outside
//! [`STATUSES`], a rate-limit name) go through the exporter's registry,
//! which hashes the labels; the configured authorities are registered at
//! startup ([`register_authorities`]).
//!
//! Every metric is listed, with its type and labels, in docs/metrics.md.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// HTTP requests, by route and status.
pub const HTTP_REQUESTS: &str = "certeasy_http_requests_total";
/// HTTP request latency, by route.
pub const HTTP_DURATION: &str = "certeasy_http_request_duration_seconds";
/// Orders reaching a final state, by state.
pub const ORDERS: &str = "certeasy_orders_total";
/// Challenge validations, by type and outcome.
pub const VALIDATIONS: &str = "certeasy_validations_total";
/// Challenge validation latency, by type.
pub const VALIDATION_DURATION: &str = "certeasy_validation_duration_seconds";
/// Issuance latency at the authority, by authority and outcome.
pub const ISSUANCE_DURATION: &str = "certeasy_issuance_duration_seconds";
/// Authority health (1 healthy, 0 not), by authority.
pub const AUTHORITY_UP: &str = "certeasy_authority_up";
/// Jobs waiting for a worker.
pub const JOBS_QUEUED: &str = "certeasy_jobs_queued";
/// Jobs being run (leased).
pub const JOBS_RUNNING: &str = "certeasy_jobs_running";
/// Age of the oldest job.
pub const JOBS_OLDEST_AGE: &str = "certeasy_jobs_oldest_age_seconds";
/// Requests refused by a rate limit, by limit.
pub const RATELIMIT_DENIED: &str = "certeasy_ratelimit_denied_total";
/// Audit events that could not be written.
pub const AUDIT_WRITE_FAILURES: &str = "certeasy_audit_write_failures_total";
/// Valid certificates whose notAfter is within `metrics.expiring-within`.
pub const CERTS_EXPIRING: &str = "certeasy_certificates_expiring_soon";
/// Revocations taken to an authority, by authority and outcome.
pub const REVOCATIONS: &str = "certeasy_revocations_total";
/// Revocations recorded in certeasy and not yet confirmed by their CA.
pub const REVOCATIONS_PENDING: &str = "certeasy_revocations_pending";
/// OCSP requests answered by the revocation-status listener, by answer.
pub const OCSP_RESPONSES: &str = "certeasy_ocsp_responses_total";
/// Build information (value 1).
pub const BUILD_INFO: &str = "certeasy_build_info";

/// Route labels of [`HTTP_REQUESTS`]: (axum path pattern, label). A route
/// missing here is counted as `other`.
pub const ROUTES: &[(&str, &str)] = &[
    ("/acme/directory", "directory"),
    ("/acme/new-nonce", "new-nonce"),
    ("/acme/new-account", "new-account"),
    ("/acme/new-order", "new-order"),
    ("/acme/revoke-cert", "revoke-cert"),
    ("/acme/key-change", "key-change"),
    ("/acme/acct/{id}", "account"),
    ("/acme/acct/{id}/orders", "account-orders"),
    ("/acme/order/{id}", "order"),
    ("/acme/authz/{id}", "authz"),
    ("/acme/chall/{id}", "challenge"),
    ("/acme/finalize/{id}", "finalize"),
    ("/acme/cert/{id}", "certificate"),
    ("/acme/renewal-info/{id}", "renewal-info"),
    ("/healthz", "healthz"),
    ("/readyz", "readyz"),
];

/// HTTP statuses with pre-registered series on every route.
pub const STATUSES: &[u16] = &[
    200, 201, 204, 400, 401, 403, 404, 405, 409, 413, 415, 429, 500, 503,
];

/// Challenge types with pre-registered series.
pub const CHALLENGE_TYPES: &[&str] = &["http-01", "dns-01", "tls-alpn-01"];

/// Buckets of every latency histogram, in seconds.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

struct Route {
    by_status: Vec<Counter>,
    latency: Histogram,
}

struct Validation {
    valid: Counter,
    invalid: Counter,
    latency: Histogram,
}

/// The series of one authority.
struct Authority {
    name: String,
    /// Issuance latency by outcome: issued, pending, failed.
    issued: Histogram,
    pending: Histogram,
    failed: Histogram,
    up: Gauge,
}

struct Handles {
    prometheus: PrometheusHandle,
    authorities: std::sync::RwLock<Vec<Authority>>,
    routes: Vec<Route>,
    other_route: Route,
    orders_valid: Counter,
    orders_invalid: Counter,
    validations: Vec<Validation>,
    audit_write_failures: Counter,
    jobs_queued: Gauge,
    jobs_running: Gauge,
    jobs_oldest: Gauge,
    certs_expiring: Gauge,
    revocations_pending: Gauge,
}

static HANDLES: OnceLock<Handles> = OnceLock::new();

fn handles() -> Option<&'static Handles> {
    HANDLES.get()
}

/// Why metrics could not be switched on.
#[derive(Debug, thiserror::Error)]
#[error("cannot set up metrics: {0}")]
pub struct MetricsError(String);

fn route(name: &'static str) -> Route {
    Route {
        by_status: STATUSES
            .iter()
            .map(|s| metrics::counter!(HTTP_REQUESTS, "route" => name, "status" => status_str(*s)))
            .collect(),
        latency: metrics::histogram!(HTTP_DURATION, "route" => name),
    }
}

fn status_str(s: u16) -> &'static str {
    match s {
        200 => "200",
        201 => "201",
        204 => "204",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        409 => "409",
        413 => "413",
        415 => "415",
        429 => "429",
        500 => "500",
        503 => "503",
        _ => "other",
    }
}

/// Switches metrics on for this process (idempotent: a second server in
/// the same process shares the recorder).
pub fn install() -> Result<(), MetricsError> {
    if HANDLES.get().is_some() {
        return Ok(());
    }
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
        .map_err(|e| MetricsError(e.to_string()))?
        .build_recorder();
    let prometheus = recorder.handle();
    if metrics::set_global_recorder(recorder).is_err() {
        // Another thread won the race; its handles are the ones in use.
        return if HANDLES.get().is_some() {
            Ok(())
        } else {
            Err(MetricsError(
                "another metrics recorder is installed in this process".into(),
            ))
        };
    }
    describe();
    metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    let h = Handles {
        prometheus,
        authorities: std::sync::RwLock::new(Vec::new()),
        routes: ROUTES.iter().map(|(_, name)| route(name)).collect(),
        other_route: route("other"),
        orders_valid: metrics::counter!(ORDERS, "state" => "valid"),
        orders_invalid: metrics::counter!(ORDERS, "state" => "invalid"),
        validations: CHALLENGE_TYPES
            .iter()
            .map(|t| Validation {
                valid: metrics::counter!(VALIDATIONS, "type" => *t, "outcome" => "valid"),
                invalid: metrics::counter!(VALIDATIONS, "type" => *t, "outcome" => "invalid"),
                latency: metrics::histogram!(VALIDATION_DURATION, "type" => *t),
            })
            .collect(),
        audit_write_failures: metrics::counter!(AUDIT_WRITE_FAILURES),
        jobs_queued: metrics::gauge!(JOBS_QUEUED),
        jobs_running: metrics::gauge!(JOBS_RUNNING),
        jobs_oldest: metrics::gauge!(JOBS_OLDEST_AGE),
        certs_expiring: metrics::gauge!(CERTS_EXPIRING),
        revocations_pending: metrics::gauge!(REVOCATIONS_PENDING),
    };
    // Register the label-less counters so that they show as 0 before the
    // first event.
    h.audit_write_failures.increment(0);
    let _ = HANDLES.set(h);
    Ok(())
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered on the ACME listener, by route and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time from routing a request to its response, by route"
    );
    describe_counter!(ORDERS, "Orders that reached a final state, by state");
    describe_counter!(
        VALIDATIONS,
        "Challenge validations completed, by challenge type and outcome"
    );
    describe_histogram!(
        VALIDATION_DURATION,
        Unit::Seconds,
        "Duration of one challenge validation attempt, by challenge type"
    );
    describe_histogram!(
        ISSUANCE_DURATION,
        Unit::Seconds,
        "Duration of one signing request at an authority, by authority and outcome"
    );
    describe_gauge!(
        AUTHORITY_UP,
        "Authority health from the periodic probe (1 healthy, 0 unhealthy), by authority"
    );
    describe_gauge!(JOBS_QUEUED, "Jobs in the queue not leased by a worker");
    describe_gauge!(JOBS_RUNNING, "Jobs leased by a worker");
    describe_gauge!(
        JOBS_OLDEST_AGE,
        Unit::Seconds,
        "Age of the oldest job in the queue (0 when empty)"
    );
    describe_counter!(
        RATELIMIT_DENIED,
        "Requests refused by a rate limit, by limit"
    );
    describe_counter!(
        AUDIT_WRITE_FAILURES,
        "Audit events that could not be written"
    );
    describe_gauge!(
        CERTS_EXPIRING,
        "Unrevoked certificates whose notAfter falls within metrics.expiring-within"
    );
    describe_counter!(
        REVOCATIONS,
        "Revocations taken to the authority that signed the certificate, by authority and outcome (confirmed, refused, failed: an attempt that will be retried, local: disable-ca-revocation)"
    );
    describe_gauge!(
        REVOCATIONS_PENDING,
        "Certificates revoked in certeasy whose revocation the CA has not confirmed yet"
    );
    describe_counter!(
        OCSP_RESPONSES,
        "OCSP requests answered by the revocation-status listener, by answer (good, revoked, unknown, malformed, unauthorized)"
    );
    describe_gauge!(BUILD_INFO, "Build information (value 1), by version");
}

/// Whether metrics are on.
pub fn enabled() -> bool {
    HANDLES.get().is_some()
}

/// The exposition text (Prometheus text format 0.0.4).
pub fn render() -> Option<String> {
    handles().map(|h| {
        h.prometheus.run_upkeep();
        h.prometheus.render()
    })
}

/// How often [`upkeep`] should run: the exporter keeps each histogram
/// sample until it is folded into its buckets, so without a scrape the
/// samples of a busy server would pile up.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

/// Folds the recorded histogram samples into their buckets.
pub fn upkeep() {
    if let Some(h) = handles() {
        h.prometheus.run_upkeep();
    }
}

/// Index of a route pattern in [`ROUTES`] (None: `other`).
pub fn route_index(pattern: Option<&str>) -> Option<usize> {
    let p = pattern?;
    ROUTES.iter().position(|(path, _)| *path == p)
}

/// Counts one HTTP response and its latency.
pub fn http_request(route: Option<usize>, status: u16, elapsed: Duration) {
    let Some(h) = handles() else { return };
    let r = route
        .and_then(|i| h.routes.get(i))
        .unwrap_or(&h.other_route);
    match STATUSES.iter().position(|s| *s == status) {
        Some(i) => r.by_status[i].increment(1),
        None => {
            let name = route.and_then(|i| ROUTES.get(i)).map_or("other", |r| r.1);
            metrics::counter!(HTTP_REQUESTS, "route" => name, "status" => status.to_string())
                .increment(1);
        }
    }
    r.latency.record(elapsed.as_secs_f64());
}

/// Counts an order reaching `valid` (true) or `invalid` (false).
pub fn order_final(valid: bool) {
    let Some(h) = handles() else { return };
    if valid {
        h.orders_valid.increment(1);
    } else {
        h.orders_invalid.increment(1);
    }
}

/// Counts a challenge validation of `kind` (`http-01`, …) and its duration.
pub fn validation(kind: &str, valid: bool, elapsed: Duration) {
    let Some(h) = handles() else { return };
    let Some(v) = CHALLENGE_TYPES
        .iter()
        .position(|t| *t == kind)
        .and_then(|i| h.validations.get(i))
    else {
        return;
    };
    if valid { &v.valid } else { &v.invalid }.increment(1);
    v.latency.record(elapsed.as_secs_f64());
}

/// Registers the series of the configured authorities (the server calls
/// it at startup), so that recording for them takes no registry lookup.
pub fn register_authorities<'a>(names: impl IntoIterator<Item = &'a str>) {
    let Some(h) = handles() else { return };
    let mut list = h
        .authorities
        .write()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    for name in names {
        if list.iter().any(|a| a.name == name) {
            continue;
        }
        let owned = name.to_string();
        list.push(Authority {
            issued: metrics::histogram!(ISSUANCE_DURATION, "authority" => owned.clone(), "outcome" => "issued"),
            pending: metrics::histogram!(ISSUANCE_DURATION, "authority" => owned.clone(), "outcome" => "pending"),
            failed: metrics::histogram!(ISSUANCE_DURATION, "authority" => owned.clone(), "outcome" => "failed"),
            up: metrics::gauge!(AUTHORITY_UP, "authority" => owned.clone()),
            name: owned,
        });
    }
}

/// Records one signing request at `authority`: `outcome` is `issued`,
/// `pending` or `failed`.
pub fn issuance(authority: &str, outcome: &'static str, elapsed: Duration) {
    let Some(h) = handles() else { return };
    let secs = elapsed.as_secs_f64();
    let list = h
        .authorities
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match list.iter().find(|a| a.name == authority) {
        Some(a) => match outcome {
            "issued" => a.issued.record(secs),
            "pending" => a.pending.record(secs),
            _ => a.failed.record(secs),
        },
        // `none` (no authority could be asked), or one not registered.
        None => metrics::histogram!(ISSUANCE_DURATION, "authority" => authority.to_string(), "outcome" => outcome)
            .record(secs),
    }
}

/// Sets the health of `authority`.
pub fn authority_up(authority: &str, up: bool) {
    let Some(h) = handles() else { return };
    let value = f64::from(u8::from(up));
    let list = h
        .authorities
        .read()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match list.iter().find(|a| a.name == authority) {
        Some(a) => a.up.set(value),
        None => metrics::gauge!(AUTHORITY_UP, "authority" => authority.to_string()).set(value),
    }
}

/// Counts a request refused by the rate limit `limit`. (Wired by the rate
/// limiter.)
pub fn ratelimit_denied(limit: &str) {
    if !enabled() {
        return;
    }
    metrics::counter!(RATELIMIT_DENIED, "limit" => limit.to_string()).increment(1);
}

/// Counts an audit event that could not be written. (Wired by the audit
/// writer.)
pub fn audit_write_failed() {
    if let Some(h) = handles() {
        h.audit_write_failures.increment(1);
    }
}

/// Sets the job queue gauges (read from the database at scrape time).
pub fn jobs(queued: i64, running: i64, oldest_age: Duration) {
    let Some(h) = handles() else { return };
    h.jobs_queued.set(queued as f64);
    h.jobs_running.set(running as f64);
    h.jobs_oldest.set(oldest_age.as_secs_f64());
}

/// Sets the number of certificates expiring soon (read at scrape time).
pub fn certificates_expiring(count: i64) {
    if let Some(h) = handles() {
        h.certs_expiring.set(count as f64);
    }
}

/// Counts one outcome of taking a revocation to `authority`: `confirmed`,
/// `refused`, `failed` (an attempt that is retried) or `local`
/// (`disable-ca-revocation`). Not on the issuance path.
pub fn revocation(authority: &str, outcome: &'static str) {
    if !enabled() {
        return;
    }
    metrics::counter!(REVOCATIONS, "authority" => authority.to_string(), "outcome" => outcome)
        .increment(1);
}

/// Sets the number of revocations pending at a CA (read at scrape time).
pub fn revocations_pending(count: i64) {
    if let Some(h) = handles() {
        h.revocations_pending.set(count as f64);
    }
}

/// Counts one OCSP answer: `good`, `revoked`, `unknown`, `malformed` or
/// `unauthorized`.
pub fn ocsp_response(answer: &'static str) {
    if !enabled() {
        return;
    }
    metrics::counter!(OCSP_RESPONSES, "answer" => answer).increment(1);
}
