//! The relay: per peer, workers take due messages from the outbox and deliver them over
//! mutual TLS (`worker`), behind a gate that pauses a peer that does not answer (`gate`); a
//! message with attachments sends its files first (`push`), on a connection of its own
//! (`client`). What it keeps per peer is in [`Peers`], what it counts in [`Metrics`].
//! **Invariant:** knows nothing of the node's services, doors or recognition: everything it
//! needs from the running node (settings, trust space, store, receipts, attachments, shutdown,
//! the outbox's count) comes through the [`Host`] trait, which the node implements.
#![forbid(unsafe_code)]

pub mod client;
pub mod config;
pub mod connector;
mod evidence;
pub mod gate;
pub mod metrics;
mod peers;
pub mod push;
mod worker;

use std::sync::Arc;

use tereze_attachments::Attachments;
use tereze_store::committer::Committer;
use tereze_trust::receipt::ReceiptVerifier;
use tereze_trust::TrustSpace;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use client::{client, message_size_limit, probe_peers, ClientError, Probe, TRANSFER_WINDOW};
pub use metrics::Metrics;
pub use peers::Peers;
pub use worker::{start, Relay};

/// The node's settings the relay reads, borrowed from its configuration.
#[derive(Debug, Clone, Copy)]
pub struct Settings<'a> {
    /// This node's state: every other state of the trust space is a peer.
    pub state: &'a str,
    /// Whether this node is a hub: it sends the end receipts back to the original senders.
    pub hub: bool,
    /// `[relay]`.
    pub relay: &'a config::Config,
    /// `[[peer]]`: endpoints that override the trust space's.
    pub peers: &'a [config::Peer],
    /// `limits.max_call_bytes`: envelopes in one `Deliver` call at most.
    pub max_call_bytes: usize,
}

/// What the relay needs from the running node.
pub trait Host: Send + Sync + 'static {
    fn settings(&self) -> Settings<'_>;
    /// The node's TLS certificate (chain) and key (a PEM file's or a token's), presented to
    /// its peers; asked again for each new client.
    fn tls_identity(
        &self,
    ) -> Result<Arc<rustls::sign::CertifiedKey>, Box<dyn std::error::Error + Send + Sync>>;
    /// The trust space in force: one snapshot, to use for a whole decision.
    fn trust(&self) -> Arc<TrustSpace>;
    /// Resolves after each new trust-space version is in force.
    fn trust_changes(&self) -> watch::Receiver<u64>;
    /// The store's writer; its store for the outbox's reads.
    fn committer(&self) -> &Committer;
    fn receipts(&self) -> &ReceiptVerifier;
    fn attachments(&self) -> &Attachments;
    fn metrics(&self) -> &Metrics;
    fn peers(&self) -> &Peers;
    /// Cancelled when the node shuts down.
    fn shutdown(&self) -> &CancellationToken;
    /// Messages left the outbox (`removed`) and were queued without a reservation (`added`:
    /// a hub's end receipts for the original senders).
    fn outbox_changed(&self, removed: u64, added: u64);

    // Time-stamping (docs/timestamps.md).

    /// The time-stamp evidence held for a message's envelope, to send with it.
    fn evidence(&self, id: Uuid) -> Option<Vec<u8>>;
    /// At a hub: when it first stored the message (Unix ms), which it tells the recipient.
    fn hub_received_at(&self, id: Uuid) -> Option<i64>;
    /// Whether this node's state requires evidence before delivery (the trust space's
    /// `timestamp_required`): its own envelopes wait in the outbox until they have it.
    fn holds_for_evidence(&self) -> bool;
}
