//! What an engine (redb, PostgreSQL) must do: keep and find records, nothing more. The rules
//! of a message's life (what a transition checks, writes and records, in which order) are
//! written once, in [`super::txn`], over the primitives of [`EngineTxn`]; an engine decides
//! only how each primitive is stored (tables, counters, leases, batched statements).
//!
//! A primitive that is asked for something absent answers `None` or `false`, never an error:
//! the transition decides what that means. A primitive changes nothing it was not asked to.

use std::collections::{HashMap, HashSet};

use uuid::Uuid;

use super::audit::{AuditData, Head};
use super::events::{Event, EventPage, Retention};
use super::records::{
    Filter, Found, Incoming, Meta, OutboxEntry, StampItem, State, StoreError, Transition,
};

/// Where a received message waits: each area keeps its own arrival order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Area {
    /// Recognised, for the national system (positions only grow: [`Engine::inbox_after`]).
    Inbox,
    /// Rejected, kept for a second look.
    Quarantine,
    /// A tester state's traffic (docs/conformance.md).
    Conformance,
}

/// The storage primitives of one write transaction. Everything written becomes durable
/// together when the engine commits; nothing is visible to readers before.
pub trait EngineTxn {
    /// The transaction's clock (Unix milliseconds).
    fn now(&self) -> i64;

    // The outbox and the parked messages.

    /// The first of `ids` that is in the outbox, if any.
    fn queued_among(&mut self, ids: &[Uuid]) -> Result<Option<Uuid>, StoreError>;
    /// Reserves `n` (> 0) consecutive outbox sequence numbers; the first of them.
    fn next_sequences(&mut self, n: u64) -> Result<u64, StoreError>;
    /// Puts entries (with their payloads and sequences) in the outbox, and `metas` (none, or
    /// one per entry) as their messages' search rows.
    fn put_outbox(&mut self, entries: &[OutboxEntry], metas: &[Meta]) -> Result<(), StoreError>;
    /// Takes a message out of the outbox: its entry with its payload.
    fn take_outbox(&mut self, id: Uuid) -> Result<Option<OutboxEntry>, StoreError>;
    /// Removes a message from the outbox without reading it back: whether it was there.
    fn drop_outbox(&mut self, id: Uuid) -> Result<bool, StoreError>;
    /// Counts a failed attempt (sets when to try again and why it failed): the attempts so
    /// far, or `None` when the message is not in the outbox.
    fn count_attempt(
        &mut self,
        id: Uuid,
        error: &str,
        next_attempt_at: i64,
    ) -> Result<Option<u32>, StoreError>;
    /// Keeps an entry (with its payload) among the parked messages.
    fn put_parked(&mut self, entry: &OutboxEntry) -> Result<(), StoreError>;
    /// A parked entry with its payload, left in place.
    fn parked_entry(&mut self, id: Uuid) -> Result<Option<OutboxEntry>, StoreError>;
    /// Removes a parked entry.
    fn drop_parked(&mut self, id: Uuid) -> Result<(), StoreError>;

    // Sent messages: receipts and end receipts awaited through a hub.

    /// Awaits the end receipt of a message a hub took (the envelope's SHA-256, empty for a
    /// returned receipt), keeping the hub's receipt.
    fn put_awaiting(
        &mut self,
        id: Uuid,
        recipient: &str,
        digest: &[u8],
        hub_receipt: &[u8],
    ) -> Result<(), StoreError>;
    /// Stops awaiting an end receipt: whether it was awaited.
    fn drop_awaiting(&mut self, id: Uuid) -> Result<bool, StoreError>;
    /// Keeps (or replaces) the final recipient's receipt for a sent message.
    fn put_receipt(&mut self, id: Uuid, receipt: &[u8]) -> Result<(), StoreError>;

    // Received messages.

    /// For a message received before: the receipt given then and its envelope's digest (hex;
    /// empty in rows written before digests were kept).
    fn received(&mut self, id: Uuid) -> Result<Option<(Vec<u8>, String)>, StoreError>;
    /// The envelope kept for a received message, if it is still kept.
    fn received_envelope(&mut self, id: Uuid) -> Result<Option<Vec<u8>>, StoreError>;
    /// Remembers a received message (the deduplication memory) with its receipt, and its
    /// envelope when `keep_envelope`. A message already remembered is an error.
    fn put_received(&mut self, m: &Incoming, keep_envelope: bool) -> Result<(), StoreError>;
    /// Drops the envelope kept for a received message.
    fn drop_envelope(&mut self, id: Uuid) -> Result<(), StoreError>;
    /// Puts a received message in `area`, after everything placed in any area before.
    fn place(&mut self, id: Uuid, area: Area) -> Result<(), StoreError>;
    /// Takes a message out of `area`: whether it was there.
    fn unplace(&mut self, id: Uuid, area: Area) -> Result<bool, StoreError>;

    // Search rows.

    fn meta(&mut self, id: Uuid) -> Result<Option<Meta>, StoreError>;
    fn put_meta(&mut self, id: Uuid, meta: &Meta) -> Result<(), StoreError>;

    // The audit chain and the histories.

    /// The chain's head as this transaction sees it; the engine writes it back at commit.
    fn audit_head(&mut self) -> Result<&mut Head, StoreError>;
    /// Appends the chain's entry `seq` (stored form `entry`) and the same transition to the
    /// message's history.
    fn append(
        &mut self,
        id: Uuid,
        seq: u64,
        entry: Vec<u8>,
        t: &Transition,
    ) -> Result<(), StoreError>;
    fn has_checkpoint(&mut self, seq: u64) -> Result<bool, StoreError>;
    fn put_checkpoint(&mut self, seq: u64, checkpoint: &[u8]) -> Result<(), StoreError>;
    /// Marks the checkpoint at `seq` as waiting for its time-stamp token.
    fn want_checkpoint_token(&mut self, seq: u64) -> Result<(), StoreError>;
    /// Keeps the checkpoint's time-stamp token (DER); it no longer waits.
    fn put_checkpoint_token(&mut self, seq: u64, token: &[u8]) -> Result<(), StoreError>;

    // The event log (docs/notifications.md).

    /// Appends `e` as the next event, setting its `seq`: the last one's plus one (1 for the
    /// first), also across replicas and after compaction.
    fn append_event(&mut self, e: &mut Event) -> Result<(), StoreError>;
    /// Drops the events `r` no longer keeps at `now`, never the newest one: how many.
    fn compact_events(&mut self, r: &Retention, now: i64) -> Result<u64, StoreError>;
    /// Keeps a reader's cursor (a webhook's last acknowledged sequence number).
    fn put_event_cursor(&mut self, reader: &str, seq: u64) -> Result<(), StoreError>;

    // Documents kept as they came (replacing any held under the same key).

    fn put_crls(&mut self, url: &str, bytes: &[u8]) -> Result<(), StoreError>;
    fn put_trust_space(&mut self, version: u64, bytes: &[u8]) -> Result<(), StoreError>;
    /// This state's register: (trader id, record) pairs, the record as its callers encode it.
    fn put_traders(&mut self, records: &[(String, Vec<u8>)]) -> Result<(), StoreError>;
    fn put_trader_answer(&mut self, id: &str, at_ms: i64, bytes: &[u8]) -> Result<(), StoreError>;
    /// Forgets the answers kept about `id`, or all (`None`): how many.
    fn forget_trader_answers(&mut self, id: Option<&str>) -> Result<u64, StoreError>;
    fn put_change_set(
        &mut self,
        directory: &str,
        number: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError>;

    // Time-stamping (issue 26): signatures waiting for a token, the evidence obtained or
    // received, and evidence waiting to be sent to a peer.

    /// The state of a message's last transition (this transaction's own included).
    fn last_state(&mut self, id: Uuid) -> Result<Option<State>, StoreError>;
    /// Puts a signature among those waiting for a token (replacing one under the same id).
    fn put_stamp_pending(&mut self, item: &StampItem) -> Result<(), StoreError>;
    /// Removes a waiting signature: whether it was waiting.
    fn drop_stamp_pending(&mut self, id: Uuid) -> Result<bool, StoreError>;
    /// Keeps (or replaces) the evidence of a message's (or a receipt batch's) signature.
    fn put_evidence(&mut self, id: Uuid, evidence: &[u8]) -> Result<(), StoreError>;
    /// The evidence kept for `id`.
    fn evidence(&mut self, id: Uuid) -> Result<Option<Vec<u8>>, StoreError>;
    /// Marks the evidence of `id` as owed to `peer`.
    fn put_evidence_out(&mut self, peer: &str, id: Uuid) -> Result<(), StoreError>;
    /// Clears what [`put_evidence_out`](Self::put_evidence_out) marked: whether it was marked.
    fn drop_evidence_out(&mut self, peer: &str, id: Uuid) -> Result<bool, StoreError>;
}

/// One write transaction's body, run by [`Engine::transact`] between begin and commit.
pub type Body<'b> = dyn FnMut(&mut dyn EngineTxn) -> Result<(), StoreError> + 'b;

/// An engine: its write transactions and its reads. Every read sees committed data only.
pub trait Engine: Send + Sync {
    /// `redb` or `postgresql`, for logs and metrics.
    fn name(&self) -> &'static str;

    /// Begins a write transaction, runs `body` in it and commits when it succeeds (durable on
    /// return, or, when not `durable`, atomic now and durable with the next durable commit).
    /// Nothing of a failed body is written.
    fn transact(&self, durable: bool, now: i64, body: &mut Body<'_>) -> Result<(), StoreError>;

    /// Up to `limit` messages for `peer` that may be sent at `now`, in enqueue order, within
    /// `max_bytes` (a message over it alone goes alone). A message waiting for its retry, in
    /// flight (`skip`) or, on PostgreSQL, claimed by another replica holds back the later
    /// messages of its conversation. On PostgreSQL the messages returned are claimed (leased)
    /// for this replica.
    fn due(
        &self,
        peer: &str,
        now: i64,
        limit: usize,
        max_bytes: usize,
        skip: &HashSet<Uuid>,
    ) -> Result<Vec<OutboxEntry>, StoreError>;
    /// Messages queued for `peer`.
    fn queued(&self, peer: &str) -> Result<u64, StoreError>;
    /// Messages in the whole outbox.
    fn outbox_len(&self) -> Result<u64, StoreError>;
    /// The peers with queued messages.
    fn peers_with_queue(&self) -> Result<Vec<String>, StoreError>;
    /// Up to `limit` inbox messages after the position `after` (from the oldest when `None`),
    /// oldest first, each with its position. Positions only grow (a message released from
    /// quarantine takes a new one), so a reader that resumes after the last position it saw
    /// misses nothing and sees nothing twice, without acknowledging.
    fn inbox_after(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, Incoming)>, StoreError>;
    /// Every quarantined (rejected) message, with its envelope.
    fn quarantined(&self) -> Result<Vec<Incoming>, StoreError>;
    /// Every message held in the conformance area (from a tester state, docs/conformance.md),
    /// in arrival order, without its envelope.
    fn conformance(&self) -> Result<Vec<Incoming>, StoreError>;
    /// Messages in the inbox.
    fn inbox_len(&self) -> Result<u64, StoreError>;
    /// Whether the message waits in the inbox (not yet taken by the national system).
    fn in_inbox(&self, id: Uuid) -> Result<bool, StoreError>;
    /// Every message ever received (the deduplication memory), in id order.
    #[cfg(test)]
    fn received_ids(&self) -> Result<Vec<Uuid>, StoreError>;
    /// A message's state history, oldest first.
    fn history(&self, id: Uuid) -> Result<Vec<Transition>, StoreError>;
    /// The receipt the final recipient gave for a message we sent.
    fn receipt(&self, id: Uuid) -> Result<Option<Vec<u8>>, StoreError>;
    /// For a message sent through a hub and still waiting for its end receipt: the recipient
    /// state and the envelope's digest.
    fn awaited(&self, id: Uuid) -> Result<Option<(String, Vec<u8>)>, StoreError>;
    /// The CRL sets accepted from CRL locations, by URL.
    fn fetched_crls(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError>;
    /// The newest signed trust space applied, if any.
    fn latest_trust_space(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError>;
    /// Where a message goes or comes from.
    fn meta(&self, id: Uuid) -> Result<Option<Meta>, StoreError>;
    /// Messages matching `f`, the most recently changed first, at most `f.limit`.
    fn search(&self, f: &Filter) -> Result<Vec<Found>, StoreError>;
    /// A record of this state's register, as [`EngineTxn::put_traders`] got it.
    fn trader(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// How many traders the register holds.
    fn trader_count(&self) -> Result<u64, StoreError>;
    /// The answer kept about another state's trader: when it was fetched (ms) and the signed
    /// document.
    fn trader_answer(&self, id: &str) -> Result<Option<(i64, Vec<u8>)>, StoreError>;
    /// One directory's stored change sets after number `since`, in order, at most `limit`.
    fn change_sets_of(
        &self,
        directory: &str,
        since: u64,
        limit: usize,
    ) -> Result<Vec<(String, u64, Vec<u8>)>, StoreError>;
    /// Stored change sets after the given versions (a directory not in `have`: all of its
    /// sets), in (directory, number) order, at most `limit` of them.
    fn change_sets_after(
        &self,
        have: &HashMap<String, u64>,
        limit: usize,
    ) -> Result<Vec<(String, u64, Vec<u8>)>, StoreError>;
    /// Messages whose end receipt is awaited (sent through a hub).
    fn awaiting_len(&self) -> Result<u64, StoreError>;
    /// Parked (expired or dead) messages, without their payloads.
    fn parked(&self) -> Result<Vec<OutboxEntry>, StoreError>;
    /// The audit chain, its checkpoints and the histories, from one consistent snapshot.
    fn audit_data(&self) -> Result<AuditData, StoreError>;
    /// Up to `limit` signatures waiting for a token, the longest-waiting first.
    fn stamp_pending(&self, limit: usize) -> Result<Vec<StampItem>, StoreError>;
    /// How many signatures wait for a token.
    fn stamp_pending_len(&self) -> Result<u64, StoreError>;
    /// The evidence kept for a message's (or a receipt batch's) signature.
    fn evidence_of(&self, id: Uuid) -> Result<Option<Vec<u8>>, StoreError>;
    /// Up to `limit` messages whose evidence is owed to `peer`, with that evidence.
    fn evidence_owed(&self, peer: &str, limit: usize) -> Result<Vec<(Uuid, Vec<u8>)>, StoreError>;
    /// The peers owed evidence.
    fn peers_owed_evidence(&self) -> Result<Vec<String>, StoreError>;
    /// A received message as remembered (its envelope empty when not kept, as at a hub).
    fn received_message(&self, id: Uuid) -> Result<Option<Incoming>, StoreError>;
    /// Up to `limit` checkpoints waiting for their time-stamp token, oldest first: (covered
    /// entry, checkpoint as stored).
    fn checkpoints_awaiting_token(&self, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError>;
    /// Up to `limit` (at least one) events numbered after `after`, in order, and the newest
    /// number written, from one snapshot.
    fn events_after(&self, after: u64, limit: usize) -> Result<EventPage, StoreError>;
    /// A reader's cursor as [`EngineTxn::put_event_cursor`] kept it.
    fn event_cursor(&self, reader: &str) -> Result<Option<u64>, StoreError>;
    /// Peers whose queues another replica added to (PostgreSQL `NOTIFY`); `None` for an
    /// engine with no other writer.
    fn wake_ups(&self) -> Option<tokio::sync::broadcast::Receiver<String>> {
        None
    }
}
