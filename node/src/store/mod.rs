//! The node's durable store (DESIGN §2, §8): the outbox of messages waiting for their next hop,
//! the inbox of received messages waiting for the national system, the deduplication memory,
//! each message's state history, receipts and the audit chain. Every change is made inside a
//! [`Txn`] and is durable when the commit returns (redb with `Durability::Immediate`: one
//! `fdatasync`), so a caller acknowledges upstream only after that; [`committer::Committer`]
//! puts the changes of many concurrent callers into one commit (group commit).
//! The engine choice is docs/decisions/0004-embedded-store.md.

pub(crate) mod audit;
pub(crate) mod committer;
pub(crate) mod redb_store;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub(crate) use redb_store::{RedbStore, Txn};

/// What an operator searches messages by (all optional).
#[derive(Debug, Clone, Default)]
pub(crate) struct Filter {
    /// Lower-case hyphenated UUID or its prefix.
    pub(crate) id_prefix: Option<String>,
    pub(crate) state: Option<String>,
    pub(crate) peer: Option<String>,
    pub(crate) conversation: Option<Uuid>,
    /// The common process (`P.CC.01`).
    pub(crate) process: Option<String>,
    /// First transition at or after / at or before (Unix ms).
    pub(crate) since: Option<i64>,
    pub(crate) until: Option<i64>,
    pub(crate) limit: usize,
}

/// Where a message goes or comes from, kept when it is first stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Meta {
    /// `out` (queued here for a peer) or `in` (received from a peer).
    pub(crate) direction: String,
    /// The next hop of an outgoing message; the sender of an incoming one.
    pub(crate) peer: String,
    pub(crate) conversation: Option<Uuid>,
    /// The common process (`P.CC.01`) and document type (`R.CC.01.001`), where known.
    #[serde(default)]
    pub(crate) process: Option<String>,
    #[serde(default)]
    pub(crate) document_type: Option<String>,
}

/// A message found by a search.
#[derive(Debug, Clone)]
pub(crate) struct Found {
    pub(crate) message_id: Uuid,
    pub(crate) state: &'static str,
    pub(crate) first_at: i64,
    pub(crate) last_at: i64,
    pub(crate) direction: Option<String>,
    pub(crate) peer: Option<String>,
    pub(crate) conversation: Option<Uuid>,
    pub(crate) process: Option<String>,
    pub(crate) document_type: Option<String>,
}

/// Where a message is in its life (DESIGN §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum State {
    Received,
    Translated,
    Signed,
    Queued,
    Sent,
    Delivered,
    Recognised,
    Rejected,
    Expired,
    Dead,
}

impl State {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Received => "received",
            Self::Translated => "translated",
            Self::Signed => "signed",
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Recognised => "recognised",
            Self::Rejected => "rejected",
            Self::Expired => "expired",
            Self::Dead => "dead",
        }
    }
}

/// One entry of a message's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Transition {
    pub(crate) state: State,
    /// Unix milliseconds.
    pub(crate) at: i64,
    pub(crate) note: Option<String>,
}

/// A state change made by a committed transaction, for subscribers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change {
    pub(crate) message_id: Uuid,
    pub(crate) transition: Transition,
}

/// What travels to the next hop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub(crate) enum Payload {
    /// A signed envelope, with the route a hub reads instead of the body.
    Envelope {
        sender: String,
        recipient: String,
        /// Kept in its own table as raw bytes, not in the JSON row.
        #[serde(skip)]
        envelope: Vec<u8>,
    },
    /// A final recipient's receipt that a hub hands back to the original sender.
    Receipt {
        recipient: String,
        #[serde(skip)]
        receipt: Vec<u8>,
    },
}

impl Payload {
    pub(crate) fn bytes(&self) -> &[u8] {
        match self {
            Self::Envelope { envelope, .. } => envelope,
            Self::Receipt { receipt, .. } => receipt,
        }
    }

    fn set_bytes(&mut self, bytes: Vec<u8>) {
        match self {
            Self::Envelope { envelope, .. } => *envelope = bytes,
            Self::Receipt { receipt, .. } => *receipt = bytes,
        }
    }
}

/// A message to relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Outgoing {
    pub(crate) message_id: Uuid,
    pub(crate) conversation_id: Uuid,
    /// The peer node (recipient state, or the hub) it goes to.
    pub(crate) peer: String,
    pub(crate) payload: Payload,
    /// Unix milliseconds after which it is not sent any more.
    pub(crate) expires_at: Option<i64>,
}

/// An outbox row: the message and its retry bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OutboxEntry {
    pub(crate) message: Outgoing,
    /// Order of enqueueing, which keeps each conversation in order.
    pub(crate) sequence: u64,
    pub(crate) attempts: u32,
    /// Unix milliseconds before which it is not retried.
    pub(crate) next_attempt_at: i64,
    pub(crate) last_error: Option<String>,
}

/// A received message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Incoming {
    pub(crate) message_id: Uuid,
    pub(crate) sender: String,
    /// Kept in its own table as raw bytes, not in the JSON row.
    #[serde(skip)]
    pub(crate) envelope: Vec<u8>,
    /// The signed receipt answered for it (also raw, in its own table).
    #[serde(skip)]
    pub(crate) receipt: Vec<u8>,
    /// `recognised`, `rejected` (kept in quarantine, not in the inbox) or `forwarded` (a hub's).
    pub(crate) verdict: String,
    /// Reason codes of a rejection (docs/recognition.md).
    #[serde(default)]
    pub(crate) reasons: Vec<String>,
    /// SHA-256 of the envelope (hex), to tell a redelivery from another body under the same
    /// id. Empty in rows written before it was kept.
    #[serde(default)]
    pub(crate) digest: String,
}

/// What storing a received message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Accepted {
    /// First delivery: stored.
    New,
    /// A redelivery: nothing stored again; this is the receipt given the first time.
    Duplicate { receipt: Vec<u8> },
    /// The id was taken before for another envelope (its SHA-256, hex): a replay or a
    /// sender's bug. Nothing stored, and the first receipt is not handed out for it.
    OtherDigest { first: String },
}

/// Store failures.
#[derive(Debug, Clone, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("storage engine: {0}")]
    Engine(String),
    /// The disk refused a write (full, failing): nothing of the commit was written, and the
    /// engine refuses every later write until the store is reopened (the node restarts).
    #[error("the disk refused a write ({0}); the node must restart to reopen its store")]
    Io(String),
    #[error("stored record is unreadable: {0}")]
    Corrupt(String),
    #[error("message {0} is already queued")]
    AlreadyQueued(Uuid),
    #[error("message {0} is not in the outbox")]
    NotQueued(Uuid),
    #[error("message {0} is not parked (expired or dead)")]
    NotParked(Uuid),
    #[error("message {0} is not in the inbox")]
    NotInInbox(Uuid),
    #[error("message {0} is not in quarantine")]
    NotQuarantined(Uuid),
    #[error("no receipt is awaited for message {0}")]
    NotAwaited(Uuid),
    #[error("the store is shutting down")]
    Closed,
}

impl StoreError {
    /// Whether the whole group commit must be abandoned (the engine failed, not one request).
    pub(crate) fn is_fatal(&self) -> bool {
        matches!(
            self,
            Self::Engine(_) | Self::Io(_) | Self::Corrupt(_) | Self::Closed
        )
    }
}

/// A message for KZ → `peer` with conversation = id = `n`, for tests.
#[cfg(test)]
pub(crate) fn test_message(n: u128, peer: &str) -> Outgoing {
    Outgoing {
        message_id: Uuid::from_u128(n),
        conversation_id: Uuid::from_u128(n),
        peer: peer.into(),
        payload: Payload::Envelope {
            sender: "KZ".into(),
            recipient: peer.into(),
            envelope: vec![1, 2, 3],
        },
        expires_at: None,
    }
}

/// Lower-case hexadecimal.
pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// The bytes of a hexadecimal string, if it is one.
pub(crate) fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Unix milliseconds now.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}
