//! The node's durable store (DESIGN §2, §8): the outbox of messages waiting for their peer,
//! the inbox of received messages waiting for the national system, each message's state
//! history, and receipts. Every method that changes something returns only after the change is
//! durable (redb commit with `Durability::Immediate`, one `fdatasync`), so a caller may
//! acknowledge upstream as soon as it returns; batches share one commit (group commit).
//! The engine choice is docs/decisions/0004-embedded-store.md.
// The relay and the Window service (issue 5, next) are this module's callers; until they land
// the store is exercised by its own test suite only.
#![allow(dead_code)]

pub(crate) mod probe;
pub(crate) mod redb_store;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

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

/// One entry of a message's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Transition {
    pub(crate) state: State,
    /// Unix milliseconds.
    pub(crate) at: i64,
    pub(crate) note: Option<String>,
}

/// A message to relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct Outgoing {
    pub(crate) message_id: Uuid,
    pub(crate) conversation_id: Uuid,
    /// The peer node (recipient state, or the hub) it goes to.
    pub(crate) peer: String,
    /// The signed envelope, as sent.
    pub(crate) envelope: Vec<u8>,
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
    pub(crate) envelope: Vec<u8>,
    /// The signed receipt answered for it.
    pub(crate) receipt: Vec<u8>,
}

/// What storing a received message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Accepted {
    /// First delivery: stored in the inbox.
    New,
    /// A redelivery: nothing stored again; this is the receipt given the first time.
    Duplicate { receipt: Vec<u8> },
}

/// Store failures.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    #[error("storage engine: {0}")]
    Engine(String),
    #[error("stored record is unreadable: {0}")]
    Corrupt(String),
    #[error("message {0} is already queued")]
    AlreadyQueued(Uuid),
    #[error("message {0} is not in the outbox")]
    NotQueued(Uuid),
    #[error("message {0} is not in the inbox")]
    NotInInbox(Uuid),
}
