//! The event log on PostgreSQL: events by sequence number, the head row holding the newest
//! number taken, and the readers' cursors (migration 0003). A transaction that appends locks
//! the head row (`FOR UPDATE`) on its first event and writes its events in one statement at
//! commit, so numbers are gap-free (a rolled-back transaction returns its numbers with the
//! lock) and commit in order across replicas: the next writer waits for the lock.

use super::{pg, prepared, PgStore, PgTxn};
use crate::events::{keep_from_by_count, Event, EventPage, Retention};
use crate::records::{decode, encode, StoreError};

/// Events appended by one transaction, column by column, for one `unnest` insert.
#[derive(Default)]
pub(super) struct Pending {
    /// The newest number taken, once the head row is locked.
    last: Option<i64>,
    seq: Vec<i64>,
    at: Vec<i64>,
    event: Vec<Vec<u8>>,
}

/// The newest number taken, locking the head row on first use.
fn last(t: &mut PgTxn<'_>) -> Result<i64, StoreError> {
    if let Some(last) = t.events.last {
        return Ok(last);
    }
    let last: i64 = t
        .opt("SELECT last FROM event_head WHERE id = 1 FOR UPDATE", &[])?
        .map(|r| r.get(0))
        .ok_or_else(|| StoreError::Engine("the event log's head row is missing".into()))?;
    t.events.last = Some(last);
    Ok(last)
}

pub(super) fn append(t: &mut PgTxn<'_>, e: &mut Event) -> Result<(), StoreError> {
    let seq = last(t)? + 1;
    e.seq = seq as u64;
    let row = encode(e)?;
    let p = &mut t.events;
    p.last = Some(seq);
    p.seq.push(seq);
    p.at.push(e.at);
    p.event.push(row);
    Ok(())
}

/// Writes the pending events and the head row; called before commit.
pub(super) fn flush(t: &mut PgTxn<'_>) -> Result<(), StoreError> {
    let p = std::mem::take(&mut t.events);
    let Some(last) = p.last else {
        return Ok(());
    };
    if !p.seq.is_empty() {
        t.exec(
            "INSERT INTO events (seq, at, event) \
             SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bytea[])",
            &[&p.seq, &p.at, &p.event],
        )?;
        t.exec("UPDATE event_head SET last = $1 WHERE id = 1", &[&last])?;
    }
    Ok(())
}

pub(super) fn compact(t: &mut PgTxn<'_>, r: &Retention, now: i64) -> Result<u64, StoreError> {
    let newest = last(t)?;
    let keep_from = keep_from_by_count(r, newest.max(0) as u64) as i64;
    let too_old = now.saturating_sub(r.max_age_ms);
    // Never the newest (nor anything this transaction appended: not in the table yet).
    t.exec(
        "DELETE FROM events WHERE seq < $1 AND (seq < $2 OR at < $3)",
        &[&newest, &keep_from, &too_old],
    )
}

pub(super) fn put_cursor(t: &mut PgTxn<'_>, reader: &str, seq: u64) -> Result<(), StoreError> {
    let seq = i64::try_from(seq)
        .map_err(|_| StoreError::Engine(format!("event cursor {seq} out of range")))?;
    t.exec(
        "INSERT INTO event_cursors (reader, seq) VALUES ($1, $2) \
         ON CONFLICT (reader) DO UPDATE SET seq = EXCLUDED.seq",
        &[&reader, &seq],
    )
    .map(|_| ())
}

pub(super) fn after(s: &PgStore, after: u64, limit: usize) -> Result<EventPage, StoreError> {
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    s.read(move |c, cache| {
        // One snapshot for both reads.
        let mut tx = c
            .build_transaction()
            .isolation_level(postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .map_err(pg)?;
        let st = prepared(&mut tx, cache, "SELECT last FROM event_head WHERE id = 1")?;
        let newest: i64 = tx
            .query_opt(&st, &[])
            .map_err(pg)?
            .map(|r| r.get(0))
            .unwrap_or(0);
        let st = prepared(
            &mut tx,
            cache,
            "SELECT event FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
        )?;
        let events = tx
            .query(&st, &[&after, &limit])
            .map_err(pg)?
            .iter()
            .map(|r| decode(r.get::<_, &[u8]>(0)))
            .collect::<Result<Vec<Event>, _>>()?;
        tx.commit().map_err(pg)?;
        Ok(EventPage {
            events,
            newest: newest.max(0) as u64,
        })
    })
}

pub(super) fn cursor(s: &PgStore, reader: &str) -> Result<Option<u64>, StoreError> {
    let reader = reader.to_owned();
    s.read(move |c, cache| {
        let st = prepared(c, cache, "SELECT seq FROM event_cursors WHERE reader = $1")?;
        Ok(c.query_opt(&st, &[&reader])
            .map_err(pg)?
            .map(|r| r.get::<_, i64>(0).max(0) as u64))
    })
}
