//! Starting and stopping the node, as named steps: open the node, bind and serve each door,
//! start the relay and the background duties, announce readiness, wait for a signal (or a
//! store that can no longer write), then drain within the shutdown budget and sign the last
//! audit checkpoint. A door that cannot bind stops the start before anything is served.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinSet;
use tokio_stream::StreamExt;
use tokio_util::sync::CancellationToken;

use super::{
    accept, admin, calls, crl, doors, events, exchange, http, proto, reference, relay, tls,
    transfer, webhooks, window, CheckpointFailure, Node, StartError, KEEPALIVE_INTERVAL,
    KEEPALIVE_TIMEOUT, WINDOW_CONNECTION_WINDOW, WINDOW_STREAM_WINDOW,
};
use crate::config::NodeConfig;
use crate::store::StoreError;
use tereze_support::clock::now_ms;

/// Runs the node until SIGTERM or SIGINT, then shuts down in order.
pub async fn run(config: NodeConfig) -> Result<(), StartError> {
    let node = Node::open(config)?;
    let mut tasks = JoinSet::new();
    serve_exchange(&node, &mut tasks).await?;
    warn_of_plaintext(&node.config);
    serve_window(&node, &mut tasks).await?;
    serve_http_doors(&node, &mut tasks).await?;
    let relay = relay::start(node.clone());
    spawn_duties(&node, &mut tasks);
    announce(&node);
    let mut failed = node.committer.failed();
    tokio::select! {
        _ = wait_for_signal(&node.shutdown) => {}
        Ok(reason) = failed.wait_for(Option::is_some) => {
            // Crash-only from here: the engine takes no more writes, and whatever was
            // acknowledged is on disk. The service manager restarts the node, which reopens
            // the store (and refuses new work while the disk stays under the reserve).
            let reason = reason.clone().unwrap_or_default();
            tracing::error!(error = %reason, "the store can no longer write: the node exits for a restart");
            node.shutdown.cancel();
            return Err(node.store_failed(&reason));
        }
    }
    drain(&node, relay, tasks).await;
    // The last entry of the chain is this checkpoint's: nothing is written after it.
    let checkpoint =
        tokio::time::timeout(crate::shutdown::FINAL_CHECKPOINT, node.last_checkpoint()).await;
    // A write refused during the drain ends the node for a restart, whatever became of the
    // checkpoint.
    if let Some(reason) = failed.borrow().clone() {
        return Err(node.store_failed(&reason));
    }
    match checkpoint {
        Ok(Ok(covered)) => {
            tracing::info!(at = now_ms(), audit_entries = covered, "stopped");
            Ok(())
        }
        Ok(Err(StoreError::Io(reason))) => Err(node.store_failed(&reason.to_string())),
        Ok(Err(e)) => Err(StartError::FinalCheckpoint {
            path: node.store_path.clone(),
            source: e.into(),
        }),
        Err(_) => Err(StartError::FinalCheckpoint {
            path: node.store_path.clone(),
            source: CheckpointFailure::NoAnswer,
        }),
    }
}

/// Binds one door's address; a failure names the address.
async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen { addr, source })
}

/// The `Exchange` service for peer nodes, over mutual TLS (`listen.exchange`).
async fn serve_exchange(node: &Arc<Node>, tasks: &mut JoinSet<()>) -> Result<(), StartError> {
    let listener = bind(node.config.listen.exchange).await?;
    let node = node.clone();
    let for_tls = node.clone();
    let incoming = accept::incoming(
        listener,
        Arc::new(move || for_tls.tls_server()),
        node.shutdown.clone(),
    );
    tasks.spawn(async move {
        let service = exchange::service(node.clone());
        let shutdown = node.shutdown.clone();
        if let Err(e) = tonic::transport::Server::builder()
            .initial_stream_window_size(tereze_relay::TRANSFER_WINDOW)
            .initial_connection_window_size(tereze_relay::TRANSFER_WINDOW * 2)
            .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
            .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
            .max_concurrent_streams(node.config.connections.exchange_max_streams)
            .add_service(service)
            .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
            .await
        {
            tracing::error!(error = %e, "exchange server stopped");
        }
    });
    Ok(())
}

/// The `Window` service for the national system (`listen.window`), if configured.
async fn serve_window(node: &Arc<Node>, tasks: &mut JoinSet<()>) -> Result<(), StartError> {
    let Some(addr) = node.config.listen.window else {
        return Ok(());
    };
    let listener = bind(addr).await?;
    let tls = national_tls(&node.config, b"h2")?;
    let node = node.clone();
    tasks.spawn(async move {
        let bounds = &node.config.connections;
        let service = calls::Bounded::new(
            window::service(node.clone()),
            bounds.window_max_calls,
            node.metrics.connections.window.clone(),
        );
        let shutdown = node.shutdown.clone();
        let server = tonic::transport::Server::builder()
            .http2_keepalive_interval(Some(KEEPALIVE_INTERVAL))
            .http2_keepalive_timeout(Some(KEEPALIVE_TIMEOUT))
            .max_concurrent_streams(bounds.window_max_streams)
            .initial_stream_window_size(WINDOW_STREAM_WINDOW)
            .initial_connection_window_size(WINDOW_CONNECTION_WINDOW)
            .add_service(service);
        let served = match tls {
            Some(config) => {
                let incoming = accept::incoming(listener, config, shutdown.clone());
                server
                    .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
                    .await
            }
            None => {
                // Small request/response messages: no Nagle delay.
                let incoming = tokio_stream::wrappers::TcpListenerStream::new(listener).map(|s| {
                    s.inspect(|tcp| {
                        let _ = tcp.set_nodelay(true);
                    })
                });
                server
                    .serve_with_incoming_shutdown(incoming, shutdown.cancelled_owned())
                    .await
            }
        };
        if let Err(e) = served {
            tracing::error!(error = %e, "window server stopped");
        }
    });
    Ok(())
}

/// The HTTP/1.1 doors, each if configured: national (`listen.http`), peer (`listen.peer`,
/// read-only) and admin (`admin.listen`, TLS and the operator token).
async fn serve_http_doors(node: &Arc<Node>, tasks: &mut JoinSet<()>) -> Result<(), StartError> {
    let cfg = &node.config;
    let counters = &node.metrics.connections;
    if let Some(addr) = cfg.listen.http {
        let listener = bind(addr).await?;
        let tls = national_tls(cfg, b"http/1.1")?;
        let app = http::router(node.clone());
        spawn_door(
            node,
            tasks,
            "national",
            listener,
            tls,
            app,
            &counters.national,
        );
    }
    if let Some(addr) = cfg.listen.peer {
        let listener = bind(addr).await?;
        let app = http::peer_router(node.clone());
        spawn_door(node, tasks, "peer", listener, None, app, &counters.peer);
    }
    if let Some(admin) = &cfg.admin {
        let token = tereze_support::fs::read_token(&admin.token_file, "the operator token")?;
        let listener = bind(admin.listen).await?;
        let config = Arc::new(tls::admin_server_config(&node.tls_identity)?);
        let source: accept::ConfigSource = Arc::new(move || config.clone());
        let app = admin::router(node.clone(), token);
        spawn_door(
            node,
            tasks,
            "admin",
            listener,
            Some(source),
            app,
            &counters.admin,
        );
    }
    Ok(())
}

/// Serves one HTTP/1.1 door under the node's connection bounds (`[connections]`) until the
/// shutdown.
fn spawn_door(
    node: &Node,
    tasks: &mut JoinSet<()>,
    door: &'static str,
    listener: TcpListener,
    tls: Option<accept::ConfigSource>,
    app: axum::Router,
    counters: &Arc<doors::DoorCounters>,
) {
    tasks.spawn(doors::serve(
        listener,
        tls,
        app,
        node.shutdown.clone(),
        door,
        doors::Bounds::new(&node.config.connections),
        counters.clone(),
    ));
}

/// The node's background duties, each a task that ends with the shutdown token.
fn spawn_duties(node: &Arc<Node>, tasks: &mut JoinSet<()>) {
    if let Some(wake_ups) = node.store().wake_ups() {
        tasks.spawn(follow_replicas(node.clone(), wake_ups));
    }
    tasks.spawn(crl::refresh(node.clone()));
    if node.trust_anchor.is_some() {
        tasks.spawn(trust_refresh(node.clone()));
    }
    tasks.spawn(reference::refresh(node.clone()));
    tasks.spawn(reference::notify_webhooks(node.clone()));
    {
        let node = node.clone();
        tasks.spawn(async move { node.disk.watch(node.shutdown.clone()).await });
    }
    tasks.spawn(transfer::collect(node.clone()));
    tasks.spawn(checkpoint_every_interval(node.clone()));
    tasks.spawn(super::stamper::run(node.clone()));
    tasks.spawn(super::checkpoint_token::stamp_every_interval(node.clone()));
    tasks.spawn(events::compact(node.clone()));
    webhooks::spawn(node, tasks);
}

/// Replicas sharing a PostgreSQL store: another replica's enqueue wakes this one's workers for
/// that peer, and the outbox size (backpressure, metrics) is the shared one, read again every
/// second.
async fn follow_replicas(node: Arc<Node>, mut wake_ups: tokio::sync::broadcast::Receiver<String>) {
    let mut every = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = node.shutdown.cancelled() => break,
            woke = wake_ups.recv() => match woke {
                Ok(peer) => node.waker(&peer).notify_waiters(),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    for peer in node.trust().states.keys() {
                        node.waker(peer).notify_waiters();
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            },
            _ = every.tick() => {
                let n = node.clone();
                let mark = node.outbox.mark();
                if let Ok(Ok(len)) = tokio::task::spawn_blocking(move || n.store().outbox_len()).await {
                    node.outbox.refreshed(len, mark);
                }
            }
        }
    }
}

/// Signs an audit checkpoint every `audit_checkpoint_seconds`.
async fn checkpoint_every_interval(node: Arc<Node>) {
    let every = Duration::from_secs(node.config.audit_checkpoint_seconds.max(1));
    loop {
        tokio::select! {
            _ = node.shutdown.cancelled() => break,
            _ = tokio::time::sleep(every) => {
                if let Err(e) = node.checkpoint().await {
                    tracing::error!(error = %e, "audit checkpoint failed");
                }
            }
        }
    }
}

/// Logs what started where, then prints the line scripts and tests wait for.
fn announce(node: &Node) {
    tracing::info!(
        state = %node.config.state,
        role = ?node.config.role,
        store = node.store().engine_name(),
        exchange = %node.config.listen.exchange,
        window = ?node.config.listen.window,
        http = ?node.config.listen.http,
        peer = ?node.config.listen.peer,
        admin = ?node.config.admin.as_ref().map(|a| a.listen),
        trust_space_version = node.trust().version,
        trust_space_issued_at = %node.trust().issued_at,
        "node started"
    );
    println!("ready {}", node.config.state);
}

/// Stops taking work and lets what is in flight finish within the shutdown budget's drain;
/// past it, drops what is still open (whatever was acknowledged is on disk).
async fn drain(node: &Node, mut relay: relay::Relay, mut tasks: JoinSet<()>) {
    let budget = crate::shutdown::Budget::new(node.config.shutdown_seconds);
    tracing::info!(
        shutdown_seconds = node.config.shutdown_seconds,
        "shutting down: no new work, finishing what is in flight"
    );
    node.shutdown.cancel();
    let drained = tokio::time::timeout(budget.drain(), async {
        relay.finish().await;
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            shutdown_seconds = node.config.shutdown_seconds,
            "the drain took longer than shutdown_seconds allows: dropping what is still open (calls, transfers and streams end; whatever was acknowledged is on disk)"
        );
        relay.abort().await;
        tasks.shutdown().await;
    }
}

/// The national doors' TLS configuration (`national.tls`), if any.
fn national_tls(cfg: &NodeConfig, alpn: &[u8]) -> Result<Option<accept::ConfigSource>, StartError> {
    let Some(t) = &cfg.national.tls else {
        return Ok(None);
    };
    let config = Arc::new(tls::national_server_config(t, alpn)?);
    Ok(Some(Arc::new(move || config.clone())))
}

/// Plaintext national doors belong on loopback: tokens would cross the network in clear.
fn warn_of_plaintext(cfg: &NodeConfig) {
    if cfg.national.tls.is_some() {
        return;
    }
    for (key, addr) in [
        ("listen.http", cfg.listen.http),
        ("listen.window", cfg.listen.window),
    ] {
        if let Some(a) = addr.filter(|a| !a.ip().is_loopback()) {
            tracing::warn!(
                listen = %a,
                field = key,
                "a national door listens in plaintext beyond loopback: set national.tls, or bind it to 127.0.0.1"
            );
        }
    }
    if cfg.national.clients.is_empty() && (cfg.listen.http.is_some() || cfg.listen.window.is_some())
    {
        tracing::warn!("no national.client is configured: the national doors refuse every call but health and metrics");
    }
}

/// Keeps the trust space current: a hub re-reads its file (the Commission publishes there), a
/// member asks its hub for anything newer.
async fn trust_refresh(node: Arc<Node>) {
    let every = Duration::from_secs(node.config.trust_refresh_seconds.max(1));
    let hub_client_for = |node: &Node| match (&node.config.routing.hub, node.is_hub()) {
        (Some(hub), false) => relay::client(node, hub).ok(),
        _ => None,
    };
    let mut hub_client = hub_client_for(&node);
    let mut client_version = node.trust().version;
    let mut refused: Vec<u8> = Vec::new();
    loop {
        tokio::select! {
            _ = node.shutdown.cancelled() => break,
            _ = tokio::time::sleep(every) => {}
        }
        let have = node.trust().version;
        if have != client_version {
            // The hub's endpoint or anchors may have changed with the trust space.
            hub_client = hub_client_for(&node);
            client_version = have;
        }
        let offered = if node.is_hub() {
            std::fs::read(&node.config.trust_space).ok()
        } else if let Some(client) = &hub_client {
            let mut c = client.clone();
            let limit = Duration::from_secs(node.config.relay.timeout_seconds.max(1));
            match tokio::time::timeout(
                limit,
                c.fetch_trust_space(proto::FetchTrustSpaceRequest { have_version: have }),
            )
            .await
            {
                Ok(Ok(r)) => Some(r.into_inner().document).filter(|d| !d.is_empty()),
                Ok(Err(e)) => {
                    tracing::debug!(error = %e, "trust space: hub not reachable");
                    None
                }
                Err(_) => {
                    // A connection stuck in its handshake stays stuck: start a new one.
                    tracing::debug!("trust space: no answer from the hub; reconnecting");
                    hub_client = hub_client_for(&node);
                    None
                }
            }
        } else {
            None
        };
        let Some(bytes) = offered else { continue };
        if bytes == node.trust().source || bytes == refused {
            continue;
        }
        match node.apply_trust_space(bytes.clone()).await {
            Ok(v) => tracing::info!(version = v, "trust space now in force"),
            Err(e) => {
                // Said once per document, not once per refresh.
                node.metrics.trust_refused.inc();
                tracing::warn!(error = %e, "trust-space update refused");
                refused = bytes;
            }
        }
    }
}

async fn wait_for_signal(shutdown: &CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let Ok(mut term) = signal(SignalKind::terminate()) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = tokio::signal::ctrl_c() => {}
            _ = shutdown.cancelled() => {}
        }
    }
    #[cfg(not(unix))]
    {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = shutdown.cancelled() => {}
        }
    }
}
