//! The http-01 responder: a tiny hyper server answering
//! `/.well-known/acme-challenge/{token}` with its key authorization.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use anyhow::{Context, Result};
use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// Tokens currently served: token → key authorization.
#[derive(Clone, Default)]
pub struct Tokens(Arc<Mutex<HashMap<String, Bytes>>>);

impl Tokens {
    /// Serves `key_auth` for `token`.
    pub fn insert(&self, token: &str, key_auth: String) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(token.to_string(), Bytes::from(key_auth));
    }

    /// Stops serving `tokens`.
    pub fn remove(&self, tokens: &[String]) {
        let mut m = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        for t in tokens {
            m.remove(t);
        }
    }

    fn get(&self, token: &str) -> Option<Bytes> {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(token)
            .cloned()
    }
}

/// Binds `addr` and serves `tokens` until the runtime stops.
pub async fn spawn(addr: SocketAddr, tokens: Tokens) -> Result<()> {
    let listener = TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding the http-01 responder on {addr}"))?;
    tokio::spawn(async move {
        loop {
            let sock = match listener.accept().await {
                Ok((sock, _)) => sock,
                Err(_) => {
                    // e.g. out of file descriptors: back off instead of spinning
                    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
                    continue;
                }
            };
            let _ = sock.set_nodelay(true);
            let tokens = tokens.clone();
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let tokens = tokens.clone();
                    async move {
                        let found = req
                            .uri()
                            .path()
                            .strip_prefix("/.well-known/acme-challenge/")
                            .and_then(|t| tokens.get(t));
                        let resp = match found {
                            Some(body) => Response::new(Full::new(body)),
                            None => {
                                let mut r = Response::new(Full::new(Bytes::new()));
                                *r.status_mut() = StatusCode::NOT_FOUND;
                                r
                            }
                        };
                        Ok::<_, Infallible>(resp)
                    }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(sock), svc)
                    .await;
            });
        }
    });
    Ok(())
}
