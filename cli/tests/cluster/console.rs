//! The web console in a real headless Chromium (issue 10): a person signs in, searches, opens
//! a timeline, requeues a dead letter (and is told why one past its signed expiry cannot be)
//! and exports the statistics; the pages are screenshotted.
//! Needs Debian's chromium and playwright-core from npm (scripts/setup installs both).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::net::{self, wait_until, Net};

#[test]
fn a_person_searches_opens_a_timeline_requeues_a_dead_letter_and_exports_statistics() {
    // One attempt only, so a message to a node that is down becomes dead at once.
    let mut net = Net::init("KZ,RU", "", "", 26000, "\n[relay]\nmax_attempts = 1\n");
    net.start("KZ");
    let dead = net.submit("KZ", "RU", None).expect("submitted");
    // Dead too, and a second later past its signed expiry: the console gives the reason it
    // cannot be requeued instead of a button.
    let (status, v) = net.http(
        "KZ",
        "POST",
        "/v1/messages",
        Some(&serde_json::json!({
            "format": "eaeu.export-declaration",
            "document": net::SAMPLE,
            "recipient_country": "RU",
            "ttl_seconds": 1,
        })),
    );
    assert_eq!(status, 202, "{v}");
    let past_expiry = v["messages"][0]["message_id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert!(wait_until(Duration::from_secs(30), || [
        &dead,
        &past_expiry
    ]
    .iter()
    .all(|id| net.states("KZ", id).iter().any(|s| s == "dead"))));
    std::thread::sleep(Duration::from_millis(1500));
    net.start("RU");
    let ok = net.submit("KZ", "RU", None).expect("submitted");
    assert!(wait_until(Duration::from_secs(30), || net
        .states("KZ", &ok)
        .iter()
        .any(|s| s == "recognised")));

    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console");
    let shots = net.dir.path().join("screenshots");
    std::fs::create_dir_all(&shots).expect("dir");
    let token = std::fs::read_to_string(net.node_dir("KZ").join("admin.token")).expect("token");
    let out = Command::new("node")
        .arg(here.join("console.test.mjs"))
        .current_dir(&here)
        .env(
            "CONSOLE_URL",
            format!("https://127.0.0.1:{}/console/", net.exchange_port("KZ") + 3),
        )
        .env("TOKEN", token.trim())
        .env("OK_ID", &ok)
        .env("DEAD_ID", &dead)
        .env("PAST_EXPIRY_ID", &past_expiry)
        .env("SHOTS", &shots)
        .env(
            "CHROMIUM",
            std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into()),
        )
        .output()
        .expect("node runs (scripts/setup installs chromium and playwright-core)");
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for page in ["messages", "timeline", "dead-letters", "statistics"] {
        let png = std::fs::read(shots.join(format!("{page}.png"))).expect("screenshot");
        assert!(
            png.starts_with(b"\x89PNG") && png.len() > 5_000,
            "{page}.png"
        );
    }
    // Keep the screenshots where a person can look at them.
    let keep = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots");
    let _ = std::fs::create_dir_all(&keep);
    for e in std::fs::read_dir(&shots).expect("dir").flatten() {
        let _ = std::fs::copy(e.path(), keep.join(e.file_name()));
    }
    // The requeue the person clicked took effect: the dead letter reaches RU now.
    assert!(wait_until(Duration::from_secs(30), || net
        .states("KZ", &dead)
        .iter()
        .any(|s| s == "recognised")));
}
