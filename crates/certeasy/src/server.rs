//! Starting and stopping the server: storage, authorities, validators,
//! workers, the TLS listener, and graceful shutdown.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use certeasy_va::Validator;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::ca::Authorities;
use crate::config::Config;
use crate::jobs::{JobWaker, WorkerPool};
use crate::services::Services;
use crate::store::Store;
use crate::tls::ListenerCerts;

/// A running server.
pub struct RunningServer {
    /// Bound listener address.
    pub addr: SocketAddr,
    /// Shared state (tests inspect the store through it).
    pub services: Arc<Services>,
    /// Path of the PEM bundle of built-in CA roots.
    pub root_pem: PathBuf,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// Directory URL of the first public URL.
    pub fn directory_url(&self) -> String {
        let base = self
            .services
            .config
            .server
            .urls
            .first()
            .map(|u| u.as_str().trim_end_matches('/').to_string())
            .unwrap_or_default();
        format!("{base}/acme/directory")
    }

    /// Graceful shutdown: stop accepting, finish in-flight requests within
    /// `shutdown-timeout`, drain jobs within `drain-timeout`, close the DB.
    pub async fn shutdown(self) {
        self.stop.cancel();
        let _ = self.task.await;
    }

    /// Waits until the server stops by itself (signal).
    pub async fn wait(self) {
        let _ = self.task.await;
    }

    /// Token that stops the server when cancelled.
    pub fn stop_token(&self) -> CancellationToken {
        self.stop.clone()
    }
}

/// Opens everything and binds `config.server.listen`.
pub async fn start(config: Config) -> anyhow::Result<RunningServer> {
    let listener = TcpListener::bind(config.server.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.server.listen))?;
    start_with_listener(config, listener).await
}

/// Like [`start`], on an already-bound listener (tests bind port 0 first).
pub async fn start_with_listener(
    config: Config,
    listener: TcpListener,
) -> anyhow::Result<RunningServer> {
    let config = Arc::new(config);
    crate::fsutil::create_private_dir(&config.workdir)
        .with_context(|| format!("cannot create workdir {}", config.workdir.display()))?;
    let store = Store::open_sqlite(&config.database_path)
        .await
        .with_context(|| format!("database {}", config.database_path.display()))?;
    let server_id = store
        .meta_get_or_init("server_id", crate::store::new_id)
        .await?;
    let node_id = config
        .workers
        .worker_id
        .clone()
        .unwrap_or_else(|| format!("{server_id}-{}", std::process::id()));

    let authorities = Arc::new(Authorities::open(&config)?);
    for a in &config.authorities {
        if matches!(a.kind, crate::config::AuthorityKind::Fake(_)) {
            tracing::warn!(target: "ca", authority = %a.name, "authority {} is the built-in CA: fine for trials and labs, not a production CA", a.name);
        }
    }
    let root_pem = config.workdir.join("ca").join("root.pem");
    let roots: String = authorities
        .builtin_roots_pem()
        .into_iter()
        .map(|(_, pem)| pem)
        .collect();
    if !roots.is_empty() {
        let current = std::fs::read(&root_pem).unwrap_or_default();
        if current != roots.as_bytes() {
            crate::fsutil::replace_file(&root_pem, roots.as_bytes(), false)?;
        }
    }

    let mut validators = BTreeMap::new();
    for (name, profile) in &config.profiles {
        let v = Validator::new(profile.clone())
            .with_context(|| format!("validation profile {name}"))?;
        validators.insert(name.clone(), Arc::new(v));
    }

    let certs = ListenerCerts::start(&config, authorities.clone()).await?;
    let tls = TlsAcceptor::from(Arc::new(certs.server_config()?));

    let services = Arc::new(Services {
        config: config.clone(),
        store: store.clone(),
        validators,
        authorities,
        waker: JobWaker::new(&config.workers),
        node_id,
        nonces: crate::wfe::nonce::NonceBook::new()?,
        accounts: Default::default(),
    });
    let pool = WorkerPool::start(services.clone());
    let stop = CancellationToken::new();
    let addr = listener.local_addr()?;
    let deadline = config.server.read_timeout + config.server.write_timeout;
    let router = crate::wfe::router(services.clone())
        .layer(axum::middleware::from_fn_with_state(
            deadline,
            request_deadline,
        ))
        .layer(axum::extract::DefaultBodyLimit::max(
            config.server.max_body_bytes,
        ));
    services.authorities.spawn_health_probes(stop.clone());
    let task = tokio::spawn(accept_loop(
        listener,
        tls,
        router,
        services.clone(),
        pool,
        stop.clone(),
    ));
    Ok(RunningServer {
        addr,
        services,
        root_pem,
        stop,
        task,
    })
}

/// Bounds one request (reading its body, handling it) by
/// `read-timeout + write-timeout`, so a slow or stalled client cannot hold
/// a handler forever.
async fn request_deadline(
    axum::extract::State(limit): axum::extract::State<std::time::Duration>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(resp) => resp,
        Err(_) => {
            let p = acme_wire::Problem::new(
                acme_wire::ProblemType::ServerInternal,
                format!("the request was not completed within {limit:?}"),
            )
            .with_status(503);
            let mut r =
                axum::response::Response::new(axum::body::Body::from(p.to_json().to_string()));
            *r.status_mut() = http::StatusCode::SERVICE_UNAVAILABLE;
            r.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/problem+json"),
            );
            r
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: TlsAcceptor,
    router: axum::Router,
    s: Arc<Services>,
    pool: WorkerPool,
    stop: CancellationToken,
) {
    let cfg = &s.config.server;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(cfg.read_header_timeout)
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(cfg.idle_timeout));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let handshake_timeout = cfg.read_header_timeout;
    let signal = shutdown_signal();
    tokio::pin!(signal);
    loop {
        let (tcp, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!(target: "wfe", error = %e, "accept failed");
                    continue;
                }
            },
            _ = stop.cancelled() => break,
            _ = &mut signal => break,
        };
        let _ = tcp.set_nodelay(true);
        let tls = tls.clone();
        let service = TowerToHyperService::new(router.clone());
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let stream = match tokio::time::timeout(handshake_timeout, tls.accept(tcp)).await {
                Ok(Ok(s)) => s,
                Ok(Err(e)) => {
                    tracing::debug!(target: "wfe", %peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => return,
            };
            let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
            if let Err(e) = watcher.watch(conn.into_owned()).await {
                tracing::debug!(target: "wfe", %peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    tracing::info!(target: "server", "shutting down: no new connections; finishing in-flight requests");
    if tokio::time::timeout(s.config.server.shutdown_timeout, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(target: "server", "shutdown-timeout reached with requests still in flight");
    }
    pool.drain(&s, s.config.workers.drain_timeout.get()).await;
    s.store.close().await;
    tracing::info!(target: "server", "stopped");
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return std::future::pending().await,
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
