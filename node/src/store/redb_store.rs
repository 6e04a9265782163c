//! The store on redb. Tables: the outbox keyed by (peer, sequence) so each peer's queue is in
//! enqueue order, an index from message id to its outbox key, parked messages (expired or dead,
//! kept for an operator's requeue), every received message by id (the deduplication memory),
//! the inbox queue in arrival order, quarantine, state histories, receipts, the messages sent
//! through a hub whose end receipt is awaited, and the audit chain.
//!
//! All changes go through [`Txn`]: a request that is refused (an id already queued, a message
//! not in the outbox) is refused before it writes anything, so one transaction can carry the
//! requests of many callers and still give each its own answer.

use std::path::Path;

use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};
use uuid::Uuid;

use super::audit;
use super::records::{decode, encode};
use super::{hex, unhex};
use super::{
    Accepted, Change, Incoming, OutboxEntry, Outgoing, State, StoreError, Transition, Txn,
};

const OUTBOX: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("outbox");
const OUTBOX_INDEX: TableDefinition<u128, (&str, u64)> = TableDefinition::new("outbox_index");
const PARKED: TableDefinition<u128, &[u8]> = TableDefinition::new("parked");
const RECEIVED: TableDefinition<u128, &[u8]> = TableDefinition::new("received");
const INBOX: TableDefinition<u64, u128> = TableDefinition::new("inbox");
const INBOX_INDEX: TableDefinition<u128, u64> = TableDefinition::new("inbox_index");
const QUARANTINE: TableDefinition<u128, u64> = TableDefinition::new("quarantine");
/// Messages from tester states (docs/conformance.md), by id, with their arrival sequence.
const CONFORMANCE: TableDefinition<u128, u64> = TableDefinition::new("conformance");
/// (message, audit sequence) → one transition: appending never rewrites earlier ones.
pub(super) const HISTORY: TableDefinition<(u128, u64), &[u8]> = TableDefinition::new("history");
/// Outgoing envelopes and receipts, raw, while their message is queued or parked.
const PAYLOADS: TableDefinition<u128, &[u8]> = TableDefinition::new("payloads");
/// Received envelopes and the receipts given for them, raw.
const RECEIVED_ENVELOPES: TableDefinition<u128, &[u8]> = TableDefinition::new("received_envelopes");
const RECEIVED_RECEIPTS: TableDefinition<u128, &[u8]> = TableDefinition::new("received_receipts");
const RECEIPTS: TableDefinition<u128, &[u8]> = TableDefinition::new("receipts");
const HUB_RECEIPTS: TableDefinition<u128, &[u8]> = TableDefinition::new("hub_receipts");
const AWAITING: TableDefinition<u128, &str> = TableDefinition::new("awaiting");
pub(super) const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
/// Every signed trust space this node has applied, by version (the history DESIGN §5 keeps).
const TRUST_HISTORY: TableDefinition<u64, &[u8]> = TableDefinition::new("trust_history");
/// CRLs accepted from CRL locations: URL → the CRL set as fetched.
const FETCHED_CRLS: TableDefinition<&str, &[u8]> = TableDefinition::new("fetched_crls");
/// Where each message goes or comes from (operators' search): id → JSON `Meta`.
const META: TableDefinition<u128, &[u8]> = TableDefinition::new("message_meta");
/// This state's traders (issue 8): identifier → the record as its callers encoded it (JSON).
const TRADERS: TableDefinition<&str, &[u8]> = TableDefinition::new("traders");
/// Signed answers about other states' traders: identifier → 8 bytes of the time it was
/// fetched (ms, big-endian) followed by the signed document.
const TRADER_ANSWERS: TableDefinition<&str, &[u8]> = TableDefinition::new("trader_answers");
/// Signed change sets of the reference directories, by (directory, number), as received.
const CHANGE_SETS: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("change_sets");

pub(super) fn engine(e: impl std::fmt::Display) -> StoreError {
    StoreError::Engine(e.to_string())
}

/// A failure to begin or commit a write: an I/O error (a full disk, a failing device) is
/// [`StoreError::Io`], after which redb refuses every write until the database is reopened.
pub(super) fn write_failure(e: impl Into<redb::Error>) -> StoreError {
    let e: redb::Error = e.into();
    match e {
        redb::Error::Io(_) | redb::Error::PreviousIo => StoreError::Io(e.to_string()),
        other => StoreError::Engine(other.to_string()),
    }
}

/// Why a store file's audit chain could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum AuditFileError {
    #[error("cannot open: {0} (is the node still running?)")]
    Open(#[source] redb::DatabaseError),
    #[error(transparent)]
    Read(#[from] StoreError),
}

/// The embedded store.
pub(crate) struct RedbStore {
    db: Database,
}

/// One write transaction on redb: the changes it makes become durable together at commit.
pub(crate) struct RedbTxn<'a> {
    txn: &'a WriteTransaction,
    now: i64,
    changes: Vec<Change>,
    /// The audit chain's head, loaded on first use and written back before commit.
    audit_head: Option<audit::Head>,
    /// Counters read in this transaction, with their next values; written back before commit.
    counters: Vec<(&'static str, u64)>,
}

impl RedbTxn<'_> {
    /// The transaction's clock (Unix milliseconds).
    pub(crate) fn now(&self) -> i64 {
        self.now
    }

    /// Signs an audit checkpoint over the chain's head (see [`audit::checkpoint`]).
    pub(crate) fn audit_checkpoint(
        &mut self,
        key: &openssl::pkey::PKey<openssl::pkey::Private>,
        certificate: &openssl::x509::X509,
    ) -> Result<Option<u64>, StoreError> {
        self.flush_audit_head()?;
        audit::checkpoint(self.txn, key, certificate, self.now)
    }

    /// Writes any pending audit head, so code working on the raw transaction sees it.
    pub(crate) fn flush_audit_head(&mut self) -> Result<(), StoreError> {
        if let Some(head) = self.audit_head.take() {
            head.store(self.txn)?;
        }
        Ok(())
    }

    fn next_counter(&mut self, name: &'static str) -> Result<u64, StoreError> {
        let n = match self.counters.iter().position(|(k, _)| *k == name) {
            Some(i) => self.counters[i].1,
            None => {
                let t = self.txn.open_table(COUNTERS).map_err(engine)?;
                let n = t.get(name).map_err(engine)?.map(|v| v.value()).unwrap_or(0);
                self.counters.push((name, n));
                n
            }
        };
        if let Some(c) = self.counters.iter_mut().find(|(k, _)| *k == name) {
            c.1 = n + 1;
        }
        Ok(n)
    }

    /// Writes the cached counters and audit head back; called before commit.
    fn flush(&mut self) -> Result<(), StoreError> {
        if !self.counters.is_empty() {
            let mut t = self.txn.open_table(COUNTERS).map_err(engine)?;
            for (k, v) in self.counters.drain(..) {
                t.insert(k, v).map_err(engine)?;
            }
        }
        self.flush_audit_head()
    }

    /// Appends a transition to a message's history and to the audit chain.
    pub(crate) fn record(
        &mut self,
        id: Uuid,
        state: State,
        note: Option<String>,
    ) -> Result<(), StoreError> {
        let transition = Transition {
            state,
            at: self.now,
            note,
        };
        if self.audit_head.is_none() {
            self.audit_head = Some(audit::Head::load(self.txn)?);
        }
        let head = self
            .audit_head
            .as_mut()
            .ok_or_else(|| StoreError::Engine("audit head".into()))?;
        let seq = audit::append(self.txn, head, id, &transition)?;
        self.txn
            .open_table(HISTORY)
            .map_err(engine)?
            .insert((id.as_u128(), seq), encode(&transition)?.as_slice())
            .map_err(engine)?;
        self.changes.push(Change {
            message_id: id,
            transition,
        });
        Ok(())
    }

    /// Queues messages for their peers; all or none. `before` are transitions recorded first
    /// (received, translated, signed) for every message.
    pub(crate) fn enqueue(
        &mut self,
        batch: &[Outgoing],
        before: &[(State, Option<String>)],
    ) -> Result<(), StoreError> {
        {
            let index = self.txn.open_table(OUTBOX_INDEX).map_err(engine)?;
            let mut seen = std::collections::HashSet::new();
            for m in batch {
                if !seen.insert(m.message_id)
                    || index.get(m.message_id.as_u128()).map_err(engine)?.is_some()
                {
                    return Err(StoreError::AlreadyQueued(m.message_id));
                }
            }
        }
        {
            let mut meta = self.txn.open_table(META).map_err(engine)?;
            for m in batch {
                let row = encode(&super::Meta {
                    direction: "out".into(),
                    peer: m.peer.clone(),
                    conversation: Some(m.conversation_id),
                    process: None,
                    document_type: None,
                })?;
                meta.insert(m.message_id.as_u128(), row.as_slice())
                    .map_err(engine)?;
            }
        }
        for m in batch {
            let id = m.message_id;
            let sequence = self.next_counter("outbox")?;
            let entry = OutboxEntry {
                message: m.clone(),
                sequence,
                attempts: 0,
                next_attempt_at: self.now,
                last_error: None,
            };
            self.txn
                .open_table(OUTBOX)
                .map_err(engine)?
                .insert((m.peer.as_str(), sequence), encode(&entry)?.as_slice())
                .map_err(engine)?;
            self.txn
                .open_table(PAYLOADS)
                .map_err(engine)?
                .insert(id.as_u128(), m.payload.bytes())
                .map_err(engine)?;
            self.txn
                .open_table(OUTBOX_INDEX)
                .map_err(engine)?
                .insert(id.as_u128(), (m.peer.as_str(), sequence))
                .map_err(engine)?;
            for (state, note) in before {
                self.record(id, *state, note.clone())?;
            }
            self.record(id, State::Queued, Some(format!("for {}", m.peer)))?;
        }
        Ok(())
    }

    fn outbox_key(&self, id: Uuid) -> Result<(String, u64), StoreError> {
        let index = self.txn.open_table(OUTBOX_INDEX).map_err(engine)?;
        let key = index
            .get(id.as_u128())
            .map_err(engine)?
            .map(|v| {
                let (p, s) = v.value();
                (p.to_owned(), s)
            })
            .ok_or(StoreError::NotQueued(id))?;
        Ok(key)
    }

    /// Removes a message from the outbox and returns its row.
    fn take_from_outbox(&self, id: Uuid) -> Result<OutboxEntry, StoreError> {
        let (peer, seq) = self.outbox_key(id)?;
        let bytes = self
            .txn
            .open_table(OUTBOX)
            .map_err(engine)?
            .remove((peer.as_str(), seq))
            .map_err(engine)?
            .map(|v| v.value().to_vec())
            .ok_or_else(|| StoreError::Corrupt(format!("outbox index names a missing row {id}")))?;
        self.txn
            .open_table(OUTBOX_INDEX)
            .map_err(engine)?
            .remove(id.as_u128())
            .map_err(engine)?;
        let mut entry: OutboxEntry = decode(&bytes)?;
        if let Some(p) = self
            .txn
            .open_table(PAYLOADS)
            .map_err(engine)?
            .get(id.as_u128())
            .map_err(engine)?
        {
            entry.message.payload.set_bytes(p.value().to_vec());
        }
        Ok(entry)
    }

    fn drop_payload(&self, id: Uuid) -> Result<(), StoreError> {
        self.txn
            .open_table(PAYLOADS)
            .map_err(engine)?
            .remove(id.as_u128())
            .map_err(engine)?;
        Ok(())
    }

    /// Records a failed attempt and when to try again; returns the attempts so far.
    pub(crate) fn failed_attempt(
        &mut self,
        id: Uuid,
        error: &str,
        next_attempt_at: i64,
    ) -> Result<u32, StoreError> {
        let (peer, seq) = self.outbox_key(id)?;
        let mut t = self.txn.open_table(OUTBOX).map_err(engine)?;
        let mut entry: OutboxEntry = match t.get((peer.as_str(), seq)).map_err(engine)? {
            Some(v) => decode(v.value())?,
            None => return Err(StoreError::NotQueued(id)),
        };
        entry.attempts += 1;
        entry.next_attempt_at = next_attempt_at;
        entry.last_error = Some(error.to_owned());
        t.insert((peer.as_str(), seq), encode(&entry)?.as_slice())
            .map_err(engine)?;
        Ok(entry.attempts)
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
        let in_outbox = self.outbox_key(id).is_ok();
        let awaited = self
            .txn
            .open_table(AWAITING)
            .map_err(engine)?
            .get(id.as_u128())
            .map_err(engine)?
            .is_some();
        if !in_outbox && !awaited {
            return Err(StoreError::NotAwaited(id));
        }
        if in_outbox {
            self.take_from_outbox(id)?;
            self.drop_payload(id)?;
        } else {
            self.txn
                .open_table(AWAITING)
                .map_err(engine)?
                .remove(id.as_u128())
                .map_err(engine)?;
        }
        self.txn
            .open_table(RECEIPTS)
            .map_err(engine)?
            .insert(id.as_u128(), receipt)
            .map_err(engine)?;
        self.record(id, State::Delivered, note)?;
        if matches!(verdict, State::Recognised | State::Rejected) {
            self.record(id, verdict, None)?;
        }
        Ok(())
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
        let entry = self.take_from_outbox(id)?;
        self.drop_payload(id)?;
        let digest = match &entry.message.payload {
            super::Payload::Envelope { envelope, .. } => crate::receipt::digest(envelope),
            super::Payload::Receipt { .. } => Vec::new(),
        };
        let value = format!("{recipient} {}", hex(&digest));
        self.txn
            .open_table(AWAITING)
            .map_err(engine)?
            .insert(id.as_u128(), value.as_str())
            .map_err(engine)?;
        self.txn
            .open_table(HUB_RECEIPTS)
            .map_err(engine)?
            .insert(id.as_u128(), hub_receipt)
            .map_err(engine)?;
        self.record(id, State::Sent, Some(note))
    }

    /// Takes a message out of the outbox as `Expired` or `Dead`, keeping it for a requeue.
    pub(crate) fn park(&mut self, id: Uuid, state: State, note: &str) -> Result<(), StoreError> {
        let entry = self.take_from_outbox(id)?;
        self.txn
            .open_table(PARKED)
            .map_err(engine)?
            .insert(id.as_u128(), encode(&entry)?.as_slice())
            .map_err(engine)?;
        self.record(id, state, Some(note.to_owned()))
    }

    /// An operator's requeue of a parked message: back at the end of its peer's queue, with
    /// fresh attempts; refused (before any write) once its signed expiry has passed.
    pub(crate) fn requeue(&mut self, id: Uuid) -> Result<String, StoreError> {
        let mut entry: OutboxEntry = {
            let mut parked = self.txn.open_table(PARKED).map_err(engine)?;
            let bytes = parked
                .get(id.as_u128())
                .map_err(engine)?
                .map(|v| v.value().to_vec())
                .ok_or(StoreError::NotParked(id))?;
            let entry: OutboxEntry = decode(&bytes)?;
            if let Some(refusal) = super::requeue_refusal(&entry, self.now) {
                return Err(refusal);
            }
            parked.remove(id.as_u128()).map_err(engine)?;
            entry
        };
        entry.sequence = self.next_counter("outbox")?;
        entry.attempts = 0;
        entry.next_attempt_at = self.now;
        entry.last_error = None;
        let peer = entry.message.peer.clone();
        self.txn
            .open_table(OUTBOX)
            .map_err(engine)?
            .insert((peer.as_str(), entry.sequence), encode(&entry)?.as_slice())
            .map_err(engine)?;
        self.txn
            .open_table(OUTBOX_INDEX)
            .map_err(engine)?
            .insert(id.as_u128(), (peer.as_str(), entry.sequence))
            .map_err(engine)?;
        self.record(id, State::Queued, Some("requeued by the operator".into()))?;
        Ok(peer)
    }

    /// The receipt given the first time, when `id` was received before.
    pub(crate) fn earlier_receipt(&self, id: Uuid) -> Result<Option<Vec<u8>>, StoreError> {
        if self
            .txn
            .open_table(RECEIVED)
            .map_err(engine)?
            .get(id.as_u128())
            .map_err(engine)?
            .is_none()
        {
            return Ok(None);
        }
        let receipts = self.txn.open_table(RECEIVED_RECEIPTS).map_err(engine)?;
        let found = receipts.get(id.as_u128()).map_err(engine)?;
        Ok(Some(found.map(|v| v.value().to_vec()).unwrap_or_default()))
    }

    /// The envelope digest (hex) kept for a received `id`: from its row, or for rows written
    /// before digests were kept, from its stored envelope; empty when neither is known.
    fn earlier_digest(&self, id: Uuid) -> Result<String, StoreError> {
        let row = self
            .txn
            .open_table(RECEIVED)
            .map_err(engine)?
            .get(id.as_u128())
            .map_err(engine)?
            .map(|v| decode::<Incoming>(v.value()))
            .transpose()?;
        if let Some(d) = row.map(|r| r.digest).filter(|d| !d.is_empty()) {
            return Ok(d);
        }
        let envelopes = self.txn.open_table(RECEIVED_ENVELOPES).map_err(engine)?;
        let found = envelopes.get(id.as_u128()).map_err(engine)?;
        Ok(found
            .map(|e| hex(&crate::receipt::digest(e.value())))
            .unwrap_or_default())
    }

    /// Stores a received message once: a redelivery stores nothing and returns the first
    /// receipt. Recognised messages go to the inbox, rejected ones to quarantine, a tester
    /// state's to the conformance area whatever their verdict; a hub's (`forward`) go to its
    /// outbox instead.
    pub(crate) fn accept(
        &mut self,
        m: &Incoming,
        forward: Option<&Outgoing>,
    ) -> Result<Accepted, StoreError> {
        if let Some(receipt) = self.earlier_receipt(m.message_id)? {
            let first = self.earlier_digest(m.message_id)?;
            if !first.is_empty() && !m.digest.is_empty() && first != m.digest {
                return Ok(Accepted::OtherDigest { first });
            }
            return Ok(Accepted::Duplicate { receipt });
        }
        if let Some(out) = forward {
            self.enqueue(
                std::slice::from_ref(out),
                &[(State::Received, Some(format!("from {}", m.sender)))],
            )?;
        }
        if forward.is_none() {
            let row = encode(&super::Meta {
                direction: "in".into(),
                peer: m.sender.clone(),
                conversation: None,
                process: None,
                document_type: None,
            })?;
            self.txn
                .open_table(META)
                .map_err(engine)?
                .insert(m.message_id.as_u128(), row.as_slice())
                .map_err(engine)?;
        }
        let seq = self.next_counter("inbox")?;
        self.txn
            .open_table(RECEIVED)
            .map_err(engine)?
            .insert(m.message_id.as_u128(), encode(m)?.as_slice())
            .map_err(engine)?;
        self.txn
            .open_table(RECEIVED_RECEIPTS)
            .map_err(engine)?
            .insert(m.message_id.as_u128(), m.receipt.as_slice())
            .map_err(engine)?;
        if forward.is_some() {
            return Ok(Accepted::New);
        }
        self.txn
            .open_table(RECEIVED_ENVELOPES)
            .map_err(engine)?
            .insert(m.message_id.as_u128(), m.envelope.as_slice())
            .map_err(engine)?;
        if m.conformance {
            self.txn
                .open_table(CONFORMANCE)
                .map_err(engine)?
                .insert(m.message_id.as_u128(), seq)
                .map_err(engine)?;
        } else if m.verdict == "recognised" {
            self.txn
                .open_table(INBOX)
                .map_err(engine)?
                .insert(seq, m.message_id.as_u128())
                .map_err(engine)?;
            self.txn
                .open_table(INBOX_INDEX)
                .map_err(engine)?
                .insert(m.message_id.as_u128(), seq)
                .map_err(engine)?;
        } else {
            self.txn
                .open_table(QUARANTINE)
                .map_err(engine)?
                .insert(m.message_id.as_u128(), seq)
                .map_err(engine)?;
        }
        self.record(m.message_id, State::Received, Some(super::received_note(m)))?;
        if m.verdict == "recognised" {
            self.record(m.message_id, State::Recognised, None)?;
        } else {
            self.record(
                m.message_id,
                State::Rejected,
                Some(format!("reasons: {}", m.reasons.join(", "))),
            )?;
        }
        Ok(Accepted::New)
    }

    /// A quarantined message found acceptable on a second look (after a trust-space update):
    /// it moves to the inbox. Refused when it is not in quarantine.
    pub(crate) fn release_from_quarantine(
        &mut self,
        id: Uuid,
        note: String,
    ) -> Result<(), StoreError> {
        let removed = self
            .txn
            .open_table(QUARANTINE)
            .map_err(engine)?
            .remove(id.as_u128())
            .map_err(engine)?
            .is_some();
        if !removed {
            return Err(StoreError::NotQuarantined(id));
        }
        let seq = self.next_counter("inbox")?;
        self.txn
            .open_table(INBOX)
            .map_err(engine)?
            .insert(seq, id.as_u128())
            .map_err(engine)?;
        self.txn
            .open_table(INBOX_INDEX)
            .map_err(engine)?
            .insert(id.as_u128(), seq)
            .map_err(engine)?;
        self.record(id, State::Recognised, Some(note))
    }

    /// An operator's purge of conformance traffic (see [`super::Txn::purge_conformance`]).
    pub(crate) fn purge_conformance(&mut self, id: Uuid, note: String) -> Result<(), StoreError> {
        let removed = self
            .txn
            .open_table(CONFORMANCE)
            .map_err(engine)?
            .remove(id.as_u128())
            .map_err(engine)?
            .is_some();
        if !removed {
            return Err(StoreError::NotConformance(id));
        }
        self.txn
            .open_table(RECEIVED_ENVELOPES)
            .map_err(engine)?
            .remove(id.as_u128())
            .map_err(engine)?;
        self.record(id, State::Purged, Some(note))
    }

    /// Keeps a signed trust space that is about to be applied.
    /// Keeps the CRL set accepted from `url` (replacing the one held).
    pub(crate) fn record_crls(&mut self, url: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.txn
            .open_table(FETCHED_CRLS)
            .map_err(engine)?
            .insert(url, bytes)
            .map_err(engine)?;
        Ok(())
    }

    pub(crate) fn record_trust_space(
        &mut self,
        version: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        self.txn
            .open_table(TRUST_HISTORY)
            .map_err(engine)?
            .insert(version, bytes)
            .map_err(engine)?;
        Ok(())
    }

    /// Adds or replaces records of this state's trader register (all or none).
    pub(crate) fn put_traders(&mut self, records: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(TRADERS).map_err(engine)?;
        for (id, record) in records {
            t.insert(id.as_str(), record.as_slice()).map_err(engine)?;
        }
        Ok(())
    }

    /// Keeps a verified answer of another state's node about one of its traders.
    pub(crate) fn record_trader_answer(
        &mut self,
        id: &str,
        at_ms: i64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        let mut row = Vec::with_capacity(8 + bytes.len());
        row.extend_from_slice(&at_ms.to_be_bytes());
        row.extend_from_slice(bytes);
        self.txn
            .open_table(TRADER_ANSWERS)
            .map_err(engine)?
            .insert(id, row.as_slice())
            .map_err(engine)?;
        Ok(())
    }

    /// Forgets the kept answers about one trader of another state, or all of them: how many.
    pub(crate) fn forget_trader_answers(&mut self, id: Option<&str>) -> Result<u64, StoreError> {
        let mut t = self.txn.open_table(TRADER_ANSWERS).map_err(engine)?;
        let ids: Vec<String> = match id {
            Some(id) => vec![id.to_owned()],
            None => t
                .iter()
                .map_err(engine)?
                .map(|row| row.map(|(k, _)| k.value().to_owned()).map_err(engine))
                .collect::<Result<_, _>>()?,
        };
        let mut forgotten = 0;
        for id in &ids {
            if t.remove(id.as_str()).map_err(engine)?.is_some() {
                forgotten += 1;
            }
        }
        Ok(forgotten)
    }

    /// Adds a message's common process and document type to its index row (written by
    /// `enqueue` or `accept` before, in the same transaction or earlier).
    pub(crate) fn describe(
        &mut self,
        id: Uuid,
        process: &str,
        document_type: &str,
    ) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(META).map_err(engine)?;
        let existing = t
            .get(id.as_u128())
            .map_err(engine)?
            .map(|v| v.value().to_vec());
        let Some(existing) = existing else {
            return Ok(());
        };
        let mut meta: super::Meta = decode(&existing)?;
        meta.process = Some(process.to_owned());
        meta.document_type = Some(document_type.to_owned());
        t.insert(id.as_u128(), encode(&meta)?.as_slice())
            .map_err(engine)?;
        Ok(())
    }

    /// Keeps a verified change set that is about to be put in force.
    pub(crate) fn record_change_set(
        &mut self,
        directory: &str,
        number: u64,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        self.txn
            .open_table(CHANGE_SETS)
            .map_err(engine)?
            .insert((directory, number), bytes)
            .map_err(engine)?;
        Ok(())
    }

    /// The national system has taken the message: it leaves the inbox (and is still
    /// remembered for deduplication).
    pub(crate) fn ack_inbox(&mut self, id: Uuid) -> Result<(), StoreError> {
        let seq = self
            .txn
            .open_table(INBOX_INDEX)
            .map_err(engine)?
            .remove(id.as_u128())
            .map_err(engine)?
            .map(|v| v.value())
            .ok_or(StoreError::NotInInbox(id))?;
        self.txn
            .open_table(INBOX)
            .map_err(engine)?
            .remove(seq)
            .map_err(engine)?;
        Ok(())
    }
}

impl RedbStore {
    /// Opens (or creates) the store file with the default page cache.
    #[cfg(test)]
    pub(crate) fn open(path: &Path) -> Result<Self, StoreError> {
        Self::open_with_cache(path, super::DEFAULT_CACHE_BYTES)
    }

    /// Opens (or creates) the store file; redb keeps at most `cache_bytes` of pages in memory
    /// (its own default, 1 GiB, let the node's memory grow with the store under load).
    pub(crate) fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<Self, StoreError> {
        let db = redb::Builder::new()
            .set_cache_size(cache_bytes)
            .create(path)
            .map_err(engine)?;
        let txn = db.begin_write().map_err(engine)?;
        {
            // Create every table once, so readers never meet a missing one.
            txn.open_table(OUTBOX).map_err(engine)?;
            txn.open_table(OUTBOX_INDEX).map_err(engine)?;
            txn.open_table(PARKED).map_err(engine)?;
            txn.open_table(RECEIVED).map_err(engine)?;
            txn.open_table(INBOX).map_err(engine)?;
            txn.open_table(INBOX_INDEX).map_err(engine)?;
            txn.open_table(QUARANTINE).map_err(engine)?;
            txn.open_table(CONFORMANCE).map_err(engine)?;
            txn.open_table(HISTORY).map_err(engine)?;
            txn.open_table(RECEIPTS).map_err(engine)?;
            txn.open_table(HUB_RECEIPTS).map_err(engine)?;
            txn.open_table(AWAITING).map_err(engine)?;
            txn.open_table(COUNTERS).map_err(engine)?;
            txn.open_table(PAYLOADS).map_err(engine)?;
            txn.open_table(TRUST_HISTORY).map_err(engine)?;
            txn.open_table(FETCHED_CRLS).map_err(engine)?;
            txn.open_table(CHANGE_SETS).map_err(engine)?;
            txn.open_table(TRADERS).map_err(engine)?;
            txn.open_table(META).map_err(engine)?;
            txn.open_table(TRADER_ANSWERS).map_err(engine)?;
            txn.open_table(RECEIVED_ENVELOPES).map_err(engine)?;
            txn.open_table(RECEIVED_RECEIPTS).map_err(engine)?;
            audit::create_tables(&txn)?;
        }
        txn.commit().map_err(engine)?;
        Ok(Self { db })
    }

    #[cfg(test)]
    pub(crate) fn db_for_tests(&self) -> &Database {
        &self.db
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

    /// [`write`](Self::write), durable on return or not: a non-durable commit is atomic and
    /// becomes durable with the next durable one (redb `Durability::None`); a crash before that
    /// loses it whole. Only for changes that are safe to redo: nothing was acknowledged on
    /// their strength.
    pub(crate) fn write_with<R>(
        &self,
        durable: bool,
        now: i64,
        f: impl FnOnce(&mut Txn<'_>) -> Result<R, StoreError>,
    ) -> Result<(R, Vec<Change>), StoreError> {
        let mut txn = self.db.begin_write().map_err(write_failure)?;
        if !durable {
            txn.set_durability(redb::Durability::None)
                .map_err(write_failure)?;
        }
        let (r, changes) = {
            let mut t = Txn::Redb(RedbTxn {
                txn: &txn,
                now,
                changes: Vec::new(),
                audit_head: None,
                counters: Vec::new(),
            });
            let r = f(&mut t)?;
            match t {
                Txn::Redb(mut t) => {
                    t.flush()?;
                    (r, t.changes)
                }
                Txn::Postgres(_) => {
                    return Err(StoreError::Engine(
                        "a redb transaction changed engine".into(),
                    ))
                }
            }
        };
        txn.commit().map_err(write_failure)?;
        Ok((r, changes))
    }

    /// Up to `limit` messages for `peer` that may be sent at `now`, in enqueue order. A message
    /// waiting for its retry holds back the later messages of its conversation (order is per
    /// conversation), but not those of other conversations. `skip` are messages already in
    /// flight; they hold back their conversations too.
    pub(crate) fn due(
        &self,
        peer: &str,
        now: i64,
        limit: usize,
        max_bytes: usize,
        skip: &std::collections::HashSet<Uuid>,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        let t = txn.open_table(OUTBOX).map_err(engine)?;
        let payloads = txn.open_table(PAYLOADS).map_err(engine)?;
        let mut held = std::collections::HashSet::new();
        let mut out = Vec::new();
        let mut bytes_taken = 0usize;
        for row in t.range((peer, 0)..=(peer, u64::MAX)).map_err(engine)? {
            let (_, v) = row.map_err(engine)?;
            let mut entry: OutboxEntry = decode(v.value())?;
            let conversation = entry.message.conversation_id;
            if held.contains(&conversation) {
                continue;
            }
            if entry.next_attempt_at > now || skip.contains(&entry.message.message_id) {
                held.insert(conversation);
                continue;
            }
            let id = entry.message.message_id;
            let bytes = payloads.get(id.as_u128()).map_err(engine)?.ok_or_else(|| {
                StoreError::Corrupt(format!("queued message {id} has no payload"))
            })?;
            let size = bytes.value().len();
            // The byte budget closes the batch (a message over it alone goes alone).
            if !out.is_empty() && bytes_taken.saturating_add(size) > max_bytes {
                break;
            }
            bytes_taken = bytes_taken.saturating_add(size);
            entry.message.payload.set_bytes(bytes.value().to_vec());
            out.push(entry);
            if out.len() >= limit {
                break;
            }
        }
        Ok(out)
    }

    /// Messages queued for `peer`.
    pub(crate) fn queued(&self, peer: &str) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        let t = txn.open_table(OUTBOX).map_err(engine)?;
        Ok(t.range((peer, 0)..=(peer, u64::MAX))
            .map_err(engine)?
            .count() as u64)
    }

    /// Messages in the whole outbox.
    pub(crate) fn outbox_len(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        txn.open_table(OUTBOX)
            .map_err(engine)?
            .len()
            .map_err(engine)
    }

    /// The peers with queued messages.
    pub(crate) fn peers_with_queue(&self) -> Result<Vec<String>, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        let t = txn.open_table(OUTBOX).map_err(engine)?;
        let mut peers: Vec<String> = Vec::new();
        for row in t.iter().map_err(engine)? {
            let (k, _) = row.map_err(engine)?;
            let peer = k.value().0;
            if peers.last().map(String::as_str) != Some(peer) {
                peers.push(peer.to_owned());
            }
        }
        Ok(peers)
    }

    /// Up to `limit` inbox messages after the position `after` (all when `None`), oldest
    /// first, not yet acknowledged by the national system, each with its position (its key).
    pub(crate) fn inbox_after(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, Incoming)>, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        let inbox = txn.open_table(INBOX).map_err(engine)?;
        let received = txn.open_table(RECEIVED).map_err(engine)?;
        let envelopes = txn.open_table(RECEIVED_ENVELOPES).map_err(engine)?;
        let receipts = txn.open_table(RECEIVED_RECEIPTS).map_err(engine)?;
        let from = match after {
            None => std::ops::Bound::Unbounded,
            Some(a) => std::ops::Bound::Excluded(a),
        };
        let mut out = Vec::new();
        for row in inbox
            .range::<u64>((from, std::ops::Bound::Unbounded))
            .map_err(engine)?
            .take(limit)
        {
            let (seq, id) = row.map_err(engine)?;
            let v = received.get(id.value()).map_err(engine)?.ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "inbox names unknown message {}",
                    Uuid::from_u128(id.value())
                ))
            })?;
            let mut m: Incoming = decode(v.value())?;
            if let Some(e) = envelopes.get(id.value()).map_err(engine)? {
                m.envelope = e.value().to_vec();
            }
            if let Some(r) = receipts.get(id.value()).map_err(engine)? {
                m.receipt = r.value().to_vec();
            }
            out.push((seq.value(), m));
        }
        Ok(out)
    }

    /// Every quarantined (rejected) message, with its envelope.
    pub(crate) fn quarantined(&self) -> Result<Vec<Incoming>, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        let quarantine = txn.open_table(QUARANTINE).map_err(engine)?;
        let received = txn.open_table(RECEIVED).map_err(engine)?;
        let envelopes = txn.open_table(RECEIVED_ENVELOPES).map_err(engine)?;
        let mut out = Vec::new();
        for row in quarantine.iter().map_err(engine)? {
            let (id, _) = row.map_err(engine)?;
            let v = received.get(id.value()).map_err(engine)?.ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "quarantine names unknown message {}",
                    Uuid::from_u128(id.value())
                ))
            })?;
            let mut m: Incoming = decode(v.value())?;
            if let Some(e) = envelopes.get(id.value()).map_err(engine)? {
                m.envelope = e.value().to_vec();
            }
            out.push(m);
        }
        Ok(out)
    }

    /// Every message held in the conformance area, in arrival order, without its envelope.
    pub(crate) fn conformance(&self) -> Result<Vec<Incoming>, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        let area = txn.open_table(CONFORMANCE).map_err(engine)?;
        let received = txn.open_table(RECEIVED).map_err(engine)?;
        let mut held = Vec::new();
        for row in area.iter().map_err(engine)? {
            let (id, seq) = row.map_err(engine)?;
            held.push((seq.value(), id.value()));
        }
        held.sort_unstable();
        let mut out = Vec::with_capacity(held.len());
        for (_, id) in held {
            let v = received.get(id).map_err(engine)?.ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "the conformance area names unknown message {}",
                    Uuid::from_u128(id)
                ))
            })?;
            out.push(decode(v.value())?);
        }
        Ok(out)
    }

    /// Messages in the inbox.
    pub(crate) fn inbox_len(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        txn.open_table(INBOX).map_err(engine)?.len().map_err(engine)
    }

    pub(crate) fn in_inbox(&self, id: Uuid) -> Result<bool, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        let t = txn.open_table(INBOX_INDEX).map_err(engine)?;
        Ok(t.get(id.as_u128()).map_err(engine)?.is_some())
    }

    /// Every message ever received (the deduplication memory), in id order.
    #[cfg(test)]
    pub(crate) fn received_ids(&self) -> Result<Vec<Uuid>, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        let t = txn.open_table(RECEIVED).map_err(engine)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(engine)? {
            let (k, _) = row.map_err(engine)?;
            out.push(Uuid::from_u128(k.value()));
        }
        Ok(out)
    }

    /// A message's state history, oldest first.
    pub(crate) fn history(&self, id: Uuid) -> Result<Vec<Transition>, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        let t = txn.open_table(HISTORY).map_err(engine)?;
        let mut out = Vec::new();
        for row in t
            .range((id.as_u128(), 0)..=(id.as_u128(), u64::MAX))
            .map_err(engine)?
        {
            let (_, v) = row.map_err(engine)?;
            out.push(decode(v.value())?);
        }
        Ok(out)
    }

    /// The receipt the final recipient gave for a message we sent.
    pub(crate) fn receipt(&self, id: Uuid) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        let t = txn.open_table(RECEIPTS).map_err(engine)?;
        Ok(t.get(id.as_u128())
            .map_err(engine)?
            .map(|v| v.value().to_vec()))
    }

    /// For a message sent through a hub and still waiting for its end receipt: the recipient
    /// state and the envelope's digest.
    pub(crate) fn awaited(&self, id: Uuid) -> Result<Option<(String, Vec<u8>)>, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        let t = txn.open_table(AWAITING).map_err(engine)?;
        let Some(v) = t.get(id.as_u128()).map_err(engine)? else {
            return Ok(None);
        };
        let value = v.value().to_owned();
        let (recipient, digest) = value
            .split_once(' ')
            .ok_or_else(|| StoreError::Corrupt(format!("awaited record of {id}")))?;
        let digest =
            unhex(digest).ok_or_else(|| StoreError::Corrupt(format!("awaited digest of {id}")))?;
        Ok(Some((recipient.to_owned(), digest)))
    }

    /// The newest signed trust space applied, if any.
    /// The CRL sets accepted from CRL locations, by URL.
    pub(crate) fn fetched_crls(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        let t = txn.open_table(FETCHED_CRLS).map_err(engine)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(engine)? {
            let (k, v) = row.map_err(engine)?;
            out.push((k.value().to_owned(), v.value().to_vec()));
        }
        Ok(out)
    }

    pub(crate) fn latest_trust_space(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        let t = txn.open_table(TRUST_HISTORY).map_err(engine)?;
        let last = t.last().map_err(engine)?;
        Ok(last.map(|(k, v)| (k.value(), v.value().to_vec())))
    }

    /// The database, for reading a consistent snapshot (audit verification).
    pub(crate) fn database(&self) -> &Database {
        &self.db
    }

    /// Where a message goes or comes from.
    pub(crate) fn meta(&self, id: Uuid) -> Result<Option<super::Meta>, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        let t = txn.open_table(META).map_err(engine)?;
        match t.get(id.as_u128()).map_err(engine)? {
            Some(v) => decode(v.value()).map(Some),
            None => Ok(None),
        }
    }

    /// Messages matching `f`, the most recently changed first, at most `f.limit`.
    pub(crate) fn search(&self, f: &super::Filter) -> Result<Vec<super::Found>, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        let history = txn.open_table(HISTORY).map_err(engine)?;
        let meta = txn.open_table(META).map_err(engine)?;
        let mut out: Vec<super::Found> = Vec::new();
        let mut current: Option<(u128, i64, i64, State)> = None;
        let consider = |entry: (u128, i64, i64, State),
                        out: &mut Vec<super::Found>|
         -> Result<(), StoreError> {
            let (id, first, last, state) = entry;
            let m = || -> Result<Option<super::Meta>, StoreError> {
                match meta.get(id).map_err(engine)? {
                    Some(v) => Ok(Some(decode(v.value())?)),
                    None => Ok(None),
                }
            };
            if let Some(found) = super::select(f, Uuid::from_u128(id), first, last, state, m)? {
                out.push(found);
            }
            Ok(())
        };
        for row in history.iter().map_err(engine)? {
            let (k, v) = row.map_err(engine)?;
            let (id, _) = k.value();
            let t: Transition = decode(v.value())?;
            match &mut current {
                Some((cur, _, last, state)) if *cur == id => {
                    *last = t.at;
                    *state = t.state;
                }
                _ => {
                    if let Some(done) = current.take() {
                        consider(done, &mut out)?;
                    }
                    current = Some((id, t.at, t.at, t.state));
                }
            }
        }
        if let Some(done) = current.take() {
            consider(done, &mut out)?;
        }
        out.sort_by_key(|f| std::cmp::Reverse(f.last_at));
        out.truncate(f.limit);
        Ok(out)
    }

    /// A trader of this state's register.
    pub(crate) fn trader(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        let t = txn.open_table(TRADERS).map_err(engine)?;
        Ok(t.get(id).map_err(engine)?.map(|v| v.value().to_vec()))
    }

    /// How many traders the register holds.
    pub(crate) fn trader_count(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        txn.open_table(TRADERS)
            .map_err(engine)?
            .len()
            .map_err(engine)
    }

    /// The answer kept about another state's trader: when it was fetched (ms) and the signed
    /// document.
    pub(crate) fn trader_answer(&self, id: &str) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        let t = txn.open_table(TRADER_ANSWERS).map_err(engine)?;
        let Some(v) = t.get(id).map_err(engine)? else {
            return Ok(None);
        };
        let row = v.value();
        if row.len() < 8 {
            return Err(StoreError::Corrupt(format!("trader answer {id}")));
        }
        let mut at = [0u8; 8];
        at.copy_from_slice(&row[..8]);
        Ok(Some((i64::from_be_bytes(at), row[8..].to_vec())))
    }

    /// One directory's stored change sets after number `since`, in order, at most `limit`.
    pub(crate) fn change_sets_of(
        &self,
        directory: &str,
        since: u64,
        limit: usize,
    ) -> Result<Vec<(String, u64, Vec<u8>)>, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        let t = txn.open_table(CHANGE_SETS).map_err(engine)?;
        let mut out = Vec::new();
        let from = since.saturating_add(1);
        for row in t
            .range((directory, from)..=(directory, u64::MAX))
            .map_err(engine)?
            .take(limit)
        {
            let (k, v) = row.map_err(engine)?;
            out.push((directory.to_owned(), k.value().1, v.value().to_vec()));
        }
        Ok(out)
    }

    /// Stored change sets after the given versions (a directory not in `have`: all of its
    /// sets), in (directory, number) order, at most `limit` of them.
    pub(crate) fn change_sets_after(
        &self,
        have: &std::collections::HashMap<String, u64>,
        limit: usize,
    ) -> Result<Vec<(String, u64, Vec<u8>)>, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        let t = txn.open_table(CHANGE_SETS).map_err(engine)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(engine)? {
            let (k, v) = row.map_err(engine)?;
            let (directory, number) = k.value();
            if number > have.get(directory).copied().unwrap_or(0) {
                out.push((directory.to_owned(), number, v.value().to_vec()));
                if out.len() >= limit {
                    break;
                }
            }
        }
        Ok(out)
    }

    /// Messages whose end receipt is awaited (sent through a hub).
    pub(crate) fn awaiting_len(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        txn.open_table(AWAITING)
            .map_err(engine)?
            .len()
            .map_err(engine)
    }

    /// Parked (expired or dead) messages.
    pub(crate) fn parked(&self) -> Result<Vec<OutboxEntry>, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        let t = txn.open_table(PARKED).map_err(engine)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(engine)? {
            let (_, v) = row.map_err(engine)?;
            out.push(decode::<OutboxEntry>(v.value())?);
        }
        Ok(out)
    }
}
