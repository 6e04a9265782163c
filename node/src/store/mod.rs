//! The node's durable store (DESIGN §2, §8): the outbox of messages waiting for their next hop,
//! the inbox of received messages waiting for the national system, the deduplication memory,
//! each message's state history, receipts and the audit chain. Every change is made inside a
//! [`Txn`] and is durable when the commit returns (redb with `Durability::Immediate`: one
//! `fdatasync`), so a caller acknowledges upstream only after that; [`committer::Committer`]
//! puts the changes of many concurrent callers into one commit (group commit).
//! The engine choice is docs/decisions/0004-embedded-store.md; [`Store`] is one of two engines
//! behind one interface: the embedded redb file (the default, one replica) or PostgreSQL
//! (several replicas of one node sharing it: docs/decisions/0007-postgresql-store.md).

pub(crate) mod audit;
pub(crate) mod committer;
pub(crate) mod pg_store;
pub(crate) mod redb_store;
#[cfg(test)]
mod suite;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub(crate) use pg_store::{read_password_file, PgOptions, PgStore};
pub(crate) use redb_store::RedbStore;

/// The node's store: one engine behind one interface (DESIGN §8).
pub(crate) enum Store {
    Redb(RedbStore),
    Postgres(Box<PgStore>),
}

/// One write transaction of either engine: its changes become durable together at commit.
/// One lives on the committer's stack per group commit, so its size does not matter.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Txn<'a> {
    Redb(redb_store::RedbTxn<'a>),
    Postgres(pg_store::PgTxn<'a>),
}

/// Calls the same method on whichever engine `$on` holds.
macro_rules! both {
    ($on:expr, $x:ident => $call:expr) => {
        match $on {
            Store::Redb($x) => $call,
            Store::Postgres($x) => $call,
        }
    };
}

macro_rules! both_txn {
    ($on:expr, $x:ident => $call:expr) => {
        match $on {
            Txn::Redb($x) => $call,
            Txn::Postgres($x) => $call,
        }
    };
}

/// Where the store lives, from the configuration's `store` (a PostgreSQL URL) or the data
/// directory's `node.redb`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Location {
    File(std::path::PathBuf),
    Postgres(pg_store::PgOptions),
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File(p) => write!(f, "{}", p.display()),
            Self::Postgres(o) => write!(f, "{}", o.redacted()),
        }
    }
}

/// The embedded store's page cache unless configured (`limits.store_cache_mb`): 16 MiB
/// carried as many messages per second as 64 MiB under `tereze bench`, and a node holds
/// 60 MB less after load (docs/reliability.md, "Overload").
pub(crate) const DEFAULT_CACHE_BYTES: usize = 16 << 20;

impl Store {
    /// Opens (or creates) the store; a PostgreSQL database gets its schema migrated first.
    pub(crate) fn open(at: &Location) -> Result<Self, StoreError> {
        Self::open_with_cache(at, DEFAULT_CACHE_BYTES)
    }

    /// [`Store::open`] with the embedded store's page cache bounded to `cache_bytes`.
    pub(crate) fn open_with_cache(at: &Location, cache_bytes: usize) -> Result<Self, StoreError> {
        match at {
            Location::File(p) => RedbStore::open_with_cache(p, cache_bytes).map(Self::Redb),
            Location::Postgres(o) => PgStore::open(o).map(|s| Self::Postgres(Box::new(s))),
        }
    }

    /// Runs `f` in one write transaction and commits it durably if `f` succeeds; returns its
    /// result and the state changes it made.
    #[cfg(test)]
    pub(crate) fn write<R>(
        &self,
        now: i64,
        f: impl FnOnce(&mut Txn<'_>) -> Result<R, StoreError>,
    ) -> Result<(R, Vec<Change>), StoreError> {
        self.write_with(true, now, f)
    }

    /// [`write`](Self::write), durable on return or not (a lazy commit, made durable by the
    /// next durable one); only for changes that are safe to redo.
    pub(crate) fn write_with<R>(
        &self,
        durable: bool,
        now: i64,
        f: impl FnOnce(&mut Txn<'_>) -> Result<R, StoreError>,
    ) -> Result<(R, Vec<Change>), StoreError> {
        both!(self, s => s.write_with(durable, now, f))
    }

    /// Up to `limit` messages for `peer` that may be sent at `now`, in enqueue order, within
    /// `max_bytes` (a message over it alone goes alone). A message waiting for its retry, in
    /// flight (`skip`) or, on PostgreSQL, claimed by another replica holds back the later
    /// messages of its conversation. On PostgreSQL the messages returned are claimed (leased)
    /// for this replica.
    pub(crate) fn due(
        &self,
        peer: &str,
        now: i64,
        limit: usize,
        max_bytes: usize,
        skip: &std::collections::HashSet<Uuid>,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        both!(self, s => s.due(peer, now, limit, max_bytes, skip))
    }

    pub(crate) fn queued(&self, peer: &str) -> Result<u64, StoreError> {
        both!(self, s => s.queued(peer))
    }

    pub(crate) fn outbox_len(&self) -> Result<u64, StoreError> {
        both!(self, s => s.outbox_len())
    }

    pub(crate) fn peers_with_queue(&self) -> Result<Vec<String>, StoreError> {
        both!(self, s => s.peers_with_queue())
    }

    /// Up to `limit` inbox messages after the position `after` (from the oldest when `None`),
    /// oldest first, each with its position. Positions only grow (a message released from
    /// quarantine takes a new one), so a reader that resumes after the last position it saw
    /// misses nothing and sees nothing twice, without acknowledging.
    pub(crate) fn inbox_after(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, Incoming)>, StoreError> {
        both!(self, s => s.inbox_after(after, limit))
    }

    /// Up to `limit` inbox messages, oldest first.
    #[cfg(test)]
    pub(crate) fn inbox(&self, limit: usize) -> Result<Vec<Incoming>, StoreError> {
        Ok(self
            .inbox_after(None, limit)?
            .into_iter()
            .map(|(_, m)| m)
            .collect())
    }

    pub(crate) fn quarantined(&self) -> Result<Vec<Incoming>, StoreError> {
        both!(self, s => s.quarantined())
    }

    /// Every message held in the conformance area (from a tester state, docs/conformance.md),
    /// in arrival order, without its envelope.
    pub(crate) fn conformance(&self) -> Result<Vec<Incoming>, StoreError> {
        both!(self, s => s.conformance())
    }

    pub(crate) fn inbox_len(&self) -> Result<u64, StoreError> {
        both!(self, s => s.inbox_len())
    }

    /// Whether the message waits in the inbox (not yet taken by the national system).
    pub(crate) fn in_inbox(&self, id: Uuid) -> Result<bool, StoreError> {
        both!(self, s => s.in_inbox(id))
    }

    #[cfg(test)]
    pub(crate) fn received_ids(&self) -> Result<Vec<Uuid>, StoreError> {
        both!(self, s => s.received_ids())
    }

    pub(crate) fn history(&self, id: Uuid) -> Result<Vec<Transition>, StoreError> {
        both!(self, s => s.history(id))
    }

    pub(crate) fn receipt(&self, id: Uuid) -> Result<Option<Vec<u8>>, StoreError> {
        both!(self, s => s.receipt(id))
    }

    pub(crate) fn awaited(&self, id: Uuid) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        both!(self, s => s.awaited(id))
    }

    pub(crate) fn fetched_crls(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        both!(self, s => s.fetched_crls())
    }

    pub(crate) fn latest_trust_space(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        both!(self, s => s.latest_trust_space())
    }

    pub(crate) fn meta(&self, id: Uuid) -> Result<Option<Meta>, StoreError> {
        both!(self, s => s.meta(id))
    }

    pub(crate) fn search(&self, f: &Filter) -> Result<Vec<Found>, StoreError> {
        both!(self, s => s.search(f))
    }

    pub(crate) fn trader(&self, id: &str) -> Result<Option<crate::traders::Trader>, StoreError> {
        both!(self, s => s.trader(id))
    }

    pub(crate) fn trader_count(&self) -> Result<u64, StoreError> {
        both!(self, s => s.trader_count())
    }

    pub(crate) fn trader_answer(&self, id: &str) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
        both!(self, s => s.trader_answer(id))
    }

    pub(crate) fn change_sets_of(
        &self,
        directory: &str,
        since: u64,
        limit: usize,
    ) -> Result<Vec<(String, u64, Vec<u8>)>, StoreError> {
        both!(self, s => s.change_sets_of(directory, since, limit))
    }

    pub(crate) fn change_sets_after(
        &self,
        have: &std::collections::HashMap<String, u64>,
        limit: usize,
    ) -> Result<Vec<(String, u64, Vec<u8>)>, StoreError> {
        both!(self, s => s.change_sets_after(have, limit))
    }

    pub(crate) fn awaiting_len(&self) -> Result<u64, StoreError> {
        both!(self, s => s.awaiting_len())
    }

    pub(crate) fn parked(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        both!(self, s => s.parked())
    }

    /// Verifies the audit chain, its checkpoints and the histories (one consistent snapshot).
    pub(crate) fn verify_audit(&self) -> Result<audit::AuditReport, StoreError> {
        match self {
            Self::Redb(s) => audit::verify(s.database()),
            Self::Postgres(s) => s.verify_audit(),
        }
    }

    /// Peers whose queues another replica added to (PostgreSQL `NOTIFY`); `None` for the
    /// embedded store, which has no other writer.
    pub(crate) fn wake_ups(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        match self {
            Self::Redb(_) => None,
            Self::Postgres(s) => Some(s.wake_ups()),
        }
    }

    /// `redb` or `postgresql`, for logs and metrics.
    pub(crate) fn engine_name(&self) -> &'static str {
        match self {
            Self::Redb(_) => "redb",
            Self::Postgres(_) => "postgresql",
        }
    }
}

impl Txn<'_> {
    /// The transaction's clock (Unix milliseconds).
    pub(crate) fn now(&self) -> i64 {
        both_txn!(self, t => t.now())
    }

    /// Queues messages for their peers; all or none. `before` are transitions recorded first
    /// (received, translated, signed) for every message.
    pub(crate) fn enqueue(
        &mut self,
        batch: &[Outgoing],
        before: &[(State, Option<String>)],
    ) -> Result<(), StoreError> {
        both_txn!(self, t => t.enqueue(batch, before))
    }

    /// Records a failed attempt and when to try again; returns the attempts so far.
    pub(crate) fn failed_attempt(
        &mut self,
        id: Uuid,
        error: &str,
        next_attempt_at: i64,
    ) -> Result<u32, StoreError> {
        both_txn!(self, t => t.failed_attempt(id, error, next_attempt_at))
    }

    /// The final recipient acknowledged the message with `receipt` (its verdict is `verdict`):
    /// it leaves the outbox, or stops being awaited when it went through a hub.
    pub(crate) fn delivered(
        &mut self,
        id: Uuid,
        receipt: &[u8],
        verdict: State,
        note: Option<String>,
    ) -> Result<(), StoreError> {
        both_txn!(self, t => t.delivered(id, receipt, verdict, note))
    }

    /// A hub took the message for forwarding: it leaves the outbox and its end receipt is
    /// awaited.
    pub(crate) fn forwarded(
        &mut self,
        id: Uuid,
        recipient: &str,
        hub_receipt: &[u8],
        note: String,
    ) -> Result<(), StoreError> {
        both_txn!(self, t => t.forwarded(id, recipient, hub_receipt, note))
    }

    /// Takes a message out of the outbox as `Expired` or `Dead`, keeping it for a requeue.
    pub(crate) fn park(&mut self, id: Uuid, state: State, note: &str) -> Result<(), StoreError> {
        both_txn!(self, t => t.park(id, state, note))
    }

    /// An operator's requeue of a parked message; returns its peer. Refused
    /// ([`StoreError::SignedExpiryPassed`]) once the envelope's signed `ExpiresAt` has passed.
    pub(crate) fn requeue(&mut self, id: Uuid) -> Result<String, StoreError> {
        both_txn!(self, t => t.requeue(id))
    }

    /// Stores a received message once (see [`Accepted`]).
    pub(crate) fn accept(
        &mut self,
        m: &Incoming,
        forward: Option<&Outgoing>,
    ) -> Result<Accepted, StoreError> {
        both_txn!(self, t => t.accept(m, forward))
    }

    /// A quarantined message found acceptable on a second look moves to the inbox.
    pub(crate) fn release_from_quarantine(
        &mut self,
        id: Uuid,
        note: String,
    ) -> Result<(), StoreError> {
        both_txn!(self, t => t.release_from_quarantine(id, note))
    }

    /// An operator's purge of a message held in the conformance area: it leaves the area, its
    /// envelope is dropped, and the purge is recorded in its history and the audit chain. The
    /// deduplication memory and the receipt stay, so a redelivery still gets its first
    /// receipt and is not stored again.
    pub(crate) fn purge_conformance(&mut self, id: Uuid, note: String) -> Result<(), StoreError> {
        both_txn!(self, t => t.purge_conformance(id, note))
    }

    /// Keeps the CRL set accepted from `url` (replacing the one held).
    pub(crate) fn record_crls(&mut self, url: &str, bytes: &[u8]) -> Result<(), StoreError> {
        both_txn!(self, t => t.record_crls(url, bytes))
    }

    /// Keeps a signed trust space that is about to be applied.
    pub(crate) fn record_trust_space(
        &mut self,
        version: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        both_txn!(self, t => t.record_trust_space(version, bytes))
    }

    /// Forgets the kept answers about another state's trader `id`, or about all of them
    /// (`None`), so that the next resolution asks the owner again: how many were forgotten.
    pub(crate) fn forget_trader_answers(&mut self, id: Option<&str>) -> Result<u64, StoreError> {
        both_txn!(self, t => t.forget_trader_answers(id))
    }

    /// Adds or replaces traders of this state's register (all or none).
    pub(crate) fn put_traders(
        &mut self,
        traders: &[crate::traders::Trader],
    ) -> Result<(), StoreError> {
        both_txn!(self, t => t.put_traders(traders))
    }

    /// Keeps a verified answer of another state's node about one of its traders.
    pub(crate) fn record_trader_answer(
        &mut self,
        id: &str,
        at_ms: i64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        both_txn!(self, t => t.record_trader_answer(id, at_ms, bytes))
    }

    /// Adds a message's common process and document type to its index row.
    pub(crate) fn describe(
        &mut self,
        id: Uuid,
        process: &str,
        document_type: &str,
    ) -> Result<(), StoreError> {
        both_txn!(self, t => t.describe(id, process, document_type))
    }

    /// Keeps a verified change set that is about to be put in force.
    pub(crate) fn record_change_set(
        &mut self,
        directory: &str,
        number: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        both_txn!(self, t => t.record_change_set(directory, number, bytes))
    }

    /// The national system has taken the message: it leaves the inbox.
    pub(crate) fn ack_inbox(&mut self, id: Uuid) -> Result<(), StoreError> {
        both_txn!(self, t => t.ack_inbox(id))
    }

    /// Records a transition of `id` in its history and the audit log (who did what: the note).
    pub(crate) fn note(&mut self, id: Uuid, state: State, note: String) -> Result<(), StoreError> {
        both_txn!(self, t => t.record(id, state, Some(note)))
    }

    /// Signs an audit checkpoint over the chain's head, unless the last one covers it; the
    /// number of entries covered.
    pub(crate) fn audit_checkpoint(
        &mut self,
        key: &openssl::pkey::PKey<openssl::pkey::Private>,
        certificate: &openssl::x509::X509,
    ) -> Result<Option<u64>, StoreError> {
        both_txn!(self, t => t.audit_checkpoint(key, certificate))
    }
}

/// The search result for one message (its first and last transition times and its state
/// now) when it matches `f`; `meta` is read only when the cheaper tests pass.
pub(crate) fn select(
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
    /// Not a message: a record of another kind changed (a trader's register record), noted in
    /// the audit log with who changed it.
    Changed,
    /// Conformance traffic removed by an operator (docs/conformance.md).
    Purged,
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
            Self::Changed => "changed",
            Self::Purged => "purged",
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

/// An attachment of an outgoing message: what its transfer declares.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct AttachmentMeta {
    pub(crate) id: String,
    pub(crate) size: u64,
    /// Lowercase hex.
    pub(crate) sha256: String,
}

impl AttachmentMeta {
    /// The digest as bytes (a malformed stored value reads as zeros, which no transfer matches).
    pub(crate) fn digest(&self) -> [u8; 32] {
        unhex(&self.sha256)
            .and_then(|v| <[u8; 32]>::try_from(v).ok())
            .unwrap_or([0; 32])
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
    /// Sent by a tester state (`conformance = true` in the trust space): kept in the
    /// conformance area, never in the inbox or quarantine (docs/conformance.md).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) conformance: bool,
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
    #[error("the store is shutting down")]
    Closed,
    /// The database's schema is not one this build knows (a newer node migrated it).
    #[error("store schema: {0}")]
    Schema(String),
}

impl StoreError {
    /// Whether the whole group commit must be abandoned (the engine failed, not one request).
    pub(crate) fn is_fatal(&self) -> bool {
        matches!(
            self,
            Self::Engine(_) | Self::Io(_) | Self::Corrupt(_) | Self::Closed | Self::Schema(_)
        )
    }
}

/// Why a parked message cannot be requeued, if it cannot: an envelope whose signed expiry has
/// passed at `now` (a hub's returned receipt carries no expiry).
pub(crate) fn requeue_refusal(entry: &OutboxEntry, now: i64) -> Option<StoreError> {
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
pub(crate) fn test_message(n: u128, peer: &str) -> Outgoing {
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

/// The history note of a message's arrival; a tester state's says where it is kept.
fn received_note(m: &Incoming) -> String {
    if m.conformance {
        format!(
            "from {}: conformance traffic, kept apart from the national inbox",
            m.sender
        )
    } else {
        format!("from {}", m.sender)
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
