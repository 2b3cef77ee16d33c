//! The `revocation-status` listener: plain HTTP, publishing the CRL of
//! every built-in CA (`GET /crl/<authority>.crl`) and answering OCSP for
//! them (RFC 6960: `POST /ocsp`, `GET /ocsp/<base64 request>`).
//!
//! CRLs come from [`crate::ra::crl`]: rebuilt by the revoke job right
//! after a revocation, by this listener's refresher before half of their
//! lifetime ([`CRL_VALIDITY`]) has passed, and by a request that finds
//! one out of date. An OCSP answer is read from the certificate's row at
//! the time of the request (a revocation shows at once) and signed by the
//! CA.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use pki::ocsp::{OcspQuery, ResponseStatus, Status};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::ca::Authorities;
use crate::ra::crl::CRL_VALIDITY;
use crate::store::Store;
use crate::telemetry::metrics;

/// Lifetime of an OCSP answer (its nextUpdate).
pub const OCSP_VALIDITY: Duration = Duration::from_secs(3600);

/// What the handlers need.
struct StatusState {
    store: Store,
    authorities: Arc<Authorities>,
}

type S = State<Arc<StatusState>>;

/// Binds `addr` and serves CRLs and OCSP until `stop`.
pub(super) async fn start(
    addr: SocketAddr,
    store: Store,
    authorities: Arc<Authorities>,
    stop: CancellationToken,
) -> anyhow::Result<SocketAddr> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on revocation-status.listen {addr}"))?;
    let bound = listener.local_addr()?;
    let cas: Vec<String> = authorities
        .builtin_cas()
        .map(|(n, _)| n.to_string())
        .collect();
    tokio::spawn(refresh_crls(
        store.clone(),
        authorities.clone(),
        stop.clone(),
    ));
    let state = Arc::new(StatusState { store, authorities });
    let app = Router::new()
        .route("/crl/{file}", get(crl))
        .route("/ocsp", post(ocsp_post))
        .route("/ocsp/{*request}", get(ocsp_get))
        .layer(axum::extract::DefaultBodyLimit::max(
            pki::ocsp::MAX_REQUEST_BYTES,
        ))
        .with_state(state);
    tokio::spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
        if let Err(e) = served {
            tracing::error!(target: "server", error = %e, "revocation-status listener failed");
        }
    });
    tracing::info!(target: "server", listen = %bound, built_in_cas = ?cas, "serving CRLs at /crl/<authority>.crl and OCSP at /ocsp (plain HTTP)");
    Ok(bound)
}

/// Keeps every built-in CA's CRL fresh without waiting for a fetch: at
/// start and every eighth of [`CRL_VALIDITY`], rebuilds those out of date.
async fn refresh_crls(store: Store, authorities: Arc<Authorities>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(CRL_VALIDITY / 8);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        for (name, ca) in authorities.builtin_cas() {
            if let Err(e) = crate::ra::crl::current(&store, name, ca).await {
                tracing::warn!(target: "server", authority = name, error = %format!("{e:#}"), "cannot refresh the CRL; retried at the next tick or fetch");
            }
        }
    }
}

fn respond(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<Body> {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r
}

fn text(status: StatusCode, message: String) -> Response<Body> {
    respond(status, "text/plain; charset=utf-8", message.into_bytes())
}

/// GET /crl/<authority>.crl
async fn crl(State(s): S, Path(file): Path<String>) -> Response<Body> {
    let Some(name) = file.strip_suffix(".crl") else {
        return text(
            StatusCode::NOT_FOUND,
            "CRLs are at /crl/<authority>.crl\n".into(),
        );
    };
    let Some(ca) = s.authorities.builtin_ca(name) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("{name:?} is not a built-in CA of this server\n"),
        );
    };
    match crate::ra::crl::current(&s.store, name, ca).await {
        Ok(der) => respond(StatusCode::OK, "application/pkix-crl", der),
        Err(e) => {
            tracing::error!(target: "server", authority = name, error = %format!("{e:#}"), "cannot build the CRL");
            text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the CRL cannot be built now; try again later\n".into(),
            )
        }
    }
}

/// POST /ocsp (RFC 6960 Appendix A.1).
async fn ocsp_post(State(s): S, headers: HeaderMap, body: Bytes) -> Response<Body> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !ct.eq_ignore_ascii_case("application/ocsp-request") {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "send the DER OCSP request with Content-Type: application/ocsp-request\n".into(),
        );
    }
    ocsp(&s, &body).await
}

/// GET /ocsp/<url-encoded base64 of the DER request> (RFC 6960 Appendix
/// A.1).
async fn ocsp_get(State(s): S, Path(request): Path<String>) -> Response<Body> {
    use base64::Engine;
    match base64::engine::general_purpose::STANDARD.decode(request.trim()) {
        Ok(der) => ocsp(&s, &der).await,
        Err(_) => {
            metrics::ocsp_response("malformed");
            ocsp_error(ResponseStatus::MalformedRequest)
        }
    }
}

fn ocsp_error(status: ResponseStatus) -> Response<Body> {
    respond(
        StatusCode::OK,
        "application/ocsp-response",
        pki::ocsp::error_response(status),
    )
}

async fn ocsp(s: &StatusState, der: &[u8]) -> Response<Body> {
    let query = match pki::ocsp::parse_request(der) {
        Ok(q) => q,
        Err(e) => {
            tracing::debug!(target: "server", error = %e, "OCSP request refused");
            metrics::ocsp_response("malformed");
            return ocsp_error(ResponseStatus::MalformedRequest);
        }
    };
    // The CA of the first certificate asked about signs; certificates of
    // another issuer in the same request are `unknown`.
    let Some((name, ca)) = query.cert_ids.first().and_then(|first| {
        s.authorities
            .builtin_cas()
            .find(|(_, ca)| ca.issued_cert_id(first))
    }) else {
        metrics::ocsp_response("unauthorized");
        return ocsp_error(ResponseStatus::Unauthorized);
    };
    match answer(s, name, ca, &query).await {
        Ok(body) => respond(StatusCode::OK, "application/ocsp-response", body),
        Err(e) => {
            tracing::error!(target: "server", authority = name, error = %format!("{e:#}"), "cannot answer an OCSP request");
            ocsp_error(ResponseStatus::InternalError)
        }
    }
}

async fn answer(
    s: &StatusState,
    name: &str,
    ca: &pki::BuiltinCa,
    query: &OcspQuery,
) -> anyhow::Result<Vec<u8>> {
    let mut statuses = Vec::with_capacity(query.cert_ids.len());
    for id in &query.cert_ids {
        let status = if ca.issued_cert_id(id) {
            let found = s
                .store
                .cert_by_serial(&id.serial_hex())
                .await?
                .into_iter()
                .find(|c| c.authority == name);
            match found {
                None => Status::Unknown,
                Some(c) => match c.revoked_at {
                    Some(at) => Status::Revoked {
                        at: crate::ra::crl::to_time(at),
                        reason: c
                            .revocation_reason
                            .and_then(|r| u32::try_from(r).ok())
                            .unwrap_or(0),
                    },
                    None => Status::Good,
                },
            }
        } else {
            Status::Unknown
        };
        metrics::ocsp_response(match status {
            Status::Good => "good",
            Status::Revoked { .. } => "revoked",
            Status::Unknown => "unknown",
        });
        statuses.push(status);
    }
    let now = time::OffsetDateTime::now_utc();
    let next = now + OCSP_VALIDITY;
    Ok(ca.sign_ocsp(query, &statuses, now, next)?)
}
