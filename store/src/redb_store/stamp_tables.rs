//! The time-stamping tables of the redb store (issue 26): signatures waiting for a token
//! (ordered by when they began to wait, with an index by id), the evidence kept per message
//! or receipt batch, and the evidence owed to each peer. What evidence is and how it is
//! verified is the node's; these tables only keep bytes.

use redb::{
    Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition,
    WriteTransaction,
};
use uuid::Uuid;

use super::audit_tables::HISTORY;
use crate::records::{decode, encode, StampItem, State, StoreError, Transition};

/// (waiting since ms, id) → the item (JSON): read oldest first.
const STAMP_PENDING: TableDefinition<(i64, u128), &[u8]> = TableDefinition::new("stamp_pending");
/// id → waiting since: to find (and drop) an item by id.
const STAMP_INDEX: TableDefinition<u128, i64> = TableDefinition::new("stamp_index");
/// id → the evidence (as its producer encoded it).
const EVIDENCE: TableDefinition<u128, &[u8]> = TableDefinition::new("evidence");
/// (peer, id) → nothing: evidence owed to a peer.
const EVIDENCE_OUT: TableDefinition<(&str, u128), ()> = TableDefinition::new("evidence_out");

fn engine(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    StoreError::engine_failed(e.to_string(), e)
}

pub(super) fn create(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(STAMP_PENDING).map_err(engine)?;
    txn.open_table(STAMP_INDEX).map_err(engine)?;
    txn.open_table(EVIDENCE).map_err(engine)?;
    txn.open_table(EVIDENCE_OUT).map_err(engine)?;
    Ok(())
}

pub(super) fn last_state(txn: &WriteTransaction, id: Uuid) -> Result<Option<State>, StoreError> {
    let t = txn.open_table(HISTORY).map_err(engine)?;
    let k = id.as_u128();
    let last = t.range((k, 0)..=(k, u64::MAX)).map_err(engine)?.next_back();
    match last {
        None => Ok(None),
        Some(row) => {
            let (_, v) = row.map_err(engine)?;
            let t: Transition = decode(v.value())?;
            Ok(Some(t.state))
        }
    }
}

pub(super) fn put_pending(txn: &WriteTransaction, item: &StampItem) -> Result<(), StoreError> {
    drop_pending(txn, item.id)?;
    let k = item.id.as_u128();
    txn.open_table(STAMP_PENDING)
        .map_err(engine)?
        .insert((item.queued_at, k), encode(item)?.as_slice())
        .map_err(engine)?;
    txn.open_table(STAMP_INDEX)
        .map_err(engine)?
        .insert(k, item.queued_at)
        .map_err(engine)?;
    Ok(())
}

pub(super) fn drop_pending(txn: &WriteTransaction, id: Uuid) -> Result<bool, StoreError> {
    let k = id.as_u128();
    let at = txn
        .open_table(STAMP_INDEX)
        .map_err(engine)?
        .remove(k)
        .map_err(engine)?
        .map(|v| v.value());
    let Some(at) = at else {
        return Ok(false);
    };
    txn.open_table(STAMP_PENDING)
        .map_err(engine)?
        .remove((at, k))
        .map_err(engine)?;
    Ok(true)
}

pub(super) fn put_evidence(
    txn: &WriteTransaction,
    id: Uuid,
    evidence: &[u8],
) -> Result<(), StoreError> {
    txn.open_table(EVIDENCE)
        .map_err(engine)?
        .insert(id.as_u128(), evidence)
        .map_err(engine)?;
    Ok(())
}

pub(super) fn evidence_in(txn: &WriteTransaction, id: Uuid) -> Result<Option<Vec<u8>>, StoreError> {
    let t = txn.open_table(EVIDENCE).map_err(engine)?;
    let found = t.get(id.as_u128()).map_err(engine)?;
    Ok(found.map(|v| v.value().to_vec()))
}

pub(super) fn put_out(txn: &WriteTransaction, peer: &str, id: Uuid) -> Result<(), StoreError> {
    txn.open_table(EVIDENCE_OUT)
        .map_err(engine)?
        .insert((peer, id.as_u128()), ())
        .map_err(engine)?;
    Ok(())
}

pub(super) fn drop_out(txn: &WriteTransaction, peer: &str, id: Uuid) -> Result<bool, StoreError> {
    let removed = txn
        .open_table(EVIDENCE_OUT)
        .map_err(engine)?
        .remove((peer, id.as_u128()))
        .map_err(engine)?
        .is_some();
    Ok(removed)
}

pub(super) fn pending(db: &Database, limit: usize) -> Result<Vec<StampItem>, StoreError> {
    let txn = db.begin_read().map_err(engine)?;
    let t = txn.open_table(STAMP_PENDING).map_err(engine)?;
    let mut out = Vec::new();
    for row in t.iter().map_err(engine)?.take(limit) {
        let (_, v) = row.map_err(engine)?;
        out.push(decode(v.value())?);
    }
    Ok(out)
}

pub(super) fn pending_len(db: &Database) -> Result<u64, StoreError> {
    let txn = db.begin_read().map_err(engine)?;
    let t = txn.open_table(STAMP_INDEX).map_err(engine)?;
    t.len().map_err(engine)
}

pub(super) fn evidence(db: &Database, id: Uuid) -> Result<Option<Vec<u8>>, StoreError> {
    let txn = db.begin_read().map_err(engine)?;
    let t = txn.open_table(EVIDENCE).map_err(engine)?;
    let found = t.get(id.as_u128()).map_err(engine)?;
    Ok(found.map(|v| v.value().to_vec()))
}

pub(super) fn owed(
    db: &Database,
    peer: &str,
    limit: usize,
) -> Result<Vec<(Uuid, Vec<u8>)>, StoreError> {
    let txn = db.begin_read().map_err(engine)?;
    let out_t = txn.open_table(EVIDENCE_OUT).map_err(engine)?;
    let ev = txn.open_table(EVIDENCE).map_err(engine)?;
    let mut out = Vec::new();
    for row in out_t
        .range((peer, 0)..=(peer, u128::MAX))
        .map_err(engine)?
        .take(limit)
    {
        let (k, _) = row.map_err(engine)?;
        let id = k.value().1;
        let bytes = ev.get(id).map_err(engine)?.ok_or_else(|| {
            StoreError::Corrupt(format!(
                "evidence of {} is owed to {peer} but not kept",
                Uuid::from_u128(id)
            ))
        })?;
        out.push((Uuid::from_u128(id), bytes.value().to_vec()));
    }
    Ok(out)
}

pub(super) fn peers_owed(db: &Database) -> Result<Vec<String>, StoreError> {
    let txn = db.begin_read().map_err(engine)?;
    let t = txn.open_table(EVIDENCE_OUT).map_err(engine)?;
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
