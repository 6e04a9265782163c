//! Store-and-forward between real node processes on loopback (issue 5's "must show"):
//! direct and hub exchange with verified receipts and exactly-once inboxes, a peer down and
//! back up, clear refusals of bad submissions, and the audit chain of a stopped node.

use std::process::Command;
use std::time::Duration;

use serde_json::json;

use crate::net::{self, bin, wait_until, xmlsec1_verifies, Net};

const SETTLE: Duration = Duration::from_secs(60);

const RECEIPT_ID: [&str; 2] = ["--id-attr:Id", "urn:tereze:receipt:Batch"];

#[test]
fn direct_and_hub_exchange_with_verified_receipts_judged_times_and_inbox_exactly_once() {
    let mut net = Net::init("KZ,RU,KG", "EEC", "KG", 19100, "");
    for s in ["KZ", "RU", "KG", "EEC"] {
        net.start(s);
    }
    let direct = net.submit("KZ", "RU", None).expect("accepted");
    let via_hub = net.submit("KZ", "KG", None).expect("accepted");
    assert!(
        wait_until(SETTLE, || net
            .states("KZ", &direct)
            .contains(&"recognised".into())
            && net.states("KZ", &via_hub).contains(&"recognised".into())),
        "not delivered: {:?} {:?}\n{}",
        net.states("KZ", &direct),
        net.states("KZ", &via_hub),
        net.log("KZ")
    );

    // Through the hub: judged at the time EEC first stored it, before KG had it at all.
    let (note, arrived_ms) = arrival(&net, "KG", &via_hub);
    assert!(note.starts_with("from KZ; judged at "), "{note}");
    let (at, source) = judged_in(&note);
    assert_eq!(source, "first stored by hub EEC", "{note}");
    assert!(
        at.timestamp_millis() < arrived_ms,
        "the hub's time {at} is before KG's arrival at {arrived_ms} ms: {note}"
    );

    // Direct: no hub on the route, so judged at its own arrival.
    let (note, arrived_ms) = arrival(&net, "RU", &direct);
    assert!(note.starts_with("from KZ; judged at "), "{note}");
    let (at, source) = judged_in(&note);
    assert_eq!(source, "first stored by this node", "{note}");
    assert!(
        (at.timestamp_millis() - arrived_ms).abs() < 60_000,
        "judged at {at}, arrived at {arrived_ms} ms: {note}"
    );

    assert_eq!(
        net.states("KZ", &direct),
        ["received", "signed", "queued", "delivered", "recognised"]
    );
    assert_eq!(
        net.states("KZ", &via_hub),
        [
            "received",
            "signed",
            "queued",
            "sent",
            "delivered",
            "recognised"
        ],
        "through the hub: sent (hub's acceptance), then the end receipt"
    );
    // The hub never held the message for itself, and read no body.
    assert!(net.inbox("EEC").is_empty());

    // Each recipient's inbox holds its message once, with the envelope as signed by KZ.
    for (state, id) in [("RU", &direct), ("KG", &via_hub)] {
        let inbox = net.inbox(state);
        assert_eq!(inbox.len(), 1, "{state}: {inbox:?}");
        assert_eq!(inbox[0]["message_id"], json!(id));
        assert_eq!(inbox[0]["sender"], json!("KZ"));
        assert_eq!(inbox[0]["verdict"], json!("recognised"));
        let envelope = net.dir.path().join(format!("{state}-envelope.xml"));
        std::fs::write(&envelope, inbox[0]["envelope"].as_str().expect("envelope"))
            .expect("written");
        // KZ's signature on the envelope, checked by an independent implementation.
        let (ok, err) = xmlsec1_verifies(&[], &net.node_dir("KZ").join("root.pem"), &envelope);
        assert!(ok, "xmlsec1: {err}");
        // The same recognition, offline: recognised here, rejected elsewhere or when changed.
        let trust = net.dir.path().join("trust-space.toml");
        let recognise = |state: &str, file: &std::path::Path| {
            let out = Command::new(bin())
                .args(["recognise", "--trust"])
                .arg(&trust)
                .args(["--state", state])
                .arg(file)
                .output()
                .expect("runs");
            (
                out.status.code(),
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ),
            )
        };
        let (code, said) = recognise(state, &envelope);
        assert_eq!(code, Some(0), "{said}");
        assert!(said.starts_with("recognised R.CC.01.001"), "{said}");
        let (code, said) = recognise("KZ", &envelope);
        assert_eq!(code, Some(1), "{said}");
        assert!(said.contains("recipient-mismatch"), "{said}");
        let tampered = net.dir.path().join(format!("{state}-tampered.xml"));
        let text = std::fs::read_to_string(&envelope).expect("read");
        assert!(text.contains("Ячмень"), "the sample's goods description");
        std::fs::write(&tampered, text.replacen("Ячмень", "Пшеница", 1)).expect("written");
        let (code, said) = recognise(state, &tampered);
        assert_eq!(code, Some(1), "{said}");
        assert!(said.contains("signature-invalid"), "{said}");
        let (code, said) = recognise(state, &trust);
        assert_eq!(code, Some(2), "{said}");
        let (status, acked) = net.http(
            state,
            "POST",
            "/v1/inbox/ack",
            Some(&json!({"message_ids": [id]})),
        );
        assert_eq!((status, acked["acknowledged"].as_u64()), (200, Some(1)));
        assert!(
            net.inbox(state).is_empty(),
            "acknowledged messages leave the inbox"
        );
    }

    // The receipts KZ keeps verify offline with xmlsec1 against the recipient's anchor.
    for (state, id) in [("RU", &direct), ("KG", &via_hub)] {
        let (_, v) = net.http("KZ", "GET", &format!("/v1/messages/{id}"), None);
        let receipt = v["receipt"].as_str().expect("a receipt");
        assert!(receipt.contains(&format!("<rc:Receiver>{state}</rc:Receiver>")));
        let path = net.dir.path().join(format!("receipt-{state}.xml"));
        std::fs::write(&path, receipt).expect("written");
        let (ok, err) = xmlsec1_verifies(&RECEIPT_ID, &net.node_dir(state).join("root.pem"), &path);
        assert!(ok, "xmlsec1: {err}");
        // The other state's anchor does not verify it.
        let other = if state == "RU" { "KG" } else { "RU" };
        let (ok, _) = xmlsec1_verifies(&RECEIPT_ID, &net.node_dir(other).join("root.pem"), &path);
        assert!(
            !ok,
            "a receipt of {state} must not verify against {other}'s anchor"
        );
    }

    // Graceful stop, then the audit chain of every node checks out.
    for s in ["KZ", "RU", "KG", "EEC"] {
        net.stop(s);
        let out = Command::new(bin())
            .args(["audit", "verify"])
            .arg(net.data_dir(s))
            .output()
            .expect("runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{s}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.contains("intact") && stdout.contains("after the last checkpoint 0"),
            "{s}: {stdout}"
        );
    }
}

#[test]
fn a_peer_down_for_a_while_gets_its_queue_in_conversation_order_across_a_sender_restart() {
    let extra = "\n[relay]\nmin_backoff_ms = 100\nmax_backoff_ms = 400\n";
    let mut net = Net::init("KZ,RU", "", "", 19200, extra);
    net.start("KZ");
    let conversations: Vec<String> = (0..4)
        .map(|_| format!("urn:uuid:{}", uuid::Uuid::new_v4()))
        .collect();
    let mut sent: Vec<(String, String)> = Vec::new();
    for i in 0..40 {
        let c = &conversations[i % conversations.len()];
        let id = net
            .submit("KZ", "RU", Some(c))
            .expect("accepted while RU is down");
        sent.push((c.clone(), id));
    }
    // RU is down: attempts fail and are retried with backoff.
    assert!(
        wait_until(SETTLE, || net.metric("KZ", "failed_attempts_total") >= 3),
        "no failed attempts recorded: {}",
        net.log("KZ")
    );
    assert_eq!(net.metric("KZ", "outbox_messages"), 40);
    // An orderly restart of the sender in the meantime loses nothing and keeps the order.
    net.stop("KZ");
    net.start("KZ");
    assert_eq!(
        net.metric("KZ", "outbox_messages"),
        40,
        "the outbox survives a restart"
    );
    net.start("RU");
    assert!(
        wait_until(SETTLE, || net.metric("KZ", "outbox_messages") == 0),
        "the queue did not drain: {}",
        net.log("KZ")
    );
    let inbox = net.inbox("RU");
    assert_eq!(inbox.len(), 40);
    // Per conversation, the inbox order is the submission order.
    for c in &conversations {
        let sent_order: Vec<&str> = sent
            .iter()
            .filter(|(cc, _)| cc == c)
            .map(|(_, id)| id.as_str())
            .collect();
        let received: Vec<&str> = inbox
            .iter()
            .filter(|m| {
                let id = m["message_id"].as_str().unwrap_or_default();
                sent_order.contains(&id)
            })
            .map(|m| m["message_id"].as_str().unwrap_or_default())
            .collect();
        assert_eq!(received, sent_order, "conversation {c}");
    }
    for (_, id) in &sent {
        assert_eq!(
            net.states("KZ", id).last().map(String::as_str),
            Some("recognised")
        );
    }
}

#[test]
fn bad_submissions_are_refused_clearly_and_nothing_is_stored() {
    let extra = "\n[limits]\nmax_message_bytes = 20000\n";
    let mut net = Net::init("KZ,RU", "", "", 19300, extra);
    net.start("KZ");
    // The wheat's phytosanitary certificate listed as another kind of document: the integrated
    // tariff says the goods need it (docs/reference-data.md).
    let no_phyto = net::SAMPLE.replacen(">01011<", ">02014<", 1);
    let kz_no_phyto = include_str!("../../../codecs/samples/kz.export-declaration/valid-grain.xml");
    assert!(
        kz_no_phyto.contains("PHYTO-KZ"),
        "the KZ sample lists its phyto certificate"
    );
    let kz_no_phyto = kz_no_phyto.replacen("PHYTO-KZ", "ORIGIN-A-KZ", 1);
    let cases = [
        (
            json!({"format": "eaeu.export-declaration", "document": "x".repeat(30_000), "recipient_country": "RU"}),
            "over the limit of 20000",
        ),
        (
            json!({"format": "eaeu.export-declaration", "document": no_phyto, "recipient_country": "RU"}),
            "permits missing: 1001990000 needs 01011 (Phytosanitary certificate)",
        ),
        (
            json!({"format": "kz.export-declaration", "document": kz_no_phyto, "recipient_country": "RU", "recipient_authority": "FCS"}),
            "permits missing: 1001990000 needs 01011",
        ),
        (
            json!({"format": "eaeu.export-declaration", "document": "<a><b></a>", "recipient_country": "RU"}),
            "document:1:",
        ),
        (
            json!({"format": "eaeu.export-declaration", "document": net::SAMPLE, "recipient_country": "XX"}),
            "recipient_country: XX is not a state in the trust space",
        ),
        (
            json!({"format": "eaeu.export-declaration", "document": net::SAMPLE}),
            "recipient_country: required",
        ),
        (
            json!({"format": "no.such-format", "document": net::SAMPLE, "recipient_country": "RU"}),
            "format: unknown format",
        ),
        (
            json!({"format": "eaeu.export-declaration", "document": "<?xml version=\"1.0\"?><!DOCTYPE d [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><d>&x;</d>", "recipient_country": "RU"}),
            "DOCTYPE",
        ),
        (json!({"format": 1}), "format"),
    ];
    for (body, expected) in cases {
        let (status, v) = net.http("KZ", "POST", "/v1/messages", Some(&body));
        assert_eq!(status, 400, "{body}: {v}");
        let msg = v["error"].as_str().unwrap_or_default();
        assert!(msg.contains(expected), "expected {expected:?} in {msg:?}");
    }
    assert_eq!(net.metric("KZ", "outbox_messages"), 0);
    assert_eq!(net.metric("KZ", "submitted_total"), 0);
    // Unknown message ids are 404 / 400, not errors of the node.
    let (s, _) = net.http(
        "KZ",
        "GET",
        &format!("/v1/messages/urn:uuid:{}", uuid::Uuid::new_v4()),
        None,
    );
    assert_eq!(s, 404);
    let (s, _) = net.http("KZ", "GET", "/v1/messages/not-an-id", None);
    assert_eq!(s, 400);
}

#[test]
fn a_full_outbox_answers_429_and_a_parked_message_can_be_requeued() {
    // Backoff long enough that the three are still queued when the fourth comes, even on a
    // slow machine (a message parked dead leaves the outbox).
    let extra = "\n[limits]\nmax_queue = 3\n[relay]\nmax_attempts = 2\nmin_backoff_ms = 5000\nmax_backoff_ms = 5000\n";
    let mut net = Net::init("KZ,RU", "", "", 19400, extra);
    net.start("KZ");
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(net.submit("KZ", "RU", None).expect("accepted"));
    }
    let (status, v) = net
        .submit("KZ", "RU", None)
        .expect_err("the fourth is over max_queue");
    assert_eq!(status, 429, "{v}");
    // RU never came up: after two attempts each message is dead.
    assert!(
        wait_until(SETTLE, || net.metric("KZ", "dead_total") == 3),
        "{}",
        net.log("KZ")
    );
    assert_eq!(
        net.states("KZ", &ids[0]).last().map(String::as_str),
        Some("dead")
    );
    let (_, parked) = net.admin("KZ", "GET", "/admin/parked", None);
    assert_eq!(parked["messages"].as_array().map(Vec::len), Some(3));
    // Room again; the operator requeues one once RU is up.
    net.start("RU");
    let (status, v) = net.admin(
        "KZ",
        "POST",
        &format!("/admin/messages/{}/requeue", ids[0]),
        None,
    );
    assert_eq!(status, 200, "{v}");
    assert!(wait_until(SETTLE, || net
        .states("KZ", &ids[0])
        .last()
        .map(String::as_str)
        == Some("recognised")));
    let (status, _) = net.admin(
        "KZ",
        "POST",
        &format!("/admin/messages/{}/requeue", ids[0]),
        None,
    );
    assert_eq!(status, 404, "no longer parked");
}

#[test]
fn the_multi_state_demo_delivers_everything_through_the_window_service() {
    // Five members and the hub as processes; submissions, status and the event stream go
    // through the Window gRPC service; some routes pass through the hub.
    net::claim_ports(19800, 6);
    let dir = tempfile::tempdir().expect("dir");
    let stdout = crate::demo_of_twelve(dir.path(), "19800", &[]);
    assert!(
        stdout.contains("accepted by hub EEC"),
        "the timelines show the hub: {stdout}"
    );
    assert!(
        stdout.contains("with a 64 MiB attachment"),
        "one message carries a file through the hub: {stdout}"
    );
}

#[test]
fn a_trust_space_update_during_traffic_applies_whole_and_downgrades_are_refused() {
    let mut net = Net::init("KZ,RU", "EEC", "", 20100, "");
    for s in ["KZ", "RU", "EEC"] {
        net.configure(s, "trust_refresh_seconds = 1");
    }
    for s in ["KZ", "RU", "EEC"] {
        net.start(s);
    }
    assert_eq!(net.metric("RU", "trust_space_version"), 1);

    // Traffic from KZ to RU throughout.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let sent = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let port = net.http_port("KZ");
    let sender = {
        let (stop, sent) = (stop.clone(), sent.clone());
        std::thread::spawn(move || {
            let body = json!({"format": "eaeu.export-declaration", "document": net::SAMPLE, "recipient_country": "RU"});
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let (status, v) = net::http(port, "POST", "/v1/messages", Some(&body));
                if status == 202 {
                    let id = v["messages"][0]["message_id"]
                        .as_str()
                        .expect("id")
                        .to_owned();
                    sent.lock().expect("lock").push(id);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(700));

    // Version 2 stops RU recognising KZ's export declarations; the Commission publishes it at
    // the hub.
    let d = net.dir.path().to_path_buf();
    let v2 = crate::phytosanitary_only_trust_space(&net);
    let v1 = std::fs::read(d.join("trust-space.xml")).expect("v1");
    net.publish_trust("2", &v2);
    assert!(
        wait_until(SETTLE, || net.metric("RU", "trust_space_version") == 2
            && net.metric("KZ", "trust_space_version") == 2),
        "the update did not reach the members: {}",
        net.log("RU")
    );
    std::thread::sleep(Duration::from_millis(700));
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    sender.join().expect("sender");
    assert!(wait_until(SETTLE, || net.metric("KZ", "outbox_messages") == 0));

    // Every message was judged under one version or the other, whole: recognised under v1, or
    // rejected as not recognised under v2 — never anything in between.
    let sent = sent.lock().expect("lock").clone();
    let (mut recognised, mut rejected) = (0, 0);
    for id in &sent {
        let states = net.states("RU", id);
        match states.last().map(String::as_str) {
            Some("recognised") => recognised += 1,
            Some("rejected") => {
                let (_, v) = net.http("RU", "GET", &format!("/v1/messages/{id}"), None);
                let note = v["history"]
                    .as_array()
                    .and_then(|h| h.last())
                    .map(|t| t["note"].to_string())
                    .unwrap_or_default();
                assert!(note.contains("document-not-recognised"), "{id}: {note}");
                rejected += 1;
            }
            other => panic!("{id}: {other:?} {states:?}"),
        }
    }
    assert!(
        recognised > 0 && rejected > 0,
        "{recognised} recognised, {rejected} rejected"
    );
    // The last messages were judged under v2.
    let last = sent.last().expect("some sent");
    assert_eq!(
        net.states("RU", last).last().map(String::as_str),
        Some("rejected")
    );

    // Putting version 1 back is a downgrade: refused, version 2 stays in force, also after a
    // restart of RU (it keeps the applied version in its store).
    std::fs::write(d.join("trust-space.xml"), v1).expect("downgrade");
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(net.metric("EEC", "trust_space_version"), 2);
    assert_eq!(net.metric("RU", "trust_space_version"), 2);
    net.stop("RU");
    net.start("RU");
    assert_eq!(net.metric("RU", "trust_space_version"), 2);

    // Version 3 recognises KZ's declarations again; the operator has the quarantine looked at
    // again, and the rejected messages move to the inbox.
    let (_, q) = net.admin("RU", "GET", "/admin/quarantine", None);
    assert_eq!(q["messages"].as_array().map(Vec::len), Some(rejected));
    net.publish_trust("3", &d.join("trust-space.toml"));
    assert!(wait_until(SETTLE, || net
        .metric("RU", "trust_space_version")
        == 3));
    let before = net.inbox("RU").len();
    // `tereze admin recognise` judges again and releases (it once judged without releasing).
    let (code, out) = net.admin_cli("RU", &["recognise"]);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains(&format!("recognised now: {rejected}")),
        "{out}"
    );
    assert_eq!(net.inbox("RU").len(), before + rejected);
    assert_eq!(
        net.states("RU", last).last().map(String::as_str),
        Some("recognised")
    );
    let (_, q) = net.admin("RU", "GET", "/admin/quarantine", None);
    assert_eq!(q["messages"].as_array().map(Vec::len), Some(0));
}

#[test]
fn a_state_added_by_a_trust_space_update_is_relayed_to_without_a_restart() {
    let mut net = Net::init("KZ,RU,BY", "EEC", "", 20350, "");
    for s in ["KZ", "RU", "BY", "EEC"] {
        net.configure(s, "trust_refresh_seconds = 1");
    }
    let d = net.dir.path().to_path_buf();
    let source = std::fs::read_to_string(d.join("trust-space.toml")).expect("source");
    // Version 2 does not list Belarus yet.
    let start = source.find("[[state]]\ncode = \"BY\"").expect("BY's entry");
    let end = start
        + 1
        + source[start + 1..]
            .find("[[state]]")
            .expect("an entry after BY's");
    let without_by = format!("{}{}", &source[..start], &source[end..]);
    assert!(!without_by.contains("code = \"BY\""));
    std::fs::write(d.join("v2.toml"), without_by).expect("write");
    net.publish_trust("2", &d.join("v2.toml"));
    net.start("EEC");
    net.start("KZ");
    assert_eq!(net.metric("KZ", "trust_space_version"), 2);
    let (status, v) = net.submit("KZ", "BY", None).expect_err("BY is unknown");
    assert_eq!(status, 400, "{v}");

    // Version 3 adds Belarus: KZ starts relaying to it without a restart.
    net.publish_trust("3", &d.join("trust-space.toml"));
    assert!(
        wait_until(SETTLE, || net.metric("KZ", "trust_space_version") == 3),
        "{}",
        net.log("KZ")
    );
    net.start("BY");
    let id = net.submit("KZ", "BY", None).expect("BY is known now");
    assert!(
        wait_until(SETTLE, || net.states("BY", &id).last().map(String::as_str)
            == Some("recognised")),
        "{:?} {}",
        net.states("KZ", &id),
        net.log("KZ")
    );
    assert!(wait_until(SETTLE, || net
        .states("KZ", &id)
        .iter()
        .any(|s| s == "delivered")));
    assert!(net.log("KZ").contains("relay workers started"));
}

#[test]
fn the_inbox_is_read_page_by_page_with_a_cursor_without_acknowledging() {
    let mut net = Net::init("KZ,RU", "", "", 25150, "");
    net.start("KZ");
    net.start("RU");
    let sent: Vec<String> = (0..3)
        .map(|_| net.submit("KZ", "RU", None).expect("submitted"))
        .collect();
    assert!(
        wait_until(SETTLE, || net.inbox_ids("RU").len() == sent.len()),
        "{}",
        net.log("RU")
    );
    let arrived = net.inbox_ids("RU");
    // One at a time, each page after the `next` of the one before; then nothing more, and
    // the cursor stays where it was.
    let mut read = Vec::new();
    let mut next = serde_json::Value::Null;
    loop {
        let path = match next.as_str() {
            Some(c) => format!("/v1/inbox?limit=1&after={c}"),
            None => "/v1/inbox?limit=1".to_owned(),
        };
        let (status, v) = net.http("RU", "GET", &path, None);
        assert_eq!(status, 200, "{v}");
        let page = v["messages"].as_array().cloned().unwrap_or_default();
        assert!(page.len() <= 1, "{v}");
        let Some(m) = page.first() else {
            assert_eq!(v["next"], next, "an empty page keeps the cursor");
            break;
        };
        read.push(m["message_id"].as_str().expect("id").to_owned());
        assert!(v["next"].is_string(), "{v}");
        next = v["next"].clone();
        assert!(read.len() <= sent.len(), "the cursor goes round: {read:?}");
    }
    assert_eq!(read, arrived, "every message once, in arrival order");
    assert_eq!(net.inbox_ids("RU"), arrived, "reading took nothing out");
    // A later message comes after the cursor kept.
    let later = net.submit("KZ", "RU", None).expect("submitted");
    let cursor = next.as_str().expect("cursor").to_owned();
    let mut v = serde_json::Value::Null;
    assert!(wait_until(SETTLE, || {
        (_, v) = net.http("RU", "GET", &format!("/v1/inbox?after={cursor}"), None);
        v["messages"].as_array().is_some_and(|a| !a.is_empty())
    }));
    assert_eq!(v["messages"][0]["message_id"], later.as_str(), "{v}");
    assert_eq!(v["messages"].as_array().map(Vec::len), Some(1), "{v}");
    // The same over gRPC: InboxPull pages on `after` and answers `next`.
    let arrived = net.inbox_ids("RU");
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            use tereze_proto::InboxPullRequest;
            let mut ru = net::window(net.window_port("RU")).await;
            let mut read = Vec::new();
            let mut after = String::new();
            loop {
                let page = ru
                    .inbox_pull(InboxPullRequest {
                        limit: 2,
                        after: after.clone(),
                    })
                    .await
                    .expect("pulled")
                    .into_inner();
                if page.messages.is_empty() {
                    assert_eq!(page.next, after, "an empty page keeps the cursor");
                    break;
                }
                read.extend(page.messages.into_iter().map(|m| m.message_id));
                after = page.next;
                assert!(read.len() <= arrived.len(), "{read:?}");
            }
            assert_eq!(read, arrived);
            let refused = ru
                .inbox_pull(InboxPullRequest {
                    limit: 0,
                    after: "next".into(),
                })
                .await
                .expect_err("not a cursor");
            assert_eq!(refused.code(), tonic::Code::InvalidArgument);
            assert!(refused.message().starts_with("after: "), "{refused:?}");
        });
    // Something that is not a cursor is refused, naming the parameter.
    for bad in ["abc", "-1", "1.5", "99999999999999999999999"] {
        let (status, v) = net.http("RU", "GET", &format!("/v1/inbox?after={bad}"), None);
        assert_eq!(status, 400, "{bad}: {v}");
        assert!(
            v["error"]
                .as_str()
                .unwrap_or_default()
                .starts_with("after: "),
            "{v}"
        );
    }
}

#[test]
fn requeue_refuses_a_message_past_its_signed_expiry_and_sends_one_within_it() {
    // RU is down: a message with a one-second TTL expires at its second attempt; one with the
    // default TTL dies after three attempts, its signed expiry a day away.
    let extra = "\n[relay]\nmax_attempts = 3\nmin_backoff_ms = 1500\nmax_backoff_ms = 1500\n";
    let mut net = Net::init("KZ,RU", "", "", 25610, extra);
    net.start("KZ");
    let body = json!({
        "format": "eaeu.export-declaration",
        "document": net::SAMPLE,
        "recipient_country": "RU",
        "ttl_seconds": 1,
    });
    let (status, v) = net.http("KZ", "POST", "/v1/messages", Some(&body));
    assert_eq!(status, 202, "{v}");
    let expired = v["messages"][0]["message_id"]
        .as_str()
        .expect("id")
        .to_owned();
    let dead = net.submit("KZ", "RU", None).expect("accepted");
    let last = |net: &Net, id: &str| net.states("KZ", id).last().cloned().unwrap_or_default();
    assert!(
        wait_until(SETTLE, || last(&net, &expired) == "expired"
            && last(&net, &dead) == "dead"),
        "{} {}\n{}",
        last(&net, &expired),
        last(&net, &dead),
        net.log("KZ")
    );

    // The operator's requeue of the expired one is refused, naming the signed expiry, and
    // changes nothing.
    let (status, v) = net.admin(
        "KZ",
        "POST",
        &format!("/admin/messages/{expired}/requeue"),
        None,
    );
    assert_eq!(status, 409, "{v}");
    let why = v["error"].as_str().unwrap_or_default().to_owned();
    for part in [
        "cannot be requeued",
        "(ExpiresAt)",
        "document-expired",
        "submit the document again",
    ] {
        assert!(why.contains(part), "{part}: {why}");
    }
    assert_eq!(last(&net, &expired), "expired");
    let (code, out) = net.admin_cli("KZ", &["requeue", &expired]);
    assert_eq!(code, 1, "a refusal is a negative answer: {out}");
    assert!(out.contains("409") && out.contains(&why), "{out}");
    // The console is told why instead of offering a button that cannot work.
    let (status, found) = net.admin("KZ", "GET", "/admin/messages?state=expired", None);
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["messages"][0]["message_id"], json!(expired));
    assert_eq!(
        found["messages"][0]["requeue_refused"],
        json!(why),
        "{found}"
    );
    let (_, parked) = net.admin("KZ", "GET", "/admin/parked", None);
    let refused: Vec<(&str, bool)> = parked["messages"]
        .as_array()
        .expect("parked")
        .iter()
        .map(|m| {
            (
                m["message_id"].as_str().unwrap_or_default(),
                m["requeue_refused"].is_string(),
            )
        })
        .collect();
    assert!(
        refused.contains(&(expired.as_str(), true)) && refused.contains(&(dead.as_str(), false)),
        "{parked}"
    );
    let (code, out) = net.admin_cli("KZ", &["message", &expired]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("requeue: refused: "), "{out}");
    let (_, timeline) = net.admin("KZ", "GET", &format!("/admin/messages/{dead}"), None);
    assert!(timeline["requeue_refused"].is_null(), "{timeline}");

    // The dead one, within its expiry, is requeued and reaches RU, recognised.
    net.start("RU");
    let (code, out) = net.admin_cli("KZ", &["requeue", &dead]);
    assert_eq!(code, 0, "{out}");
    assert!(
        wait_until(SETTLE, || last(&net, &dead) == "recognised"),
        "{:?}",
        net.states("KZ", &dead)
    );
    assert_eq!(net.inbox_ids("RU"), [dead]);
}

#[test]
fn a_submission_set_refuses_a_recipient_other_than_its_own_on_both_doors() {
    let mut net = Net::init("KZ,RU,BY", "", "", 25640, "");
    net.start("KZ");
    let set = include_str!("../../../codecs/samples/kz.export-submission/valid-grain.xml");
    let submit = |recipient: &str| {
        net.http(
            "KZ",
            "POST",
            "/v1/messages",
            Some(&json!({
                "format": "kz.export-submission",
                "document": set,
                "recipient_country": recipient,
            })),
        )
    };
    let (status, v) = submit("BY");
    assert_eq!(status, 400, "{v}");
    let err = v["error"].as_str().unwrap_or_default();
    assert!(
        err.starts_with("recipient_country: BY given")
            && err.contains("kz.export-submission sends its messages to RU"),
        "{err}"
    );
    assert_eq!(net.metric("KZ", "outbox_messages"), 0, "nothing queued");
    // Empty, or the set's own recipient: each message goes where the set says.
    for recipient in ["", "RU"] {
        let (status, v) = submit(recipient);
        assert_eq!(status, 202, "{recipient:?}: {v}");
        let messages = v["messages"].as_array().expect("messages");
        assert_eq!(messages.len(), 3, "{v}");
        assert!(
            messages.iter().all(|m| m["recipient_country"] == "RU"),
            "{v}"
        );
    }

    // The same on the Window gRPC door.
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            use tereze_proto::SubmitRequest;
            let mut window = net::window(net.window_port("KZ")).await;
            let request = |recipient: &str| SubmitRequest {
                format: "kz.export-submission".into(),
                document: set.as_bytes().to_vec(),
                recipient_country: recipient.into(),
                ..Default::default()
            };
            let refused = window
                .submit(request("BY"))
                .await
                .expect_err("another recipient");
            assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
            assert_eq!(refused.message(), err);
            let taken = window.submit(request("")).await.expect("accepted");
            assert_eq!(taken.into_inner().messages.len(), 3);
        });
    assert_eq!(net.metric("KZ", "outbox_messages"), 9);
}

#[test]
fn concurrent_submissions_never_queue_past_max_queue() {
    // RU is down and the first retry a minute away: everything accepted stays queued.
    let extra =
        "\n[limits]\nmax_queue = 20\n[relay]\nmin_backoff_ms = 60000\nmax_backoff_ms = 60000\n";
    let mut net = Net::init("KZ,RU", "", "", 25670, extra);
    net.start("KZ");
    let port = net.http_port("KZ");
    let set = include_str!("../../../codecs/samples/kz.export-submission/valid-grain.xml");
    let single = json!({
        "format": "eaeu.export-declaration",
        "document": net::SAMPLE,
        "recipient_country": "RU",
    });
    let three = json!({"format": "kz.export-submission", "document": set});
    // 24 submitters at once, singles and "submit once" sets of three.
    let start = std::sync::Arc::new(std::sync::Barrier::new(24));
    let submitters: Vec<_> = (0..24)
        .map(|i| {
            let body = if i % 2 == 0 {
                single.clone()
            } else {
                three.clone()
            };
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                (0..3)
                    .map(|_| net::http(port, "POST", "/v1/messages", Some(&body)))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut accepted = 0;
    let mut refusals = Vec::new();
    for answers in submitters {
        for (status, v) in answers.join().expect("submitter") {
            match status {
                202 => accepted += v["messages"].as_array().map_or(0, Vec::len),
                429 => refusals.push(v["error"].as_str().unwrap_or_default().to_owned()),
                _ => panic!("{status} {v}"),
            }
        }
    }
    // Full means a set of three no longer fits; never past the limit.
    assert!(
        (18..=20).contains(&accepted),
        "{accepted} messages accepted"
    );
    assert!(!refusals.is_empty(), "72 submissions cannot all fit");
    for err in &refusals {
        assert!(err.contains("limits.max_queue = 20"), "{err}");
    }
    assert_eq!(net.metric("KZ", "outbox_messages"), accepted as u64);
    let (status, queued) = net.admin("KZ", "GET", "/admin/messages?state=queued&limit=1000", None);
    assert_eq!(status, 200, "{queued}");
    assert_eq!(
        queued["messages"].as_array().map(Vec::len),
        Some(accepted),
        "the store holds what was acknowledged, no more"
    );
}

#[test]
fn a_hub_takes_no_more_than_its_max_queue_from_one_batch() {
    // KZ → KG goes through EEC. KZ queues twelve while EEC is down, so its first call to EEC
    // carries them all; KG is down, so what EEC takes stays in its outbox.
    let extra = "\n[relay]\nmax_attempts = 1000\nmin_backoff_ms = 300\nmax_backoff_ms = 1000\n";
    let mut net = Net::init("KZ,RU,KG", "EEC", "KG", 25710, extra);
    let hub_config = net.node_dir("EEC").join("node.toml");
    let mut text = std::fs::read_to_string(&hub_config).expect("config");
    text.push_str("\n[limits]\nmax_queue = 5\n");
    std::fs::write(&hub_config, text).expect("config");
    net.start("KZ");
    let ids: Vec<String> = (0..12)
        .map(|_| net.submit("KZ", "KG", None).expect("accepted"))
        .collect();
    net.start("EEC");
    let sent = |net: &Net| {
        ids.iter()
            .filter(|id| net.states("KZ", id).contains(&"sent".to_owned()))
            .count()
    };
    assert!(
        wait_until(SETTLE, || sent(&net) >= 5),
        "{} sent\n{}",
        sent(&net),
        net.log("EEC")
    );
    // Held at five while KZ keeps offering the other seven.
    for _ in 0..20 {
        let held = net.metric("EEC", "outbox_messages");
        assert!(held <= 5, "the hub holds {held}");
        std::thread::sleep(Duration::from_millis(150));
    }
    assert_eq!(sent(&net), 5);
    assert!(
        net.log("KZ").contains("hub-queue-full"),
        "the others were refused for now"
    );
    // KG comes up: the hub forwards, makes room, and all twelve arrive once.
    net.start("KG");
    assert!(
        wait_until(SETTLE, || ids
            .iter()
            .all(|id| net.states("KZ", id).contains(&"recognised".to_owned()))),
        "{}",
        net.log("KZ")
    );
    assert_eq!(net.assert_exactly_once("KG", &ids), 12);
}

/// The arrival's history on `state`: its note and when it was written (Unix ms).
fn arrival(net: &Net, state: &str, id: &str) -> (String, i64) {
    let (_, v) = net.http(state, "GET", &format!("/v1/messages/{id}"), None);
    v["history"]
        .as_array()
        .and_then(|h| h.iter().find(|t| t["state"] == json!("received")))
        .map(|t| {
            (
                t["note"].as_str().unwrap_or_default().to_owned(),
                t["at_ms"].as_i64().unwrap_or_default(),
            )
        })
        .unwrap_or_else(|| panic!("{state} holds no arrival of {id}: {v}"))
}

/// The judged time a note gives (`…; judged at TIME (SOURCE)…`): the time and the source.
fn judged_in(note: &str) -> (chrono::DateTime<chrono::Utc>, String) {
    let (_, judged) = note
        .split_once("; judged at ")
        .unwrap_or_else(|| panic!("no judged time in {note:?}"));
    let (at, source) = judged
        .split_once(" (")
        .and_then(|(at, rest)| Some((at, rest.split_once(')')?.0)))
        .unwrap_or_else(|| panic!("no source in {note:?}"));
    let at = chrono::DateTime::parse_from_rfc3339(at)
        .unwrap_or_else(|e| panic!("{at:?} in {note:?}: {e}"))
        .with_timezone(&chrono::Utc);
    (at, source.to_owned())
}

#[test]
fn a_release_from_the_quarantine_records_the_judged_time_of_the_second_look() {
    let mut net = Net::init("KZ,RU,KG", "EEC", "KG", 30100, "");
    for s in ["KZ", "RU", "EEC"] {
        net.configure(s, "trust_refresh_seconds = 1");
    }
    // Version 2 recognises phytosanitary certificates only: the export declaration is
    // rejected and kept in RU's quarantine.
    let d = net.dir.path().to_path_buf();
    let v2 = crate::phytosanitary_only_trust_space(&net);
    net.publish_trust("2", &v2);
    for s in ["EEC", "KZ", "RU"] {
        net.start(s);
    }
    let id = net.submit("KZ", "RU", None).expect("accepted");
    assert!(
        wait_until(SETTLE, || net
            .states("RU", &id)
            .contains(&"rejected".into())),
        "not rejected: {:?}\n{}",
        net.states("RU", &id),
        net.log("RU")
    );
    let (note, arrived_ms) = arrival(&net, "RU", &id);
    assert!(note.starts_with("from KZ; judged at "), "{note}");

    // Version 3 recognises it again; the operator has the quarantine judged again.
    net.publish_trust("3", &d.join("trust-space.toml"));
    assert!(
        wait_until(SETTLE, || net.metric("RU", "trust_space_version") == 3),
        "{}",
        net.log("RU")
    );
    let (code, out) = net.admin_cli("RU", &["recognise"]);
    assert_eq!(code, 0, "{out}");
    let (_, v) = net.http("RU", "GET", &format!("/v1/messages/{id}"), None);
    let release = v["history"]
        .as_array()
        .and_then(|h| h.iter().rev().find(|t| t["state"] == json!("recognised")))
        .and_then(|t| t["note"].as_str())
        .unwrap_or_else(|| panic!("not released: {v}"))
        .to_owned();
    assert!(
        release.starts_with("recognised on a second look under trust space v3"),
        "{release}"
    );
    // Judged as at its stored arrival, not at the time of the second look.
    let (at, source) = judged_in(&release);
    assert_eq!(source, "first stored by this node", "{release}");
    assert_eq!(at.timestamp_millis(), arrived_ms, "{release}");
}
