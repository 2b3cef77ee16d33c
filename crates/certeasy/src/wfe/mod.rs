//! Web front end: HTTP routes, JWS authentication, nonces, and the one place
//! where errors become HTTP problem responses.

mod auth;
pub mod client;
mod handlers;
mod views;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, Response, StatusCode, Uri};
use axum::routing::{get, post};
use axum::Router;

use crate::error::AcmeError;
use crate::nonce::NonceBook;
use crate::ra::Ra;

/// The web front end's state: the registration authority it calls and the
/// nonces it mints and checks.
#[derive(Debug)]
pub struct Wfe {
    /// The registration authority.
    pub ra: Arc<Ra>,
    /// Mints and verifies replay nonces.
    pub nonces: NonceBook,
}

/// Builds the router for the ACME API (the health endpoints are added by
/// `server`, which knows the listener certificate).
pub fn router(wfe: Arc<Wfe>) -> Router {
    Router::new()
        .route("/acme/directory", get(handlers::directory))
        .route(
            "/acme/new-nonce",
            get(handlers::new_nonce).head(handlers::new_nonce),
        )
        .route(
            "/acme/new-account",
            post(handlers::new_account).get(handlers::method_not_allowed),
        )
        .route(
            "/acme/new-order",
            post(handlers::new_order).get(handlers::method_not_allowed),
        )
        .route(
            "/acme/revoke-cert",
            post(handlers::revoke_cert).get(handlers::method_not_allowed),
        )
        .route(
            "/acme/key-change",
            post(handlers::key_change).get(handlers::method_not_allowed),
        )
        .route("/acme/renewal-info/{cert_id}", get(handlers::renewal_info))
        .route(
            "/acme/acct/{id}",
            post(handlers::account).get(handlers::method_not_allowed),
        )
        .route(
            "/acme/acct/{id}/orders",
            post(handlers::account_orders).get(handlers::method_not_allowed),
        )
        .route(
            "/acme/order/{id}",
            post(handlers::order).get(handlers::method_not_allowed),
        )
        .route(
            "/acme/authz/{id}",
            post(handlers::authz).get(handlers::method_not_allowed),
        )
        .route(
            "/acme/chall/{id}",
            post(handlers::challenge).get(handlers::method_not_allowed),
        )
        .route(
            "/acme/finalize/{id}",
            post(handlers::finalize).get(handlers::method_not_allowed),
        )
        .route(
            "/acme/cert/{id}",
            post(handlers::certificate).get(handlers::method_not_allowed),
        )
        .fallback(handlers::not_found)
        .layer(axum::middleware::from_fn_with_state(
            wfe.clone(),
            client::front,
        ))
        .with_state(wfe)
}

/// The public base URL for a request: the configured URL whose host (and
/// port) match the authority the request addressed, else the first whose
/// host matches, else the first one. The authority is the request URI's
/// when it has one — an HTTP/2 request's `:authority` (which carries no
/// Host header), or an absolute-form HTTP/1.1 target, which takes
/// precedence over Host (RFC 9112 §3.2.2) — and the Host header otherwise.
pub(crate) fn base_url(s: &Wfe, uri: &Uri, headers: &HeaderMap) -> String {
    let host = match uri.authority() {
        // Without userinfo, which a URL of this server never has.
        Some(a) => a.as_str().rsplit('@').next().unwrap_or(""),
        None => headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or(""),
    };
    let urls = &s.ra.config.server.urls;
    let chosen = urls
        .iter()
        .find(|u| authority_of(u).eq_ignore_ascii_case(host))
        .or_else(|| {
            urls.iter().find(|u| {
                u.host_str().is_some_and(|h| {
                    host.split(':')
                        .next()
                        .is_some_and(|x| x.eq_ignore_ascii_case(h))
                })
            })
        })
        .or(urls.first());
    chosen
        .map(|u| u.as_str().trim_end_matches('/').to_string())
        .unwrap_or_default()
}

fn authority_of(u: &url::Url) -> String {
    match (u.host_str(), u.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        _ => String::new(),
    }
}

/// Adds `Replay-Nonce` and `Link: <directory>;rel="index"` to a response.
pub(crate) async fn decorate(s: &Wfe, base: &str, mut resp: Response<Body>) -> Response<Body> {
    let h = resp.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&s.nonces.mint()) {
        h.insert("replay-nonce", v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("<{base}/acme/directory>;rel=\"index\"")) {
        h.append(header::LINK, v);
    }
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Turns an error into a problem response (the only such place).
pub(crate) fn problem_response(err: AcmeError, request_id: &str) -> Response<Body> {
    // Every problem names the request id, so that an operator can find the
    // request's log lines from what a client reports.
    let problem = match err {
        AcmeError::Problem(mut p) => {
            p.detail = format!("{} (request id {request_id})", p.detail);
            p
        }
        AcmeError::Internal(e) => {
            tracing::error!(target: "wfe", error = format!("{e:#}"), "internal error");
            acme_wire::Problem::new(
                acme_wire::ProblemType::ServerInternal,
                format!("internal server error (request id {request_id})"),
            )
        }
    };
    let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut resp = Response::new(Body::from(problem.to_json().to_string()));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    if let Some(secs) = problem.retry_after {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    resp
}
