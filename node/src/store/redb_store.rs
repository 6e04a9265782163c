//! The store on redb. Tables: the outbox keyed by (peer, sequence) so each peer's queue is in
//! enqueue order, an index from message id to its outbox key, parked messages (expired or dead,
//! kept for an operator's requeue), every received message by id (the deduplication memory),
//! the inbox queue in arrival order, state histories and receipts.

use std::path::Path;

use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use uuid::Uuid;

use super::{Accepted, Incoming, OutboxEntry, Outgoing, State, StoreError, Transition};

const OUTBOX: TableDefinition<(&str, u64), &[u8]> = TableDefinition::new("outbox");
const OUTBOX_INDEX: TableDefinition<u128, (&str, u64)> = TableDefinition::new("outbox_index");
const PARKED: TableDefinition<u128, &[u8]> = TableDefinition::new("parked");
const RECEIVED: TableDefinition<u128, &[u8]> = TableDefinition::new("received");
const INBOX: TableDefinition<u64, u128> = TableDefinition::new("inbox");
const INBOX_INDEX: TableDefinition<u128, u64> = TableDefinition::new("inbox_index");
const HISTORY: TableDefinition<u128, &[u8]> = TableDefinition::new("history");
const RECEIPTS: TableDefinition<u128, &[u8]> = TableDefinition::new("receipts");
const COUNTERS: TableDefinition<&str, u64> = TableDefinition::new("counters");

fn engine(e: impl std::fmt::Display) -> StoreError {
    StoreError::Engine(e.to_string())
}

fn encode<T: serde::Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn decode<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(b).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The embedded store.
pub(crate) struct RedbStore {
    db: Database,
}

fn next_counter(txn: &redb::WriteTransaction, name: &str) -> Result<u64, StoreError> {
    let mut t = txn.open_table(COUNTERS).map_err(engine)?;
    let n = t.get(name).map_err(engine)?.map(|v| v.value()).unwrap_or(0);
    t.insert(name, n + 1).map_err(engine)?;
    Ok(n)
}

fn push_history(
    txn: &redb::WriteTransaction,
    id: Uuid,
    state: State,
    at: i64,
    note: Option<String>,
) -> Result<(), StoreError> {
    let mut t = txn.open_table(HISTORY).map_err(engine)?;
    let mut h: Vec<Transition> = match t.get(id.as_u128()).map_err(engine)? {
        Some(v) => decode(v.value())?,
        None => Vec::new(),
    };
    h.push(Transition { state, at, note });
    t.insert(id.as_u128(), encode(&h)?.as_slice())
        .map_err(engine)?;
    Ok(())
}

impl RedbStore {
    /// Opens (or creates) the store file.
    pub(crate) fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(engine)?;
        let txn = db.begin_write().map_err(engine)?;
        {
            // Create every table once, so readers never meet a missing one.
            txn.open_table(OUTBOX).map_err(engine)?;
            txn.open_table(OUTBOX_INDEX).map_err(engine)?;
            txn.open_table(PARKED).map_err(engine)?;
            txn.open_table(RECEIVED).map_err(engine)?;
            txn.open_table(INBOX).map_err(engine)?;
            txn.open_table(INBOX_INDEX).map_err(engine)?;
            txn.open_table(HISTORY).map_err(engine)?;
            txn.open_table(RECEIPTS).map_err(engine)?;
            txn.open_table(COUNTERS).map_err(engine)?;
        }
        txn.commit().map_err(engine)?;
        Ok(Self { db })
    }

    /// Queues messages for their peers in one durable commit; all or none.
    pub(crate) fn enqueue(&self, batch: &[Outgoing], now: i64) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(engine)?;
        for m in batch {
            let id = m.message_id;
            {
                let index = txn.open_table(OUTBOX_INDEX).map_err(engine)?;
                if index.get(id.as_u128()).map_err(engine)?.is_some() {
                    // Dropping the transaction without commit discards the whole batch.
                    return Err(StoreError::AlreadyQueued(id));
                }
            }
            let sequence = next_counter(&txn, "outbox")?;
            let entry = OutboxEntry {
                message: m.clone(),
                sequence,
                attempts: 0,
                next_attempt_at: now,
                last_error: None,
            };
            txn.open_table(OUTBOX)
                .map_err(engine)?
                .insert((m.peer.as_str(), sequence), encode(&entry)?.as_slice())
                .map_err(engine)?;
            txn.open_table(OUTBOX_INDEX)
                .map_err(engine)?
                .insert(id.as_u128(), (m.peer.as_str(), sequence))
                .map_err(engine)?;
            push_history(&txn, id, State::Queued, now, None)?;
        }
        txn.commit().map_err(engine)
    }

    /// Up to `limit` messages for `peer` that may be sent at `now`, in enqueue order. A message
    /// waiting for its retry holds back the later messages of its conversation (order is per
    /// conversation), but not those of other conversations.
    pub(crate) fn due(
        &self,
        peer: &str,
        now: i64,
        limit: usize,
    ) -> Result<Vec<OutboxEntry>, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        let t = txn.open_table(OUTBOX).map_err(engine)?;
        let mut held = std::collections::HashSet::new();
        let mut out = Vec::new();
        for row in t.range((peer, 0)..=(peer, u64::MAX)).map_err(engine)? {
            let (_, v) = row.map_err(engine)?;
            let entry: OutboxEntry = decode(v.value())?;
            let conversation = entry.message.conversation_id;
            if held.contains(&conversation) {
                continue;
            }
            if entry.next_attempt_at > now {
                held.insert(conversation);
                continue;
            }
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

    fn outbox_key(txn: &redb::WriteTransaction, id: Uuid) -> Result<(String, u64), StoreError> {
        let index = txn.open_table(OUTBOX_INDEX).map_err(engine)?;
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

    /// Records a failed attempt and when to try again; returns the attempts so far.
    pub(crate) fn failed_attempt(
        &self,
        id: Uuid,
        error: &str,
        next_attempt_at: i64,
    ) -> Result<u32, StoreError> {
        let txn = self.db.begin_write().map_err(engine)?;
        let (peer, seq) = Self::outbox_key(&txn, id)?;
        let attempts;
        {
            let mut t = txn.open_table(OUTBOX).map_err(engine)?;
            let mut entry: OutboxEntry = match t.get((peer.as_str(), seq)).map_err(engine)? {
                Some(v) => decode(v.value())?,
                None => return Err(StoreError::NotQueued(id)),
            };
            entry.attempts += 1;
            entry.next_attempt_at = next_attempt_at;
            entry.last_error = Some(error.to_owned());
            attempts = entry.attempts;
            t.insert((peer.as_str(), seq), encode(&entry)?.as_slice())
                .map_err(engine)?;
        }
        txn.commit().map_err(engine)?;
        Ok(attempts)
    }

    /// The peer acknowledged the message with `receipt`: it leaves the outbox.
    pub(crate) fn delivered(&self, id: Uuid, receipt: &[u8], now: i64) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(engine)?;
        let (peer, seq) = Self::outbox_key(&txn, id)?;
        txn.open_table(OUTBOX)
            .map_err(engine)?
            .remove((peer.as_str(), seq))
            .map_err(engine)?;
        txn.open_table(OUTBOX_INDEX)
            .map_err(engine)?
            .remove(id.as_u128())
            .map_err(engine)?;
        txn.open_table(RECEIPTS)
            .map_err(engine)?
            .insert(id.as_u128(), receipt)
            .map_err(engine)?;
        push_history(&txn, id, State::Delivered, now, None)?;
        txn.commit().map_err(engine)
    }

    /// Takes a message out of the outbox as `Expired` or `Dead`, keeping it for a requeue.
    pub(crate) fn park(
        &self,
        id: Uuid,
        state: State,
        note: &str,
        now: i64,
    ) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(engine)?;
        let (peer, seq) = Self::outbox_key(&txn, id)?;
        let bytes = {
            let mut t = txn.open_table(OUTBOX).map_err(engine)?;
            let v = t.remove((peer.as_str(), seq)).map_err(engine)?;
            v.map(|v| v.value().to_vec())
                .ok_or(StoreError::NotQueued(id))?
        };
        txn.open_table(OUTBOX_INDEX)
            .map_err(engine)?
            .remove(id.as_u128())
            .map_err(engine)?;
        txn.open_table(PARKED)
            .map_err(engine)?
            .insert(id.as_u128(), bytes.as_slice())
            .map_err(engine)?;
        push_history(&txn, id, state, now, Some(note.to_owned()))?;
        txn.commit().map_err(engine)
    }

    /// An operator's requeue of a parked message: back at the end of its peer's queue, with
    /// fresh attempts.
    pub(crate) fn requeue(&self, id: Uuid, now: i64) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(engine)?;
        let mut entry: OutboxEntry = {
            let mut parked = txn.open_table(PARKED).map_err(engine)?;
            let v = parked.remove(id.as_u128()).map_err(engine)?;
            decode(
                &v.map(|v| v.value().to_vec())
                    .ok_or(StoreError::NotQueued(id))?,
            )?
        };
        entry.sequence = next_counter(&txn, "outbox")?;
        entry.attempts = 0;
        entry.next_attempt_at = now;
        entry.last_error = None;
        let peer = entry.message.peer.clone();
        txn.open_table(OUTBOX)
            .map_err(engine)?
            .insert((peer.as_str(), entry.sequence), encode(&entry)?.as_slice())
            .map_err(engine)?;
        txn.open_table(OUTBOX_INDEX)
            .map_err(engine)?
            .insert(id.as_u128(), (peer.as_str(), entry.sequence))
            .map_err(engine)?;
        push_history(
            &txn,
            id,
            State::Queued,
            now,
            Some("requeued by the operator".into()),
        )?;
        txn.commit().map_err(engine)
    }

    /// Stores a received message once: a redelivery stores nothing and returns the first
    /// receipt.
    pub(crate) fn accept(&self, m: &Incoming, now: i64) -> Result<Accepted, StoreError> {
        let txn = self.db.begin_write().map_err(engine)?;
        let earlier: Option<Incoming> = {
            let received = txn.open_table(RECEIVED).map_err(engine)?;
            let found = received.get(m.message_id.as_u128()).map_err(engine)?;
            match found {
                Some(v) => Some(decode(v.value())?),
                None => None,
            }
        };
        if let Some(first) = earlier {
            return Ok(Accepted::Duplicate {
                receipt: first.receipt,
            });
        }
        let seq = next_counter(&txn, "inbox")?;
        txn.open_table(RECEIVED)
            .map_err(engine)?
            .insert(m.message_id.as_u128(), encode(m)?.as_slice())
            .map_err(engine)?;
        txn.open_table(INBOX)
            .map_err(engine)?
            .insert(seq, m.message_id.as_u128())
            .map_err(engine)?;
        txn.open_table(INBOX_INDEX)
            .map_err(engine)?
            .insert(m.message_id.as_u128(), seq)
            .map_err(engine)?;
        push_history(
            &txn,
            m.message_id,
            State::Received,
            now,
            Some(format!("from {}", m.sender)),
        )?;
        txn.commit().map_err(engine)?;
        Ok(Accepted::New)
    }

    /// Up to `limit` inbox messages, oldest first, not yet acknowledged by the national system.
    pub(crate) fn inbox(&self, limit: usize) -> Result<Vec<Incoming>, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        let inbox = txn.open_table(INBOX).map_err(engine)?;
        let received = txn.open_table(RECEIVED).map_err(engine)?;
        let mut out = Vec::new();
        for row in inbox.iter().map_err(engine)?.take(limit) {
            let (_, id) = row.map_err(engine)?;
            let v = received.get(id.value()).map_err(engine)?.ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "inbox names unknown message {}",
                    Uuid::from_u128(id.value())
                ))
            })?;
            out.push(decode(v.value())?);
        }
        Ok(out)
    }

    /// The national system has taken the message: it leaves the inbox (and is still
    /// remembered for deduplication).
    pub(crate) fn ack_inbox(&self, id: Uuid) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(engine)?;
        let seq = txn
            .open_table(INBOX_INDEX)
            .map_err(engine)?
            .remove(id.as_u128())
            .map_err(engine)?
            .map(|v| v.value())
            .ok_or(StoreError::NotInInbox(id))?;
        txn.open_table(INBOX)
            .map_err(engine)?
            .remove(seq)
            .map_err(engine)?;
        txn.commit().map_err(engine)
    }

    /// A message's state history, oldest first.
    pub(crate) fn history(&self, id: Uuid) -> Result<Vec<Transition>, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        let t = txn.open_table(HISTORY).map_err(engine)?;
        match t.get(id.as_u128()).map_err(engine)? {
            Some(v) => decode(v.value()),
            None => Ok(Vec::new()),
        }
    }

    /// The receipt the peer gave for a message we sent.
    pub(crate) fn receipt(&self, id: Uuid) -> Result<Option<Vec<u8>>, StoreError> {
        let txn = self.db.begin_read().map_err(engine)?;
        let t = txn.open_table(RECEIPTS).map_err(engine)?;
        Ok(t.get(id.as_u128())
            .map_err(engine)?
            .map(|v| v.value().to_vec()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(dir: &tempfile::TempDir) -> RedbStore {
        RedbStore::open(&dir.path().join("node.redb")).expect("opens")
    }

    fn msg(n: u128, conversation: u128, peer: &str) -> Outgoing {
        Outgoing {
            message_id: Uuid::from_u128(n),
            conversation_id: Uuid::from_u128(conversation),
            peer: peer.into(),
            envelope: format!("envelope {n}").into_bytes(),
            expires_at: None,
        }
    }

    fn ids(entries: &[OutboxEntry]) -> Vec<u128> {
        entries
            .iter()
            .map(|e| e.message.message_id.as_u128())
            .collect()
    }

    #[test]
    fn queued_messages_survive_reopening_in_order() {
        let dir = tempfile::tempdir().expect("dir");
        {
            let s = store(&dir);
            s.enqueue(
                &[msg(1, 10, "RU"), msg(2, 11, "RU"), msg(3, 10, "BY")],
                1_000,
            )
            .expect("enqueued");
        }
        let s = store(&dir);
        assert_eq!(ids(&s.due("RU", 1_000, 10).expect("due")), [1, 2]);
        assert_eq!(ids(&s.due("BY", 1_000, 10).expect("due")), [3]);
        assert_eq!(s.queued("RU").expect("count"), 2);
        assert_eq!(
            s.history(Uuid::from_u128(1)).expect("history")[0].state,
            State::Queued
        );
    }

    #[test]
    fn a_batch_is_all_or_nothing() {
        let dir = tempfile::tempdir().expect("dir");
        let s = store(&dir);
        s.enqueue(&[msg(1, 10, "RU")], 0).expect("enqueued");
        let e = s
            .enqueue(&[msg(2, 10, "RU"), msg(1, 10, "RU")], 0)
            .expect_err("duplicate id");
        assert!(matches!(e, StoreError::AlreadyQueued(id) if id == Uuid::from_u128(1)));
        assert_eq!(
            ids(&s.due("RU", 0, 10).expect("due")),
            [1],
            "message 2 was not stored"
        );
    }

    #[test]
    fn a_message_waiting_to_retry_holds_back_its_conversation_only() {
        let dir = tempfile::tempdir().expect("dir");
        let s = store(&dir);
        s.enqueue(
            &[
                msg(1, 10, "RU"),
                msg(2, 11, "RU"),
                msg(3, 10, "RU"),
                msg(4, 11, "RU"),
            ],
            0,
        )
        .expect("enqueued");
        assert_eq!(
            s.failed_attempt(Uuid::from_u128(1), "connection refused", 5_000)
                .expect("recorded"),
            1
        );
        // Conversation 10 waits for message 1; conversation 11 goes on.
        assert_eq!(ids(&s.due("RU", 1_000, 10).expect("due")), [2, 4]);
        assert_eq!(ids(&s.due("RU", 5_000, 10).expect("due")), [1, 2, 3, 4]);
        assert_eq!(ids(&s.due("RU", 5_000, 2).expect("due")), [1, 2], "limit");
        let e = s.due("RU", 5_000, 1).expect("due").remove(0);
        assert_eq!(
            (e.attempts, e.last_error.as_deref()),
            (1, Some("connection refused"))
        );
    }

    #[test]
    fn delivery_stores_the_receipt_and_leaves_the_outbox() {
        let dir = tempfile::tempdir().expect("dir");
        let s = store(&dir);
        s.enqueue(&[msg(1, 10, "RU")], 100).expect("enqueued");
        s.delivered(Uuid::from_u128(1), b"signed receipt", 200)
            .expect("delivered");
        assert!(s.due("RU", 1_000, 10).expect("due").is_empty());
        assert_eq!(
            s.receipt(Uuid::from_u128(1)).expect("read"),
            Some(b"signed receipt".to_vec())
        );
        let h: Vec<(State, i64)> = s
            .history(Uuid::from_u128(1))
            .expect("history")
            .iter()
            .map(|t| (t.state, t.at))
            .collect();
        assert_eq!(h, [(State::Queued, 100), (State::Delivered, 200)]);
        assert!(matches!(
            s.delivered(Uuid::from_u128(1), b"x", 300),
            Err(StoreError::NotQueued(_))
        ));
    }

    #[test]
    fn parked_messages_can_be_requeued() {
        let dir = tempfile::tempdir().expect("dir");
        let s = store(&dir);
        s.enqueue(&[msg(1, 10, "RU"), msg(2, 10, "RU")], 0)
            .expect("enqueued");
        s.park(Uuid::from_u128(1), State::Dead, "retries exhausted", 50)
            .expect("parked");
        assert_eq!(ids(&s.due("RU", 100, 10).expect("due")), [2]);
        s.requeue(Uuid::from_u128(1), 200).expect("requeued");
        assert_eq!(
            ids(&s.due("RU", 200, 10).expect("due")),
            [2, 1],
            "back at the end of the queue"
        );
        let states: Vec<State> = s
            .history(Uuid::from_u128(1))
            .expect("history")
            .iter()
            .map(|t| t.state)
            .collect();
        assert_eq!(states, [State::Queued, State::Dead, State::Queued]);
        assert!(matches!(
            s.requeue(Uuid::from_u128(9), 0),
            Err(StoreError::NotQueued(_))
        ));
    }

    #[test]
    fn redelivery_returns_the_first_receipt_and_the_inbox_holds_the_message_once() {
        let dir = tempfile::tempdir().expect("dir");
        let s = store(&dir);
        let m = Incoming {
            message_id: Uuid::from_u128(7),
            sender: "KZ".into(),
            envelope: b"envelope".to_vec(),
            receipt: b"receipt 1".to_vec(),
        };
        assert_eq!(s.accept(&m, 10).expect("accepted"), Accepted::New);
        let again = Incoming {
            receipt: b"receipt 2".to_vec(),
            ..m.clone()
        };
        assert_eq!(
            s.accept(&again, 20).expect("accepted"),
            Accepted::Duplicate {
                receipt: b"receipt 1".to_vec()
            }
        );
        assert_eq!(s.inbox(10).expect("inbox"), std::slice::from_ref(&m));
        s.ack_inbox(m.message_id).expect("acked");
        assert!(s.inbox(10).expect("inbox").is_empty());
        assert!(matches!(
            s.ack_inbox(m.message_id),
            Err(StoreError::NotInInbox(_))
        ));
        // Still remembered after the national system took it: a late redelivery is a duplicate.
        drop(s);
        let s = store(&dir);
        assert!(matches!(
            s.accept(&m, 30).expect("accepted"),
            Accepted::Duplicate { .. }
        ));
        assert!(s.inbox(10).expect("inbox").is_empty());
    }

    #[test]
    fn the_inbox_keeps_arrival_order() {
        let dir = tempfile::tempdir().expect("dir");
        let s = store(&dir);
        for n in [5u128, 3, 9] {
            let m = Incoming {
                message_id: Uuid::from_u128(n),
                sender: "BY".into(),
                envelope: vec![],
                receipt: vec![],
            };
            s.accept(&m, 0).expect("accepted");
        }
        let order: Vec<u128> = s
            .inbox(10)
            .expect("inbox")
            .iter()
            .map(|m| m.message_id.as_u128())
            .collect();
        assert_eq!(order, [5, 3, 9]);
    }
}
