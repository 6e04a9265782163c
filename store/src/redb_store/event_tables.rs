//! The event log's tables in the redb store: the events by sequence number (JSON) and the
//! readers' cursors. Numbers come from the store's counters (`events`: the newest number
//! written), taken in the writing transaction, so they have no gaps (redb has one writer).

use redb::{ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

use super::{engine, RedbStore, RedbTxn, COUNTERS};
use crate::events::{keep_from_by_count, Event, EventPage, Retention};
use crate::records::{decode, encode, StoreError};

const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
/// Reader (webhook name) → the last sequence number it acknowledged.
const EVENT_CURSORS: TableDefinition<&str, u64> = TableDefinition::new("event_cursors");
/// The counter of event numbers: its value is the newest number taken.
const EVENT_COUNTER: &str = "events";
/// Most events one compaction drops, so that a long-idle node's first compaction does not
/// hold the writer for long; the next one goes on.
const COMPACT_BATCH: usize = 10_000;

pub(super) fn create(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(EVENTS).map_err(engine)?;
    txn.open_table(EVENT_CURSORS).map_err(engine)?;
    Ok(())
}

pub(super) fn append(t: &mut RedbTxn<'_>, e: &mut Event) -> Result<(), StoreError> {
    e.seq = t.take_numbers(EVENT_COUNTER, 1)? + 1;
    t.txn
        .open_table(EVENTS)
        .map_err(engine)?
        .insert(e.seq, encode(e)?.as_slice())
        .map_err(engine)?;
    Ok(())
}

pub(super) fn compact(t: &mut RedbTxn<'_>, r: &Retention, now: i64) -> Result<u64, StoreError> {
    // The counter as this transaction sees it (numbers it took included).
    let newest = t.take_numbers(EVENT_COUNTER, 0)?;
    let keep_from = keep_from_by_count(r, newest);
    let too_old = now.saturating_sub(r.max_age_ms);
    let mut events = t.txn.open_table(EVENTS).map_err(engine)?;
    let mut doomed = Vec::new();
    for row in events.range(..newest).map_err(engine)? {
        let (k, v) = row.map_err(engine)?;
        let seq = k.value();
        if seq >= keep_from && decode::<Event>(v.value())?.at >= too_old {
            break;
        }
        doomed.push(seq);
        if doomed.len() == COMPACT_BATCH {
            break;
        }
    }
    for seq in &doomed {
        events.remove(*seq).map_err(engine)?;
    }
    Ok(doomed.len() as u64)
}

pub(super) fn put_cursor(t: &mut RedbTxn<'_>, reader: &str, seq: u64) -> Result<(), StoreError> {
    t.txn
        .open_table(EVENT_CURSORS)
        .map_err(engine)?
        .insert(reader, seq)
        .map_err(engine)?;
    Ok(())
}

pub(super) fn after(s: &RedbStore, after: u64, limit: usize) -> Result<EventPage, StoreError> {
    let txn = s.db.begin_read().map_err(engine)?;
    let newest = txn
        .open_table(COUNTERS)
        .map_err(engine)?
        .get(EVENT_COUNTER)
        .map_err(engine)?
        .map(|v| v.value())
        .unwrap_or(0);
    let t = txn.open_table(EVENTS).map_err(engine)?;
    let mut events = Vec::new();
    for row in t
        .range(after.saturating_add(1)..)
        .map_err(engine)?
        .take(limit)
    {
        let (_, v) = row.map_err(engine)?;
        events.push(decode(v.value())?);
    }
    Ok(EventPage { events, newest })
}

pub(super) fn cursor(s: &RedbStore, reader: &str) -> Result<Option<u64>, StoreError> {
    let txn = s.db.begin_read().map_err(engine)?;
    let t = txn.open_table(EVENT_CURSORS).map_err(engine)?;
    let found = t.get(reader).map_err(engine)?.map(|v| v.value());
    Ok(found)
}
