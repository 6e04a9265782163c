//! One HTTP/1.1 server loop for the node's HTTP doors (national, peer-facing, admin): TLS
//! handshakes (when the door has TLS) off the accept loop, each request told its
//! [`Connection`] (source address, client certificate) so that the door can authenticate and
//! log who called, a bound on how long a request's head may take, and on shutdown no new
//! connections and open ones closed after their current request.

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
                };
                let (tcp, session) = stream.get_ref();
                let connection = Connection {
                    source: tcp.peer_addr().ok(),
                    certificate: session
                        .peer_certificates()
                        .and_then(|c| c.first())
                        .map(|c| Arc::new(c.as_ref().to_vec())),
                };
                spawn(stream, connection, app.clone(), shutdown.clone(), door);
            }
        }
        None => loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                a = listener.accept() => a,
            };
            match accepted {
                Ok((tcp, source)) => {
                    let _ = tcp.set_nodelay(true);
                    let connection = Connection {
                        source: Some(source),
                        certificate: None,
                    };
                    spawn(tcp, connection, app.clone(), shutdown.clone(), door);
                }
                Err(e) => {
                    // Out of descriptors, typically: pause rather than spin.
                    tracing::warn!(door, error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        },
    }
}

fn spawn<I>(
    io: I,
    connection: Connection,
    app: Router,
    shutdown: CancellationToken,
    door: &'static str,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper_util::service::TowerToHyperService::new(app);
    let service =
        hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(connection.clone());
            service.call(req)
        });
    tokio::spawn(async move {
        let conn = hyper::server::conn::http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(HEADER_TIMEOUT)
            .serve_connection(hyper_util::rt::TokioIo::new(io), service);
        tokio::pin!(conn);
        let ended = tokio::select! {
            r = conn.as_mut() => r,
            _ = shutdown.cancelled() => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        if let Err(e) = ended {
            tracing::debug!(door, error = %e, "connection ended");
        }
    });
}
