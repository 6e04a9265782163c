//! The attachment limits a node is configured with (`[attachments]` in node.toml,
//! docs/config.md): sizes, counts, rates, retention.

use serde::Deserialize;

/// Attachments: files sent beside envelopes (docs/attachments.md); `[attachments]` in node.toml.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest attachment accepted (upload or transfer), in bytes.
    pub max_attachment_bytes: u64,
    /// Largest total of one message's attachments, in bytes.
    pub max_message_bytes: u64,
    /// Most attachments in one message.
    pub max_per_message: usize,
    /// Transfers in flight per peer, each way: this node sends at most this many to a peer at
    /// once and takes at most this many from one (more are refused as busy). Small messages
    /// never wait for them: transfers have their own connection and their own workers.
    pub max_transfers_per_peer: usize,
    /// Bytes per chunk this node sends (a receiver takes chunks up to 4 MiB).
    pub chunk_bytes: usize,
    /// Slowest progress a transfer may make, in KiB/s, before it is given up and resumed
    /// later: a transfer of N bytes may take `relay.timeout_seconds + N / rate`.
    pub min_rate_kib: u64,
    /// Uploads and fetches of the national system in flight at once (more are refused:
    /// RESOURCE_EXHAUSTED, HTTP 429): each holds a chunk buffer or a few chunks in memory.
    pub max_national_transfers: usize,
    /// Largest body by reference (an EAEU document sent as an attachment) this node checks
    /// against its model, at intake and at recognition; a larger one is refused at intake and
    /// rejected (`body-too-large`) at recognition. Checking parses the document in memory.
    pub max_checked_body_bytes: u64,
    /// Most KiB/s this node sends of attachments to one peer per transfer (0: as fast as
    /// the link goes), to leave a shared link room for everything else.
    pub send_rate_kib: u64,
    /// Hours an attachment is kept after its message is settled (delivered, rejected, dead or
    /// expired at the sender; taken from the inbox or quarantined at the receiver); also how
    /// long an upload no Submit named, or a partial transfer nobody resumes, is kept.
    pub retention_hours: u64,
    /// Seconds between garbage-collection sweeps.
    pub gc_interval_seconds: u64,
    /// Seconds a transfer this node takes, an upload or a fetch may go without moving a byte
    /// before it is stopped (what arrived is kept: the peer or client resumes). It frees the
    /// slot a stuck stream would hold.
    pub stall_seconds: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_attachment_bytes: 8 << 30,
            max_message_bytes: 16 << 30,
            max_per_message: 64,
            max_transfers_per_peer: 2,
            chunk_bytes: 1 << 20,
            min_rate_kib: 256,
            send_rate_kib: 0,
            max_checked_body_bytes: 16 << 20,
            max_national_transfers: 16,
            retention_hours: 168,
            gc_interval_seconds: 600,
            stall_seconds: 300,
        }
    }
}
