//! Starting and stopping the server: storage, authorities, validators,
//! workers, the TLS listener, and graceful shutdown.

mod accept;
mod conn;
mod ops;
mod status;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::ca::Authorities;
use crate::config::Config;
use crate::jobs::{Jobs, WorkerPool};
use crate::nonce::NonceBook;
use crate::policy::Catalogue;
use crate::ra::Ra;
use crate::store::Store;
use crate::tls::ListenerCerts;
use crate::wfe::Wfe;

/// A running server.
pub struct RunningServer {
    /// Bound listener address.
    pub addr: SocketAddr,
    /// The registration authority (tests inspect the store and the
    /// authorities through it).
    pub ra: Arc<Ra>,
    /// Path of the PEM bundle of built-in CA roots.
    pub root_pem: PathBuf,
    /// Bound address of the metrics listener (`metrics.listen`).
    pub metrics_addr: Option<SocketAddr>,
    /// Bound address of the CRL and OCSP listener
    /// (`revocation-status.listen`).
    pub revocation_status_addr: Option<SocketAddr>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl RunningServer {
    /// Directory URL of the first public URL.
    pub fn directory_url(&self) -> String {
        let base = self
            .ra
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
    let store = Store::open(&config)
        .await
        .with_context(|| format!("database {}", config.database_display()))?;
    let server_id = crate::audit::server_id(&config.workdir)?;
    let node_id = config
        .workers
        .worker_id
        .clone()
        .unwrap_or_else(|| format!("{server_id}-{}", std::process::id()));
    // Several nodes on PostgreSQL: hold the worker id before anything else
    // is registered (a second live node with the same id is refused here),
    // and wake the workers when another node queues a job any node may run.
    let woken: Arc<std::sync::OnceLock<Arc<Jobs>>> = Arc::default();
    let waker = woken.clone();
    let membership = store
        .join_cluster(
            &node_id,
            Arc::new(move || {
                if let Some(jobs) = waker.get() {
                    jobs.wake_workers();
                }
            }),
        )
        .await
        .with_context(|| format!("workers.worker-id {node_id:?}"))?;
    let (audit, audit_writer) =
        crate::audit::writer::start(store.clone(), &config.audit, &server_id)
            .await
            .context("audit log")?;

    let authorities = Arc::new(Authorities::open(&config)?);
    for a in &config.authorities {
        match &a.kind {
            crate::config::AuthorityKind::Builtin(_) => {
                tracing::warn!(target: "ca", authority = %a.name, "authority {} is the built-in CA: fine for trials and labs, not a production CA", a.name);
            }
            crate::config::AuthorityKind::Adcs(t) if t.disable_ca_revocation => {
                tracing::info!(target: "ca", authority = %a.name, "authority {}: disable-ca-revocation is set, so revocations of its certificates stay in certeasy and are not sent to the CA", a.name);
            }
            _ => {}
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

    let catalogue = Arc::new(Catalogue::new(config.clone(), authorities.clone())?);
    // Cancelled when the server stops: ends every background task, so none
    // keeps a handle (the database's included) past shutdown.
    let stop = CancellationToken::new();

    let certs = ListenerCerts::start(
        &config,
        authorities.clone(),
        store.clone(),
        &node_id,
        stop.clone(),
    )
    .await?;
    let tls = TlsAcceptor::from(Arc::new(certs.server_config()?));

    // The composition root: each layer gets the handles of those below it.
    let jobs = Arc::new(Jobs::new(
        store.clone(),
        config.workers.clone(),
        node_id.clone(),
    ));
    // The job engine exists now: wake-ups from other nodes reach it.
    let _ = woken.set(jobs.clone());
    let ra = Arc::new(Ra::new(
        config.clone(),
        store.clone(),
        catalogue,
        jobs.clone(),
        audit.clone(),
    ));
    let pool = WorkerPool::start(jobs, ra.clone());
    let wfe = Arc::new(Wfe {
        ra: ra.clone(),
        nonces: if config.postgres.is_some() {
            NonceBook::shared(store.clone()).await?
        } else {
            NonceBook::new()?
        },
    });
    let addr = listener.local_addr()?;
    // Timeouts (header, body, response, idle, handler) are enforced per
    // connection by `conn`; the body limit by the router.
    let readiness = Arc::new(ops::Readiness {
        ra: ra.clone(),
        certs: certs.clone(),
    });
    let router = crate::wfe::router(wfe)
        .merge(ops::health_router(readiness))
        .layer(axum::middleware::from_fn(ops::track))
        .layer(axum::extract::DefaultBodyLimit::max(
            config.server.max_body_bytes,
        ));
    let metrics_addr = match config.metrics.listen {
        Some(addr) => Some(ops::start_metrics(addr, ra.clone(), stop.clone()).await?.0),
        None => None,
    };
    let revocation_status_addr = match &config.revocation_status {
        Some(r) => {
            Some(status::start(r.listen, store.clone(), authorities.clone(), stop.clone()).await?)
        }
        None => None,
    };
    authorities.spawn_health_probes(stop.clone(), audit, store);
    tokio::spawn(maintain_limits(ra.clone(), stop.clone()));
    if let Some(membership) = membership {
        // Held until the server stops.
        let stopped = stop.clone();
        tokio::spawn(async move {
            stopped.cancelled().await;
            membership.leave().await;
        });
    }
    let task = tokio::spawn(accept_loop(
        listener,
        tls,
        router,
        ra.clone(),
        pool,
        audit_writer,
        stop.clone(),
    ));
    Ok(RunningServer {
        addr,
        ra,
        root_pem,
        metrics_addr,
        revocation_status_addr,
        stop,
        task,
    })
}

/// Keeps the rate limits' state small: forgets idle token buckets every
/// minute, and failed-validation events once they are out of every window.
async fn maintain_limits(ra: Arc<Ra>, stop: CancellationToken) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        ra.limits.maintain();
        if let Err(e) = ra.store.cluster_buckets_prune(crate::store::now_ms()).await {
            tracing::warn!(target: "limits", error = %e, "cannot prune the cluster's token buckets; retried in a minute");
        }
        if let Some(w) = ra.limits.settings().failed_validation {
            let before = crate::store::now_ms() - w.window.as_millis() as i64;
            if let Err(e) = ra
                .store
                .limit_events_prune(crate::ra::orders::FAILED_VALIDATION, before)
                .await
            {
                tracing::warn!(target: "ra", error = %e, "could not prune old failed-validation events");
            }
        }
    }
}

async fn accept_loop(
    listener: TcpListener,
    tls: TlsAcceptor,
    router: axum::Router,
    s: Arc<Ra>,
    pool: WorkerPool,
    audit_writer: Option<crate::audit::writer::AuditWriter>,
    stop: CancellationToken,
) {
    let cfg = &s.config.server;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // Header, idle, body and response deadlines are the watchdog's of
    // `conn` (hyper's header timer would also close idle keep-alive
    // connections after read-header-timeout); no HTTP/2 keep-alive pings:
    // idleness is judged by requests, and a client's pongs would not count.
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(None)
        .keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    let conns = accept::Connections::new(cfg);
    if let Some(limit) = crate::config::open_file_limit() {
        if u64::try_from(cfg.max_connections).unwrap_or(u64::MAX) >= limit {
            tracing::warn!(target: "server", "server.max-connections ({}) is not below the open-file limit ({limit}): accept() will fail for lack of descriptors before the cap applies; raise the limit (LimitNOFILE=) or lower max-connections", cfg.max_connections);
        }
    }
    tracing::info!(
        target: "server",
        "accepting at most {} connections{}, {} per client IP",
        cfg.max_connections,
        if cfg.max_connections_is_default { " (default from the open-file limit)" } else { "" },
        cfg.max_connections_per_ip
    );
    let tracker = TaskTracker::new();
    let mut backoff = accept::AcceptBackoff::default();
    let mut refusals = accept::RateLimited::default();
    let mut signals = Signals::new();
    let mut by_signal = false;
    loop {
        let accepted = tokio::select! {
            r = listener.accept() => r,
            _ = stop.cancelled() => break,
            _ = signals.recv() => {
                by_signal = true;
                break;
            }
        };
        let (tcp, peer) = match accepted {
            Ok(x) => {
                backoff.succeeded();
                x
            }
            Err(e) if accept::is_per_connection(&e) => {
                tracing::debug!(target: "server", error = %e, "accept: connection gone before it was accepted");
                continue;
            }
            Err(e) => {
                // Out of descriptors (EMFILE, ENFILE) or memory: retrying at
                // once would spin; pause, doubling up to 1s.
                let pause = backoff.failed(&e);
                tokio::select! {
                    _ = tokio::time::sleep(pause) => continue,
                    _ = stop.cancelled() => break,
                    _ = signals.recv() => {
                        by_signal = true;
                        break;
                    }
                }
            }
        };
        let slot = match conns.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(refused) => {
                if let Some(suppressed) = refusals.allow() {
                    tracing::warn!(target: "server", %peer, "connection refused: {refused} ({suppressed} more refusals since the last line)");
                }
                // Reset at once: the client learns without waiting, and no
                // TIME_WAIT is left here.
                let _ = tcp.set_zero_linger();
                drop(tcp);
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        tracker.spawn(conn::serve(
            tcp,
            peer,
            slot,
            tls.clone(),
            builder.clone(),
            router.clone(),
        ));
    }
    drop(listener);
    // Stops the metrics listener and the health probes too.
    stop.cancel();
    if by_signal {
        // A second SIGTERM or SIGINT: the operator does not want to wait.
        tokio::spawn(async move {
            signals.recv().await;
            tracing::warn!(target: "server", "second signal: exiting at once, without waiting for requests and jobs (they resume after restart)");
            std::process::exit(EXIT_SECOND_SIGNAL);
        });
    }
    tracing::info!(target: "server", "shutting down: no new connections; finishing in-flight requests");
    conns.stop_all();
    tracker.close();
    if tokio::time::timeout(s.config.server.shutdown_timeout, tracker.wait())
        .await
        .is_err()
    {
        tracing::warn!(target: "server", open = conns.open(), "shutdown-timeout reached with requests still in flight");
    }
    pool.drain(s.config.workers.drain_timeout.get()).await;
    // Last: every event of the run, the workers' included, reaches the file.
    if let Some(w) = audit_writer {
        w.shutdown().await;
    }
    s.store.close().await;
    tracing::info!(target: "server", "stopped");
}

/// Exit status after a second stop signal.
pub const EXIT_SECOND_SIGNAL: i32 = 130;

/// SIGTERM and SIGINT, registered once, so that a second signal after the
/// first is seen too.
struct Signals {
    #[cfg(unix)]
    term: Option<tokio::signal::unix::Signal>,
    #[cfg(unix)]
    int: Option<tokio::signal::unix::Signal>,
}

impl Signals {
    fn new() -> Signals {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            Signals {
                term: signal(SignalKind::terminate()).ok(),
                int: signal(SignalKind::interrupt()).ok(),
            }
        }
        #[cfg(not(unix))]
        {
            Signals {}
        }
    }

    /// The next SIGTERM or SIGINT.
    async fn recv(&mut self) {
        #[cfg(unix)]
        {
            async fn next(s: &mut Option<tokio::signal::unix::Signal>) {
                match s {
                    Some(s) => {
                        if s.recv().await.is_none() {
                            std::future::pending::<()>().await;
                        }
                    }
                    None => std::future::pending::<()>().await,
                }
            }
            tokio::select! {
                _ = next(&mut self.term) => {}
                _ = next(&mut self.int) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
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
