//! Time-stamped audit checkpoints in a running node (issue 26): a node whose state lists a
//! time-stamping authority in the trust space gets a token over each checkpoint's signature
//! after writing it, and `tereze audit verify` with the trust space checks the checkpoints
//! against the state's anchor and the tokens against that authority. An authority that is
//! down delays only the tokens: checkpoints are still signed, wait visibly (the lag gauge) and
//! get their tokens once it is back.

use std::time::{Duration, Instant};

use tereze_testkit::tsa::TestAuthority;

use crate::net::{self, Net};

/// Lists `tsa` as KZ's time-stamping authority in the development trust space (TOML).
fn list_authority(net: &Net, tsa: &TestAuthority) {
    let path = net.dir.path().join("trust-space.toml");
    let text = std::fs::read_to_string(&path).expect("trust space");
    let kz = text.find("code = \"KZ\"").expect("KZ's entry");
    let node = kz + text[kz..].find("[[state.node]]").expect("KZ's node");
    let listing = format!(
        "[[state.timestamp_authority]]\nurl = \"{}\"\ncertificates = \"\"\"\n{}\"\"\"\n\n",
        tsa.url(),
        tsa.ca_pem()
    );
    let mut text = text;
    text.insert_str(node, &listing);
    std::fs::write(&path, text).expect("write");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_with_an_authority_gets_tokens_on_its_checkpoints() {
    let tsa = TestAuthority::new();
    let mut net = Net::init("KZ,RU", "", "", 31600, "");
    net.configure("KZ", "audit_checkpoint_seconds = 1");
    list_authority(&net, &tsa);
    net.start("KZ");
    net.submit("KZ", "RU", None).expect("submitted");

    // The node also time-stamps the envelope it signed (its own batches, docs/timestamps.md):
    // once those are done, every token the authority answers beyond them is a checkpoint's.
    let deadline = Instant::now() + Duration::from_secs(30);
    while net.metric("KZ", "timestamp_pending") != 0
        || net.metric("KZ", "timestamp_tokens_total") == 0
    {
        assert!(
            Instant::now() < deadline,
            "the envelope was not time-stamped"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // A checkpoint each second, its token within the next round (at most a second later).
    let deadline = Instant::now() + Duration::from_secs(30);
    while tsa.answered() <= net.metric("KZ", "timestamp_tokens_total") {
        assert!(
            Instant::now() < deadline,
            "no token asked for in 30 s:\n{}",
            net.log("KZ")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while net.metric("KZ", "audit_checkpoint_token_lag_seconds") != 0 {
        assert!(Instant::now() < deadline, "tokens do not catch up");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    net.stop("KZ");

    let trust = net.dir.path().join("trust-space.toml");
    let (code, out, err) = net::tereze(&[
        "audit",
        "verify",
        net.data_dir("KZ").to_str().expect("utf-8"),
        "--trust-space",
        trust.to_str().expect("utf-8"),
        "--state",
        "KZ",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("checkpoints against anchor"), "{out}");
    assert!(out.contains(" (KZ)\n"), "{out}");
    assert!(out.contains(" tokens verified by authority "), "{out}");
    assert!(!out.contains("time-stamps: 0 of"), "{out}");

    // Against another authority the same tokens fail, naming the checkpoint.
    let other = TestAuthority::new();
    let (code, out, _) = net::tereze(&[
        "audit",
        "verify",
        net.data_dir("KZ").to_str().expect("utf-8"),
        "--tsa-cert",
        other.ca_path().to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("first failure: checkpoint at entry "), "{out}");
}

#[tokio::test(flavor = "multi_thread")]
async fn checkpoints_are_written_while_the_authority_is_down_and_their_tokens_follow() {
    let tsa = TestAuthority::new();
    tsa.stop();
    let mut net = Net::init("KZ,RU", "", "", 31620, "");
    net.configure("KZ", "audit_checkpoint_seconds = 1");
    list_authority(&net, &tsa);
    net.start("KZ");
    net.submit("KZ", "RU", None).expect("submitted");

    // The authority is down: checkpoints are still signed, and they wait, visibly.
    let deadline = Instant::now() + Duration::from_secs(30);
    while net.metric("KZ", "audit_checkpoint_token_lag_seconds") < 2 {
        assert!(
            Instant::now() < deadline,
            "no checkpoint waits for its token:\n{}",
            net.log("KZ")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(tsa.answered(), 0);

    // Back up: the waiting checkpoints get their tokens in the next rounds.
    tsa.start();
    let deadline = Instant::now() + Duration::from_secs(30);
    while net.metric("KZ", "audit_checkpoint_token_lag_seconds") != 0 {
        assert!(
            Instant::now() < deadline,
            "tokens do not catch up:\n{}",
            net.log("KZ")
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(tsa.answered() >= 1);
    net.stop("KZ");
    let (code, out, err) = net::tereze(&[
        "audit",
        "verify",
        net.data_dir("KZ").to_str().expect("utf-8"),
        "--tsa-cert",
        tsa.ca_path().to_str().expect("utf-8"),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains(" tokens verified by authority "), "{out}");
}
