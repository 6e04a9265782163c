//! The event log read by the national system (issue 26, docs/notifications.md): the HTTP
//! long poll from a cursor, `Window.Subscribe` with `after` across a restart, and a webhook
//! that gets every event in order, signed, through a failing, stopped and restarted receiver
//! and a `kill -9` of the node, and over HTTPS only to a receiver its CA vouches for. Ports
//! 30800–31190.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::Value;
use tereze_proto::SubscribeRequest;
use tereze_testkit::webhook::WebhookReceiver;

use crate::net::{self, Net};

/// `GET /v1/events` on `state`'s national door.
fn events(net: &Net, state: &str, query: &str) -> (u16, Value) {
    net.http(state, "GET", &format!("/v1/events?{query}"), None)
}

fn seqs(v: &Value) -> Vec<u64> {
    v["events"]
        .as_array()
        .map(|a| a.iter().filter_map(|e| e["seq"].as_u64()).collect())
        .unwrap_or_default()
}

#[test]
fn the_long_poll_answers_waits_times_out_and_refuses_bad_cursors() {
    let mut net = Net::init(
        "KZ,RU",
        "",
        "",
        30800,
        "\n[notifications]\nmax_events = 4\ncompact_seconds = 1\n",
    );
    net.start("KZ");
    net.start("RU");
    let id = net.submit("KZ", "RU", None).expect("KZ takes it");
    assert!(
        net::wait_until(Duration::from_secs(30), || net
            .states("KZ", &id)
            .contains(&"recognised".to_owned())),
        "not delivered"
    );
    // Answers at once with what is there: this message's transitions, in order.
    let (status, v) = events(&net, "KZ", "after=0&limit=1000");
    let v = if status == 416 {
        // Compaction (max_events = 4) may already have run: read from the oldest kept.
        let oldest = v["oldest"].as_u64().expect("the oldest kept is named");
        let (status, v) = events(&net, "KZ", &format!("after={}", oldest - 1));
        assert_eq!(status, 200, "{v}");
        v
    } else {
        assert_eq!(status, 200, "{v}");
        v
    };
    let got = seqs(&v);
    assert!(!got.is_empty(), "{v}");
    assert!(got.windows(2).all(|w| w[1] == w[0] + 1), "gaps: {got:?}");
    let newest = v["newest"].as_u64().expect("newest");
    assert_eq!(v["next"].as_u64(), got.last().copied());
    let last = v["events"]
        .as_array()
        .and_then(|a| a.last())
        .cloned()
        .unwrap_or_default();
    assert_eq!(last["kind"], "message", "{last}");
    assert_eq!(last["message_id"], Value::String(id.clone()), "{last}");
    assert_eq!(last["state"], "recognised", "{last}");

    // Times out: nothing after the newest within the wait, an empty answer, same cursor.
    let started = Instant::now();
    let (status, v) = events(&net, "KZ", &format!("after={newest}&wait=1"));
    assert_eq!(status, 200, "{v}");
    assert!(seqs(&v).is_empty(), "{v}");
    assert_eq!(v["next"].as_u64(), Some(newest));
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "did not wait"
    );

    // Waits: a poll open before the next submission answers with its events.
    let port = net.http_port("KZ");
    let poll = std::thread::spawn(move || {
        net::http(
            port,
            "GET",
            &format!("/v1/events?after={newest}&wait=30"),
            None,
        )
    });
    std::thread::sleep(Duration::from_millis(500));
    let second = net.submit("KZ", "RU", None).expect("KZ takes it");
    let (status, v) = poll.join().expect("joined");
    assert_eq!(status, 200, "{v}");
    assert_eq!(seqs(&v).first(), Some(&(newest + 1)), "{v}");
    assert_eq!(v["events"][0]["message_id"], Value::String(second), "{v}");

    // A cursor past the end is refused, naming the newest.
    let (status, v) = events(&net, "KZ", &format!("after={}", newest + 1_000));
    assert_eq!(status, 416, "{v}");
    assert!(v["newest"].as_u64().is_some(), "{v}");

    // A compacted cursor is refused, naming the oldest kept (at most 4 kept).
    assert!(
        net::wait_until(Duration::from_secs(10), || events(&net, "KZ", "after=0").0
            == 416),
        "the log was never compacted"
    );
    let (_, v) = events(&net, "KZ", "after=0");
    let oldest = v["oldest"].as_u64().expect("oldest");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("compacted"),
        "{v}"
    );
    let (status, v) = events(&net, "KZ", &format!("after={}", oldest - 1));
    assert_eq!(status, 200, "{v}");
    assert_eq!(seqs(&v).first(), Some(&oldest));

    // Bad input and no credentials.
    for bad in ["after=x", "limit=0", "limit=5000", "wait=61"] {
        let (status, v) = events(&net, "KZ", bad);
        assert_eq!(status, 400, "{bad}: {v}");
    }
    let (status, _) = net::http_as(port, "GET", "/v1/events", None, None);
    assert_eq!(status, 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn subscribe_with_after_replays_the_log_and_resumes_across_a_restart() {
    let mut net = Net::init("KZ,RU", "", "", 30830, "");
    net.start("KZ");
    net.start("RU");
    let first = net.submit("KZ", "RU", None).expect("KZ takes it");
    assert!(
        net::wait_until(Duration::from_secs(30), || net
            .states("KZ", &first)
            .contains(&"recognised".to_owned())),
        "not delivered"
    );
    // Replays from the start: the first message's transitions, numbered without gaps.
    let mut w = net::window(net.window_port("KZ")).await;
    let mut stream = w
        .subscribe(SubscribeRequest {
            message_ids: vec![],
            after: Some(0),
        })
        .await
        .expect("subscribed")
        .into_inner();
    let mut seen = Vec::new();
    while !seen.iter().any(|e: &tereze_proto::StatusEvent| {
        e.message_id == first
            && e.transition
                .as_ref()
                .is_some_and(|t| t.state == "recognised")
    }) {
        let e = tokio::time::timeout(Duration::from_secs(20), stream.message())
            .await
            .expect("an event within 20 s")
            .expect("stream open")
            .expect("an event");
        seen.push(e);
    }
    let numbers: Vec<u64> = seen.iter().map(|e| e.seq).collect();
    assert_eq!(numbers, (1..=numbers.len() as u64).collect::<Vec<_>>());
    let cursor = *numbers.last().expect("events");
    drop(stream);

    // The node restarts; the national system resumes after the last sequence it saw.
    net.stop("KZ");
    net.start("KZ");
    let second = net.submit("KZ", "RU", None).expect("KZ takes it");
    let mut w = net::window(net.window_port("KZ")).await;
    let mut stream = w
        .subscribe(SubscribeRequest {
            message_ids: vec![second.clone()],
            after: Some(cursor),
        })
        .await
        .expect("subscribed")
        .into_inner();
    let next = tokio::time::timeout(Duration::from_secs(20), stream.message())
        .await
        .expect("an event within 20 s")
        .expect("stream open")
        .expect("an event");
    assert_eq!(next.message_id, second);
    assert!(next.seq > cursor, "{} after {cursor}", next.seq);
    assert!(!next.kind.is_empty());

    // A cursor past the end is refused at once.
    let past = w
        .subscribe(SubscribeRequest {
            message_ids: vec![],
            after: Some(1_000_000),
        })
        .await
        .expect_err("refused");
    assert_eq!(past.code(), tonic::Code::OutOfRange, "{past}");
}

/// Writes KZ's webhook `erp` (the secret file owner-only) after the nodes' configuration.
fn add_webhook(net: &Net, url: &str, secret: &str) {
    add_named_webhook(
        net,
        "erp",
        url,
        secret,
        "max_batch = 3\ntimeout_seconds = 2\n",
    );
}

/// Writes a webhook of KZ with `extra` lines in its table.
fn add_named_webhook(net: &Net, name: &str, url: &str, secret: &str, extra: &str) {
    let dir = net.node_dir("KZ");
    let secret_file = dir.join(format!("{name}.secret"));
    std::fs::write(&secret_file, secret).expect("secret");
    std::fs::set_permissions(
        &secret_file,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("chmod");
    let p = dir.join("node.toml");
    let mut text = std::fs::read_to_string(&p).expect("config");
    text.push_str(&format!(
        "\n[[notifications.webhooks]]\nname = \"{name}\"\nurl = \"{url}\"\nsecret_file = \"{name}.secret\"\n{extra}"
    ));
    std::fs::write(&p, text).expect("config");
}

#[test]
fn a_webhook_gets_every_event_in_order_signed_through_failures_and_kill9() {
    let secret = "a shared secret of the webhook, never logged";
    let mut receiver = WebhookReceiver::start();
    let mut net = Net::init("KZ,RU", "", "", 30860, "");
    add_webhook(&net, &receiver.url(), secret);
    net.start("KZ");
    net.start("RU");
    let mut ids = Vec::new();
    // The receiver fails for a while: POSTs are repeated until it answers 200.
    receiver.fail(true);
    ids.push(net.submit("KZ", "RU", None).expect("KZ takes it"));
    assert!(
        net::wait_until(Duration::from_secs(20), || receiver.refused() >= 2),
        "no retries after 500s"
    );
    receiver.fail(false);
    // The receiver is down: connections refused, then it is back.
    receiver.stop();
    ids.push(net.submit("KZ", "RU", None).expect("KZ takes it"));
    std::thread::sleep(Duration::from_secs(2));
    receiver.restart();
    // The node is killed mid-flow and restarted: nothing lost.
    ids.push(net.submit("KZ", "RU", None).expect("KZ takes it"));
    net.kill9("KZ");
    net.start("KZ");
    ids.push(net.submit("KZ", "RU", None).expect("KZ takes it"));
    for id in &ids {
        assert!(
            net::wait_until(Duration::from_secs(60), || net
                .states("KZ", id)
                .contains(&"recognised".to_owned())),
            "{id} not delivered"
        );
    }
    let (_, v) = events(&net, "KZ", "after=0&limit=1000");
    let newest = v["newest"].as_u64().expect("newest");
    assert!(
        net::wait_until(Duration::from_secs(60), || {
            let got: BTreeSet<u64> = receiver.posts().iter().flat_map(|p| p.seqs()).collect();
            got.len() as u64 == newest
        }),
        "the webhook did not get every event: {:?} of {newest}",
        receiver
            .posts()
            .iter()
            .map(|p| p.seqs())
            .collect::<Vec<_>>()
    );
    let posts = receiver.posts();
    // In order, nothing skipped: every POST continues where an earlier one ended, or repeats
    // the one not acknowledged before the kill.
    let mut high = 0u64;
    for p in &posts {
        let s = p.seqs();
        assert!(!s.is_empty() && s.len() <= 3, "{s:?}");
        assert!(s.windows(2).all(|w| w[1] == w[0] + 1), "{s:?}");
        assert!(s[0] <= high + 1, "skipped from {high} to {s:?}");
        high = high.max(*s.last().expect("seq"));
        assert!(p.signed_with(secret.as_bytes()), "bad signature on {s:?}");
        let listed: Vec<String> = s.iter().map(u64::to_string).collect();
        assert_eq!(p.headers.get("x-tereze-sequence"), Some(&listed.join(",")));
    }
    let repeated = posts.iter().map(|p| p.seqs().len()).sum::<usize>() as u64 - newest;
    assert!(
        repeated <= 3,
        "more than one POST repeated: {repeated} events"
    );
    // Each message's transitions reached the receiver.
    let recognised: BTreeSet<String> = posts
        .iter()
        .flat_map(|p| p.json()["events"].as_array().cloned().unwrap_or_default())
        .filter(|e| e["state"] == "recognised")
        .filter_map(|e| e["message_id"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(recognised, ids.iter().cloned().collect::<BTreeSet<_>>());
    // An independent check of the signature: openssl's own HMAC over the body.
    let body = net.node_dir("KZ").join("posted.json");
    std::fs::write(&body, &posts[0].body).expect("body");
    let out = std::process::Command::new("openssl")
        .args(["dgst", "-sha256", "-hmac", secret, "-r"])
        .arg(&body)
        .output()
        .expect("openssl runs (scripts/setup installs it)");
    let hex = String::from_utf8_lossy(&out.stdout);
    let hex = hex.split_whitespace().next().unwrap_or_default();
    assert_eq!(
        posts[0].headers.get("x-tereze-signature"),
        Some(&format!("sha256={hex}"))
    );
    // The acknowledged sequence is a metric; the secret is in no log.
    assert!(
        net::wait_until(Duration::from_secs(5), || net
            .sample("KZ", "tereze_event_webhook_acknowledged{webhook=\"erp\"}")
            as u64
            == newest),
        "acknowledged metric"
    );
    assert!(!net.log("KZ").contains(secret), "the secret was logged");
}

#[test]
fn a_webhook_over_https_is_delivered_only_to_a_receiver_its_ca_vouches_for() {
    let mut net = Net::init("KZ,RU", "", "", 30900, "");
    // The receiver presents RU's node TLS certificate (it names localhost), issued under RU's
    // development root: KZ's `trusted` webhook names that root, `untrusted` relies on the
    // system's CA bundle, which does not hold it.
    let receiver = WebhookReceiver::start_tls(
        &net.node_dir("RU").join("node-tls.pem"),
        &net.node_dir("RU").join("node-tls.key"),
    );
    let root = net.node_dir("RU").join("tls-root.pem");
    let secret = "the https webhook's secret";
    add_named_webhook(
        &net,
        "trusted",
        &receiver.url(),
        secret,
        &format!("ca_file = \"{}\"\n", root.display()),
    );
    add_named_webhook(
        &net,
        "untrusted",
        &receiver.url(),
        secret,
        "timeout_seconds = 2\n",
    );
    net.start("KZ");
    net.start("RU");
    let id = net.submit("KZ", "RU", None).expect("KZ takes it");
    assert!(
        net::wait_until(Duration::from_secs(30), || receiver
            .posts()
            .iter()
            .flat_map(|p| p.json()["events"].as_array().cloned().unwrap_or_default())
            .any(
                |e| e["message_id"] == Value::String(id.clone()) && e["state"] == "recognised"
            )),
        "the trusted webhook did not deliver over HTTPS: {}",
        net.log("KZ")
            .lines()
            .filter(|l| l.contains("webhook"))
            .take(5)
            .collect::<Vec<_>>()
            .join("\n")
    );
    let posts = receiver.posts();
    assert!(posts.iter().all(|p| p.signed_with(secret.as_bytes())));
    assert!(
        posts
            .iter()
            .all(|p| p.headers.get("x-tereze-webhook").map(String::as_str) == Some("trusted")),
        "a receiver the CA bundle does not vouch for got a POST"
    );
    assert!(
        net::wait_until(Duration::from_secs(10), || net
            .log("KZ")
            .lines()
            .any(|l| l.contains("untrusted") && l.contains("TLS"))),
        "the refused certificate is not logged"
    );
    assert!(!net.log("KZ").contains(secret), "the secret was logged");
}
