//! Time-stamping between real nodes (issue 26, docs/timestamps.md), with a real RFC 3161
//! authority (`testkit::tsa`, `openssl ts -reply`) listed for KZ in the trust space: messages
//! flow while the authority is down for a minute, the tokens catch up when it is back, the
//! receiver holds verified evidence for every message, and one token the node obtained
//! verifies with `openssl ts -verify` (an independent check). Under KZ's `timestamp_required`
//! the outbox waits for the token, also across a `kill -9`; evidence that does not hold is
//! refused with its code and kept nowhere; evidence obtained later passes through a hub.

use std::process::Command;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::Value;
use tereze_testkit::tsa::TestAuthority;

use crate::net::{wait_until, Net};

const SETTLE: Duration = Duration::from_secs(60);

/// Lists `tsa` for `state` in the development trust space (and its `required` flag), before
/// the nodes start.
fn list_authority(net: &Net, state: &str, tsa: &TestAuthority, required: bool) {
    let p = net.dir.path().join("trust-space.toml");
    let text = std::fs::read_to_string(&p).expect("trust space");
    let code = format!("[[state]]\ncode = \"{state}\"\n");
    let start = text.find(&code).expect("the state's table");
    // The state's block ends where the next state's begins.
    let end = text[start + code.len()..]
        .find("[[state]]")
        .map_or(text.len(), |i| start + code.len() + i);
    let mut out = String::new();
    out.push_str(&text[..start + code.len()]);
    if required {
        out.push_str("timestamp_required = true\n");
    }
    out.push_str(&text[start + code.len()..end]);
    out.push_str(&format!(
        "\n[[state.timestamp_authority]]\nurl = \"{}\"\ncertificates = \"\"\"\n{}\"\"\"\n\n",
        tsa.url(),
        tsa.ca_pem()
    ));
    out.push_str(&text[end..]);
    std::fs::write(&p, out).expect("trust space");
    // With a hub, the nodes read the hub-signed XML made from the TOML source.
    if net.dir.path().join("trust-space.xml").exists() {
        net.publish_trust("1", &p);
    }
}

/// `GET /v1/messages/{id}` at `state`'s node.
fn message(net: &Net, state: &str, id: &str) -> Value {
    let (status, v) = net.http(state, "GET", &format!("/v1/messages/{id}"), None);
    assert_eq!(status, 200, "{state} {id}: {v}");
    v
}

fn evidence(net: &Net, state: &str, id: &str) -> Option<Vec<u8>> {
    message(net, state, id)["evidence"].as_str().map(|b| {
        base64::engine::general_purpose::STANDARD
            .decode(b)
            .expect("base64 evidence")
    })
}

fn notes(net: &Net, state: &str, id: &str) -> Vec<String> {
    message(net, state, id)["history"]
        .as_array()
        .map(|h| {
            h.iter()
                .filter_map(|t| t["note"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn delivered(net: &Net, id: &str) -> bool {
    net.states("KZ", id).contains(&"recognised".to_owned())
}

fn gauge(net: &Net, state: &str, name: &str) -> f64 {
    let (_, v) = net.http(state, "GET", "/metrics", None);
    v.as_str()
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(&format!("tereze_{name} ")))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(f64::NAN)
}

/// The `[timestamping]` table of a node's configuration: a batch waits at most
/// `max_wait_ms`, a request to the authority 2 s, a retry at most `max_backoff_ms`.
fn timestamping(max_wait_ms: u32, max_backoff_ms: u32) -> String {
    format!(
        "\n[timestamping]\nmax_wait_ms = {max_wait_ms}\ntimeout_ms = 2000\nmax_backoff_ms = {max_backoff_ms}\n"
    )
}

/// Waits up to `within` for `state`'s node to have no signature waiting for its token.
fn stamped_all(net: &Net, state: &str, within: Duration) -> bool {
    wait_until(within, || gauge(net, state, "timestamp_pending") == 0.0)
}

/// Asserts that a note in the history of message `id` at `state` starts with `prefix`.
fn assert_noted(net: &Net, state: &str, id: &str, prefix: &str) {
    assert!(
        notes(net, state, id).iter().any(|n| n.starts_with(prefix)),
        "{:?}",
        notes(net, state, id)
    );
}

/// Asserts that `state`'s `/readyz` says, of time-stamping, something containing `needle`.
fn assert_ready_says(net: &Net, state: &str, needle: &str) {
    let (_, ready) = net.http(state, "GET", "/readyz", None);
    assert!(
        ready["checks"]["timestamping"]
            .as_str()
            .is_some_and(|s| s.contains(needle)),
        "{ready}"
    );
}

/// The token and the leaf's path, from the documented encoding (docs/timestamps.md).
fn token_and_path(evidence: &[u8]) -> (Vec<u8>, Vec<tereze_support::merkle::Step>) {
    assert_eq!(&evidence[..5], b"TZTE\x01", "magic and version");
    let len = u32::from_be_bytes(evidence[5..9].try_into().expect("length")) as usize;
    let token = evidence[9..9 + len].to_vec();
    let steps = evidence[9 + len] as usize;
    let mut path = Vec::new();
    for i in 0..steps {
        let at = 10 + len + i * 33;
        let mut sibling = [0u8; 32];
        sibling.copy_from_slice(&evidence[at + 1..at + 33]);
        path.push(tereze_support::merkle::Step {
            sibling_left: evidence[at] == 1,
            sibling,
        });
    }
    assert_eq!(
        evidence.len(),
        10 + len + steps * 33,
        "nothing after the path"
    );
    (token, path)
}

/// The envelope's `SignatureValue` octets, read with plain string search (independent of the
/// node's own reading).
fn signature_value(envelope: &str) -> Vec<u8> {
    let open = envelope.find("SignatureValue").expect("a SignatureValue");
    let from = open + envelope[open..].find('>').expect("tag end") + 1;
    let to = from + envelope[from..].find('<').expect("closing tag");
    let text: String = envelope[from..to]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64 signature value")
}

/// `openssl ts -verify` of the token in `evidence` over the imprint that `envelope`'s
/// signature value and the path lead to, against the authority's CA.
fn openssl_verifies(tsa: &TestAuthority, dir: &std::path::Path, envelope: &str, evidence: &[u8]) {
    let (token, path) = token_and_path(evidence);
    let leaf = tereze_support::merkle::leaf(&signature_value(envelope));
    let root = tereze_support::merkle::root_from_path(&leaf, &path);
    let imprint = openssl::sha::sha256(&root);
    let token_file = dir.join("token.der");
    std::fs::write(&token_file, token).expect("token");
    let out = Command::new("openssl")
        .args(["ts", "-verify", "-token_in", "-in"])
        .arg(&token_file)
        .args(["-digest", &tereze_support::hex::hex(&imprint), "-CAfile"])
        .arg(tsa.ca_path())
        .arg("-untrusted")
        .arg(tsa.tsa_cert_path())
        .output()
        .expect("openssl runs (scripts/setup installs it)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.contains("Verification: OK"),
        "openssl ts -verify: {said}"
    );
}

#[test]
fn authority_down_for_a_minute_delays_only_the_tokens_which_catch_up() {
    let tsa = TestAuthority::new();
    let mut net = Net::init("KZ,RU", "", "", 30400, &timestamping(300, 2000));
    list_authority(&net, "KZ", &tsa, false);
    // RU time-stamps the batch receipts it signs (kept at RU).
    list_authority(&net, "RU", &tsa, false);
    net.start("KZ");
    net.start("RU");

    // With the authority up, a message gets its evidence, and so does the receiver.
    let first = net.submit("KZ", "RU", None).expect("accepted");
    assert!(
        wait_until(SETTLE, || delivered(&net, &first)
            && evidence(&net, "RU", &first).is_some()),
        "no evidence at RU: {:?}\n{}",
        notes(&net, "RU", &first),
        net.log("KZ")
    );
    assert_noted(&net, "KZ", &first, "time-stamped by ");

    // Down for a minute, under a steady load: every message is delivered with its receipt in
    // that minute, none waits for its token.
    tsa.stop();
    let tokens_before = net.metric("KZ", "timestamp_tokens_total");
    let mut sent = Vec::new();
    let down = Instant::now();
    while down.elapsed() < Duration::from_secs(60) {
        sent.push(
            net.submit("KZ", "RU", None)
                .expect("accepted while the authority is down"),
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        wait_until(Duration::from_secs(15), || sent
            .iter()
            .all(|id| delivered(&net, id))),
        "{} of {} delivered while the authority was down",
        sent.iter().filter(|id| delivered(&net, id)).count(),
        sent.len()
    );
    assert_eq!(
        net.metric("KZ", "timestamp_tokens_total"),
        tokens_before,
        "no token while the authority is down"
    );
    assert!(
        gauge(&net, "KZ", "timestamp_pending") >= sent.len() as f64,
        "every message sent meanwhile waits for its token"
    );
    assert!(gauge(&net, "KZ", "timestamp_lag_seconds") >= 30.0);
    assert_ready_says(&net, "KZ", "signatures waiting");

    // Back: the tokens catch up, and the receiver holds verified evidence for every message.
    tsa.start();
    assert!(
        stamped_all(&net, "KZ", Duration::from_secs(120)),
        "the stamper did not catch up:\n{}",
        net.log("KZ")
    );
    assert!(
        wait_until(Duration::from_secs(60), || sent
            .iter()
            .all(|id| evidence(&net, "RU", id).is_some())),
        "{} of {} messages have evidence at RU",
        sent.iter()
            .filter(|id| evidence(&net, "RU", id).is_some())
            .count(),
        sent.len()
    );
    assert!(
        stamped_all(&net, "RU", Duration::from_secs(60)),
        "RU's receipts not stamped:\n{}",
        net.log("RU")
    );
    assert!(
        net.metric("RU", "timestamp_stamped_total") >= 1,
        "RU stamped no receipt batch"
    );
    // Batched: far fewer tokens than messages.
    let tokens = net.metric("KZ", "timestamp_tokens_total") - tokens_before;
    assert!(
        tokens >= 1 && tokens < sent.len() as u64 / 10,
        "{tokens} tokens for {} messages",
        sent.len()
    );
    for id in [&sent[0], &sent[sent.len() / 2], &sent[sent.len() - 1]] {
        assert_eq!(evidence(&net, "RU", id), evidence(&net, "KZ", id), "{id}");
        assert_noted(&net, "RU", id, "time-stamp evidence received from KZ");
    }

    // An independent check of one token the node obtained.
    let id = &sent[sent.len() / 2];
    let inbox = net.inbox("RU");
    let envelope = inbox
        .iter()
        .find(|m| m["message_id"].as_str() == Some(id.as_str()))
        .and_then(|m| m["envelope"].as_str())
        .expect("the message in RU's inbox")
        .to_owned();
    let held = evidence(&net, "RU", id).expect("evidence");
    openssl_verifies(&tsa, net.dir.path(), &envelope, &held);

    // Offline recognition takes the same evidence as the time the signature existed.
    let (env_file, ev_file) = (net.dir.path().join("m.xml"), net.dir.path().join("m.tst"));
    std::fs::write(&env_file, &envelope).expect("write");
    std::fs::write(&ev_file, &held).expect("write");
    let path = |p: &std::path::Path| p.to_str().expect("utf-8").to_owned();
    let trust = path(&net.dir.path().join("trust-space.toml"));
    let (code, out, err) = crate::net::tereze(&[
        "recognise",
        "--trust",
        &trust,
        "--state",
        "RU",
        "--timestamp",
        &path(&ev_file),
        &path(&env_file),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("(time-stamp token "), "{out}");
}

#[test]
fn required_tokens_hold_the_outbox_across_a_kill_and_bad_evidence_is_refused() {
    let tsa = TestAuthority::new();
    let mut net = Net::init("KZ,RU", "", "", 30500, &timestamping(200, 1000));
    list_authority(&net, "KZ", &tsa, true);
    tsa.stop();
    net.start("KZ");
    net.start("RU");
    let ids: Vec<String> = (0..5)
        .map(|_| net.submit("KZ", "RU", None).expect("accepted"))
        .collect();
    // The outbox waits, visibly.
    std::thread::sleep(Duration::from_secs(5));
    for id in &ids {
        assert!(!delivered(&net, id), "{id} went without its token");
        assert!(
            notes(&net, "KZ", id).contains(&"waiting for a time-stamp".to_owned()),
            "{:?}",
            notes(&net, "KZ", id)
        );
    }
    assert_ready_says(&net, "KZ", "required");
    assert!(gauge(&net, "KZ", "timestamp_pending") >= 5.0);

    // A crash while they wait loses nothing: after the restart they are stamped and go.
    net.kill9("KZ");
    tsa.start();
    net.start("KZ");
    assert!(
        wait_until(SETTLE, || ids.iter().all(|id| delivered(&net, id))),
        "not delivered after the authority came back:\n{}",
        net.log("KZ")
    );
    for id in &ids {
        // Sent with the envelope: the receiver kept it in the same commit.
        assert!(evidence(&net, "RU", id).is_some(), "{id}");
        assert_noted(
            &net,
            "RU",
            id,
            "time-stamp evidence received with the envelope",
        );
    }

    // Evidence that does not hold is refused with a clear code and kept nowhere.
    let first = evidence(&net, "RU", &ids[0]).expect("evidence");
    let other = evidence(&net, "RU", &ids[1]).expect("evidence");
    let unknown = format!("urn:uuid:{}", uuid::Uuid::new_v4());
    let items = [
        (ids[0].clone(), b"TZTE\x01garbage".to_vec()),
        // Another message's token and path: another imprint.
        (ids[0].clone(), other),
        (unknown, first.clone()),
        ("not-an-id".to_owned(), first.clone()),
    ];
    let outcomes = tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            let channel =
                crate::net::exchange_channel(&net, "RU", crate::net::node_identity(&net, "KZ"))
                    .await
                    .expect("connects as KZ");
            tereze_proto::exchange_client::ExchangeClient::new(channel)
                .deliver_evidence(tereze_proto::DeliverEvidenceRequest {
                    items: items
                        .iter()
                        .map(|(id, e)| tereze_proto::EvidenceItem {
                            message_id: id.clone(),
                            evidence: e.clone(),
                        })
                        .collect(),
                })
                .await
                .expect("answered")
                .into_inner()
                .outcomes
        });
    let codes: Vec<(String, bool)> = outcomes
        .iter()
        .map(|o| {
            let r = o.refused.as_ref().expect("refused");
            (r.code.clone(), r.transient)
        })
        .collect();
    assert_eq!(
        codes,
        [
            ("evidence-invalid".to_owned(), false),
            ("evidence-invalid".to_owned(), false),
            ("unknown-message".to_owned(), true),
            ("bad-id".to_owned(), false),
        ],
        "{outcomes:?}"
    );
    assert!(
        outcomes[1]
            .refused
            .as_ref()
            .is_some_and(|r| r.reason.starts_with("other-imprint")),
        "{outcomes:?}"
    );
    assert_eq!(evidence(&net, "RU", &ids[0]), Some(first), "kept as it was");
}

/// KZ → RU under a flood of `messages`, time-stamping on (`tsa`) or off: messages delivered
/// per second, and with an authority the tokens it took and how long the last signature
/// waited after the flood was delivered.
fn relay_load(base: u16, tsa: Option<&TestAuthority>, messages: usize) -> (f64, u64, f64) {
    let mut net = Net::init(
        "KZ,RU",
        "",
        "",
        base,
        "\n[timestamping]\nmax_wait_ms = 500\n",
    );
    if let Some(tsa) = tsa {
        list_authority(&net, "KZ", tsa, false);
    }
    net.start("KZ");
    net.start("RU");
    let started = Instant::now();
    // The submitters may overshoot by one each.
    let sent = crate::net::Flood::start(net.http_port("KZ"), "RU", messages, 4)
        .join()
        .len();
    assert!(
        wait_until(Duration::from_secs(600), || net
            .metric("KZ", "delivered_total")
            >= sent as u64),
        "{} of {sent} delivered",
        net.metric("KZ", "delivered_total")
    );
    let delivered = started.elapsed();
    let caught_up = Instant::now();
    if tsa.is_some() {
        assert!(
            stamped_all(&net, "KZ", Duration::from_secs(120)),
            "not stamped"
        );
    }
    (
        sent as f64 / delivered.as_secs_f64(),
        net.metric("KZ", "timestamp_tokens_total"),
        caught_up.elapsed().as_secs_f64(),
    )
}

/// The figures of BENCHMARKS.md's time-stamping rows: delivery throughput with and without
/// time-stamping, and the tokens batching takes. Every message must be delivered and, with
/// the authority, stamped; the figures are printed, not judged.
#[test]
#[ignore = "a measurement (BENCHMARKS.md): cargo test -p tereze --test cluster -- --ignored timestamps::measure"]
fn measure_delivery_with_and_without_time_stamping() {
    let messages = crate::net::setting("TEREZE_TS_MESSAGES", 3000usize);
    let (off, _, _) = relay_load(30600, None, messages);
    let tsa = TestAuthority::new();
    let (on, tokens, tail) = relay_load(30700, Some(&tsa), messages);
    assert!(tokens >= 1, "no token");
    // Envelopes and receipt batches (the receiver's receipts are RU's, not counted here).
    println!(
        "time-stamping: {messages} messages KZ -> RU, 4 submitters: off {off:.0} msg/s, on \
         {on:.0} msg/s ({:+.1} %), {tokens} tokens ({:.0} signatures per token), last \
         evidence {tail:.1} s after the last delivery",
        (on - off) / off * 100.0,
        messages as f64 / tokens as f64
    );
}

#[test]
fn evidence_obtained_later_travels_through_the_hub() {
    let tsa = TestAuthority::new();
    // KZ reaches KG through the hub EEC.
    let mut net = Net::init("KZ,KG", "EEC", "KG", 30420, &timestamping(200, 1000));
    list_authority(&net, "KZ", &tsa, false);
    // First with the authority down: the evidence follows the envelope through the hub.
    tsa.stop();
    for s in ["KZ", "KG", "EEC"] {
        net.start(s);
    }
    let later = net.submit("KZ", "KG", None).expect("accepted");
    assert!(
        wait_until(SETTLE, || delivered(&net, &later)),
        "not delivered: {:?}\n{}",
        net.states("KZ", &later),
        net.log("EEC")
    );
    assert!(evidence(&net, "KG", &later).is_none());
    tsa.start();
    assert!(
        wait_until(SETTLE, || evidence(&net, "KG", &later).is_some()),
        "no evidence at KG: {:?}\nEEC:\n{}\nKG:\n{}",
        notes(&net, "EEC", &later),
        net.log("EEC"),
        net.log("KG")
    );
    assert_eq!(evidence(&net, "KG", &later), evidence(&net, "KZ", &later));
    assert_noted(
        &net,
        "EEC",
        &later,
        "time-stamp evidence from KZ, passed on",
    );
    assert_noted(
        &net,
        "KG",
        &later,
        "time-stamp evidence received from EEC: by ",
    );
}
