//! The store's records and its errors: what the node keeps about each message (outbox rows,
//! received messages, histories, search metadata) and how they are encoded at rest. Both engines
//! store these same encodings (serde JSON), so this module knows no engine: it is the
//! vocabulary the engines, the transitions and the store's callers share.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use tereze_support::hex::unhex;

/// The search result for one message (its first and last transition times and its state
/// now) when it matches `f`; `meta` is read only when the cheaper tests pass.
pub fn select(
    f: &Filter,
    id: Uuid,
    first: i64,
    last: i64,
    state: State,
    meta: impl FnOnce() -> Result<Option<Meta>, StoreError>,
) -> Result<Option<Found>, StoreError> {
    if f.id_prefix
        .as_ref()
        .is_some_and(|p| !id.hyphenated().to_string().starts_with(p.as_str()))
        || f.state.as_ref().is_some_and(|s| s != state.as_str())
        || f.since.is_some_and(|t| first < t)
        || f.until.is_some_and(|t| first > t)
    {
        return Ok(None);
    }
    let m = meta()?;
    if f.peer
        .as_ref()
        .is_some_and(|p| m.as_ref().is_none_or(|m| &m.peer != p))
        || f.conversation
            .is_some_and(|c| m.as_ref().is_none_or(|m| m.conversation != Some(c)))
        || f.process.as_ref().is_some_and(|p| {
            m.as_ref()
                .is_none_or(|m| m.process.as_deref() != Some(p.as_str()))
        })
    {
        return Ok(None);
    }
    Ok(Some(Found {
        message_id: id,
        state: state.as_str(),
        first_at: first,
        last_at: last,
        direction: m.as_ref().map(|m| m.direction.clone()),
        peer: m.as_ref().map(|m| m.peer.clone()),
        conversation: m.as_ref().and_then(|m| m.conversation),
        process: m.as_ref().and_then(|m| m.process.clone()),
        document_type: m.and_then(|m| m.document_type),
    }))
}

/// What an operator searches messages by (all optional).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Lower-case hyphenated UUID or its prefix.
    pub id_prefix: Option<String>,
    pub state: Option<String>,
    pub peer: Option<String>,
    pub conversation: Option<Uuid>,
    /// The common process (`P.CC.01`).
    pub process: Option<String>,
    /// First transition at or after / at or before (Unix ms).
    pub since: Option<i64>,
    pub until: Option<i64>,
    pub limit: usize,
}

/// Where a message goes or comes from, kept when it is first stored. A submission set's own
/// record (docs/national-api.md, "Submission sets") is kept in the same place under the set's
/// id, with `direction` `set` and its `members`; it has no history, so no search finds it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    /// `out` (queued here for a peer) or `in` (received from a peer).
    pub direction: String,
    /// The next hop of an outgoing message; the sender of an incoming one.
    pub peer: String,
    pub conversation: Option<Uuid>,
    /// The common process (`P.CC.01`) and document type (`R.CC.01.001`), where known.
    #[serde(default)]
    pub process: Option<String>,
    #[serde(default)]
    pub document_type: Option<String>,
    /// The submission set an outgoing message was queued in, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set: Option<Uuid>,
    /// A submission set's record: its messages, in the order they were queued.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub members: Vec<SetMember>,
}

/// One message of a submission set: where it goes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SetMember {
    pub message_id: Uuid,
    /// The recipient state and authority (the final recipient, also when a hub relays).
    pub country: String,
    pub authority: String,
    /// Its verdict as this node knows it: `recognised`, `rejected`, `undelivered`
    /// (`sets::UNDELIVERED`), or none yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verdict: Option<String>,
    /// Why a refusing verdict refuses, kept with it: a rejection's reason codes (from its
    /// receipt), or for `undelivered` the state it was parked in (`expired`, `dead`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reasons: Vec<String>,
    /// The note of the transition that gave the verdict ("judged again by RU: …").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// `direction` of a submission set's record.
pub const SET_DIRECTION: &str = "set";

/// A message found by a search.
#[derive(Debug, Clone)]
pub struct Found {
    pub message_id: Uuid,
    pub state: &'static str,
    pub first_at: i64,
    pub last_at: i64,
    pub direction: Option<String>,
    pub peer: Option<String>,
    pub conversation: Option<Uuid>,
    pub process: Option<String>,
    pub document_type: Option<String>,
}

/// Where a message is in its life (DESIGN §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
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
    /// Not a message: a record of another kind changed (a trader's register record), noted in
    /// the audit log with who changed it.
    Changed,
    /// Conformance traffic removed by an operator (docs/conformance.md).
    Purged,
}

impl State {
    pub fn as_str(self) -> &'static str {
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
            Self::Changed => "changed",
            Self::Purged => "purged",
        }
    }
}

/// One entry of a message's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transition {
    pub state: State,
    /// Unix milliseconds.
    pub at: i64,
    pub note: Option<String>,
}

/// A state change made by a committed transaction, for subscribers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub message_id: Uuid,
    pub transition: Transition,
}

/// What travels to the next hop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind")]
pub enum Payload {
    /// A signed envelope, with the route a hub reads instead of the body.
    Envelope {
        sender: String,
        recipient: String,
        /// Kept in its own table as raw bytes, not in the JSON row.
        #[serde(skip)]
        envelope: Vec<u8>,
        /// Files sent before the envelope (docs/attachments.md), as the signed header
        /// declares them.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        attachments: Vec<AttachmentMeta>,
    },
    /// A final recipient's receipt that a hub hands back to the original sender.
    Receipt {
        recipient: String,
        #[serde(skip)]
        receipt: Vec<u8>,
        /// The state the receipt goes back to, for a next hop that must be told: a receiver's
        /// later judgement on its way through a hub (docs/receipts.md). `None` for a hub's
        /// own returns.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sender: Option<String>,
    },
}

impl Payload {
    pub fn bytes(&self) -> &[u8] {
        match self {
            Self::Envelope { envelope, .. } => envelope,
            Self::Receipt { receipt, .. } => receipt,
        }
    }

    pub(super) fn set_bytes(&mut self, bytes: Vec<u8>) {
        match self {
            Self::Envelope { envelope, .. } => *envelope = bytes,
            Self::Receipt { receipt, .. } => *receipt = bytes,
        }
    }
}

/// An attachment of an outgoing message: what its transfer declares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentMeta {
    pub id: String,
    pub size: u64,
    /// Lowercase hex.
    pub sha256: String,
}

impl AttachmentMeta {
    /// The digest as bytes (a malformed stored value reads as zeros, which no transfer matches).
    pub fn digest(&self) -> [u8; 32] {
        unhex(&self.sha256)
            .and_then(|v| <[u8; 32]>::try_from(v).ok())
            .unwrap_or([0; 32])
    }
}

/// A message to relay.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Outgoing {
    pub message_id: Uuid,
    pub conversation_id: Uuid,
    /// The peer node (recipient state, or the hub) it goes to.
    pub peer: String,
    pub payload: Payload,
    /// Unix milliseconds after which it is not sent any more.
    pub expires_at: Option<i64>,
}

/// An outbox row: the message and its retry bookkeeping.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OutboxEntry {
    pub message: Outgoing,
    /// Order of enqueueing, which keeps each conversation in order.
    pub sequence: u64,
    pub attempts: u32,
    /// Unix milliseconds before which it is not retried.
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
}

/// A received message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incoming {
    pub message_id: Uuid,
    pub sender: String,
    /// Kept in its own table as raw bytes, not in the JSON row.
    #[serde(skip)]
    pub envelope: Vec<u8>,
    /// The signed receipt answered for it (also raw, in its own table).
    #[serde(skip)]
    pub receipt: Vec<u8>,
    /// `recognised`, `rejected` (kept in quarantine, not in the inbox) or `forwarded` (a hub's).
    pub verdict: String,
    /// Reason codes of a rejection (docs/recognition.md).
    #[serde(default)]
    pub reasons: Vec<String>,
    /// SHA-256 of the envelope (hex), to tell a redelivery from another body under the same
    /// id. Empty in rows written before it was kept.
    #[serde(default)]
    pub digest: String,
    /// Sent by a tester state (`conformance = true` in the trust space): kept in the
    /// conformance area, never in the inbox or quarantine (docs/conformance.md).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub conformance: bool,
    /// The time recognition judged it at and its source, as recognition words it
    /// (docs/recognition.md, "The judged time"); empty when not judged here (a hub's, or
    /// checks that stopped early). Kept in the arrival's history note, not in the row.
    #[serde(skip)]
    pub judged: String,
}

/// What storing a received message did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// First delivery: stored.
    New,
    /// A redelivery: nothing stored again; this is the receipt given the first time.
    Duplicate { receipt: Vec<u8> },
    /// The id was taken before for another envelope (its SHA-256, hex): a replay or a
    /// sender's bug. Nothing stored, and the first receipt is not handed out for it.
    OtherDigest { first: String },
}

/// The error a [`StoreError`] was caused by. Shared, because a failed group commit answers
/// every request in it with the same error.
pub type Cause = std::sync::Arc<dyn std::error::Error + Send + Sync + 'static>;

/// Store failures. Where an engine's own error is at hand it is kept as the `source`; the
/// message still carries its text, as operators and tests read it.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// An engine's invariant broke, with no error of its own (the text is the whole story).
    #[error("storage engine: {0}")]
    Engine(String),
    /// The engine (redb, PostgreSQL, the OS, OpenSSL) failed: `what` in the engine's words.
    #[error("storage engine: {what}")]
    EngineFailed {
        what: String,
        #[source]
        source: Cause,
    },
    /// The disk refused a write (full, failing): nothing of the commit was written, and the
    /// engine refuses every later write until the store is reopened (the node restarts).
    #[error("the disk refused a write ({0}); the node must restart to reopen its store")]
    Io(#[source] Cause),
    /// A stored record that is not what it should be (the text says what and where).
    #[error("stored record is unreadable: {0}")]
    Corrupt(String),
    /// A stored record that does not decode.
    #[error("stored record is unreadable: {0}")]
    Undecodable(#[source] Cause),
    #[error("message {0} is already queued")]
    AlreadyQueued(Uuid),
    #[error("message {0} is not in the outbox")]
    NotQueued(Uuid),
    #[error("message {0} is not parked (expired or dead)")]
    NotParked(Uuid),
    /// The envelope's signed `ExpiresAt` has passed: sent again as it is, the receiver would
    /// reject it, and the node cannot change a signed envelope.
    #[error("message urn:uuid:{id} cannot be requeued: its signed envelope expired at {} (ExpiresAt), so the receiver would reject it as document-expired, and a new expiry needs a new envelope; submit the document again", rfc3339(*expires_at))]
    SignedExpiryPassed { id: Uuid, expires_at: i64 },
    #[error("message {0} is not in the inbox")]
    NotInInbox(Uuid),
    #[error("message {0} is not in quarantine")]
    NotQuarantined(Uuid),
    #[error("message {0} is not held as conformance traffic")]
    NotConformance(Uuid),
    #[error("no receipt is awaited for message {0}")]
    NotAwaited(Uuid),
    /// Evidence offered for a message this node never received (or sent).
    #[error("message {0} is not known here")]
    UnknownMessage(Uuid),
    #[error("the store is shutting down")]
    Closed,
    /// An event cursor past the newest event (a cursor from another node, or from a store
    /// that was replaced).
    #[error(
        "no event after {after}: the newest event is {newest}; read from after={newest} or lower"
    )]
    EventsAhead { after: u64, newest: u64 },
    /// The events after a cursor were dropped by compaction (`[notifications]` retention).
    #[error("the events after {after} were compacted away; the oldest kept is {oldest}: resume from after={} and reconcile what was missed", oldest - 1)]
    EventsGone { after: u64, oldest: u64 },
    /// The database's schema is not one this build knows (a newer node migrated it).
    #[error("store schema: {0}")]
    Schema(String),
    /// A schema migration failed: `what` names it, with the server's message.
    #[error("store schema: {what}")]
    SchemaFailed {
        what: String,
        #[source]
        source: Cause,
    },
}

impl StoreError {
    /// The engine failed with `source`; `what` is the message, with the source's text.
    pub fn engine_failed(
        what: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::EngineFailed {
            what: what.into(),
            source: std::sync::Arc::new(source),
        }
    }
}

impl StoreError {
    /// Whether the whole group commit must be abandoned (the engine failed, not one request).
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            Self::Engine(_)
                | Self::EngineFailed { .. }
                | Self::Io(_)
                | Self::Corrupt(_)
                | Self::Undecodable(_)
                | Self::Closed
                | Self::Schema(_)
                | Self::SchemaFailed { .. }
        )
    }
}

/// Why a parked message cannot be requeued, if it cannot: an envelope whose signed expiry has
/// passed at `now` (a hub's returned receipt carries no expiry).
pub fn requeue_refusal(entry: &OutboxEntry, now: i64) -> Option<StoreError> {
    let m = &entry.message;
    match (&m.payload, m.expires_at) {
        (Payload::Envelope { .. }, Some(expires_at)) if expires_at <= now => {
            Some(StoreError::SignedExpiryPassed {
                id: m.message_id,
                expires_at,
            })
        }
        _ => None,
    }
}

/// Unix milliseconds as RFC 3339 (UTC), for messages.
fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| format!("{ms} ms after the Unix epoch"))
}

/// A message for KZ → `peer` with conversation = id = `n`, for tests.
#[cfg(test)]
pub fn test_message(n: u128, peer: &str) -> Outgoing {
    Outgoing {
        message_id: Uuid::from_u128(n),
        conversation_id: Uuid::from_u128(n),
        peer: peer.into(),
        payload: Payload::Envelope {
            sender: "KZ".into(),
            recipient: peer.into(),
            envelope: vec![1, 2, 3],
            attachments: Vec::new(),
        },
        expires_at: None,
    }
}

/// The history note of a message's arrival; a tester state's says where it is kept, and a
/// judged one when and on what evidence it was judged.
pub(super) fn received_note(m: &Incoming) -> String {
    let note = if m.conformance {
        format!(
            "from {}: conformance traffic, kept apart from the national inbox",
            m.sender
        )
    } else {
        format!("from {}", m.sender)
    };
    if m.judged.is_empty() {
        note
    } else {
        format!("{note}; judged at {}", m.judged)
    }
}

/// A record's stored form (JSON).
pub(super) fn encode<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| StoreError::Undecodable(std::sync::Arc::new(e)))
}

/// A record from its stored form; unreadable is [`StoreError::Corrupt`].
pub(super) fn decode<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(b).map_err(|e| StoreError::Undecodable(std::sync::Arc::new(e)))
}

/// Whose fault a store failure is, for the doors' answers.
impl tereze_support::class::Classify for StoreError {
    fn class(&self) -> tereze_support::class::Class {
        use tereze_support::class::Class;
        match self {
            Self::Engine(_)
            | Self::EngineFailed { .. }
            | Self::Io(_)
            | Self::Corrupt(_)
            | Self::Undecodable(_)
            | Self::Closed
            | Self::Schema(_)
            | Self::SchemaFailed { .. } => Class::Unavailable,
            Self::NotQueued(_)
            | Self::NotParked(_)
            | Self::NotInInbox(_)
            | Self::NotQuarantined(_)
            | Self::NotConformance(_)
            | Self::NotAwaited(_)
            | Self::UnknownMessage(_) => Class::NotFound,
            Self::AlreadyQueued(_) | Self::SignedExpiryPassed { .. } => Class::Conflict,
            Self::EventsAhead { .. } | Self::EventsGone { .. } => Class::OutOfRange,
        }
    }
}

/// A signature this node made that waits for a time-stamp token (issue 26): the stamper
/// takes these oldest first, and the evidence it obtains replaces the row in one commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StampItem {
    /// The message whose envelope was signed, or a batch of receipts (a fresh id).
    pub id: Uuid,
    /// What was signed, as the caller names it (`envelope`, `receipts`).
    pub kind: String,
    /// The signature value: the Merkle leaf the token covers.
    pub leaf: Vec<u8>,
    /// When it began to wait (Unix ms): the time-stamping lag is measured from the oldest.
    pub queued_at: i64,
}
