//! One HTTP/1.1 server loop for the node's HTTP doors (national, peer-facing, admin): TLS
//! handshakes (when the door has TLS) off the accept loop, each request told its
//! [`Connection`] (source address, client certificate) so that the door can authenticate and
//! log who called, a bound on how long a request's head may take, and on shutdown no new
//! connections and open ones closed after their current request. The loop owns its
//! connections and returns once they have closed, so that the node's shutdown waits for a
//! request in flight (it may write) before the last audit checkpoint, and drops them when
//! `shutdown_seconds` runs out.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::service::Service as _;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::national::Connection;
use super::tls::ConfigSource;

/// How long a client may take to send a request's head (slow-header clients hold nothing
/// longer).
const HEADER_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `app` on `listener` until `shutdown`, with TLS from `tls` when given.
pub(crate) async fn serve(
    listener: TcpListener,
    tls: Option<ConfigSource>,
    app: Router,
    shutdown: CancellationToken,
    door: &'static str,
) {
    use tokio_stream::StreamExt;
    let mut connections = tokio::task::JoinSet::new();
    match tls {
        Some(config) => {
            let mut incoming = super::tls::incoming(listener, config, shutdown.clone());
            loop {
                let stream = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    s = incoming.next() => match s {
                        Some(Ok(s)) => s,
                        Some(Err(_)) => continue,
                        None => break,
                    },
                    // Reaps closed connections, so the set does not grow with each one.
                    Some(_) = connections.join_next(), if !connections.is_empty() => continue,
                };
                let (tcp, session) = stream.get_ref();
                let connection = Connection {
                    source: tcp.peer_addr().ok(),
                    certificate: session
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .map(|c| Arc::new(c.as_ref().to_vec())),
                };
                spawn(
                    &mut connections,
                    stream,
                    connection,
                    app.clone(),
                    shutdown.clone(),
                    door,
                );
            }
        }
        None => loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                a = listener.accept() => a,
                Some(_) = connections.join_next(), if !connections.is_empty() => continue,
            };
            match accepted {
                Ok((tcp, source)) => {
                    let _ = tcp.set_nodelay(true);
                    let connection = Connection {
                        source: Some(source),
                        certificate: None,
                    };
                    spawn(
                        &mut connections,
                        tcp,
                        connection,
                        app.clone(),
                        shutdown.clone(),
                        door,
                    );
                }
                Err(e) => {
                    // Out of descriptors, typically: pause rather than spin.
                    tracing::warn!(door, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        },
    }
    while connections.join_next().await.is_some() {}
}

/// How often a connection still open at shutdown checks whether it has a request to finish
/// (the response of one just answered gets this long to be written).
const SHUTDOWN_POLL: Duration = Duration::from_millis(500);

/// Counts a request as answered when dropped (also when its connection goes away).
struct Answered(Arc<AtomicUsize>);

impl Drop for Answered {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

fn spawn<I>(
    connections: &mut tokio::task::JoinSet<()>,
    io: I,
    connection: Connection,
    app: Router,
    shutdown: CancellationToken,
    door: &'static str,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper_util::service::TowerToHyperService::new(app);
    // Requests of this connection being answered: at shutdown, one with none is not waited for
    // (hyper closes an idle one itself, but not one that has sent half a request's head).
    let in_flight = Arc::new(AtomicUsize::new(0));
    let counter = in_flight.clone();
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(connection.clone());
            counter.fetch_add(1, Ordering::AcqRel);
            let answered = Answered(counter.clone());
            let answer = service.call(req);
            async move {
                let r = answer.await;
                drop(answered);
                r
            }
        });
    connections.spawn(async move {
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .serve_connection(hyper_util::rt::TokioIo::new(io), service);
        tokio::pin!(conn);
        let ended = tokio::select! {
            r = conn.as_mut() => r,
            _ = shutdown.cancelled() => {
                conn.as_mut().graceful_shutdown();
                loop {
                    tokio::select! {
                        r = conn.as_mut() => break r,
                        _ = tokio::time::sleep(SHUTDOWN_POLL) => {
                            if in_flight.load(Ordering::Acquire) == 0 {
                                break Ok(());
                            }
                        }
                    }
                }
            }
        };
        if let Err(e) = ended {
            tracing::debug!(door, error = %e, "connection ended");
        }
    });
}
