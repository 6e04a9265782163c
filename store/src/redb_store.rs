//! The store on redb. Tables: the outbox keyed by (peer, sequence) so each peer's queue is in
//! enqueue order, an index from message id to its outbox key, parked messages (expired or dead,
//! kept for an operator's requeue), every received message by id (the deduplication memory),
//! the inbox queue in arrival order, quarantine, state histories, receipts, the messages sent
//! through a hub whose end receipt is awaited, and the audit chain ([`audit_tables`]).
//!
//! This engine only stores: the transitions are [`super::txn`]'s. A write transaction keeps
//! the counters it used and the audit head in memory and writes them back once, at commit.

mod audit_tables;
mod event_tables;
mod stamp_tables;

use std::collections::{HashMap, HashSet};
use std::path::Path;

use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};
use uuid::Uuid;

use super::audit::{AuditData, Head};
use super::engine::{Area, Body, Engine, EngineTxn};
use super::events::{Event, EventPage, Retention};
use super::records::{
    decode, encode, select, Filter, Found, Incoming, Meta, OutboxEntry, StampItem, State,
    StoreError, Transition,
};
pub use audit_tables::AuditFileError;
use audit_tables::HISTORY;
use tereze_support::hex::{hex, unhex};

const OUTBOX: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("outbox");
const OUTBOX_INDEX: TableDefinition<u128, (&str, u64)> = TableDefinition::new("outbox_index");
const PARKED: TableDefinition<u128, &[u8]> = TableDefinition::new("parked");
const RECEIVED: TableDefinition<u128, &[u8]> = TableDefinition::new("received");
const INBOX: TableDefinition<u64, u128> = TableDefinition::new("inbox");
const INBOX_INDEX: TableDefinition<u128, u64> = TableDefinition::new("inbox_index");
const QUARANTINE: TableDefinition<u128, u64> = TableDefinition::new("quarantine");
/// Messages from tester states (docs/conformance.md), by id, with their arrival sequence.
const CONFORMANCE: TableDefinition<u128, u64> = TableDefinition::new("conformance");
/// Outgoing envelopes and receipts, raw, while their message is queued or parked.
const PAYLOADS: TableDefinition<u128, &[u8]> = TableDefinition::new("payloads");
/// Received envelopes and the receipts given for them, raw.
const RECEIVED_ENVELOPES: TableDefinition<u128, &[u8]> = TableDefinition::new("received_envelopes");
const RECEIVED_RECEIPTS: TableDefinition<u128, &[u8]> = TableDefinition::new("received_receipts");
const RECEIPTS: TableDefinition<u128, &[u8]> = TableDefinition::new("receipts");
const HUB_RECEIPTS: TableDefinition<u128, &[u8]> = TableDefinition::new("hub_receipts");
const AWAITING: TableDefinition<u128, &str> = TableDefinition::new("awaiting");
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");
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

/// The counter of outbox sequence numbers.
const OUTBOX_COUNTER: &str = "outbox";
/// The counter of arrival positions shared by the inbox, quarantine and conformance area.
const INBOX_COUNTER: &str = "inbox";

fn engine(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::engine_failed(e.to_string(), e)
}

/// A failure to begin or commit a write: an I/O error (a full disk, a failing device) is
/// [`StoreError::Io`], after which redb refuses every write until the database is reopened.
fn write_failure(e: impl Into<redb::Error>) -> StoreError {
    let e: redb::Error = e.into();
    match e {
        redb::Error::Io(_) | redb::Error::PreviousIo => StoreError::Io(std::sync::Arc::new(e)),
        other => engine(other),
    }
}

/// The embedded store.
pub struct RedbStore {
    db: Database,
}

impl RedbStore {
    /// Opens (or creates) the store file; redb keeps at most `cache_bytes` of pages in memory
    /// (its own default, 1 GiB, let the node's memory grow with the store under load).
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<Self, StoreError> {
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
            audit_tables::create(&txn)?;
            stamp_tables::create(&txn)?;
            event_tables::create(&txn)?;
        }
        txn.commit().map_err(engine)?;
        Ok(Self { db })
    }
}

/// Reads the audit chain of a store file no node has open (see [`super::verify_audit_file`]).
pub fn audit_data_of_file(path: &Path) -> Result<AuditData, AuditFileError> {
    let db = Database::open(path).map_err(AuditFileError::Open)?;
    Ok(audit_tables::read(&db)?)
}

/// One write transaction on redb.
struct RedbTxn<'a> {
    txn: &'a WriteTransaction,
    now: i64,
    /// The audit chain's head, loaded on first use and written back before commit.
    audit_head: Option<Head>,
    /// Counters read in this transaction, with their next values; written back before commit.
    counters: Vec<(&'static str, u64)>,
}

impl RedbTxn<'_> {
    /// Takes `n` numbers from a counter: the first of them.
    fn take_numbers(&mut self, name: &'static str, n: u64) -> Result<u64, StoreError> {
        let i = match self.counters.iter().position(|(k, _)| *k == name) {
            Some(i) => i,
            None => {
                let t = self.txn.open_table(COUNTERS).map_err(engine)?;
                let next = t.get(name).map_err(engine)?.map(|v| v.value()).unwrap_or(0);
                self.counters.push((name, next));
                self.counters.len() - 1
            }
        };
        let first = self.counters[i].1;
        self.counters[i].1 = first + n;
        Ok(first)
    }

    /// Writes the counters and the audit head back; called before commit.
    fn flush(&mut self) -> Result<(), StoreError> {
        if !self.counters.is_empty() {
            let mut t = self.txn.open_table(COUNTERS).map_err(engine)?;
            for (k, v) in self.counters.drain(..) {
                t.insert(k, v).map_err(engine)?;
            }
        }
        if let Some(head) = self.audit_head.take() {
            audit_tables::store_head(self.txn, &head)?;
        }
        Ok(())
    }

    fn outbox_key(&self, id: Uuid) -> Result<Option<(String, u64)>, StoreError> {
        let index = self.txn.open_table(OUTBOX_INDEX).map_err(engine)?;
        let key = index.get(id.as_u128()).map_err(engine)?.map(|v| {
            let (p, s) = v.value();
            (p.to_owned(), s)
        });
        Ok(key)
    }

    /// Removes an outbox row and its index entry: the row, if the message was queued.
    fn remove_outbox_row(&mut self, id: Uuid) -> Result<Option<Vec<u8>>, StoreError> {
        let Some((peer, seq)) = self.outbox_key(id)? else {
            return Ok(None);
        };
        let row = self
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
        Ok(Some(row))
    }

    fn take_payload(&mut self, id: Uuid) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .txn
            .open_table(PAYLOADS)
            .map_err(engine)?
            .remove(id.as_u128())
            .map_err(engine)?
            .map(|v| v.value().to_vec()))
    }

    fn put_payload(&mut self, entry: &OutboxEntry) -> Result<(), StoreError> {
        self.txn
            .open_table(PAYLOADS)
            .map_err(engine)?
            .insert(
                entry.message.message_id.as_u128(),
                entry.message.payload.bytes(),
            )
            .map_err(engine)?;
        Ok(())
    }
}

impl EngineTxn for RedbTxn<'_> {
    fn now(&self) -> i64 {
        self.now
    }

    fn queued_among(&mut self, ids: &[Uuid]) -> Result<Option<Uuid>, StoreError> {
        let index = self.txn.open_table(OUTBOX_INDEX).map_err(engine)?;
        for id in ids {
            if index.get(id.as_u128()).map_err(engine)?.is_some() {
                return Ok(Some(*id));
            }
        }
        Ok(None)
    }

    fn next_sequences(&mut self, n: u64) -> Result<u64, StoreError> {
        self.take_numbers(OUTBOX_COUNTER, n)
    }

    fn put_outbox(&mut self, entries: &[OutboxEntry], metas: &[Meta]) -> Result<(), StoreError> {
        {
            let mut meta = self.txn.open_table(META).map_err(engine)?;
            for (e, m) in entries.iter().zip(metas) {
                meta.insert(e.message.message_id.as_u128(), encode(m)?.as_slice())
                    .map_err(engine)?;
            }
        }
        for e in entries {
            let (id, peer) = (e.message.message_id, e.message.peer.as_str());
            self.txn
                .open_table(OUTBOX)
                .map_err(engine)?
                .insert((peer, e.sequence), encode(e)?.as_slice())
                .map_err(engine)?;
            self.put_payload(e)?;
            self.txn
                .open_table(OUTBOX_INDEX)
                .map_err(engine)?
                .insert(id.as_u128(), (peer, e.sequence))
                .map_err(engine)?;
        }
        Ok(())
    }

    fn take_outbox(&mut self, id: Uuid) -> Result<Option<OutboxEntry>, StoreError> {
        let Some(row) = self.remove_outbox_row(id)? else {
            return Ok(None);
        };
        let mut entry: OutboxEntry = decode(&row)?;
        if let Some(p) = self.take_payload(id)? {
            entry.message.payload.set_bytes(p);
        }
        Ok(Some(entry))
    }

    fn drop_outbox(&mut self, id: Uuid) -> Result<bool, StoreError> {
        if self.remove_outbox_row(id)?.is_none() {
            return Ok(false);
        }
        self.take_payload(id)?;
        Ok(true)
    }

    fn count_attempt(
        &mut self,
        id: Uuid,
        error: &str,
        next_attempt_at: i64,
    ) -> Result<Option<u32>, StoreError> {
        let Some((peer, seq)) = self.outbox_key(id)? else {
            return Ok(None);
        };
        let mut t = self.txn.open_table(OUTBOX).map_err(engine)?;
        let mut entry: OutboxEntry = match t.get((peer.as_str(), seq)).map_err(engine)? {
            Some(v) => decode(v.value())?,
            None => return Ok(None),
        };
        entry.attempts += 1;
        entry.next_attempt_at = next_attempt_at;
        entry.last_error = Some(error.to_owned());
        t.insert((peer.as_str(), seq), encode(&entry)?.as_slice())
            .map_err(engine)?;
        Ok(Some(entry.attempts))
    }

    /// The entry's JSON in `parked`; its payload stays in `payloads`, as while it was queued.
    fn put_parked(&mut self, entry: &OutboxEntry) -> Result<(), StoreError> {
        self.txn
            .open_table(PARKED)
            .map_err(engine)?
            .insert(
                entry.message.message_id.as_u128(),
                encode(entry)?.as_slice(),
            )
            .map_err(engine)?;
        self.put_payload(entry)
    }

    fn parked_entry(&mut self, id: Uuid) -> Result<Option<OutboxEntry>, StoreError> {
        let parked = self.txn.open_table(PARKED).map_err(engine)?;
        let Some(row) = parked.get(id.as_u128()).map_err(engine)? else {
            return Ok(None);
        };
        let mut entry: OutboxEntry = decode(row.value())?;
        let payloads = self.txn.open_table(PAYLOADS).map_err(engine)?;
        if let Some(p) = payloads.get(id.as_u128()).map_err(engine)? {
            entry.message.payload.set_bytes(p.value().to_vec());
        }
        Ok(Some(entry))
    }

    fn drop_parked(&mut self, id: Uuid) -> Result<(), StoreError> {
        self.txn
            .open_table(PARKED)
            .map_err(engine)?
            .remove(id.as_u128())
            .map_err(engine)?;
        self.take_payload(id)?;
        Ok(())
    }

    /// Awaited as `"{recipient} {digest hex}"`.
    fn put_awaiting(
        &mut self,
        id: Uuid,
        recipient: &str,
        digest: &[u8],
        hub_receipt: &[u8],
    ) -> Result<(), StoreError> {
        let value = format!("{recipient} {}", hex(digest));
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
        Ok(())
    }

    fn drop_awaiting(&mut self, id: Uuid) -> Result<bool, StoreError> {
        Ok(self
            .txn
            .open_table(AWAITING)
            .map_err(engine)?
            .remove(id.as_u128())
            .map_err(engine)?
            .is_some())
    }

    fn put_receipt(&mut self, id: Uuid, receipt: &[u8]) -> Result<(), StoreError> {
        self.txn
            .open_table(RECEIPTS)
            .map_err(engine)?
            .insert(id.as_u128(), receipt)
            .map_err(engine)?;
        Ok(())
    }

    fn received(&mut self, id: Uuid) -> Result<Option<(Vec<u8>, String)>, StoreError> {
        let received = self.txn.open_table(RECEIVED).map_err(engine)?;
        let Some(row) = received.get(id.as_u128()).map_err(engine)? else {
            return Ok(None);
        };
        let digest = decode::<Incoming>(row.value())?.digest;
        let receipts = self.txn.open_table(RECEIVED_RECEIPTS).map_err(engine)?;
        let receipt = receipts
            .get(id.as_u128())
            .map_err(engine)?
            .map(|v| v.value().to_vec())
            .unwrap_or_default();
        Ok(Some((receipt, digest)))
    }

    fn received_envelope(&mut self, id: Uuid) -> Result<Option<Vec<u8>>, StoreError> {
        let envelopes = self.txn.open_table(RECEIVED_ENVELOPES).map_err(engine)?;
        let found = envelopes.get(id.as_u128()).map_err(engine)?;
        Ok(found.map(|e| e.value().to_vec()))
    }

    fn put_received(&mut self, m: &Incoming, keep_envelope: bool) -> Result<(), StoreError> {
        let id = m.message_id.as_u128();
        self.txn
            .open_table(RECEIVED)
            .map_err(engine)?
            .insert(id, encode(m)?.as_slice())
            .map_err(engine)?;
        self.txn
            .open_table(RECEIVED_RECEIPTS)
            .map_err(engine)?
            .insert(id, m.receipt.as_slice())
            .map_err(engine)?;
        if keep_envelope {
            self.txn
                .open_table(RECEIVED_ENVELOPES)
                .map_err(engine)?
                .insert(id, m.envelope.as_slice())
                .map_err(engine)?;
        }
        Ok(())
    }

    fn drop_envelope(&mut self, id: Uuid) -> Result<(), StoreError> {
        self.txn
            .open_table(RECEIVED_ENVELOPES)
            .map_err(engine)?
            .remove(id.as_u128())
            .map_err(engine)?;
        Ok(())
    }

    /// Each area keeps id → position; the inbox also position → id, its reading order.
    fn place(&mut self, id: Uuid, area: Area) -> Result<(), StoreError> {
        let seq = self.take_numbers(INBOX_COUNTER, 1)?;
        let id = id.as_u128();
        self.txn
            .open_table(by_id(area))
            .map_err(engine)?
            .insert(id, seq)
            .map_err(engine)?;
        if area == Area::Inbox {
            self.txn
                .open_table(INBOX)
                .map_err(engine)?
                .insert(seq, id)
                .map_err(engine)?;
        }
        Ok(())
    }

    fn unplace(&mut self, id: Uuid, area: Area) -> Result<bool, StoreError> {
        let removed = self
            .txn
            .open_table(by_id(area))
            .map_err(engine)?
            .remove(id.as_u128())
            .map_err(engine)?
            .map(|v| v.value());
        let Some(seq) = removed else {
            return Ok(false);
        };
        if area == Area::Inbox {
            self.txn
                .open_table(INBOX)
                .map_err(engine)?
                .remove(seq)
                .map_err(engine)?;
        }
        Ok(true)
    }

    fn meta(&mut self, id: Uuid) -> Result<Option<Meta>, StoreError> {
        let t = self.txn.open_table(META).map_err(engine)?;
        let found = t.get(id.as_u128()).map_err(engine)?;
        found.map(|v| decode(v.value())).transpose()
    }

    fn put_meta(&mut self, id: Uuid, meta: &Meta) -> Result<(), StoreError> {
        self.txn
            .open_table(META)
            .map_err(engine)?
            .insert(id.as_u128(), encode(meta)?.as_slice())
            .map_err(engine)?;
        Ok(())
    }

    fn audit_head(&mut self) -> Result<&mut Head, StoreError> {
        if self.audit_head.is_none() {
            self.audit_head = Some(audit_tables::load_head(self.txn)?);
        }
        self.audit_head
            .as_mut()
            .ok_or_else(|| StoreError::Engine("audit head".into()))
    }

    fn append(
        &mut self,
        id: Uuid,
        seq: u64,
        entry: Vec<u8>,
        t: &Transition,
    ) -> Result<(), StoreError> {
        audit_tables::append(self.txn, id, seq, &entry, &encode(t)?)
    }

    fn has_checkpoint(&mut self, seq: u64) -> Result<bool, StoreError> {
        audit_tables::has_checkpoint(self.txn, seq)
    }

    fn put_checkpoint(&mut self, seq: u64, checkpoint: &[u8]) -> Result<(), StoreError> {
        audit_tables::put_checkpoint(self.txn, seq, checkpoint)
    }

    fn want_checkpoint_token(&mut self, seq: u64) -> Result<(), StoreError> {
        audit_tables::want_token(self.txn, seq)
    }

    fn put_checkpoint_token(&mut self, seq: u64, token: &[u8]) -> Result<(), StoreError> {
        audit_tables::put_token(self.txn, seq, token)
    }

    fn append_event(&mut self, e: &mut Event) -> Result<(), StoreError> {
        event_tables::append(self, e)
    }

    fn compact_events(&mut self, r: &Retention, now: i64) -> Result<u64, StoreError> {
        event_tables::compact(self, r, now)
    }

    fn put_event_cursor(&mut self, reader: &str, seq: u64) -> Result<(), StoreError> {
        event_tables::put_cursor(self, reader, seq)
    }

    fn put_crls(&mut self, url: &str, bytes: &[u8]) -> Result<(), StoreError> {
        self.txn
            .open_table(FETCHED_CRLS)
            .map_err(engine)?
            .insert(url, bytes)
            .map_err(engine)?;
        Ok(())
    }

    fn put_trust_space(&mut self, version: u64, bytes: &[u8]) -> Result<(), StoreError> {
        self.txn
            .open_table(TRUST_HISTORY)
            .map_err(engine)?
            .insert(version, bytes)
            .map_err(engine)?;
        Ok(())
    }

    fn put_traders(&mut self, records: &[(String, Vec<u8>)]) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(TRADERS).map_err(engine)?;
        for (id, record) in records {
            t.insert(id.as_str(), record.as_slice()).map_err(engine)?;
        }
        Ok(())
    }

    fn put_trader_answer(&mut self, id: &str, at_ms: i64, bytes: &[u8]) -> Result<(), StoreError> {
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

    fn forget_trader_answers(&mut self, id: Option<&str>) -> Result<u64, StoreError> {
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

    fn put_change_set(
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

    fn last_state(&mut self, id: Uuid) -> Result<Option<State>, StoreError> {
        stamp_tables::last_state(self.txn, id)
    }

    fn put_stamp_pending(&mut self, item: &StampItem) -> Result<(), StoreError> {
        stamp_tables::put_pending(self.txn, item)
    }

    fn drop_stamp_pending(&mut self, id: Uuid) -> Result<bool, StoreError> {
        stamp_tables::drop_pending(self.txn, id)
    }

    fn put_evidence(&mut self, id: Uuid, evidence: &[u8]) -> Result<(), StoreError> {
        stamp_tables::put_evidence(self.txn, id, evidence)
    }

    fn evidence(&mut self, id: Uuid) -> Result<Option<Vec<u8>>, StoreError> {
        stamp_tables::evidence_in(self.txn, id)
    }

    fn put_evidence_out(&mut self, peer: &str, id: Uuid) -> Result<(), StoreError> {
        stamp_tables::put_out(self.txn, peer, id)
    }

    fn drop_evidence_out(&mut self, peer: &str, id: Uuid) -> Result<bool, StoreError> {
        stamp_tables::drop_out(self.txn, peer, id)
    }
}

/// An area's table by message id (its value: the message's position).
fn by_id(area: Area) -> TableDefinition<'static, u128, u64> {
    match area {
        Area::Inbox => INBOX_INDEX,
        Area::Quarantine => QUARANTINE,
        Area::Conformance => CONFORMANCE,
    }
}

impl Engine for RedbStore {
    fn name(&self) -> &'static str {
        "redb"
    }

    /// A non-durable commit is redb's `Durability::None`.
    fn transact(&self, durable: bool, now: i64, body: &mut Body<'_>) -> Result<(), StoreError> {
        let mut txn = self.db.begin_write().map_err(write_failure)?;
        if !durable {
            txn.set_durability(redb::Durability::None)
                .map_err(write_failure)?;
        }
        {
            let mut t = RedbTxn {
                txn: &txn,
                now,
                audit_head: None,
                counters: Vec::new(),
            };
            body(&mut t)?;
            t.flush()?;
        }
        txn.commit().map_err(write_failure)
    }

    fn audit_data(&self) -> Result<AuditData, StoreError> {
        audit_tables::read(&self.db)
    }

    fn checkpoints_awaiting_token(&self, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        audit_tables::awaiting_tokens(&self.db, limit)
    }

    fn events_after(&self, after: u64, limit: usize) -> Result<EventPage, StoreError> {
        event_tables::after(self, after, limit)
    }

    fn event_cursor(&self, reader: &str) -> Result<Option<u64>, StoreError> {
        event_tables::cursor(self, reader)
    }

    fn due(
        &self,
        peer: &str,
        now: i64,
        limit: usize,
        max_bytes: usize,
        skip: &HashSet<Uuid>,
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

    fn queued(&self, peer: &str) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        let t = txn.open_table(OUTBOX).map_err(engine)?;
        Ok(t.range((peer, 0)..=(peer, u64::MAX))
            .map_err(engine)?
            .count() as u64)
    }

    fn outbox_len(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        txn.open_table(OUTBOX)
            .map_err(engine)?
            .len()
            .map_err(engine)
    }

    fn peers_with_queue(&self) -> Result<Vec<String>, StoreError> {
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

    fn inbox_after(
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

    fn quarantined(&self) -> Result<Vec<Incoming>, StoreError> {
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

    fn conformance(&self) -> Result<Vec<Incoming>, StoreError> {
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

    fn inbox_len(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        txn.open_table(INBOX).map_err(engine)?.len().map_err(engine)
    }

    fn in_inbox(&self, id: Uuid) -> Result<bool, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        let t = txn.open_table(INBOX_INDEX).map_err(engine)?;
        Ok(t.get(id.as_u128()).map_err(engine)?.is_some())
    }

    #[cfg(test)]
    fn received_ids(&self) -> Result<Vec<Uuid>, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        let t = txn.open_table(RECEIVED).map_err(engine)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(engine)? {
            let (k, _) = row.map_err(engine)?;
            out.push(Uuid::from_u128(k.value()));
        }
        Ok(out)
    }

    fn history(&self, id: Uuid) -> Result<Vec<Transition>, StoreError> {
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

    fn receipt(&self, id: Uuid) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        let t = txn.open_table(RECEIPTS).map_err(engine)?;
        Ok(t.get(id.as_u128())
            .map_err(engine)?
            .map(|v| v.value().to_vec()))
    }

    fn awaited(&self, id: Uuid) -> Result<Option<(String, Vec<u8>)>, StoreError> {
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

    fn fetched_crls(&self) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        let t = txn.open_table(FETCHED_CRLS).map_err(engine)?;
        let mut out = Vec::new();
        for row in t.iter().map_err(engine)? {
            let (k, v) = row.map_err(engine)?;
            out.push((k.value().to_owned(), v.value().to_vec()));
        }
        Ok(out)
    }

    fn latest_trust_space(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        let t = txn.open_table(TRUST_HISTORY).map_err(engine)?;
        let last = t.last().map_err(engine)?;
        Ok(last.map(|(k, v)| (k.value(), v.value().to_vec())))
    }

    fn meta(&self, id: Uuid) -> Result<Option<Meta>, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        let t = txn.open_table(META).map_err(engine)?;
        match t.get(id.as_u128()).map_err(engine)? {
            Some(v) => decode(v.value()).map(Some),
            None => Ok(None),
        }
    }

    fn search(&self, f: &Filter) -> Result<Vec<Found>, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        let history = txn.open_table(HISTORY).map_err(engine)?;
        let meta = txn.open_table(META).map_err(engine)?;
        let mut out: Vec<Found> = Vec::new();
        let mut current: Option<(u128, i64, i64, State)> = None;
        let consider =
            |entry: (u128, i64, i64, State), out: &mut Vec<Found>| -> Result<(), StoreError> {
                let (id, first, last, state) = entry;
                let m = || -> Result<Option<Meta>, StoreError> {
                    match meta.get(id).map_err(engine)? {
                        Some(v) => Ok(Some(decode(v.value())?)),
                        None => Ok(None),
                    }
                };
                if let Some(found) = select(f, Uuid::from_u128(id), first, last, state, m)? {
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

    fn trader(&self, id: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        let t = txn.open_table(TRADERS).map_err(engine)?;
        Ok(t.get(id).map_err(engine)?.map(|v| v.value().to_vec()))
    }

    fn trader_count(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        txn.open_table(TRADERS)
            .map_err(engine)?
            .len()
            .map_err(engine)
    }

    fn trader_answer(&self, id: &str) -> Result<Option<(i64, Vec<u8>)>, StoreError> {
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

    fn change_sets_of(
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

    fn change_sets_after(
        &self,
        have: &HashMap<String, u64>,
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

    fn awaiting_len(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        txn.open_table(AWAITING)
            .map_err(engine)?
            .len()
            .map_err(engine)
    }

    fn stamp_pending(&self, limit: usize) -> Result<Vec<StampItem>, StoreError> {
        stamp_tables::pending(&self.db, limit)
    }

    fn stamp_pending_len(&self) -> Result<u64, StoreError> {
        stamp_tables::pending_len(&self.db)
    }

    fn evidence_of(&self, id: Uuid) -> Result<Option<Vec<u8>>, StoreError> {
        stamp_tables::evidence(&self.db, id)
    }

    fn evidence_owed(&self, peer: &str, limit: usize) -> Result<Vec<(Uuid, Vec<u8>)>, StoreError> {
        stamp_tables::owed(&self.db, peer, limit)
    }

    fn peers_owed_evidence(&self) -> Result<Vec<String>, StoreError> {
        stamp_tables::peers_owed(&self.db)
    }

    fn received_message(&self, id: Uuid) -> Result<Option<Incoming>, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        let received = txn.open_table(RECEIVED).map_err(engine)?;
        let Some(row) = received.get(id.as_u128()).map_err(engine)? else {
            return Ok(None);
        };
        let mut m: Incoming = decode(row.value())?;
        let envelopes = txn.open_table(RECEIVED_ENVELOPES).map_err(engine)?;
        if let Some(e) = envelopes.get(id.as_u128()).map_err(engine)? {
            m.envelope = e.value().to_vec();
        }
        Ok(Some(m))
    }

    fn parked(&self) -> Result<Vec<OutboxEntry>, StoreError> {
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
