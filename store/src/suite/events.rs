//! The event log on both engines: written in the transaction of the change it reports,
//! numbered without gaps, compacted without losing the newest, and read from a cursor.

use uuid::Uuid;

use super::{enqueue, incoming, msg, replica, Fixture, PgFixture, RedbFixture};
use crate::{events, Event, Retention, State, Store, StoreError};

on_both_engines!(
    every_transition_gets_an_event_in_its_transaction,
    a_failed_transaction_leaves_no_event_and_no_gap,
    numbers_go_on_after_reopening,
    change_sets_trust_spaces_and_added_kinds_get_events,
    compaction_keeps_the_newest_and_a_dropped_cursor_is_gone,
    compaction_by_age_drops_old_events_only,
    a_readers_cursor_is_kept,
);

fn all(s: &Store) -> Vec<Event> {
    s.events(0, 10_000).expect("events").events
}

fn seqs(events: &[Event]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

/// Writes `n` events of an added kind at `now`.
fn write_events(s: &Store, now: i64, n: usize) {
    s.write(now, |t| {
        for i in 0..n {
            t.event("test", &i.to_string(), serde_json::Value::Null)?;
        }
        Ok(())
    })
    .expect("written");
}

fn every_transition_gets_an_event_in_its_transaction(fx: &dyn Fixture) {
    let s = fx.open();
    enqueue(&s, 10, &[msg(1, 1, "RU"), msg(2, 2, "RU")]).expect("enqueued");
    s.write(20, |t| {
        t.delivered(
            Uuid::from_u128(1),
            b"receipt",
            State::Recognised,
            &[],
            Some("by RU".into()),
        )
    })
    .expect("delivered");
    let m = incoming(7, "rejected", b"r");
    s.write(30, |t| t.accept(&m, None)).expect("accepted");
    let events = all(&s);
    for e in &events {
        assert_eq!(e.kind, events::MESSAGE);
        let id = e.message_id.map(|id| id.hyphenated().to_string());
        assert_eq!(Some(e.subject.clone()), id);
    }
    let states: Vec<String> = events
        .iter()
        .map(|e| e.state.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        states,
        [
            "queued",
            "queued",
            "delivered",
            "recognised",
            "received",
            "rejected"
        ]
    );
    assert_eq!(seqs(&events), [1, 2, 3, 4, 5, 6]);
    assert_eq!(events[2].note.as_deref(), Some("by RU"));
    assert_eq!(events[2].at, 20);
    assert_eq!(events[5].message_id, Some(Uuid::from_u128(7)));
    // The events agree with the histories they report.
    assert_eq!(
        s.history(Uuid::from_u128(1)).expect("history").len(),
        events
            .iter()
            .filter(|e| e.message_id == Some(Uuid::from_u128(1)))
            .count()
    );
    assert_eq!(s.events(6, 10).expect("page").events, Vec::<Event>::new());
    assert_eq!(s.events(6, 10).expect("page").newest, 6);
}

fn a_failed_transaction_leaves_no_event_and_no_gap(fx: &dyn Fixture) {
    let s = fx.open();
    enqueue(&s, 0, &[msg(1, 1, "RU")]).expect("enqueued");
    let refused = s.write(0, |t| {
        t.event("test", "lost", serde_json::Value::Null)?;
        t.enqueue(&[msg(2, 2, "RU")], &[])?;
        Err::<(), _>(StoreError::Engine("the body failed".into()))
    });
    assert!(refused.is_err());
    assert_eq!(s.events(0, 10).expect("page").newest, 1);
    enqueue(&s, 0, &[msg(3, 3, "RU")]).expect("enqueued");
    let events = all(&s);
    assert_eq!(seqs(&events), [1, 2], "numbers reused, no gap");
    assert_eq!(events[1].message_id, Some(Uuid::from_u128(3)));
    assert!(events.iter().all(|e| e.subject != "lost"));
}

fn numbers_go_on_after_reopening(fx: &dyn Fixture) {
    write_events(&fx.open(), 0, 3);
    let s = fx.open();
    write_events(&s, 0, 2);
    assert_eq!(seqs(&all(&s)), [1, 2, 3, 4, 5]);
    assert_eq!(seqs(&s.events(3, 1).expect("page").events), [4]);
}

fn change_sets_trust_spaces_and_added_kinds_get_events(fx: &dyn Fixture) {
    let s = fx.open();
    s.write(5, |t| {
        t.record_change_set("CT.LIST", 12, b"set")?;
        t.record_trust_space(7, b"space")?;
        t.event(
            "submission-set",
            "set-1",
            serde_json::json!({ "result": "recognised" }),
        )
    })
    .expect("written");
    let events = all(&s);
    let kinds: Vec<(&str, &str)> = events
        .iter()
        .map(|e| (e.kind.as_str(), e.subject.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            (events::CHANGE_SET, "CT.LIST/12"),
            (events::TRUST_SPACE, "7"),
            ("submission-set", "set-1"),
        ]
    );
    assert_eq!(
        events[2].body,
        Some(serde_json::json!({ "result": "recognised" }))
    );
    assert!(events.iter().all(|e| e.message_id.is_none() && e.at == 5));
}

fn compaction_keeps_the_newest_and_a_dropped_cursor_is_gone(fx: &dyn Fixture) {
    let s = fx.open();
    write_events(&s, 0, 10);
    let by_count = Retention {
        max_age_ms: i64::MAX,
        max_events: 3,
    };
    let dropped = s
        .write(0, |t| t.compact_events(&by_count))
        .expect("compacted")
        .0;
    assert_eq!(dropped, 7);
    assert_eq!(seqs(&all_from(&s, 7)), [8, 9, 10]);
    match s.events(0, 10) {
        Err(StoreError::EventsGone {
            after: 0,
            oldest: 8,
        }) => {}
        other => panic!("a compacted cursor read {other:?}"),
    }
    match s.events(6, 10) {
        Err(e @ StoreError::EventsGone { oldest: 8, .. }) => {
            assert!(e.to_string().contains("after=7"), "{e}")
        }
        other => panic!("a compacted cursor read {other:?}"),
    }
    assert!(s.events(10, 10).expect("at the end").events.is_empty());
    match s.events(11, 10) {
        Err(StoreError::EventsAhead {
            after: 11,
            newest: 10,
        }) => {}
        other => panic!("a cursor past the end read {other:?}"),
    }
    // Nothing kept but the newest, whatever the retention says.
    let nothing = Retention {
        max_age_ms: 0,
        max_events: 0,
    };
    s.write(1_000, |t| t.compact_events(&nothing))
        .expect("compacted");
    assert_eq!(seqs(&all_from(&s, 9)), [10]);
    // Numbers go on after the compacted ones.
    write_events(&s, 0, 1);
    assert_eq!(seqs(&all_from(&s, 9)), [10, 11]);
}

fn all_from(s: &Store, after: u64) -> Vec<Event> {
    s.events(after, 10_000).expect("events").events
}

fn compaction_by_age_drops_old_events_only(fx: &dyn Fixture) {
    let s = fx.open();
    write_events(&s, 1_000, 2);
    write_events(&s, 5_000, 2);
    let by_age = Retention {
        max_age_ms: 2_000,
        max_events: u64::MAX,
    };
    s.write(6_000, |t| t.compact_events(&by_age))
        .expect("compacted");
    let kept = all_from(&s, 2);
    assert_eq!(seqs(&kept), [3, 4]);
    assert!(kept.iter().all(|e| e.at == 5_000));
}

fn a_readers_cursor_is_kept(fx: &dyn Fixture) {
    let s = fx.open();
    assert_eq!(s.event_cursor("erp").expect("cursor"), None);
    s.write(0, |t| t.set_event_cursor("erp", 4)).expect("kept");
    s.write(0, |t| t.set_event_cursor("erp", 9)).expect("kept");
    s.write(0, |t| t.set_event_cursor("audit-bus", 2))
        .expect("kept");
    drop(s);
    let s = fx.open();
    assert_eq!(s.event_cursor("erp").expect("cursor"), Some(9));
    assert_eq!(s.event_cursor("audit-bus").expect("cursor"), Some(2));
}

#[test]
fn replicas_writing_at_once_number_events_without_gaps_in_commit_order() {
    let fx = PgFixture::with_lease(60_000);
    let stores = [replica(&fx), replica(&fx)];
    std::thread::scope(|scope| {
        for (r, s) in stores.iter().enumerate() {
            scope.spawn(move || {
                for n in 0..40u128 {
                    let id = 1_000 * (r as u128 + 1) + n;
                    enqueue(s, 0, &[msg(id, id, "RU")]).expect("enqueued");
                }
            });
        }
    });
    let events = all(&stores[1]);
    assert_eq!(seqs(&events), (1..=80).collect::<Vec<u64>>());
    // Each replica's own messages appear in the order it wrote them.
    for r in 1..=2u128 {
        let mine: Vec<u128> = events
            .iter()
            .filter_map(|e| e.message_id.map(|id| id.as_u128()))
            .filter(|id| id / 1_000 == r)
            .collect();
        assert_eq!(mine, (0..40).map(|n| 1_000 * r + n).collect::<Vec<_>>());
    }
}
