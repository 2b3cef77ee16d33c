//! One connection's life: the TLS handshake, HTTP/1.1 or HTTP/2 through
//! hyper, and a watchdog that closes the connection when a bound passes.
//!
//! The bounds (`server.*` settings):
//!
//! * TLS handshake and the first request head within `read-header-timeout`
//!   of accept; a later HTTP/1.1 request head within `read-header-timeout`
//!   of its first byte;
//! * no request in flight and none started for `idle-timeout`: graceful
//!   close (HTTP/2 GOAWAY); pings and other frames do not count;
//! * a request body within `read-timeout` of its head (else 408);
//! * a response within `write-timeout` from its head to its last byte
//!   handed to the connection, and no write to the socket stalled for
//!   `write-timeout` (else the connection is closed);
//! * a handler answers within `read-timeout + write-timeout` (else 503).
//!
//! Cost: one timer per connection (reset only when a deadline moves
//! earlier or fires), a few relaxed atomics per read, write and request,
//! one short uncontended lock when a request starts, answers and ends; a
//! request body gets a timer only if it is not already there when read.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures::task::AtomicWaker;
use http::{Request, Response, Version};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tower::util::Oneshot;
use tower::ServiceExt;

use super::accept::Slot;
use crate::config::ServerSettings;

/// The time bounds of a connection, from `server`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timeouts {
    read_header: Duration,
    read: Duration,
    write: Duration,
    idle: Duration,
    shutdown: Duration,
}

impl Timeouts {
    pub(crate) fn new(s: &ServerSettings) -> Timeouts {
        Timeouts {
            read_header: s.read_header_timeout,
            read: s.read_timeout,
            write: s.write_timeout,
            idle: s.idle_timeout,
            shutdown: s.shutdown_timeout,
        }
    }

    /// Bound of a handler: from the request head to the response head.
    fn handler(&self) -> Duration {
        self.read + self.write
    }

    /// After an idle connection is asked to close: how long it may take.
    /// Requests a client started before it saw the GOAWAY get their own
    /// bounds (handler, then write); nothing in flight gets
    /// `read-header-timeout` to acknowledge.
    fn idle_drain(&self) -> Duration {
        self.read_header + self.handler() + self.write
    }
}

/// Why a connection was closed by the watchdog.
#[derive(Debug, Clone, Copy)]
enum Action {
    /// Close now.
    Close(&'static str),
    /// Ask the connection to finish gracefully (HTTP/2 GOAWAY).
    Drain,
}

/// A graceful close in progress.
#[derive(Debug, Clone, Copy)]
struct Draining {
    since: Instant,
    /// Closed at this time whatever is in flight.
    hard: Instant,
}

/// One request's bookkeeping.
#[derive(Debug, Default, Clone, Copy)]
struct Request1 {
    used: bool,
    /// Stamp at which the response head was ready; 0 while handling.
    sending_since: u64,
    body_timed_out: bool,
}

/// What the watchdog, the I/O wrapper and the requests of one connection
/// share. Times are "stamps": milliseconds since `epoch`, plus one, so that
/// 0 means "none".
pub(crate) struct Shared {
    epoch: Instant,
    timeouts: Timeouts,
    /// Requests started so far.
    requests: AtomicU64,
    in_flight: AtomicU32,
    /// When the last request ended.
    idle_since: AtomicU64,
    /// HTTP/1: first byte of a request head read while idle.
    head_started: AtomicU64,
    /// A write to the socket is pending since.
    write_blocked: AtomicU64,
    /// The oldest response still being sent started at.
    oldest_sending: AtomicU64,
    h2: AtomicBool,
    /// Set with `waker` when the server shuts down.
    stopping: AtomicBool,
    waker: AtomicWaker,
    requests_in_flight: Mutex<Vec<Request1>>,
}

impl Shared {
    pub(crate) fn new(timeouts: Timeouts) -> Shared {
        Shared {
            epoch: Instant::now(),
            timeouts,
            requests: AtomicU64::new(0),
            in_flight: AtomicU32::new(0),
            idle_since: AtomicU64::new(0),
            head_started: AtomicU64::new(0),
            write_blocked: AtomicU64::new(0),
            oldest_sending: AtomicU64::new(0),
            h2: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            waker: AtomicWaker::new(),
            requests_in_flight: Mutex::new(Vec::new()),
        }
    }

    /// Asks the connection to finish (server shutdown).
    pub(crate) fn stop(&self) {
        self.stopping.store(true, Relaxed);
        self.waker.wake();
    }

    fn stamp(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis())
            .unwrap_or(u64::MAX - 1)
            .saturating_add(1)
    }

    fn at(&self, stamp: u64) -> Option<Instant> {
        (stamp != 0).then(|| self.epoch + Duration::from_millis(stamp - 1))
    }

    fn table(&self) -> MutexGuard<'_, Vec<Request1>> {
        self.requests_in_flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A request head was read: the request is in flight until its
    /// response has been handed to the connection (or it is dropped).
    fn begin(self: &Arc<Self>, version: Version) -> InFlight {
        let mut table = self.table();
        let index = match table.iter().position(|r| !r.used) {
            Some(i) => i,
            None => {
                table.push(Request1::default());
                table.len() - 1
            }
        };
        if let Some(r) = table.get_mut(index) {
            *r = Request1 {
                used: true,
                ..Request1::default()
            };
        }
        self.requests.fetch_add(1, Relaxed);
        self.in_flight.fetch_add(1, Relaxed);
        self.head_started.store(0, Relaxed);
        if version == Version::HTTP_2 {
            self.h2.store(true, Relaxed);
        }
        InFlight {
            shared: self.clone(),
            index,
            h1: version < Version::HTTP_2,
        }
    }

    /// The response head is ready; returns whether the request body timed
    /// out.
    fn responding(&self, index: usize) -> bool {
        let stamp = self.stamp();
        let mut table = self.table();
        let Some(r) = table.get_mut(index) else {
            return false;
        };
        r.sending_since = stamp;
        if self.oldest_sending.load(Relaxed) == 0 {
            self.oldest_sending.store(stamp, Relaxed);
        }
        r.body_timed_out
    }

    fn body_timed_out(&self, index: usize) {
        if let Some(r) = self.table().get_mut(index) {
            r.body_timed_out = true;
        }
    }

    fn end(&self, index: usize) {
        let stamp = self.stamp();
        let mut table = self.table();
        let Some(r) = table.get_mut(index) else {
            return;
        };
        let was = r.sending_since;
        *r = Request1::default();
        if was != 0 && was == self.oldest_sending.load(Relaxed) {
            let oldest = table
                .iter()
                .filter(|r| r.used && r.sending_since != 0)
                .map(|r| r.sending_since)
                .min()
                .unwrap_or(0);
            self.oldest_sending.store(oldest, Relaxed);
        }
        self.idle_since.store(stamp, Relaxed);
        self.in_flight.fetch_sub(1, Relaxed);
    }

    /// Bytes were read from the client.
    fn on_read(&self) {
        if self.in_flight.load(Relaxed) == 0
            && self.head_started.load(Relaxed) == 0
            && !self.h2.load(Relaxed)
            && self.requests.load(Relaxed) > 0
        {
            self.head_started.store(self.stamp(), Relaxed);
        }
    }

    fn write_pending(&self) {
        if self.write_blocked.load(Relaxed) == 0 {
            self.write_blocked.store(self.stamp(), Relaxed);
        }
    }

    fn write_progress(&self) {
        if self.write_blocked.load(Relaxed) != 0 {
            self.write_blocked.store(0, Relaxed);
        }
    }

    /// The earliest deadline of the connection and what happens then.
    fn next_deadline(&self, draining: Option<Draining>) -> Option<(Instant, Action)> {
        let t = &self.timeouts;
        let mut best: Option<(Instant, Action)> = None;
        let mut consider = |at: Option<Instant>, action: Action| {
            if let Some(at) = at {
                if best.is_none_or(|(b, _)| at < b) {
                    best = Some((at, action));
                }
            }
        };
        if self.requests.load(Relaxed) == 0 {
            consider(
                Some(self.epoch + t.read_header),
                Action::Close("no request head within read-header-timeout of accept"),
            );
        } else if self.in_flight.load(Relaxed) == 0 {
            match draining {
                None => consider(
                    self.at(self.idle_since.load(Relaxed)).map(|i| i + t.idle),
                    Action::Drain,
                ),
                Some(d) => consider(
                    Some(d.since + t.read_header),
                    Action::Close("graceful close not completed"),
                ),
            }
            consider(
                self.at(self.head_started.load(Relaxed))
                    .map(|h| h + t.read_header),
                Action::Close("request head not complete within read-header-timeout"),
            );
        } else {
            consider(
                self.at(self.oldest_sending.load(Relaxed))
                    .map(|s| s + t.write),
                Action::Close("response not sent within write-timeout"),
            );
        }
        consider(
            self.at(self.write_blocked.load(Relaxed))
                .map(|w| w + t.write),
            Action::Close("no write progress within write-timeout"),
        );
        if let Some(d) = draining {
            consider(Some(d.hard), Action::Close("graceful close timed out"));
        }
        best
    }
}

/// A request in flight; dropping it ends the request.
pub(crate) struct InFlight {
    shared: Arc<Shared>,
    index: usize,
    h1: bool,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.shared.end(self.index);
    }
}

/// Serves one admitted connection until it ends, a bound passes, or the
/// server stops.
pub(crate) async fn serve(
    tcp: TcpStream,
    peer: SocketAddr,
    slot: Slot,
    tls: TlsAcceptor,
    builder: Arc<auto::Builder<TokioExecutor>>,
    router: axum::Router,
) {
    let shared = slot.shared().clone();
    let t = shared.timeouts;
    let mut sleep = std::pin::pin!(tokio::time::sleep_until(shared.epoch + t.read_header));
    let mut handshake = std::pin::pin!(tls.accept(tcp));
    let stream = std::future::poll_fn(|cx| {
        if let Poll::Ready(r) = handshake.as_mut().poll(cx) {
            return Poll::Ready(r.map_err(|e| format!("TLS handshake failed: {e}")));
        }
        shared.waker.register(cx.waker());
        if shared.stopping.load(Relaxed) {
            return Poll::Ready(Err("server stopping".to_string()));
        }
        ready!(sleep.as_mut().poll(cx));
        Poll::Ready(Err(
            "TLS handshake not completed within read-header-timeout".to_string(),
        ))
    })
    .await;
    let stream = match stream {
        Ok(s) => s,
        Err(why) => {
            tracing::debug!(target: "wfe", %peer, "connection closed: {why}");
            return;
        }
    };
    // A tls-alpn-01 validation (RFC 8737 §3) ends with the handshake: the
    // CA has seen the validation certificate; no HTTP follows.
    if stream.get_ref().1.alpn_protocol() == Some(crate::tls::ACME_TLS_ALPN) {
        tracing::debug!(target: "tls", %peer, "tls-alpn-01 validation handshake answered");
        return;
    }

    let io = TokioIo::new(Watched {
        inner: stream,
        shared: shared.clone(),
    });
    let service = Tracked {
        router,
        shared: shared.clone(),
        peer,
    };
    let mut conn = std::pin::pin!(builder.serve_connection(io, service));
    let mut draining: Option<Draining> = None;
    let mut stop_seen = false;
    let ended = std::future::poll_fn(|cx| loop {
        if let Poll::Ready(r) = conn.as_mut().poll(cx) {
            return Poll::Ready(r.map_err(|e| e.to_string()));
        }
        shared.waker.register(cx.waker());
        if !stop_seen && shared.stopping.load(Relaxed) {
            // Server shutdown: finish what is in flight within
            // shutdown-timeout.
            stop_seen = true;
            let now = Instant::now();
            let hard = now + t.shutdown;
            match draining.as_mut() {
                Some(d) => d.hard = d.hard.min(hard),
                None => {
                    conn.as_mut().graceful_shutdown();
                    draining = Some(Draining { since: now, hard });
                }
            }
            continue;
        }
        let next = shared.next_deadline(draining);
        if let Some((at, _)) = next {
            if at < sleep.deadline() {
                sleep.as_mut().reset(at);
            }
        }
        if sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        let now = Instant::now();
        match shared.next_deadline(draining) {
            Some((at, Action::Close(why))) if at <= now => {
                return Poll::Ready(Err(why.to_string()));
            }
            Some((at, Action::Drain)) if at <= now => {
                conn.as_mut().graceful_shutdown();
                draining = Some(Draining {
                    since: now,
                    hard: now + t.idle_drain(),
                });
            }
            Some((at, _)) => sleep.as_mut().reset(at),
            // Requests in flight, no response being sent yet: look again
            // later (a deadline that appears sooner is seen when the
            // connection is next polled).
            None => sleep.as_mut().reset(now + t.write.min(t.idle)),
        }
    })
    .await;
    if let Err(why) = ended {
        tracing::debug!(target: "wfe", %peer, "connection closed: {why}");
    }
    drop(slot);
}

/// The TLS stream, reporting reads and write progress to [`Shared`].
struct Watched<T> {
    inner: T,
    shared: Arc<Shared>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Watched<T> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        let r = Pin::new(&mut this.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            this.shared.on_read();
        }
        r
    }
}

impl<T: AsyncWrite + Unpin> Watched<T> {
    fn note<R>(&self, r: &Poll<std::io::Result<R>>) {
        match r {
            Poll::Pending => self.shared.write_pending(),
            Poll::Ready(Ok(_)) => self.shared.write_progress(),
            Poll::Ready(Err(_)) => {}
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Watched<T> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.note(&r);
        r
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
        this.note(&r);
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_flush(cx);
        this.note(&r);
        r
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let this = self.get_mut();
        let r = Pin::new(&mut this.inner).poll_shutdown(cx);
        this.note(&r);
        r
    }
}

/// The router as a hyper service that keeps the books of [`Shared`].
#[derive(Clone)]
struct Tracked {
    router: axum::Router,
    shared: Arc<Shared>,
    /// The TCP peer, given to every request (`ConnectInfo`) for the
    /// client-address rules of the web front end.
    peer: SocketAddr,
}

impl hyper::service::Service<Request<Incoming>> for Tracked {
    type Response = Response<ResponseBody>;
    type Error = Infallible;
    type Future = TrackedFuture;

    fn call(&self, req: Request<Incoming>) -> TrackedFuture {
        let guard = self.shared.begin(req.version());
        let t = &self.shared.timeouts;
        let now = Instant::now();
        let index = guard.index;
        let shared = self.shared.clone();
        let mut req = req.map(|inner| RequestBody {
            inner,
            deadline: now + t.read,
            timer: None,
            on_timeout: Some((shared, index)),
        });
        req.extensions_mut()
            .insert(axum::extract::ConnectInfo(self.peer));
        TrackedFuture {
            inner: tokio::time::timeout_at(now + t.handler(), self.router.clone().oneshot(req)),
            guard: Some(guard),
            limit: t.handler(),
            read_timeout: t.read,
        }
    }
}

pin_project_lite::pin_project! {
    /// A request being handled: bounded by the handler deadline; its
    /// response carries the in-flight guard to the end of its body.
    struct TrackedFuture {
        #[pin]
        inner: tokio::time::Timeout<Oneshot<axum::Router, Request<RequestBody>>>,
        guard: Option<InFlight>,
        limit: Duration,
        read_timeout: Duration,
    }
}

impl Future for TrackedFuture {
    type Output = Result<Response<ResponseBody>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let resp = match ready!(this.inner.poll(cx)) {
            Ok(Ok(resp)) => resp,
            Ok(Err(never)) => match never {},
            Err(_) => problem(
                503,
                acme_wire::ProblemType::ServerInternal,
                format!("the request was not completed within {:?}", this.limit),
            ),
        };
        let guard = this.guard.take();
        let body_timed_out = guard.as_ref().is_some_and(|g| g.shared.responding(g.index));
        let resp = if body_timed_out {
            let mut r = problem(
                408,
                acme_wire::ProblemType::Malformed,
                format!(
                    "the request body was not received within read-timeout ({:?})",
                    this.read_timeout
                ),
            );
            if guard.as_ref().is_some_and(|g| g.h1) {
                r.headers_mut().insert(
                    http::header::CONNECTION,
                    http::HeaderValue::from_static("close"),
                );
            }
            r
        } else {
            resp
        };
        Poll::Ready(Ok(resp.map(|inner| ResponseBody {
            inner,
            _guard: guard,
        })))
    }
}

fn problem(
    status: u16,
    kind: acme_wire::ProblemType,
    detail: String,
) -> Response<axum::body::Body> {
    let p = acme_wire::Problem::new(kind, detail).with_status(status);
    let mut r = Response::new(axum::body::Body::from(p.to_json().to_string()));
    *r.status_mut() =
        http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::INTERNAL_SERVER_ERROR);
    r.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/problem+json"),
    );
    r
}

/// Error of a request body not received within `read-timeout`.
#[derive(Debug, thiserror::Error)]
#[error("request body not received within read-timeout")]
pub(crate) struct BodyTimeout;

pin_project_lite::pin_project! {
    /// A request body that fails once `read-timeout` has passed since its
    /// head. The timer is created only when the body is not already there.
    pub(crate) struct RequestBody {
        #[pin]
        inner: Incoming,
        deadline: Instant,
        #[pin]
        timer: Option<Sleep>,
        on_timeout: Option<(Arc<Shared>, usize)>,
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let mut this = self.project();
        if let Poll::Ready(frame) = this.inner.poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if this.timer.is_none() {
            this.timer
                .set(Some(tokio::time::sleep_until(*this.deadline)));
        }
        if let Some(timer) = this.timer.as_mut().as_pin_mut() {
            ready!(timer.poll(cx));
        }
        if let Some((shared, index)) = this.on_timeout.take() {
            shared.body_timed_out(index);
        }
        Poll::Ready(Some(Err(Box::new(BodyTimeout))))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body holding its request's in-flight guard until hyper has
/// taken the last frame (or dropped it).
pub(crate) struct ResponseBody {
    inner: axum::body::Body,
    _guard: Option<InFlight>,
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        Pin::new(&mut self.get_mut().inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
