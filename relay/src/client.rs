//! How the relay reaches a peer's node: its endpoint, TLS server name and anchors (the
//! `[[peer]]` settings over the trust space's listing), the two connections per peer (calls,
//! bounded by `relay.timeout_seconds`; the attachments lane, with large HTTP/2 windows and no
//! whole-call timeout), the gRPC message bounds both sides use, and a live probe of every
//! peer. Other parts of the node (the trust-space refresh, the reference and trader services)
//! use the same clients.

use std::sync::Arc;
use std::time::Duration;

use tereze_proto::exchange_client::ExchangeClient;
use tokio::task::JoinSet;
use tonic::transport::{Channel, Endpoint};

use tereze_trust::TrustSpace;

use crate::connector::{EndpointError, MutualTls};
use crate::Host;

/// Why no client could be made for a peer: what the trust space or the configuration lacks,
/// or what the TLS identity or the endpoint refused. The text names the peer or endpoint.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0} is not in the trust space")]
    NotInTrustSpace(String),
    #[error("no endpoint for {0}")]
    NoEndpoint(String),
    #[error("no server name for {0}")]
    NoServerName(String),
    /// The node's own TLS certificate or key (`tls.certificate`, `tls.key`) could not be
    /// read or used.
    #[error("{0}")]
    Identity(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("endpoint {endpoint}: {source}")]
    Endpoint {
        endpoint: String,
        #[source]
        source: EndpointError,
    },
    #[error("endpoint {endpoint}: {source}")]
    Channel {
        endpoint: String,
        #[source]
        source: tonic::transport::Error,
    },
    #[error("TLS for {endpoint}: {source}")]
    Tls {
        endpoint: String,
        /// Boxed: a rustls error is large, and this error travels in many `Result`s.
        #[source]
        source: Box<tereze_trust::tls::TlsError>,
    },
}

/// How long a TCP connection to a peer may take (the connector's; tonic's `connect_timeout`
/// would also cut the TLS handshake, which the call's timeout bounds instead).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// HTTP/2 flow-control window of the attachments lane (each way): enough to keep a fast link
/// full, small enough to bound a transfer's memory.
pub const TRANSFER_WINDOW: u32 = 2 << 20;

/// The largest Deliver call or answer: `max_call_bytes` of envelopes plus 1 MiB of framing
/// (routes, receipts).
fn call_size_limit(max_call_bytes: usize) -> usize {
    max_call_bytes.saturating_add(1 << 20)
}

/// The largest gRPC message of `Exchange`, either way: a `Deliver` call or answer, or a
/// `PutAttachment` chunk of the largest size a sender may use (4 MiB, with its header), so
/// that a node with a small `limits.max_call_bytes` still takes any peer's chunks.
pub fn message_size_limit(max_call_bytes: usize) -> usize {
    call_size_limit(max_call_bytes).max(tereze_attachments::MAX_CHUNK_BYTES + (64 << 10))
}

/// Where and how a peer's node is reached; a change of any part means new workers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    pub(crate) endpoint: String,
    server_name: String,
    anchors_pem: String,
}

pub(crate) fn target(
    node: &dyn Host,
    trust: &TrustSpace,
    peer: &str,
) -> Result<Target, ClientError> {
    let state = trust
        .state(peer)
        .ok_or_else(|| ClientError::NotInTrustSpace(peer.to_owned()))?;
    let configured = node.settings().peers.iter().find(|p| p.state == peer);
    let listed = state.nodes.first();
    let endpoint = configured
        .map(|p| p.endpoint.clone())
        .or_else(|| listed.map(|n| n.endpoint.clone()))
        .ok_or_else(|| ClientError::NoEndpoint(peer.to_owned()))?;
    let server_name = configured
        .and_then(|p| p.server_name.clone())
        .or_else(|| listed.map(|n| n.server_name.clone()))
        .ok_or_else(|| ClientError::NoServerName(peer.to_owned()))?;
    Ok(Target {
        endpoint,
        server_name,
        anchors_pem: state.anchors_pem.clone(),
    })
}

/// One peer's answer to a live probe: how long it took, and whether it answered.
pub struct Probe {
    pub state: String,
    pub elapsed: Duration,
    pub answer: Result<(), String>,
}

/// Probes every other node of the trust space in force at once (a `FetchTrustSpace` over
/// mutual TLS, within `timeout`); the answers in state order.
pub async fn probe_peers<H: Host>(node: &Arc<H>, timeout: Duration) -> Vec<Probe> {
    let mut probes = JoinSet::new();
    for st in node
        .trust()
        .states
        .values()
        .filter(|st| st.code != node.settings().state && !st.nodes.is_empty())
    {
        let (node, state) = (node.clone(), st.code.clone());
        probes.spawn(async move {
            let started = std::time::Instant::now();
            let answer = match client(&*node, &state) {
                Ok(mut c) => tokio::time::timeout(
                    timeout,
                    c.fetch_trust_space(tereze_proto::FetchTrustSpaceRequest {
                        have_version: u64::MAX,
                    }),
                )
                .await
                .map_err(|_| format!("no answer within {} s", timeout.as_secs()))
                .and_then(|r| r.map(|_| ()).map_err(|e| e.message().to_owned())),
                Err(e) => Err(e.to_string()),
            };
            Probe {
                state,
                elapsed: started.elapsed(),
                answer,
            }
        });
    }
    let mut out: Vec<Probe> = probes.join_all().await;
    out.sort_by(|a, b| a.state.cmp(&b.state));
    out
}

/// A client for `peer`'s node (or the hub) as the trust space in force lists it.
pub fn client(node: &dyn Host, peer: &str) -> Result<ExchangeClient<Channel>, ClientError> {
    client_for(node, &target(node, &node.trust(), peer)?)
}

/// A client on the attachments lane to `peer`'s node (a connection of its own).
pub(crate) fn transfer_client(
    node: &dyn Host,
    peer: &str,
) -> Result<ExchangeClient<Channel>, ClientError> {
    transfer_client_for(node, &target(node, &node.trust(), peer)?)
}

pub(crate) fn client_for(
    node: &dyn Host,
    t: &Target,
) -> Result<ExchangeClient<Channel>, ClientError> {
    channel_for(node, t, true)
}

/// The attachments lane: a connection of its own (a large transfer does not hold up the
/// small messages' calls), HTTP/2 windows for bulk data, and no whole-call timeout (a
/// transfer's time grows with its size; `push` bounds it by `attachments.min_rate_kib`).
pub(crate) fn transfer_client_for(
    node: &dyn Host,
    t: &Target,
) -> Result<ExchangeClient<Channel>, ClientError> {
    channel_for(node, t, false)
}

fn channel_for(
    node: &dyn Host,
    t: &Target,
    calls: bool,
) -> Result<ExchangeClient<Channel>, ClientError> {
    let identity = node.tls_identity().map_err(ClientError::Identity)?;
    let endpoint = &t.endpoint;
    let tls =
        tereze_trust::tls::client_config(identity, t.anchors_pem.as_bytes()).map_err(|source| {
            ClientError::Tls {
                endpoint: endpoint.clone(),
                source: Box::new(source),
            }
        })?;
    let (connector, plain_uri) =
        MutualTls::new(Arc::new(tls), endpoint, &t.server_name, CONNECT_TIMEOUT).map_err(
            |source| ClientError::Endpoint {
                endpoint: endpoint.clone(),
                source,
            },
        )?;
    let mut endpoint_cfg = Endpoint::from_shared(plain_uri)
        .map_err(|source| ClientError::Channel {
            endpoint: endpoint.clone(),
            source,
        })?
        .http2_keep_alive_interval(Duration::from_secs(30));
    endpoint_cfg = if calls {
        endpoint_cfg.timeout(Duration::from_secs(node.settings().relay.timeout_seconds))
    } else {
        endpoint_cfg
            .initial_stream_window_size(Some(TRANSFER_WINDOW))
            .initial_connection_window_size(Some(TRANSFER_WINDOW * 2))
            .keep_alive_while_idle(true)
    };
    let channel = endpoint_cfg.connect_with_connector_lazy(connector);
    let limit = message_size_limit(node.settings().max_call_bytes);
    Ok(ExchangeClient::new(channel)
        .max_decoding_message_size(limit)
        .max_encoding_message_size(limit))
}
