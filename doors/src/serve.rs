//! One HTTP/1.1 server loop for the node's HTTP doors (national, peer-facing, admin): TLS
//! handshakes (when the door has TLS) off the accept loop, each request told its
//! [`Connection`] (source address, client certificate) so that the door can authenticate and
//! log who called, and on shutdown no new connections and open ones closed after their current
//! request. The loop owns its connections and returns once they have closed, so that the
//! node's shutdown waits for a request in flight (it may write) before the last audit
//! checkpoint, and drops them when `shutdown_seconds` runs out.
//!
//! Every connection is bounded (`[connections]`, docs/config.md): a door holds at most
//! `max_per_door` connections (one more is accepted and closed at once), a request's head must
//! arrive within `header_timeout_seconds` of its first byte, a body being read may not stall
//! for `body_stall_seconds` and neither may an answer the client stops reading, and a
//! connection with no request in progress is closed after `idle_timeout_seconds`. Each closing is counted per door in `/metrics`.

use std::future::Future as _;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use http_body_util::BodyExt as _;
use hyper::body::{Bytes, Frame, Incoming, SizeHint};
use hyper::service::Service as _;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use crate::accept::ConfigSource;
use crate::config::Connections;
use crate::national::Connection;

/// Counters of one HTTP door's connections, for `/metrics`.
#[derive(Debug, Default)]
pub struct DoorCounters {
    /// Connections open now (TLS handshakes in progress included).
    open: AtomicU64,
    /// Connections accepted and closed at once because `max_per_door` were open.
    refused: AtomicU64,
    /// Closed because a request's head did not arrive within `header_timeout_seconds` (or the
    /// TLS handshake did not).
    header_timeouts: AtomicU64,
    /// Requests whose body stalled for `body_stall_seconds` (their connection is closed).
    body_stalls: AtomicU64,
    /// Closed because the client took no byte of an answer for `body_stall_seconds`.
    write_stalls: AtomicU64,
    /// Closed after `idle_timeout_seconds` with no request.
    idle_timeouts: AtomicU64,
}

/// The connection counters of every door, and of the Window's calls.
#[derive(Debug, Default, Clone)]
pub struct Doors {
    pub national: Arc<DoorCounters>,
    pub peer: Arc<DoorCounters>,
    pub admin: Arc<DoorCounters>,
    pub window: Arc<crate::calls::CallCounters>,
}

impl Doors {
    /// Registers the connection series of every door, and the Window's calls.
    pub fn register(&self, r: &mut prometheus_client::registry::Registry) {
        r.register_collector(Box::new(self.clone()));
        self.window.register(r);
    }
}

impl prometheus_client::collector::Collector for Doors {
    fn encode(&self, mut e: prometheus_client::encoding::DescriptorEncoder) -> std::fmt::Result {
        use prometheus_client::encoding::EncodeMetric as _;
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;
        use prometheus_client::metrics::MetricType;
        let doors = [
            ("national", &self.national),
            ("peer", &self.peer),
            ("admin", &self.admin),
        ];
        let mut m = e.encode_descriptor(
            "http_connections_open",
            "Connections open on each HTTP door (connections.max_per_door).",
            None,
            MetricType::Gauge,
        )?;
        for (door, c) in doors {
            ConstGauge::new(c.open.load(Ordering::Relaxed))
                .encode(m.encode_family(&[("door", door)])?)?;
        }
        let mut m = e.encode_descriptor(
            "http_connections_refused",
            "Connections accepted and closed at once because connections.max_per_door were open.",
            None,
            MetricType::Counter,
        )?;
        for (door, c) in doors {
            ConstCounter::new(c.refused.load(Ordering::Relaxed))
                .encode(m.encode_family(&[("door", door)])?)?;
        }
        let mut m = e.encode_descriptor(
            "http_connections_closed",
            "Connections an HTTP door closed for a bound: a head slower than connections.header_timeout_seconds, a request body stalled or an answer not read for connections.body_stall_seconds, no request for connections.idle_timeout_seconds.",
            None,
            MetricType::Counter,
        )?;
        for (door, c) in doors {
            for (reason, n) in [
                ("header_timeout", &c.header_timeouts),
                ("body_stall", &c.body_stalls),
                ("write_stall", &c.write_stalls),
                ("idle_timeout", &c.idle_timeouts),
            ] {
                ConstCounter::new(n.load(Ordering::Relaxed))
                    .encode(m.encode_family(&[("door", door), ("reason", reason)])?)?;
            }
        }
        Ok(())
    }
}

/// The bounds one door applies (from `[connections]`).
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    header: Duration,
    body_stall: Duration,
    idle: Duration,
    max_open: u64,
}

impl Bounds {
    pub fn new(c: &Connections) -> Self {
        Self {
            header: Duration::from_secs(c.header_timeout_seconds),
            body_stall: Duration::from_secs(c.body_stall_seconds),
            idle: Duration::from_secs(c.idle_timeout_seconds),
            max_open: c.max_per_door as u64,
        }
    }
}

/// Serves `app` on `listener` until `shutdown`, with TLS from `tls` when given.
pub async fn serve(
    listener: TcpListener,
    tls: Option<ConfigSource>,
    app: Router,
    shutdown: CancellationToken,
    door: &'static str,
    bounds: Bounds,
    counters: Arc<DoorCounters>,
) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            a = listener.accept() => a,
            // Reaps closed connections, so the set does not grow with each one.
            Some(_) = connections.join_next(), if !connections.is_empty() => continue,
        };
        let (tcp, source) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of descriptors, typically: pause rather than spin.
                tracing::warn!(door, error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Only this loop adds to `open`, so the check cannot race with another accept.
        if counters.open.load(Ordering::Relaxed) >= bounds.max_open {
            counters.refused.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(door, peer = %source, "connection refused: connections.max_per_door open");
            drop(tcp);
            continue;
        }
        let open = Open::new(counters.clone());
        let _ = tcp.set_nodelay(true);
        let app = app.clone();
        let shutdown = shutdown.clone();
        match &tls {
            None => {
                let connection = Connection {
                    source: Some(source),
                    certificate: None,
                };
                connections.spawn(serve_connection(
                    tcp, connection, app, shutdown, door, bounds, open,
                ));
            }
            Some(config) => {
                let acceptor = TlsAcceptor::from(config());
                connections.spawn(async move {
                    // A handshake is a head too: it gets the head's time, off the accept loop.
                    let stream = match tokio::time::timeout(bounds.header, acceptor.accept(tcp))
                        .await
                    {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(e)) => {
                            tracing::warn!(door, peer = %source, error = %e, "TLS handshake refused");
                            return;
                        }
                        Err(_) => {
                            open.0.header_timeouts.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(door, peer = %source, "TLS handshake timed out (connections.header_timeout_seconds)");
                            return;
                        }
                    };
                    let connection = Connection {
                        source: Some(source),
                        certificate: stream
                            .get_ref()
                            .1
                            .peer_certificates()
                            .and_then(|c| c.first())
                            .map(|c| Arc::new(c.as_ref().to_vec())),
                    };
                    serve_connection(stream, connection, app, shutdown, door, bounds, open).await;
                });
            }
        }
    }
    while connections.join_next().await.is_some() {}
}

/// How often a connection still open at shutdown checks whether it has a request to finish.
const SHUTDOWN_POLL: Duration = Duration::from_millis(500);

/// One open connection of a door, counted while it lives.
struct Open(Arc<DoorCounters>);

impl Open {
    fn new(counters: Arc<DoorCounters>) -> Self {
        counters.open.fetch_add(1, Ordering::Relaxed);
        Self(counters)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Why a connection's watch closed it.
#[derive(Debug, Clone, Copy)]
enum Expired {
    Header,
    Idle,
    /// The client stopped reading an answer.
    WriteStall,
}

async fn serve_connection<I>(
    io: I,
    connection: Connection,
    app: Router,
    shutdown: CancellationToken,
    door: &'static str,
    bounds: Bounds,
    open: Open,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let activity = Arc::new(Activity::new());
    let io = Watched {
        inner: io,
        activity: activity.clone(),
    };
    let counters = open.0.clone();
    let service = hyper_util::service::TowerToHyperService::new(app);
    let watched = activity.clone();
    let service = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let busy = Busy::new(watched.clone());
        let mut req = req.map(|body| {
            axum::body::Body::new(Stalling {
                inner: body,
                stall: bounds.body_stall,
                timer: None,
                failed: false,
                counters: counters.clone(),
            })
        });
        req.extensions_mut().insert(connection.clone());
        let answer = service.call(req);
        async move {
            let response = answer.await?;
            // The request is in progress until its answer's body is written (or dropped).
            Ok::<_, std::convert::Infallible>(response.map(|body| {
                axum::body::Body::new(body.map_frame(move |frame| {
                    let _in_progress = &busy;
                    frame
                }))
            }))
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        // The watch below bounds heads and idle time; hyper's own head timer (which runs
        // from the end of the previous answer) is only a backstop behind both.
        .header_read_timeout(bounds.idle + bounds.header)
        .serve_connection(hyper_util::rt::TokioIo::new(io), service);
    tokio::pin!(conn);
    let mut closing = false;
    let ended = loop {
        let (mut deadline, _) = activity.deadline(&bounds);
        if closing {
            deadline = deadline.min(Instant::now() + SHUTDOWN_POLL);
        }
        tokio::select! {
            r = conn.as_mut() => break r,
            _ = shutdown.cancelled(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = tokio::time::sleep_until(deadline) => {
                // At shutdown a connection with no request in progress is not waited for
                // (hyper closes an idle one itself, but not one that has sent half a head).
                if closing && activity.in_progress.load(Ordering::Acquire) == 0 {
                    break Ok(());
                }
                // The connection may have moved on since the deadline was taken: look again.
                let (deadline, why) = activity.deadline(&bounds);
                if let (Some(why), true) = (why, deadline <= Instant::now()) {
                    let counter = match why {
                        Expired::Header => &open.0.header_timeouts,
                        Expired::Idle => &open.0.idle_timeouts,
                        Expired::WriteStall => &open.0.write_stalls,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(door, reason = ?why, "connection closed by its bound");
                    // Dropping the connection closes the socket.
                    return;
                }
            }
        }
    };
    if let Err(e) = ended {
        tracing::debug!(door, error = %e, "connection ended");
    }
    drop(open);
}

/// No time recorded.
const NEVER: u64 = u64::MAX;

/// What a connection is doing, as its watch sees it: requests in progress, when it last
/// became idle, when the first byte of a next head arrived, and since when a write has waited
/// for the client to read. Times are milliseconds since the connection opened.
struct Activity {
    opened: Instant,
    in_progress: AtomicUsize,
    idle_since: AtomicU64,
    head_since: AtomicU64,
    write_blocked_since: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            in_progress: AtomicUsize::new(0),
            idle_since: AtomicU64::new(0),
            head_since: AtomicU64::new(NEVER),
            write_blocked_since: AtomicU64::new(NEVER),
        }
    }

    fn now(&self) -> u64 {
        self.opened.elapsed().as_millis() as u64
    }

    fn at(&self, ms: u64) -> Instant {
        self.opened + Duration::from_millis(ms)
    }

    /// Bytes arrived: with no request in progress they begin a head.
    fn read(&self) {
        if self.in_progress.load(Ordering::Acquire) == 0 {
            let now = self.now();
            let _ =
                self.head_since
                    .compare_exchange(NEVER, now, Ordering::AcqRel, Ordering::Relaxed);
        }
    }

    /// A write could not go on (the client is not reading), or went on.
    fn write_blocked(&self, blocked: bool) {
        if blocked {
            let now = self.now();
            let _ = self.write_blocked_since.compare_exchange(
                NEVER,
                now,
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
        } else {
            self.write_blocked_since.store(NEVER, Ordering::Release);
        }
    }

    /// When the watch must look again, and what expires then. While a request is in
    /// progress only an answer the client stopped reading expires (its body has the stall
    /// bound, its handler its own); the watch looks again every `body_stall` for that.
    fn deadline(&self, bounds: &Bounds) -> (Instant, Option<Expired>) {
        if self.in_progress.load(Ordering::Acquire) > 0 {
            return match self.write_blocked_since.load(Ordering::Acquire) {
                NEVER => (Instant::now() + bounds.body_stall, None),
                since => (
                    self.at(since) + bounds.body_stall,
                    Some(Expired::WriteStall),
                ),
            };
        }
        match self.head_since.load(Ordering::Acquire) {
            NEVER => (
                self.at(self.idle_since.load(Ordering::Acquire)) + bounds.idle,
                Some(Expired::Idle),
            ),
            since => (self.at(since) + bounds.header, Some(Expired::Header)),
        }
    }
}

/// A request in progress on a connection (from its head to the end of its answer).
struct Busy(Arc<Activity>);

impl Busy {
    fn new(activity: Arc<Activity>) -> Self {
        activity.in_progress.fetch_add(1, Ordering::AcqRel);
        activity.head_since.store(NEVER, Ordering::Release);
        Self(activity)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let a = &self.0;
        a.idle_since.store(a.now(), Ordering::Release);
        a.head_since.store(NEVER, Ordering::Release);
        a.in_progress.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The connection's socket, telling its [`Activity`] when bytes arrive.
struct Watched<I> {
    inner: I,
    activity: Arc<Activity>,
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(r, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.read();
        }
        r
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.activity.write_blocked(r.is_pending());
        r
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let r = Pin::new(&mut self.inner).poll_flush(cx);
        self.activity.write_blocked(r.is_pending());
        r
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.activity.write_blocked(r.is_pending());
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

/// Why a request body could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BodyError {
    #[error("request body stopped arriving: no byte for {0:?} (connections.body_stall_seconds)")]
    Stalled(Duration),
    #[error("reading the request body: {0}")]
    Read(#[source] hyper::Error),
}

/// A request body that fails when no byte arrives for `stall` while it is being read.
struct Stalling {
    inner: Incoming,
    stall: Duration,
    timer: Option<Pin<Box<tokio::time::Sleep>>>,
    failed: bool,
    counters: Arc<DoorCounters>,
}

impl hyper::body::Body for Stalling {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = &mut *self;
        if this.failed {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.timer = None;
                Poll::Ready(frame.map(|f| f.map_err(BodyError::Read)))
            }
            Poll::Pending => {
                let stall = this.stall;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(stall)));
                if timer.as_mut().poll(cx).is_ready() {
                    this.timer = None;
                    this.failed = true;
                    this.counters.body_stalls.fetch_add(1, Ordering::Relaxed);
                    return Poll::Ready(Some(Err(BodyError::Stalled(stall))));
                }
                Poll::Pending
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
