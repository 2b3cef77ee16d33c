//! One handler per ACME resource.

use std::future::Future;
use std::sync::Arc;

use acme_wire::{
    AccountUpdateRequest, AuthorizationStatus, ChallengeStatus, Directory, DirectoryMeta,
    FinalizeRequest, Jws, KeyChangeRequest, KeyRef, NewAccountRequest, NewOrderRequest,
    OrderStatus, OrdersList, ProblemType, RevocationRequest,
};
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, Response, StatusCode, Uri};
use axum::Extension;
use serde::Serialize;

use super::auth::{authenticate as auth, Authenticated, KeyRule};
use super::client::ClientIp;
use super::Wfe;
use super::{base_url, decorate, problem_response, views};
use crate::error::{AcmeError, AcmeResult};
use crate::ra;

type S = State<Arc<Wfe>>;

/// Runs a handler body: picks the base URL, maps errors to problems and adds
/// the headers every ACME response carries.
async fn respond<F, Fut>(s: Arc<Wfe>, uri: &Uri, headers: &HeaderMap, f: F) -> Response<Body>
where
    F: FnOnce(Arc<Wfe>, String) -> Fut,
    Fut: Future<Output = AcmeResult<Response<Body>>>,
{
    let base = base_url(&s, uri, headers);
    let request_id = crate::telemetry::request_id();
    let resp = match f(s.clone(), base.clone()).await {
        Ok(r) => r,
        Err(e) => {
            if let AcmeError::Problem(p) = &e {
                tracing::debug!(target: "wfe", problem = p.kind.urn(), detail = %p.detail, "request refused");
            }
            problem_response(e, &request_id)
        }
    };
    // The `X-Request-Id` header is set by the server's outermost layer
    // (`server::ops::track`), on every response.
    decorate(&s, &base, resp).await
}

fn json<T: Serialize>(status: StatusCode, body: &T) -> AcmeResult<Response<Body>> {
    let bytes = serde_json::to_vec(body).map_err(|e| AcmeError::Internal(e.into()))?;
    let mut r = Response::new(Body::from(bytes));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(r)
}

fn with_header(mut r: Response<Body>, name: header::HeaderName, value: &str) -> Response<Body> {
    if let Ok(v) = HeaderValue::from_str(value) {
        r.headers_mut().append(name, v);
    }
    r
}

fn url(base: &str, path: &str) -> String {
    format!("{base}/acme/{path}")
}

/// GET directory.
pub async fn directory(State(s): S, uri: Uri, headers: HeaderMap) -> Response<Body> {
    respond(s, &uri, &headers, |s, base| async move {
        let config = &s.ra.config;
        let meta = &config.server.meta;
        let profiles = (!config.profiles.is_empty()).then(|| {
            config
                .profiles
                .iter()
                .map(|p| (p.name.clone(), p.description.clone()))
                .collect()
        });
        let d = Directory {
            new_nonce: url(&base, "new-nonce"),
            new_account: url(&base, "new-account"),
            new_order: url(&base, "new-order"),
            revoke_cert: url(&base, "revoke-cert"),
            key_change: url(&base, "key-change"),
            renewal_info: Some(url(&base, "renewal-info")),
            new_authz: None,
            meta: DirectoryMeta {
                terms_of_service: meta.terms_of_service.clone(),
                website: meta.website.clone(),
                caa_identities: meta.caa_identities.clone(),
                external_account_required: config.eab.required,
                profiles,
            },
        };
        json(StatusCode::OK, &d)
    })
    .await
}

/// GET renewal-info/{certID} (RFC 9773): the suggested renewal window,
/// unauthenticated, with `Retry-After`.
pub async fn renewal_info(
    State(s): S,
    Path(cert_id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
) -> Response<Body> {
    respond(s, &uri, &headers, |s, _| async move {
        let (info, retry_after) =
            ra::ari::renewal_info(&s.ra, &cert_id, crate::store::now_ms()).await?;
        let r = json(StatusCode::OK, &info)?;
        Ok(with_header(
            r,
            header::RETRY_AFTER,
            &retry_after.to_string(),
        ))
    })
    .await
}

/// HEAD/GET new-nonce.
pub async fn new_nonce(
    State(s): S,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response<Body> {
    respond(s, &uri, &headers, |_, _| async move {
        let mut r = Response::new(Body::empty());
        *r.status_mut() = if method == Method::HEAD {
            StatusCode::OK
        } else {
            StatusCode::NO_CONTENT
        };
        Ok(r)
    })
    .await
}

/// GET on a POST-only resource.
pub async fn method_not_allowed(State(s): S, uri: Uri, headers: HeaderMap) -> Response<Body> {
    respond(s, &uri, &headers, |_, _| async move {
        Err(acme_wire::Problem::new(
            ProblemType::Malformed,
            "this resource only accepts POST (use POST-as-GET to read it)",
        )
        .with_status(405)
        .into())
    })
    .await
    .pipe(|r| with_header(r, header::ALLOW, "POST"))
}

/// Unknown path.
pub async fn not_found(State(s): S, uri: Uri, headers: HeaderMap) -> Response<Body> {
    respond(s, &uri, &headers, |_, _| async move {
        Err(ra::orders::not_found("resource"))
    })
    .await
}

/// POST new-account.
pub async fn new_account(
    State(s): S,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let headers = &headers;
    respond(s, &uri, headers, |s, base| async move {
        let auth = auth(
            &s,
            &base,
            headers,
            &body,
            &url(&base, "new-account"),
            KeyRule::Jwk,
        )
        .await?;
        let req: NewAccountRequest = auth.jws.payload_json()?;
        let new_account_url = url(&base, "new-account");
        let created = ra::accounts::new_account(&s.ra, &auth.key, &req, &new_account_url, ip);
        let (row, status) = match created.await? {
            ra::accounts::NewAccount::Created(a) => (a, StatusCode::CREATED),
            ra::accounts::NewAccount::Existing(a) => (a, StatusCode::OK),
        };
        let r = json(status, &views::account(&base, &row))?;
        Ok(with_header(
            r,
            header::LOCATION,
            &url(&base, &format!("acct/{}", row.id)),
        ))
    })
    .await
}

/// POST acct/{id}: read (POST-as-GET), update contact, deactivate.
pub async fn account(
    State(s): S,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let headers = &headers;
    respond(s, &uri, headers, |s, base| async move {
        let acct_url = url(&base, &format!("acct/{id}"));
        let auth = auth(&s, &base, headers, &body, &acct_url, KeyRule::Kid).await?;
        let acct = auth.account()?.clone();
        if acct.id != id {
            return Err(AcmeError::new(
                ProblemType::Unauthorized,
                "the request is signed by another account",
            ));
        }
        let acct = if auth.jws.is_post_as_get() {
            acct
        } else {
            let req: AccountUpdateRequest = auth.jws.payload_json()?;
            ra::accounts::update_account(&s.ra, acct, &req).await?
        };
        let r = json(StatusCode::OK, &views::account(&base, &acct))?;
        Ok(with_header(r, header::LOCATION, &acct_url))
    })
    .await
}

/// POST acct/{id}/orders (POST-as-GET).
pub async fn account_orders(
    State(s): S,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let headers = &headers;
    respond(s, &uri, headers, |s, base| async move {
        let auth = auth(
            &s,
            &base,
            headers,
            &body,
            &url(&base, &format!("acct/{id}/orders")),
            KeyRule::Kid,
        )
        .await?;
        auth.require_post_as_get()?;
        if auth.account()?.id != id {
            return Err(AcmeError::new(
                ProblemType::Unauthorized,
                "the request is signed by another account",
            ));
        }
        let ids = s.ra.store.order_ids_of_account(&id, 1000).await?;
        json(
            StatusCode::OK,
            &OrdersList {
                orders: ids
                    .iter()
                    .map(|o| url(&base, &format!("order/{o}")))
                    .collect(),
            },
        )
    })
    .await
}

/// POST key-change.
pub async fn key_change(State(s): S, uri: Uri, headers: HeaderMap, body: Bytes) -> Response<Body> {
    let headers = &headers;
    respond(s, &uri, headers, |s, base| async move {
        let kc_url = url(&base, "key-change");
        let auth = auth(&s, &base, headers, &body, &kc_url, KeyRule::Kid).await?;
        let acct = auth.account()?.clone();
        let inner = Jws::parse(&auth.jws.payload)?;
        let KeyRef::Jwk(new_key) = &inner.protected.key else {
            return Err(AcmeError::new(
                ProblemType::Malformed,
                "the inner key-change JWS must carry the new key as jwk",
            ));
        };
        if inner.protected.url.as_deref() != Some(kc_url.as_str()) {
            return Err(AcmeError::new(
                ProblemType::Malformed,
                "the inner key-change JWS url must equal the outer one",
            ));
        }
        if inner.protected.nonce.is_some() {
            return Err(AcmeError::new(
                ProblemType::Malformed,
                "the inner key-change JWS must not carry a nonce",
            ));
        }
        inner.verify(new_key)?;
        let req: KeyChangeRequest = inner.payload_json()?;
        let acct_url = url(&base, &format!("acct/{}", acct.id));
        match ra::accounts::key_change(&s.ra, &acct, &acct_url, new_key, &req).await? {
            Ok(acct) => {
                let r = json(StatusCode::OK, &views::account(&base, &acct))?;
                Ok(with_header(r, header::LOCATION, &acct_url))
            }
            Err(other) => {
                let r = problem_response(
                    acme_wire::Problem::new(
                        ProblemType::Conflict,
                        "the new key already belongs to another account",
                    )
                    .with_status(409)
                    .into(),
                    &crate::telemetry::request_id(),
                );
                Ok(with_header(
                    r,
                    header::LOCATION,
                    &url(&base, &format!("acct/{other}")),
                ))
            }
        }
    })
    .await
}

/// POST new-order.
pub async fn new_order(State(s): S, uri: Uri, headers: HeaderMap, body: Bytes) -> Response<Body> {
    let headers = &headers;
    respond(s, &uri, headers, |s, base| async move {
        let auth = auth(
            &s,
            &base,
            headers,
            &body,
            &url(&base, "new-order"),
            KeyRule::Kid,
        )
        .await?;
        let req: NewOrderRequest = auth.jws.payload_json()?;
        let (order, _) = ra::orders::new_order(&s.ra, auth.account()?, &req).await?;
        let view = views::order(&s, &base, &order).await?;
        let r = json(StatusCode::CREATED, &view)?;
        Ok(with_header(
            r,
            header::LOCATION,
            &url(&base, &format!("order/{}", order.id)),
        ))
    })
    .await
}

/// Adds `Retry-After` to a processing order.
fn retry_after_if(r: Response<Body>, processing: bool) -> Response<Body> {
    if processing {
        with_header(r, header::RETRY_AFTER, "1")
    } else {
        r
    }
}

/// POST order/{id} (POST-as-GET).
pub async fn order(
    State(s): S,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let headers = &headers;
    respond(s, &uri, headers, |s, base| async move {
        let order_url = url(&base, &format!("order/{id}"));
        let auth = auth(&s, &base, headers, &body, &order_url, KeyRule::Kid).await?;
        auth.require_post_as_get()?;
        let order = ra::orders::owned_order(&s.ra, auth.account()?, &id).await?;
        let view = views::order(&s, &base, &order).await?;
        let processing = view.status == OrderStatus::Processing;
        let r = json(StatusCode::OK, &view)?;
        Ok(retry_after_if(
            with_header(r, header::LOCATION, &order_url),
            processing,
        ))
    })
    .await
}

/// POST authz/{id}: read, or deactivate.
pub async fn authz(
    State(s): S,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let headers = &headers;
    respond(s, &uri, headers, |s, base| async move {
        let auth = auth(
            &s,
            &base,
            headers,
            &body,
            &url(&base, &format!("authz/{id}")),
            KeyRule::Kid,
        )
        .await?;
        let acct = auth.account()?;
        let mut a = ra::orders::owned_authz(&s.ra, acct, &id).await?;
        if !auth.jws.is_post_as_get() {
            #[derive(serde::Deserialize)]
            struct Update {
                status: Option<String>,
            }
            let u: Update = auth.jws.payload_json()?;
            if u.status.as_deref() != Some(AuthorizationStatus::Deactivated.as_str()) {
                return Err(AcmeError::new(
                    ProblemType::Malformed,
                    "an authorization can only be updated to {\"status\": \"deactivated\"}",
                ));
            }
            ra::orders::deactivate_authz(&s.ra, acct, &a).await?;
            a = ra::orders::owned_authz(&s.ra, acct, &id).await?;
        }
        let view = views::authz(&s, &base, &a).await?;
        json(StatusCode::OK, &view)
    })
    .await
}

/// POST chall/{id}: `{}` starts validation, empty payload reads.
pub async fn challenge(
    State(s): S,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let headers = &headers;
    respond(s, &uri, headers, |s, base| async move {
        let auth = auth(
            &s,
            &base,
            headers,
            &body,
            &url(&base, &format!("chall/{id}")),
            KeyRule::Kid,
        )
        .await?;
        let acct = auth.account()?;
        let (chall, authz) = if auth.jws.is_post_as_get() {
            let c =
                s.ra.store
                    .challenge(&id)
                    .await?
                    .ok_or_else(|| ra::orders::not_found("challenge"))?;
            let a = ra::orders::owned_authz(&s.ra, acct, &c.authz_id).await?;
            (c, a)
        } else {
            let _: serde_json::Map<String, serde_json::Value> = auth.jws.payload_json()?;
            ra::orders::respond_challenge(&s.ra, acct, &id).await?
        };
        let processing = chall.status == ChallengeStatus::Processing;
        let r = json(StatusCode::OK, &views::challenge(&base, &chall))?;
        let r = with_header(
            r,
            header::LINK,
            &format!(
                "<{}>;rel=\"up\"",
                url(&base, &format!("authz/{}", authz.id))
            ),
        );
        Ok(retry_after_if(r, processing))
    })
    .await
}

/// POST finalize/{id}.
pub async fn finalize(
    State(s): S,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let headers = &headers;
    respond(s, &uri, headers, |s, base| async move {
        let auth = auth(
            &s,
            &base,
            headers,
            &body,
            &url(&base, &format!("finalize/{id}")),
            KeyRule::Kid,
        )
        .await?;
        let req: FinalizeRequest = auth.jws.payload_json()?;
        let order = ra::orders::finalize(&s.ra, auth.account()?, &id, &req).await?;
        let view = views::order(&s, &base, &order).await?;
        let processing = view.status == OrderStatus::Processing;
        let r = json(StatusCode::OK, &view)?;
        Ok(retry_after_if(
            with_header(r, header::LOCATION, &url(&base, &format!("order/{id}"))),
            processing,
        ))
    })
    .await
}

/// POST cert/{id} (POST-as-GET): the PEM chain.
pub async fn certificate(
    State(s): S,
    Path(id): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response<Body> {
    let headers = &headers;
    respond(s, &uri, headers, |s, base| async move {
        let auth = auth(
            &s,
            &base,
            headers,
            &body,
            &url(&base, &format!("cert/{id}")),
            KeyRule::Kid,
        )
        .await?;
        auth.require_post_as_get()?;
        let cert =
            s.ra.store
                .cert(&id)
                .await?
                .ok_or_else(|| ra::orders::not_found("certificate"))?;
        if cert.account_id != auth.account()?.id {
            return Err(AcmeError::new(
                ProblemType::Unauthorized,
                "this certificate belongs to another account",
            ));
        }
        let mut r = Response::new(Body::from(cert.chain_pem));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/pem-certificate-chain"),
        );
        Ok(r)
    })
    .await
}

/// POST revoke-cert.
pub async fn revoke_cert(State(s): S, uri: Uri, headers: HeaderMap, body: Bytes) -> Response<Body> {
    let headers = &headers;
    respond(s, &uri, headers, |s, base| async move {
        let auth: Authenticated = auth(
            &s,
            &base,
            headers,
            &body,
            &url(&base, "revoke-cert"),
            KeyRule::Either,
        )
        .await?;
        let req: RevocationRequest = auth.jws.payload_json()?;
        let who = match &auth.account {
            Some(a) => ra::revoke::Revoker::Account(a),
            None => ra::revoke::Revoker::Key(&auth.key),
        };
        ra::revoke::revoke(&s.ra, who, &req).await?;
        Ok(Response::new(Body::empty()))
    })
    .await
}

/// Small combinator so a response can be post-processed inline.
trait Pipe: Sized {
    fn pipe<T>(self, f: impl FnOnce(Self) -> T) -> T {
        f(self)
    }
}
impl<T> Pipe for T {}
