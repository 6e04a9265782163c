//! The store test suite, run against both engines: the embedded redb file and PostgreSQL (a
//! real server, started once for the test binary: `crate::pgcluster`). On PostgreSQL the
//! shared suite runs with a lease of 0 ms, so that `due` reads like the embedded store's;
//! the replica-specific behaviour (leases, takeover, notifications, one audit chain written by
//! two replicas) has its own tests at the end.

use std::collections::HashSet;

use uuid::Uuid;

use super::{
    Accepted, Filter, Incoming, Location, OutboxEntry, Outgoing, Payload, PgOptions, SetMember,
    State, Store, StoreError, SET_DIRECTION,
};
use tereze_support::hex::hex;

/// Opens (again) the same store.
trait Fixture {
    fn open(&self) -> Store;
}

struct RedbFixture(tempfile::TempDir);

impl RedbFixture {
    fn new() -> Self {
        Self(tempfile::tempdir().expect("dir"))
    }
}

impl Fixture for RedbFixture {
    fn open(&self) -> Store {
        Store::open(&Location::File(self.0.path().join("node.redb"))).expect("opens")
    }
}

struct PgFixture {
    url: String,
    lease_ms: i64,
}

impl PgFixture {
    fn new() -> Self {
        Self::with_lease(0)
    }

    fn with_lease(lease_ms: i64) -> Self {
        Self {
            url: tereze_testkit::pgcluster::fresh_database(),
            lease_ms,
        }
    }
}

impl Fixture for PgFixture {
    fn open(&self) -> Store {
        let opts = PgOptions::parse(&self.url, self.lease_ms, None, None).expect("url");
        Store::open(&Location::Postgres(opts)).expect("opens")
    }
}

macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod redb {
            $( #[test] fn $name() { super::$name(&super::RedbFixture::new()) } )*
        }
        mod postgres {
            $( #[test] fn $name() { super::$name(&super::PgFixture::new()) } )*
        }
    };
}

on_both_engines!(
    a_batch_closes_at_its_byte_budget_and_an_oversize_message_goes_alone,
    queued_messages_survive_reopening_in_order,
    a_batch_is_all_or_nothing,
    a_message_waiting_to_retry_holds_back_its_conversation_only,
    delivery_stores_the_receipt_and_leaves_the_outbox,
    a_message_forwarded_by_a_hub_awaits_its_end_receipt,
    parked_messages_can_be_requeued,
    a_message_past_its_signed_expiry_is_not_requeued,
    redelivery_returns_the_first_receipt_and_the_inbox_holds_the_message_once,
    another_envelope_under_a_taken_id_is_not_a_redelivery,
    rejected_messages_are_quarantined_not_put_in_the_inbox,
    the_arrival_note_keeps_its_text_and_adds_the_judged_time,
    a_hub_forwards_instead_of_keeping_in_its_inbox,
    the_inbox_keeps_arrival_order,
    conformance_traffic_is_kept_apart_and_purged_with_an_audited_record,
    a_cursor_pages_through_the_inbox_without_taking_anything,
    kept_trader_answers_are_forgotten_one_or_all,
    a_signature_waits_for_its_token_from_the_enqueue_and_across_reopening,
    a_failed_enqueue_leaves_nothing_waiting_for_a_token,
    evidence_obtained_is_kept_noted_and_owed_to_the_peer_until_acknowledged,
    evidence_received_is_kept_once_and_only_for_a_known_message,
    a_hub_owes_received_evidence_to_the_next_hop,
    a_checkpoint_waits_for_its_time_stamp_token_until_one_is_kept,
    a_later_judgement_replaces_the_receipt_and_records_the_verdict,
    a_later_judgement_sent_by_the_receiver_leaves_its_verdict_as_it_was,
    a_submission_set_is_kept_with_its_members,
    an_undelivered_set_member_gives_why_in_the_event,
);

fn a_later_judgement_replaces_the_receipt_and_records_the_verdict(fx: &dyn Fixture) {
    let s = fx.open();
    let id = Uuid::from_u128(1);
    enqueue(&s, 100, &[msg(1, 10, "RU")]).expect("enqueued");
    s.write(200, |t| {
        t.delivered(id, b"first", State::Rejected, &[], None)
    })
    .expect("delivered");
    s.write(300, |t| {
        t.judged_again(
            id,
            b"second",
            State::Recognised,
            &[],
            "judged again by RU".into(),
        )
    })
    .expect("judged again");
    assert_eq!(s.receipt(id).expect("read"), Some(b"second".to_vec()));
    let last = s
        .history(id)
        .expect("h")
        .last()
        .cloned()
        .expect("a transition");
    assert_eq!(
        (last.state, last.at, last.note.as_deref()),
        (State::Recognised, 300, Some("judged again by RU"))
    );
}

fn a_later_judgement_sent_by_the_receiver_leaves_its_verdict_as_it_was(fx: &dyn Fixture) {
    let s = fx.open();
    let id = Uuid::from_u128(1);
    s.write(0, |t| t.accept(&incoming(1, "rejected", b"r"), None))
        .expect("accepted");
    s.write(10, |t| {
        t.release_from_quarantine(id, "recognised on a second look".into())?;
        t.queue_judgement(&Outgoing {
            message_id: id,
            conversation_id: id,
            peer: "KZ".into(),
            payload: Payload::Receipt {
                recipient: "RU".into(),
                receipt: b"judgement 2".to_vec(),
                sender: Some("KZ".into()),
            },
            expires_at: None,
        })
    })
    .expect("released and queued");
    // The newest judgement is the message's receipt now (the first stays for redeliveries).
    assert_eq!(s.receipt(id).expect("read"), Some(b"judgement 2".to_vec()));
    assert_eq!(due(&s, "KZ", 20, 10), [1]);
    s.write(30, |t| {
        t.receipt_returned(id, b"judgement 2", "returned to KZ".into())
    })
    .expect("returned");
    assert!(due(&s, "KZ", 40, 10).is_empty());
    let states: Vec<State> = s.history(id).expect("h").iter().map(|t| t.state).collect();
    assert_eq!(states.last(), Some(&State::Recognised), "{states:?}");
    assert!(s.in_inbox(id).expect("inbox"));
    // A second return (the call answered twice) is no state change either.
    assert!(matches!(
        s.write(50, |t| t.receipt_returned(
            id,
            b"judgement 2",
            "again".into()
        )),
        Err(StoreError::NotQueued(_))
    ));
}

/// Queues messages 1 (for RU) and 2 (for BY) as submission set 99: the set and its members.
fn queue_a_set_to_ru_and_by(s: &Store) -> (Uuid, Vec<SetMember>) {
    let set = Uuid::from_u128(99);
    let members: Vec<SetMember> = [(1, "RU"), (2, "BY")]
        .iter()
        .map(|(n, c)| SetMember {
            message_id: Uuid::from_u128(*n),
            country: (*c).into(),
            authority: "CUSTOMS".into(),
            ..SetMember::default()
        })
        .collect();
    s.write(0, |t| {
        t.enqueue(&[msg(1, 10, "RU"), msg(2, 10, "BY")], &[])?;
        t.record_set(set, &members)
    })
    .expect("queued as a set");
    (set, members)
}

fn a_submission_set_is_kept_with_its_members(fx: &dyn Fixture) {
    let s = fx.open();
    let (set, members) = queue_a_set_to_ru_and_by(&s);
    let record = s.meta(set).expect("read").expect("the set's record");
    assert_eq!(record.direction, SET_DIRECTION);
    assert_eq!(record.members, members);
    for m in &members {
        let meta = s.meta(m.message_id).expect("read").expect("meta");
        assert_eq!(meta.set, Some(set));
    }
    // The set's record is no message: a search does not find it.
    let found = s
        .search(&Filter {
            limit: 10,
            ..Filter::default()
        })
        .expect("search");
    assert_eq!(found.len(), 2);
    // A member that was never queued refuses the whole set.
    assert!(s
        .write(10, |t| t.record_set(
            Uuid::from_u128(98),
            &[SetMember {
                message_id: Uuid::from_u128(7),
                country: "KG".into(),
                authority: "SW".into(),
                ..SetMember::default()
            }]
        ))
        .is_err());
    assert!(s.meta(Uuid::from_u128(98)).expect("read").is_none());

    // The set's result follows its messages' verdicts; each change of it is an event.
    let decided = |s: &Store| -> Vec<String> {
        s.events(0, 1000)
            .expect("events")
            .events
            .iter()
            .filter(|e| e.kind == crate::sets::SET_DECIDED)
            .map(|e| {
                assert_eq!(e.subject, format!("urn:uuid:{set}"));
                e.body.as_ref().expect("a body")["result"]
                    .as_str()
                    .expect("a result")
                    .to_owned()
            })
            .collect()
    };
    let (one, two) = (Uuid::from_u128(1), Uuid::from_u128(2));
    s.write(20, |t| {
        t.delivered(one, b"r1", State::Recognised, &[], None)
    })
    .expect("delivered");
    assert!(decided(&s).is_empty(), "still pending: no event");
    let reasons = vec!["signature-invalid".to_owned(), "hs-code-unknown".to_owned()];
    s.write(30, |t| {
        t.delivered(two, b"r2", State::Rejected, &reasons, None)
    })
    .expect("delivered");
    assert_eq!(decided(&s), ["refused"]);
    let record = s.meta(set).expect("read").expect("record");
    assert_eq!(record.members[1].verdict.as_deref(), Some("rejected"));
    assert_eq!(record.members[1].reasons, reasons);
    // The event of the refusal names every message's verdict and the refusal's reasons.
    let body = decided_bodies(&s).pop().expect("the refusal's event");
    let refused = body["refused"].as_array().expect("refused");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["message_id"], format!("urn:uuid:{two}"));
    assert_eq!(
        refused[0]["reasons"],
        serde_json::json!(["signature-invalid", "hs-code-unknown"])
    );
    let verdicts: Vec<&str> = body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["verdict"].as_str().expect("a verdict"))
        .collect();
    assert_eq!(verdicts, ["recognised", "rejected"]);
    s.write(40, |t| {
        t.judged_again(
            two,
            b"r2'",
            State::Recognised,
            &[],
            "judged again by BY".into(),
        )
    })
    .expect("judged again");
    assert_eq!(decided(&s), ["refused", "recognised"]);
    let record = s.meta(set).expect("read").expect("record");
    assert!(
        record.members[1].reasons.is_empty(),
        "recognised: no reasons"
    );
    assert_eq!(
        record.members[1].note.as_deref(),
        Some("judged again by BY")
    );
}

fn decided_bodies(s: &Store) -> Vec<serde_json::Value> {
    s.events(0, 1000)
        .expect("events")
        .events
        .into_iter()
        .filter(|e| e.kind == crate::sets::SET_DECIDED)
        .filter_map(|e| e.body)
        .collect()
}

fn an_undelivered_set_member_gives_why_in_the_event(fx: &dyn Fixture) {
    let s = fx.open();
    let (set, _) = queue_a_set_to_ru_and_by(&s);
    s.write(10, |t| {
        t.park(
            Uuid::from_u128(2),
            State::Expired,
            "not delivered before its expiry",
        )
    })
    .expect("parked");
    let body = decided_bodies(&s).pop().expect("the refusal's event");
    assert_eq!(body["result"], "refused");
    let refused = body["refused"].as_array().expect("refused");
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0]["verdict"], crate::sets::UNDELIVERED);
    assert_eq!(refused[0]["reasons"], serde_json::json!(["expired"]));
    assert_eq!(refused[0]["note"], "not delivered before its expiry");
    // A requeue makes it pending again, without the old reasons.
    s.write(20, |t| t.requeue(Uuid::from_u128(2)).map(|_| ()))
        .expect("requeued");
    let record = s.meta(set).expect("read").expect("record");
    assert_eq!(record.members[1].verdict, None);
    assert!(record.members[1].reasons.is_empty());
    assert_eq!(record.members[1].note, None);
}

mod events;

fn msg(n: u128, conversation: u128, peer: &str) -> Outgoing {
    Outgoing {
        message_id: Uuid::from_u128(n),
        conversation_id: Uuid::from_u128(conversation),
        peer: peer.into(),
        payload: Payload::Envelope {
            sender: "KZ".into(),
            recipient: peer.into(),
            envelope: format!("envelope {n}").into_bytes(),
            attachments: Vec::new(),
        },
        expires_at: None,
    }
}

fn ids(entries: &[OutboxEntry]) -> Vec<u128> {
    entries
        .iter()
        .map(|e| e.message.message_id.as_u128())
        .collect()
}

fn due(s: &Store, peer: &str, now: i64, limit: usize) -> Vec<u128> {
    ids(&s
        .due(peer, now, limit, usize::MAX, &HashSet::new())
        .expect("due"))
}

fn enqueue(s: &Store, now: i64, batch: &[Outgoing]) -> Result<(), StoreError> {
    s.write(now, |t| t.enqueue(batch, &[])).map(|_| ())
}

fn incoming(n: u128, verdict: &str, receipt: &[u8]) -> Incoming {
    Incoming {
        message_id: Uuid::from_u128(n),
        sender: "KZ".into(),
        envelope: b"envelope".to_vec(),
        receipt: receipt.to_vec(),
        verdict: verdict.into(),
        reasons: Vec::new(),
        digest: hex(&tereze_support::digest::sha256(b"envelope")),
        conformance: false,
        judged: String::new(),
    }
}

fn a_batch_closes_at_its_byte_budget_and_an_oversize_message_goes_alone(fx: &dyn Fixture) {
    let s = fx.open();
    // "envelope N" is 10 bytes for N < 10.
    let batch: Vec<Outgoing> = (1..=5).map(|n| msg(n, n, "RU")).collect();
    enqueue(&s, 1_000, &batch).expect("enqueued");
    let within = |max_bytes| {
        ids(&s
            .due("RU", 2_000, 100, max_bytes, &HashSet::new())
            .expect("due"))
    };
    assert_eq!(within(25), vec![1, 2]);
    assert_eq!(within(30), vec![1, 2, 3]);
    assert_eq!(
        within(1),
        vec![1],
        "one message over the budget still goes, alone"
    );
    assert_eq!(within(usize::MAX), vec![1, 2, 3, 4, 5]);
}

fn queued_messages_survive_reopening_in_order(fx: &dyn Fixture) {
    {
        let s = fx.open();
        enqueue(
            &s,
            1_000,
            &[msg(1, 10, "RU"), msg(2, 11, "RU"), msg(3, 10, "BY")],
        )
        .expect("enqueued");
    }
    let s = fx.open();
    assert_eq!(due(&s, "RU", 1_000, 10), [1, 2]);
    assert_eq!(due(&s, "BY", 1_000, 10), [3]);
    assert_eq!(s.queued("RU").expect("count"), 2);
    assert_eq!(s.peers_with_queue().expect("peers"), ["BY", "RU"]);
    assert_eq!(
        s.history(Uuid::from_u128(1)).expect("history")[0].state,
        State::Queued
    );
}

fn a_batch_is_all_or_nothing(fx: &dyn Fixture) {
    let s = fx.open();
    enqueue(&s, 0, &[msg(1, 10, "RU")]).expect("enqueued");
    let e = enqueue(&s, 0, &[msg(2, 10, "RU"), msg(1, 10, "RU")]).expect_err("duplicate id");
    assert!(matches!(e, StoreError::AlreadyQueued(id) if id == Uuid::from_u128(1)));
    assert_eq!(due(&s, "RU", 0, 10), [1], "message 2 was not stored");
}

fn a_message_waiting_to_retry_holds_back_its_conversation_only(fx: &dyn Fixture) {
    let s = fx.open();
    enqueue(
        &s,
        0,
        &[
            msg(1, 10, "RU"),
            msg(2, 11, "RU"),
            msg(3, 10, "RU"),
            msg(4, 11, "RU"),
        ],
    )
    .expect("enqueued");
    let (attempts, _) = s
        .write(0, |t| {
            t.failed_attempt(Uuid::from_u128(1), "connection refused", 5_000)
        })
        .expect("recorded");
    assert_eq!(attempts, 1);
    // Conversation 10 waits for message 1; conversation 11 goes on.
    assert_eq!(due(&s, "RU", 1_000, 10), [2, 4]);
    assert_eq!(due(&s, "RU", 5_000, 10), [1, 2, 3, 4]);
    assert_eq!(due(&s, "RU", 5_000, 2), [1, 2], "limit");
    // A message in flight holds back its conversation as well.
    let in_flight = HashSet::from([Uuid::from_u128(2)]);
    assert_eq!(
        ids(&s.due("RU", 5_000, 10, usize::MAX, &in_flight).expect("due")),
        [1, 3]
    );
    let e = s
        .due("RU", 5_000, 1, usize::MAX, &HashSet::new())
        .expect("due")
        .remove(0);
    assert_eq!(
        (e.attempts, e.last_error.as_deref()),
        (1, Some("connection refused"))
    );
}

fn delivery_stores_the_receipt_and_leaves_the_outbox(fx: &dyn Fixture) {
    let s = fx.open();
    enqueue(&s, 100, &[msg(1, 10, "RU")]).expect("enqueued");
    s.write(200, |t| {
        t.delivered(
            Uuid::from_u128(1),
            b"signed receipt",
            State::Recognised,
            &[],
            None,
        )
    })
    .expect("delivered");
    assert!(due(&s, "RU", 1_000, 10).is_empty());
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
    assert_eq!(
        h,
        [
            (State::Queued, 100),
            (State::Delivered, 200),
            (State::Recognised, 200)
        ]
    );
    assert!(matches!(
        s.write(300, |t| t.delivered(
            Uuid::from_u128(1),
            b"x",
            State::Recognised,
            &[],
            None
        )),
        Err(StoreError::NotAwaited(_))
    ));
}

fn a_message_forwarded_by_a_hub_awaits_its_end_receipt(fx: &dyn Fixture) {
    let s = fx.open();
    let id = Uuid::from_u128(1);
    enqueue(&s, 0, &[msg(1, 10, "EEC")]).expect("enqueued");
    s.write(10, |t| {
        t.forwarded(id, "KG", b"hub receipt", "by EEC".into())
    })
    .expect("forwarded");
    assert!(due(&s, "EEC", 10, 10).is_empty());
    assert_eq!(s.awaiting_len().expect("len"), 1);
    let (recipient, digest) = s.awaited(id).expect("read").expect("awaited");
    assert_eq!(recipient, "KG");
    assert_eq!(digest, tereze_support::digest::sha256(b"envelope 1"));
    s.write(30, |t| {
        t.delivered(id, b"end receipt", State::Recognised, &[], None)
    })
    .expect("delivered");
    assert_eq!(s.awaiting_len().expect("len"), 0);
    let states: Vec<State> = s.history(id).expect("h").iter().map(|t| t.state).collect();
    assert_eq!(
        states,
        [
            State::Queued,
            State::Sent,
            State::Delivered,
            State::Recognised
        ]
    );
}

fn parked_messages_can_be_requeued(fx: &dyn Fixture) {
    let s = fx.open();
    enqueue(&s, 0, &[msg(1, 10, "RU"), msg(2, 10, "RU")]).expect("enqueued");
    s.write(50, |t| {
        t.park(Uuid::from_u128(1), State::Dead, "retries exhausted")
    })
    .expect("parked");
    assert_eq!(due(&s, "RU", 100, 10), [2]);
    assert_eq!(s.parked().expect("parked").len(), 1);
    s.write(200, |t| t.requeue(Uuid::from_u128(1)))
        .expect("requeued");
    assert_eq!(
        due(&s, "RU", 200, 10),
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
        s.write(0, |t| t.requeue(Uuid::from_u128(9))),
        Err(StoreError::NotParked(_))
    ));
}

fn a_message_past_its_signed_expiry_is_not_requeued(fx: &dyn Fixture) {
    let s = fx.open();
    let expiring = |n, at| Outgoing {
        expires_at: Some(at),
        ..msg(n, n, "RU")
    };
    enqueue(&s, 0, &[expiring(1, 150), expiring(2, 1_000)]).expect("enqueued");
    s.write(160, |t| {
        t.park(Uuid::from_u128(1), State::Expired, "not delivered")?;
        t.park(Uuid::from_u128(2), State::Dead, "refused")
    })
    .expect("parked");
    let refused = s.write(200, |t| t.requeue(Uuid::from_u128(1)));
    let Err(
        e @ StoreError::SignedExpiryPassed {
            expires_at: 150, ..
        },
    ) = refused
    else {
        panic!("{refused:?}");
    };
    assert!(
        e.to_string().contains("1970-01-01T00:00:00Z (ExpiresAt)")
            && e.to_string().contains("submit the document again"),
        "{e}"
    );
    assert_eq!(s.parked().expect("parked").len(), 2, "still parked");
    assert_eq!(
        s.history(Uuid::from_u128(1)).expect("history").len(),
        2,
        "nothing recorded"
    );
    // Still within its expiry: requeued, keeping it, so the relay expires it again in time.
    s.write(200, |t| t.requeue(Uuid::from_u128(2)))
        .expect("requeued");
    let back = s
        .due("RU", 200, 10, usize::MAX, &HashSet::new())
        .expect("due");
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].message.expires_at, Some(1_000));
}

fn redelivery_returns_the_first_receipt_and_the_inbox_holds_the_message_once(fx: &dyn Fixture) {
    let s = fx.open();
    let m = incoming(7, "recognised", b"receipt 1");
    let (first, _) = s.write(10, |t| t.accept(&m, None)).expect("accepted");
    assert_eq!(first, Accepted::New);
    let again = incoming(7, "recognised", b"receipt 2");
    let (second, _) = s.write(20, |t| t.accept(&again, None)).expect("accepted");
    assert_eq!(
        second,
        Accepted::Duplicate {
            receipt: b"receipt 1".to_vec()
        }
    );
    assert_eq!(s.inbox(10).expect("inbox"), std::slice::from_ref(&m));
    assert!(s.in_inbox(m.message_id).expect("in inbox"));
    s.write(25, |t| t.ack_inbox(m.message_id)).expect("acked");
    assert!(s.inbox(10).expect("inbox").is_empty());
    assert!(!s.in_inbox(m.message_id).expect("in inbox"));
    assert!(matches!(
        s.write(26, |t| t.ack_inbox(m.message_id)),
        Err(StoreError::NotInInbox(_))
    ));
    // Still remembered after the national system took it: a late redelivery is a duplicate.
    drop(s);
    let s = fx.open();
    let (late, _) = s.write(30, |t| t.accept(&m, None)).expect("accepted");
    assert!(matches!(late, Accepted::Duplicate { .. }));
    assert!(s.inbox(10).expect("inbox").is_empty());
}

fn another_envelope_under_a_taken_id_is_not_a_redelivery(fx: &dyn Fixture) {
    let s = fx.open();
    let m = incoming(8, "recognised", b"receipt 1");
    s.write(10, |t| t.accept(&m, None)).expect("accepted");
    let mut other = incoming(8, "rejected", b"receipt 2");
    other.envelope = b"another envelope".to_vec();
    other.digest = hex(&tereze_support::digest::sha256(&other.envelope));
    let (again, _) = s.write(20, |t| t.accept(&other, None)).expect("answered");
    assert_eq!(
        again,
        Accepted::OtherDigest {
            first: m.digest.clone()
        }
    );
    // Nothing of the second one was kept; the first stays as it was.
    assert_eq!(s.inbox(10).expect("inbox"), std::slice::from_ref(&m));
    assert!(s.quarantined().expect("quarantine").is_empty());
    // A row without a kept digest (older store) is judged by its stored envelope.
    let mut legacy = incoming(9, "recognised", b"receipt 3");
    legacy.digest.clear();
    s.write(30, |t| t.accept(&legacy, None)).expect("accepted");
    let (again, _) = s
        .write(40, |t| t.accept(&other_id(&other, 9), None))
        .expect("answered");
    assert!(matches!(again, Accepted::OtherDigest { .. }), "{again:?}");
}

fn other_id(m: &Incoming, n: u128) -> Incoming {
    Incoming {
        message_id: Uuid::from_u128(n),
        ..m.clone()
    }
}

fn the_arrival_note_keeps_its_text_and_adds_the_judged_time(fx: &dyn Fixture) {
    let s = fx.open();
    let judged = Incoming {
        judged: "2026-12-07T23:10:00.000Z (first stored by hub EEC)".into(),
        ..incoming(1, "recognised", b"r1")
    };
    let tester = Incoming {
        conformance: true,
        judged: "2026-12-07T23:11:00.000Z (first stored by this node)".into(),
        ..incoming(2, "rejected", b"r2")
    };
    let unjudged = incoming(3, "rejected", b"r3");
    for m in [&judged, &tester, &unjudged] {
        s.write(0, |t| t.accept(m, None)).expect("accepted");
    }
    let note = |n: u128| {
        s.history(Uuid::from_u128(n)).expect("history")[0]
            .note
            .clone()
            .expect("note")
    };
    assert_eq!(
        note(1),
        "from KZ; judged at 2026-12-07T23:10:00.000Z (first stored by hub EEC)"
    );
    assert_eq!(
        note(2),
        "from KZ: conformance traffic, kept apart from the national inbox; \
         judged at 2026-12-07T23:11:00.000Z (first stored by this node)"
    );
    assert_eq!(note(3), "from KZ");
}

fn rejected_messages_are_quarantined_not_put_in_the_inbox(fx: &dyn Fixture) {
    let s = fx.open();
    s.write(0, |t| t.accept(&incoming(1, "rejected", b"r"), None))
        .expect("accepted");
    assert!(s.inbox(10).expect("inbox").is_empty());
    assert_eq!(s.received_ids().expect("ids"), [Uuid::from_u128(1)]);
    let states: Vec<State> = s
        .history(Uuid::from_u128(1))
        .expect("h")
        .iter()
        .map(|t| t.state)
        .collect();
    assert_eq!(states, [State::Received, State::Rejected]);
}

fn a_hub_forwards_instead_of_keeping_in_its_inbox(fx: &dyn Fixture) {
    let s = fx.open();
    let m = incoming(1, "forwarded", b"hub receipt");
    let out = msg(1, 10, "KG");
    s.write(0, |t| t.accept(&m, Some(&out))).expect("accepted");
    assert!(s.inbox(10).expect("inbox").is_empty());
    assert_eq!(due(&s, "KG", 0, 10), [1]);
    let (again, _) = s.write(0, |t| t.accept(&m, Some(&out))).expect("accepted");
    assert!(
        matches!(again, Accepted::Duplicate { .. }),
        "forwarded once"
    );
}

fn the_inbox_keeps_arrival_order(fx: &dyn Fixture) {
    let s = fx.open();
    for n in [5u128, 3, 9] {
        s.write(0, |t| t.accept(&incoming(n, "recognised", b""), None))
            .expect("accepted");
    }
    let order: Vec<u128> = s
        .inbox(10)
        .expect("inbox")
        .iter()
        .map(|m| m.message_id.as_u128())
        .collect();
    assert_eq!(order, [5, 3, 9]);
}

fn conformance_traffic_is_kept_apart_and_purged_with_an_audited_record(fx: &dyn Fixture) {
    let s = fx.open();
    let tester = |n: u128, verdict: &str| Incoming {
        conformance: true,
        ..incoming(n, verdict, format!("receipt {n}").as_bytes())
    };
    let normal = incoming(3, "recognised", b"receipt 3");
    for m in [
        tester(2, "recognised"),
        tester(1, "rejected"),
        normal.clone(),
    ] {
        s.write(10, |t| t.accept(&m, None)).expect("accepted");
    }
    // Neither the inbox nor the quarantine holds a tester's message, whatever its verdict.
    assert_eq!(s.inbox(10).expect("inbox"), std::slice::from_ref(&normal));
    assert!(s.quarantined().expect("quarantine").is_empty());
    let held = s.conformance().expect("area");
    let order: Vec<u128> = held.iter().map(|m| m.message_id.as_u128()).collect();
    assert_eq!(order, [2, 1], "arrival order");
    assert_eq!(held[1].verdict, "rejected");
    assert!(held.iter().all(|m| m.conformance && m.envelope.is_empty()));
    let history = s.history(Uuid::from_u128(1)).expect("history");
    assert_eq!(history[0].state, State::Received);
    assert!(
        history[0]
            .note
            .as_deref()
            .is_some_and(|n| n.contains("conformance traffic")),
        "{history:?}"
    );

    for n in [2u128, 1] {
        s.write(20, |t| {
            t.purge_conformance(Uuid::from_u128(n), "purged by the operator".into())
        })
        .expect("purged");
    }
    assert!(s.conformance().expect("area").is_empty());
    assert!(matches!(
        s.write(30, |t| t
            .purge_conformance(Uuid::from_u128(1), String::new())),
        Err(StoreError::NotConformance(_))
    ));
    assert!(
        matches!(
            s.write(30, |t| t
                .purge_conformance(normal.message_id, String::new())),
            Err(StoreError::NotConformance(_))
        ),
        "only conformance traffic is purged"
    );
    let last = s.history(Uuid::from_u128(2)).expect("history");
    assert_eq!(last.last().map(|t| t.state), Some(State::Purged));
    let report = s.verify_audit().expect("verified");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    // Remembered after the purge: a redelivery gets the first receipt and is not kept again.
    drop(s);
    let s = fx.open();
    let (again, _) = s
        .write(40, |t| t.accept(&tester(2, "recognised"), None))
        .expect("answered");
    assert_eq!(
        again,
        Accepted::Duplicate {
            receipt: b"receipt 2".to_vec()
        }
    );
    assert!(s.conformance().expect("area").is_empty());
    assert_eq!(s.inbox(10).expect("inbox"), std::slice::from_ref(&normal));
}

fn a_cursor_pages_through_the_inbox_without_taking_anything(fx: &dyn Fixture) {
    let s = fx.open();
    let accept = |n: u128, verdict: &str| {
        s.write(0, |t| t.accept(&incoming(n, verdict, b""), None))
            .expect("accepted");
    };
    for n in [5u128, 3, 9, 1, 7] {
        accept(n, "recognised");
    }
    accept(4, "rejected");
    let page = |after: Option<u64>, limit: usize| -> (Vec<u128>, Option<u64>) {
        let p = s.inbox_after(after, limit).expect("inbox");
        let ids = p.iter().map(|(_, m)| m.message_id.as_u128()).collect();
        (ids, p.last().map(|(at, _)| *at))
    };
    // Two at a time, each page continuing after the last position of the one before.
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let (ids, last) = page(after, 2);
        if ids.is_empty() {
            break;
        }
        assert!(ids.len() <= 2);
        seen.extend(ids);
        after = last;
        assert!(seen.len() <= 5, "the cursor goes round: {seen:?}");
    }
    assert_eq!(seen, [5, 3, 9, 1, 7], "everything once, in arrival order");
    assert_eq!(s.inbox_len().expect("len"), 5, "reading took nothing out");
    let end = after;
    // Acknowledging the message a cursor points at does not lose the cursor's place.
    s.write(1, |t| t.ack_inbox(Uuid::from_u128(7)))
        .expect("acked");
    assert_eq!(page(end, 10).0, Vec::<u128>::new());
    // What arrives later, and a message released from quarantine, come after the cursor.
    accept(8, "recognised");
    s.write(2, |t| {
        t.release_from_quarantine(Uuid::from_u128(4), "trust space v2".into())
    })
    .expect("released");
    let (later, _) = page(end, 10);
    assert_eq!(later, [8, 4]);
    // Positions grow: from the start, the same order with the acknowledged one gone.
    let (all, _) = page(None, 100);
    assert_eq!(all, [5, 3, 9, 1, 8, 4]);
    let (_, first) = page(None, 1);
    assert_eq!(page(first, 1).0, [3]);
    // A cursor beyond every position (or past what the engine counts in) finds nothing.
    assert!(page(Some(u64::MAX), 10).0.is_empty());
    assert!(page(Some(i64::MAX as u64 + 1), 10).0.is_empty());
    // Still valid after the store is opened again.
    drop(s);
    let s = fx.open();
    let after_first = s.inbox_after(first, 2).expect("inbox");
    let ids: Vec<u128> = after_first
        .iter()
        .map(|(_, m)| m.message_id.as_u128())
        .collect();
    assert_eq!(ids, [3, 9]);
}

fn kept_trader_answers_are_forgotten_one_or_all(fx: &dyn Fixture) {
    let s = fx.open();
    for (id, doc) in [("KZ1", "a"), ("RU2", "b"), ("BY3", "c")] {
        s.write(0, |t| t.record_trader_answer(id, 5, doc.as_bytes()))
            .expect("kept");
    }
    assert_eq!(
        s.write(1, |t| t.forget_trader_answers(Some("RU2")))
            .expect("forgot")
            .0,
        1
    );
    assert_eq!(
        s.write(2, |t| t.forget_trader_answers(Some("RU2")))
            .expect("forgot")
            .0,
        0,
        "nothing left to forget"
    );
    assert_eq!(s.trader_answer("RU2").expect("read"), None);
    assert_eq!(
        s.trader_answer("KZ1").expect("read"),
        Some((5, b"a".to_vec()))
    );
    drop(s);
    let s = fx.open();
    assert_eq!(
        s.write(3, |t| t.forget_trader_answers(None))
            .expect("forgot")
            .0,
        2
    );
    for id in ["KZ1", "RU2", "BY3"] {
        assert_eq!(s.trader_answer(id).expect("read"), None, "{id}");
    }
    // Kept again after a flush, as a new answer would be.
    s.write(4, |t| t.record_trader_answer("KZ1", 9, b"d"))
        .expect("kept");
    assert_eq!(
        s.trader_answer("KZ1").expect("read"),
        Some((9, b"d".to_vec()))
    );
}

// PostgreSQL only: what replicas sharing one database rely on.

/// A checkpoint signer for the suite (its certificate self-signed).
fn checkpoint_signer() -> tereze_codecs::dsig::SigningKey {
    use tereze_codecs::pki::{generate_key, issue_certificate, CertificateSpec, KeyKind};
    let key = generate_key(KeyKind::EcP256).expect("key");
    let spec = CertificateSpec {
        subject: &[("CN", "KZ node")],
        not_before_days: -1,
        not_after_days: 1,
        is_ca: false,
    };
    let cert = issue_certificate(&spec, &key, None).expect("cert");
    tereze_codecs::dsig::SigningKey::new(key, Some(cert)).expect("signing key")
}

fn a_checkpoint_waits_for_its_time_stamp_token_until_one_is_kept(fx: &dyn Fixture) {
    let key = checkpoint_signer();
    let s = fx.open();
    enqueue(&s, 1, &[msg(1, 1, "RU")]).expect("enqueued");
    // A checkpoint nobody wants a token for does not wait.
    s.write(2, |t| t.audit_checkpoint(&key))
        .expect("checkpoint");
    assert!(s.checkpoints_awaiting_token(10).expect("read").is_empty());
    enqueue(&s, 3, &[msg(2, 2, "RU")]).expect("enqueued");
    let (covered, _) = s
        .write(4, |t| {
            let covered = t.audit_checkpoint(&key)?.expect("a new checkpoint");
            t.want_checkpoint_token(covered - 1)?;
            Ok(covered)
        })
        .expect("checkpoint");
    drop(s);

    // The wish survives reopening (it was written with the checkpoint).
    let s = fx.open();
    let waiting = s.checkpoints_awaiting_token(10).expect("read");
    assert_eq!(waiting.len(), 1, "{waiting:?}");
    assert_eq!(waiting[0].seq, covered - 1);
    assert_eq!(waiting[0].at, 4);
    let report = s.verify_audit().expect("verifies");
    let cp = report
        .checkpoint_results
        .iter()
        .find(|c| c.seq == covered - 1)
        .expect("the checkpoint");
    assert_eq!(
        cp.signature, waiting[0].signature,
        "the token covers the signature value"
    );
    assert_eq!(cp.token, None);

    // A token for a checkpoint that does not exist is refused; one for the waiting one kept.
    assert!(s
        .write(5, |t| t.record_checkpoint_token(99, b"token"))
        .is_err());
    s.write(5, |t| t.record_checkpoint_token(covered - 1, b"token"))
        .expect("kept");
    assert!(s.checkpoints_awaiting_token(10).expect("read").is_empty());
    let report = s.verify_audit().expect("verifies");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    let tokens: Vec<_> = report
        .checkpoint_results
        .iter()
        .map(|c| c.token.as_deref())
        .collect();
    assert_eq!(tokens, [None, Some(&b"token"[..])]);
}

fn replica(fx: &PgFixture) -> Store {
    fx.open()
}

fn sql(url: &str, statement: &str) {
    let mut c = ::postgres::Client::connect(url, ::postgres::NoTls).expect("connects");
    c.batch_execute(statement).expect("runs");
}

#[test]
fn replicas_claim_disjoint_work_and_keep_each_conversation_in_order() {
    let fx = PgFixture::with_lease(60_000);
    let (a, b) = (replica(&fx), replica(&fx));
    let batch = [
        msg(1, 10, "RU"),
        msg(2, 11, "RU"),
        msg(3, 10, "RU"),
        msg(4, 12, "RU"),
        msg(5, 11, "RU"),
        msg(6, 13, "RU"),
    ];
    enqueue(&a, 0, &batch).expect("enqueued");
    assert_eq!(due(&a, "RU", 1, 2), [1, 2]);
    // 3 and 5 wait behind 1 and 2, which replica A holds.
    assert_eq!(due(&b, "RU", 1, 10), [4, 6]);
    assert!(due(&a, "RU", 1, 10).is_empty(), "nothing is taken twice");
    a.write(2, |t| {
        t.delivered(Uuid::from_u128(1), b"r", State::Recognised, &[], None)
    })
    .expect("delivered");
    assert_eq!(due(&b, "RU", 3, 10), [3]);
}

#[test]
fn a_crashed_replicas_work_is_taken_over_when_its_lease_ends() {
    let fx = PgFixture::with_lease(1_000);
    let (a, b) = (replica(&fx), replica(&fx));
    enqueue(&a, 0, &[msg(1, 10, "RU")]).expect("enqueued");
    assert_eq!(due(&a, "RU", 0, 10), [1]);
    drop(a); // crashed with its lease held
    assert!(due(&b, "RU", 500, 10).is_empty(), "the lease still holds");
    assert_eq!(due(&b, "RU", 1_500, 10), [1], "taken over");
    // A late outcome of another replica does not end this replica's lease.
    let c = replica(&fx);
    c.write(1_600, |t| t.failed_attempt(Uuid::from_u128(1), "late", 0))
        .expect("recorded");
    assert!(due(&c, "RU", 1_700, 10).is_empty(), "still B's until 2,500");
    b.write(1_800, |t| {
        t.failed_attempt(Uuid::from_u128(1), "refused", 0)
    })
    .expect("recorded");
    assert_eq!(
        due(&c, "RU", 1_900, 10),
        [1],
        "B's own failure ended its lease"
    );
}

#[test]
fn an_enqueue_on_one_replica_wakes_the_others() {
    let fx = PgFixture::with_lease(60_000);
    let (a, b) = (replica(&fx), replica(&fx));
    let mut woken = b.wake_ups().expect("PostgreSQL notifies");
    // The listener connects in the background: enqueue until it hears one.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let mut n = 1;
    loop {
        enqueue(&a, 0, &[msg(n, n, "KG")]).expect("enqueued");
        n += 1;
        std::thread::sleep(std::time::Duration::from_millis(100));
        if let Ok(peer) = woken.try_recv() {
            assert_eq!(peer, "KG");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "no notification");
    }
}

#[test]
fn replicas_writing_at_once_keep_one_audit_chain_and_store_each_message_once() {
    let fx = PgFixture::with_lease(60_000);
    let stores = [replica(&fx), replica(&fx)];
    std::thread::scope(|scope| {
        for (r, s) in stores.iter().enumerate() {
            scope.spawn(move || {
                for n in 0..40u128 {
                    let id = 1_000 * (r as u128 + 1) + n;
                    enqueue(s, 0, &[msg(id, id, "RU")]).expect("enqueued");
                    // Both replicas receive the same 40 messages (a peer's redeliveries).
                    let m = incoming(n + 1, "recognised", b"receipt");
                    s.write(0, |t| t.accept(&m, None)).expect("answered");
                }
            });
        }
    });
    let s = &stores[0];
    assert_eq!(
        s.inbox_len().expect("len"),
        40,
        "each received message once"
    );
    assert_eq!(s.outbox_len().expect("len"), 80);
    let report = s.verify_audit().expect("verifies");
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    // 80 queued + 40 × (received, recognised).
    assert_eq!(report.entries, 160);
}

#[test]
fn an_edited_audit_entry_on_postgresql_is_found() {
    let fx = PgFixture::new();
    let s = replica(&fx);
    enqueue(&s, 0, &[msg(1, 1, "RU"), msg(2, 2, "RU")]).expect("enqueued");
    assert!(s.verify_audit().expect("verifies").problems.is_empty());
    sql(
        &fx.url,
        "UPDATE audit SET entry = convert_to(replace(convert_from(entry, 'UTF8'), '\"queued\"', '\"sent\"'), 'UTF8') WHERE seq = 0",
    );
    let problems = s.verify_audit().expect("verifies").problems;
    assert!(
        problems.iter().any(|p| p.contains("entry 0")),
        "{problems:?}"
    );
}

#[test]
fn a_database_migrated_by_a_newer_node_is_refused() {
    let fx = PgFixture::new();
    drop(replica(&fx));
    sql(&fx.url, "INSERT INTO tereze_schema (version) VALUES (99)");
    let opts = PgOptions::parse(&fx.url, 0, None, None).expect("url");
    match Store::open(&Location::Postgres(opts)) {
        Err(StoreError::Schema(reason)) => assert!(reason.contains("upgrade"), "{reason}"),
        Err(e) => panic!("unexpected error {e}"),
        Ok(_) => panic!("opened a newer schema"),
    }
}

#[test]
fn an_unreachable_database_is_a_clear_error_without_the_password() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port();
    let url = format!("postgres://tereze:s3cret-pw@127.0.0.1:{port}/db?connect_timeout=2");
    let opts = PgOptions::parse(&url, 0, None, None).expect("url");
    let e = match Store::open(&Location::Postgres(opts)) {
        Err(e) => e.to_string(),
        Ok(_) => panic!("connected to nothing"),
    };
    assert!(e.contains(&format!("127.0.0.1:{port}/db")), "{e}");
    assert!(!e.contains("s3cret-pw"), "{e}");
}

// Time-stamping (issue 26).

fn pending_ids(s: &Store) -> Vec<u128> {
    s.stamp_pending(100)
        .expect("pending")
        .iter()
        .map(|i| i.id.as_u128())
        .collect()
}

fn a_signature_waits_for_its_token_from_the_enqueue_and_across_reopening(fx: &dyn Fixture) {
    let s = fx.open();
    s.write(200, |t| {
        t.enqueue(&[msg(2, 2, "RU")], &[])?;
        t.await_stamp(Uuid::from_u128(2), "envelope", b"sig 2", None)
    })
    .expect("queued");
    s.write(100, |t| {
        t.enqueue(&[msg(1, 1, "RU")], &[])?;
        t.await_stamp(
            Uuid::from_u128(1),
            "envelope",
            b"sig 1",
            Some("waiting for a time-stamp".into()),
        )
    })
    .expect("queued");
    s.write(300, |t| {
        t.await_stamp(Uuid::from_u128(9), "receipts", b"batch", None)
    })
    .expect("receipt batch");
    drop(s);
    let s = fx.open();
    assert_eq!(s.stamp_pending_len().expect("len"), 3);
    // The longest-waiting first, whatever the enqueue order.
    assert_eq!(pending_ids(&s), [1, 2, 9]);
    let first = &s.stamp_pending(1).expect("pending")[0];
    assert_eq!(
        (first.kind.as_str(), first.leaf.as_slice(), first.queued_at),
        ("envelope", &b"sig 1"[..], 100)
    );
    // The note keeps the message where it stands (queued).
    let h = s.history(Uuid::from_u128(1)).expect("history");
    let last = h.last().expect("noted");
    assert_eq!(
        (last.state, last.note.as_deref()),
        (State::Queued, Some("waiting for a time-stamp"))
    );
}

fn a_failed_enqueue_leaves_nothing_waiting_for_a_token(fx: &dyn Fixture) {
    let s = fx.open();
    enqueue(&s, 0, &[msg(1, 1, "RU")]).expect("enqueued");
    let again = s.write(10, |t| {
        t.await_stamp(Uuid::from_u128(2), "envelope", b"sig 2", None)?;
        // The same id queued twice fails the whole transaction.
        t.enqueue(&[msg(1, 1, "RU")], &[])
    });
    assert!(matches!(again, Err(StoreError::AlreadyQueued(_))));
    assert_eq!(s.stamp_pending_len().expect("len"), 0);
}

fn evidence_obtained_is_kept_noted_and_owed_to_the_peer_until_acknowledged(fx: &dyn Fixture) {
    let s = fx.open();
    let id = Uuid::from_u128(1);
    s.write(0, |t| {
        t.enqueue(&[msg(1, 1, "RU")], &[])?;
        t.await_stamp(id, "envelope", b"sig", None)
    })
    .expect("queued");
    s.write(10, |t| {
        t.delivered(id, b"receipt", State::Recognised, &[], None)
    })
    .expect("delivered");
    let (stamped, _) = s
        .write(20, |t| {
            t.stamped(id, b"evidence", Some("RU"), "time-stamped by TSA".into())
        })
        .expect("stamped");
    assert!(stamped);
    assert_eq!(s.stamp_pending_len().expect("len"), 0);
    assert_eq!(s.evidence_of(id).expect("read"), Some(b"evidence".to_vec()));
    assert_eq!(s.peers_owed_evidence().expect("peers"), ["RU"]);
    assert_eq!(
        s.evidence_owed("RU", 10).expect("owed"),
        [(id, b"evidence".to_vec())]
    );
    assert!(s.evidence_owed("KG", 10).expect("owed").is_empty());
    // Stamped again (another replica was faster): nothing written.
    let (again, _) = s
        .write(30, |t| t.stamped(id, b"other", Some("RU"), "again".into()))
        .expect("no-op");
    assert!(!again);
    assert_eq!(s.evidence_of(id).expect("read"), Some(b"evidence".to_vec()));
    // The note leaves the message recognised.
    let h = s.history(id).expect("history");
    let last = h.last().expect("noted");
    assert_eq!(
        (last.state, last.note.as_deref(), h.len()),
        (State::Recognised, Some("time-stamped by TSA"), 4)
    );
    let (sent, _) = s.write(40, |t| t.evidence_sent("RU", id)).expect("sent");
    assert!(sent);
    assert!(s.peers_owed_evidence().expect("peers").is_empty());
    assert!(s.evidence_owed("RU", 10).expect("owed").is_empty());
    // A receipt batch's evidence is kept here, owed to nobody, with no history.
    let batch = Uuid::from_u128(77);
    s.write(50, |t| {
        t.await_stamp(batch, "receipts", b"batch sig", None)?;
        t.stamped(batch, b"batch evidence", None, "n/a".into())
    })
    .expect("batch");
    assert_eq!(
        s.evidence_of(batch).expect("read"),
        Some(b"batch evidence".to_vec())
    );
    assert!(s.history(batch).expect("history").is_empty());
    assert!(s.peers_owed_evidence().expect("peers").is_empty());
    assert!(s.verify_audit().expect("verifies").problems.is_empty());
}

fn evidence_received_is_kept_once_and_only_for_a_known_message(fx: &dyn Fixture) {
    let s = fx.open();
    let m = incoming(1, "recognised", b"receipt");
    s.write(0, |t| t.accept(&m, None)).expect("accepted");
    assert!(matches!(
        s.write(5, |t| t.evidence_received(
            Uuid::from_u128(2),
            b"e",
            None,
            "x".into()
        )),
        Err(StoreError::UnknownMessage(_))
    ));
    let (new, _) = s
        .write(10, |t| {
            t.evidence_received(
                m.message_id,
                b"evidence",
                None,
                "time-stamp received".into(),
            )
        })
        .expect("kept");
    assert!(new);
    let (again, _) = s
        .write(20, |t| {
            t.evidence_received(m.message_id, b"other", None, "again".into())
        })
        .expect("no-op");
    assert!(!again);
    assert_eq!(
        s.evidence_of(m.message_id).expect("read"),
        Some(b"evidence".to_vec())
    );
    let h = s.history(m.message_id).expect("history");
    assert_eq!(h.len(), 3, "{h:?}");
    assert_eq!(
        (h[2].state, h[2].note.as_deref()),
        (State::Recognised, Some("time-stamp received"))
    );
    assert!(s.peers_owed_evidence().expect("peers").is_empty());
}

fn a_hub_owes_received_evidence_to_the_next_hop(fx: &dyn Fixture) {
    let s = fx.open();
    let m = Incoming {
        verdict: "forwarded".into(),
        envelope: Vec::new(),
        ..incoming(1, "forwarded", b"hub receipt")
    };
    s.write(0, |t| t.accept(&m, Some(&msg(1, 1, "KG"))))
        .expect("forwarding");
    s.write(10, |t| {
        t.evidence_received(m.message_id, b"evidence", Some("KG"), "from KZ".into())
    })
    .expect("kept");
    assert_eq!(
        s.evidence_owed("KG", 10).expect("owed"),
        [(m.message_id, b"evidence".to_vec())]
    );
}
