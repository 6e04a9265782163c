//! `[relay]` and `[[peer]]` of `node.toml` (docs/config.md): how the relay calls its peers.
//! The node's configuration holds them under these sections; the node checks their values
//! when it loads the file.

use serde::Deserialize;

/// A `[[peer]]`: where to reach one state's node instead of (or besides) what the trust
/// space lists.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Peer {
    pub state: String,
    /// `https://host:port`; overrides the trust space's endpoint.
    pub endpoint: String,
    /// The name in the peer's TLS certificate; overrides the trust space's.
    pub server_name: Option<String>,
}

/// `[relay]`: expiry, attempts, backoff, concurrency and call bounds of the relay.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// A message not delivered within this time becomes `expired`.
    pub ttl_seconds: u64,
    /// After this many failed attempts a message becomes `dead`.
    pub max_attempts: u32,
    pub min_backoff_ms: u64,
    pub max_backoff_ms: u64,
    /// Deliver calls in flight per peer.
    pub concurrency: usize,
    /// Seconds a call to a peer may take, from opening the connection (TLS handshake
    /// included) to the answer; then the call fails, the peer's gate pauses, the batch halves
    /// and the next call uses a new connection.
    pub timeout_seconds: u64,
    /// Milliseconds a worker waits for messages to gather while another batch to the same peer
    /// is in flight (0: never wait).
    pub linger_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            ttl_seconds: 86_400,
            max_attempts: 50,
            min_backoff_ms: 200,
            max_backoff_ms: 60_000,
            concurrency: 4,
            timeout_seconds: 30,
            linger_ms: 3,
        }
    }
}
