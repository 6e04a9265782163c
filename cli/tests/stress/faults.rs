//! Faults with real processes (issue 11): a peer down for a minute under steady load, a full
//! data disk, a stalled peer (half-open connection, TLS handshake that never ends), and clients
//! that open connections and say nothing. Figures are printed (`--nocapture`) and kept in
//! docs/reliability.md.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::net::{self, wait_until, Net};

/// Fast backoff so a test sees several pauses; a short call timeout so a stall shows quickly.
const RELAY: &str =
    "\n[relay]\nmin_backoff_ms = 200\nmax_backoff_ms = 5000\ntimeout_seconds = 3\n[limits]\nmax_inbox_pull = 1000000\n";

/// Submits KZ → `to` every `every` until `stop`; the acknowledged ids (counted in `acked` as
/// they come).
fn steady_load(
    port: u16,
    to: &'static str,
    every: Duration,
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicUsize>,
) -> std::thread::JoinHandle<Vec<String>> {
    std::thread::spawn(move || {
        let body = serde_json::json!({
            "format": "eaeu.export-declaration",
            "document": net::SAMPLE,
            "recipient_country": to,
        });
        let mut acknowledged = Vec::new();
        while !stop.load(Ordering::SeqCst) {
            let started = Instant::now();
            let (status, v) = net::http(port, "POST", "/v1/messages", Some(&body));
            assert_eq!(status, 202, "intake refused under steady load: {v}");
            acknowledged.push(
                v["messages"][0]["message_id"]
                    .as_str()
                    .expect("id")
                    .to_owned(),
            );
            acked.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(every.saturating_sub(started.elapsed()));
        }
        acknowledged
    })
}

fn tail(log: &str, lines: usize) -> String {
    let all: Vec<&str> = log.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[test]
fn a_peer_down_for_a_minute_under_steady_load_costs_few_calls_and_its_backlog_drains() {
    let _machine = net::machine_shared();
    let outage = Duration::from_secs(
        std::env::var("TEREZE_OUTAGE_SECONDS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60),
    );
    let mut net = Net::init("KZ,RU", "", "", 23100, RELAY);
    net.start("KZ");
    net.start("RU");
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicUsize::new(0));
    let load = steady_load(
        net.http_port("KZ"),
        "RU",
        Duration::from_millis(50),
        stop.clone(),
        acked.clone(),
    );
    std::thread::sleep(Duration::from_secs(3));
    let failed = r#"tereze_peer_calls_total{peer="RU",result="failed"}"#;
    let backoff = r#"tereze_peer_backoff_seconds{peer="RU"}"#;
    assert_eq!(net.sample("KZ", failed), 0.0);

    net.kill9("RU");
    let acked_at_kill = acked.load(Ordering::SeqCst);
    let down_at = Instant::now();
    let rss_before = net.rss_kib("KZ");
    let mut rss_max = rss_before;
    let mut backoff_max: f64 = 0.0;
    let mut backlog_max = 0;
    while down_at.elapsed() < outage {
        std::thread::sleep(Duration::from_millis(500));
        rss_max = rss_max.max(net.rss_kib("KZ"));
        backoff_max = backoff_max.max(net.sample("KZ", backoff));
        backlog_max = backlog_max.max(net.metric("KZ", "outbox_messages"));
    }
    let failed_calls = net.sample("KZ", failed);
    let acked_during = acked.load(Ordering::SeqCst) - acked_at_kill;
    net.start("RU");
    let back_at = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    stop.store(true, Ordering::SeqCst);
    let sent = load.join().expect("load");
    assert!(
        wait_until(Duration::from_secs(60), || net
            .metric("KZ", "outbox_messages")
            == 0),
        "the backlog did not drain: {} left\n{}",
        net.metric("KZ", "outbox_messages"),
        tail(&net.log("KZ"), 30)
    );
    let drained = back_at.elapsed();
    net.assert_exactly_once("RU", &sent);

    // What was acknowledged while RU was away queued up (up to 20 a second; fewer when the
    // machine is slow)...
    assert!(
        acked_during as f64 >= outage.as_secs_f64()
            && backlog_max as f64 >= acked_during as f64 * 0.8,
        "backlog peaked at {backlog_max}; {acked_during} acknowledged during the outage"
    );
    // ...but RU was called once per pause (0.2 s doubling to 5 s, with jitter), not once per
    // message: without the gate this is thousands of calls.
    let bound = 8.0 + outage.as_secs_f64() / 4.0;
    assert!(
        failed_calls <= bound,
        "{failed_calls} failed calls to RU in {outage:?} (bound {bound})"
    );
    assert!(failed_calls >= 3.0, "{failed_calls}");
    assert!(backoff_max >= 2.0, "the pause never showed: {backoff_max}");
    // Memory stays bounded while the backlog grows on disk.
    let growth_mib = rss_max.saturating_sub(rss_before) / 1024;
    assert!(
        growth_mib < 64,
        "KZ grew by {growth_mib} MiB during the outage"
    );
    eprintln!(
        "outage {outage:?}: {} messages acknowledged, backlog peaked at {backlog_max}, {failed_calls} failed calls to RU, longest pause {backoff_max:.1} s, KZ RSS {} → {} MiB (max), drained {:.1} s after RU returned",
        sent.len(),
        rss_before / 1024,
        rss_max / 1024,
        drained.as_secs_f64()
    );
}

/// Raw HTTP: status, head and body (the helper in net/ drops the head).
fn raw_post(port: u16, path: &str, body: &serde_json::Value) -> (u16, String, String) {
    let payload = body.to_string();
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    write!(
        s,
        "POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{}Connection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{payload}",
        net::auth_line(port),
        payload.len()
    )
    .expect("write");
    let mut raw = String::new();
    s.read_to_string(&mut raw).expect("read");
    let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((&raw, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    (status, head.to_ascii_lowercase(), body.to_owned())
}

fn mount_tmpfs(at: &Path, size: &str) {
    std::fs::create_dir_all(at).expect("mkdir");
    let out = Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
        .arg(at)
        .output()
        .expect("mount runs");
    assert!(
        out.status.success(),
        "this test needs to mount a small tmpfs as the data directory (root, or CAP_SYS_ADMIN): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Unmounts on drop, so a failing test leaves no mount behind.
struct Mounted(std::path::PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

/// Bytes free for an unprivileged writer on the file system holding `at`.
fn free_bytes(at: &Path) -> u64 {
    avail_bytes(at).expect("statvfs of the data directory")
}

fn avail_bytes(at: &Path) -> Option<u64> {
    let s = rustix::fs::statvfs(at).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

/// Another process takes the space of `at`'s file system down to `leave` bytes free, in a
/// file `filler` (grown if it exists).
fn fill_to(at: &Path, filler: &Path, leave: u64) {
    let free = free_bytes(at);
    assert!(free > leave, "{free} bytes free already");
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(filler)
        .expect("filler");
    let block = vec![0u8; 64 << 10];
    let mut left = free - leave;
    while left > 0 {
        let n = left.min(block.len() as u64) as usize;
        f.write_all(&block[..n]).expect("fill");
        left -= n as u64;
    }
    f.sync_all().expect("sync filler");
}

/// A `PUT /v1/attachments` of `size` bytes whose headers are sent and whose body is not yet.
fn put_headers(port: u16, size: u64) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    write!(
        s,
        "PUT /v1/attachments HTTP/1.1\r\nHost: 127.0.0.1\r\n{}Connection: close\r\nContent-Type: application/octet-stream\r\nContent-Length: {size}\r\n\r\n",
        net::auth_line(port)
    )
    .expect("write headers");
    s
}

/// The status and body of the answer on `s`, if one comes within `wait`.
fn answer_within(s: &mut TcpStream, wait: Duration) -> Option<(u16, String)> {
    s.set_read_timeout(Some(wait)).expect("timeout");
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(_) if raw.is_empty() => return None,
            Err(_) => break,
        }
    }
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let status = raw.split_whitespace().nth(1)?.parse().ok()?;
    Some((status, raw))
}

#[test]
fn six_parallel_large_uploads_into_a_small_disk_are_refused_before_their_first_byte() {
    let _machine = net::machine_shared();
    const MIB: u64 = 1 << 20;
    // deploy/chaos runs it at the issue's size (70 MiB uploads).
    let size_mib: u64 = std::env::var("TEREZE_CHAOS_UPLOAD_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(16);
    let size = size_mib * MIB;
    // Reserve 16 MiB: new work stops at 16 MiB free, the node's own writes at 8.
    let mut net = Net::init(
        "KZ,RU",
        "",
        "",
        26200,
        "\n[limits]\nmin_free_disk_mb = 16\n[attachments]\nstall_seconds = 10\n",
    );
    let data = net.data_dir("KZ");
    // Room above the reserve for three and a half of them.
    mount_tmpfs(&data, &format!("{}m", 24 + size_mib * 7 / 2));
    let _mounted = Mounted(data.clone());
    net.start("KZ");
    let kz = net.http_port("KZ");
    let before = free_bytes(&data);
    let room = before - 16 * MIB;

    // Watch the free space all along (every 5 ms).
    let stop = Arc::new(AtomicBool::new(false));
    let lowest = Arc::new(AtomicUsize::new(usize::MAX));
    let watcher = {
        let (stop, lowest, data) = (stop.clone(), lowest.clone(), data.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::SeqCst) {
                // Nothing once the test has failed and unmounted the disk.
                if let Some(free) = avail_bytes(&data) {
                    lowest.fetch_min(free as usize, Ordering::SeqCst);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        })
    };

    // Six uploads announce their size at once; the answer to those that do not fit comes
    // before they send a byte of their body.
    let mut streams: Vec<TcpStream> = (0..6).map(|_| put_headers(kz, size)).collect();
    std::thread::sleep(Duration::from_secs(1));
    let mut accepted = Vec::new();
    let mut refused = Vec::new();
    for mut s in streams.drain(..) {
        match answer_within(&mut s, Duration::from_millis(300)) {
            None => accepted.push(s),
            Some(answer) => refused.push(answer),
        }
    }
    assert!(
        !refused.is_empty(),
        "all six uploads of {size_mib} MiB were taken into {} MiB free with a 16 MiB reserve",
        before / MIB
    );
    assert!(!accepted.is_empty(), "none fitted: {refused:?}");
    assert!(
        accepted.len() as u64 * size <= room,
        "{} accepted",
        accepted.len()
    );
    for (status, raw) in &refused {
        assert_eq!(*status, 507, "{raw}");
        let lower = raw.to_ascii_lowercase();
        assert!(lower.contains("retry-after: 30"), "{raw}");
        assert!(raw.contains("disk-full"), "{raw}");
        assert!(raw.contains("limits.min_free_disk_mb"), "{raw}");
    }
    // Those taken complete.
    let senders: Vec<_> = accepted
        .into_iter()
        .map(|mut s| {
            std::thread::spawn(move || {
                let block = vec![7u8; MIB as usize];
                for _ in 0..size_mib {
                    s.write_all(&block).expect("body");
                }
                answer_within(&mut s, Duration::from_secs(60)).expect("an answer")
            })
        })
        .collect();
    let taken = senders.len();
    for t in senders {
        let (status, raw) = t.join().expect("sender");
        assert_eq!(status, 201, "{raw}");
    }
    let lowest_uploading = lowest.load(Ordering::SeqCst) as u64;
    assert!(
        lowest_uploading >= 16 * MIB - 2 * MIB,
        "the uploads took the free space down to {lowest_uploading} bytes, under the reserve"
    );
    assert!(!net.exited("KZ"), "{}", tail(&net.log("KZ"), 20));
    assert_eq!(net.metric("KZ", "disk_promised_bytes"), 0);
    assert!(net.metric("KZ", "disk_refusals_total") >= refused.len() as u64);
    assert_eq!(net.metric("KZ", "disk_reserve_bytes"), 16 * MIB);
    assert_eq!(net.metric("KZ", "disk_floor_bytes"), 8 * MIB);

    // An upload that breaks off half-way leaves a partial file nobody can resume.
    let mut s = put_headers(kz, 4 * MIB);
    s.write_all(&vec![1u8; 2 * MIB as usize]).expect("half");
    drop(s);
    let uploads = data.join("attachments/uploads");
    let partial = || {
        std::fs::read_dir(&uploads)
            .expect("uploads dir")
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".data"))
            .filter(|e| !e.path().with_extension("done").exists())
            .count()
    };
    assert!(wait_until(Duration::from_secs(10), || partial() == 1));
    // Another process takes the disk under the reserve (not under the floor): the abandoned
    // partial upload is collected first, long before its retention time; complete ones stay.
    fill_to(&data, &data.join("filler"), 14 * MIB);
    assert!(
        wait_until(Duration::from_secs(10), || partial() == 0),
        "the abandoned partial upload was kept under the reserve"
    );
    assert_eq!(net.metric("KZ", "uploads_collected_for_space_total"), 1);
    let complete = std::fs::read_dir(&uploads)
        .expect("uploads dir")
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".done"))
        .count();
    assert_eq!(
        complete, taken,
        "complete uploads are not collected for space"
    );

    // Under the reserve: readiness says so, new uploads are refused before their first byte.
    fill_to(&data, &data.join("filler"), 12 * MIB);
    assert!(wait_until(Duration::from_secs(5), || net
        .http("KZ", "GET", "/readyz", None)
        .0
        == 503));
    let (_, ready) = net.http("KZ", "GET", "/readyz", None);
    assert!(
        ready["checks"]["disk"]
            .as_str()
            .unwrap_or_default()
            .starts_with("disk-full"),
        "{ready}"
    );
    let mut s = put_headers(kz, MIB);
    let (status, raw) = answer_within(&mut s, Duration::from_secs(5)).expect("refused at once");
    assert_eq!(status, 507, "{raw}");

    std::thread::sleep(Duration::from_millis(100));
    stop.store(true, Ordering::SeqCst);
    watcher.join().expect("watcher");
    let lowest = lowest.load(Ordering::SeqCst) as u64;
    assert!(
        lowest >= 8 * MIB,
        "the free space went down to {lowest} bytes, under the node's own floor"
    );
    assert!(!net.exited("KZ"), "{}", tail(&net.log("KZ"), 20));
    eprintln!(
        "{} MiB free, reserve 16 MiB: {taken} of six {size_mib} MiB uploads taken, {} refused with 507 before their first byte; abandoned partial upload collected under the reserve; lowest free {} MiB while uploading, {} MiB with another process filling",
        before / MIB,
        refused.len(),
        lowest_uploading / MIB,
        lowest / MIB
    );
}

#[test]
fn a_full_disk_refuses_new_work_retryably_loses_nothing_and_recovers() {
    let _machine = net::machine_shared();
    let mut net = Net::init(
        "KZ,RU,BY",
        "",
        "",
        23200,
        &format!("{RELAY}min_free_disk_mb = 4\n"),
    );
    let data = net.data_dir("KZ");
    mount_tmpfs(&data, "12m");
    let _mounted = Mounted(data.clone());
    net.start("KZ");
    net.start("BY");
    // RU is away: KZ's messages for it stay on KZ's disk.
    let kz = net.http_port("KZ");
    let body = serde_json::json!({
        "format": "eaeu.export-declaration",
        "document": net::SAMPLE,
        "recipient_country": "RU",
    });
    let mut acknowledged = Vec::new();
    let refusal = loop {
        let (status, head, text) = raw_post(kz, "/v1/messages", &body);
        match status {
            202 => {
                let v: serde_json::Value = serde_json::from_str(&text).expect("json");
                acknowledged.push(
                    v["messages"][0]["message_id"]
                        .as_str()
                        .expect("id")
                        .to_owned(),
                );
            }
            503 => break (head, text),
            other => panic!("unexpected {other}: {text}"),
        }
        assert!(acknowledged.len() < 20_000, "the disk never filled");
        // Give the once-a-second sample a chance to see the space go.
        if acknowledged.len() % 50 == 0 {
            std::thread::sleep(Duration::from_millis(300));
        }
    };
    let (head, text) = refusal;
    assert!(head.contains("retry-after: 30"), "{head}");
    assert!(text.contains("disk-full"), "{text}");
    assert!(text.contains("limits.min_free_disk_mb"), "{text}");
    // Readiness says why; the metric shows the space.
    let (code, ready) = net.http("KZ", "GET", "/readyz", None);
    assert_eq!(code, 503, "{ready}");
    assert!(
        ready["checks"]["disk"]
            .as_str()
            .unwrap_or_default()
            .starts_with("disk-full"),
        "{ready}"
    );
    assert!(net.metric("KZ", "disk_free_bytes") < 4 * 1024 * 1024);
    // A peer's delivery is refused retryably too: BY keeps its message and backs off.
    let from_by = net.submit("BY", "KZ", None).expect("BY takes it");
    assert!(wait_until(Duration::from_secs(20), || net.sample(
        "BY",
        r#"tereze_peer_calls_total{peer="KZ",result="failed"}"#
    ) >= 1.0));
    assert!(net.log("BY").contains("disk-full"), "BY was not told why");
    assert!(!net.inbox_ids("KZ").contains(&from_by));

    // Another process takes the disk down to 1 MiB, under the node's own floor (2 MiB, half
    // the reserve): the relay's next record of a failed call to RU (RU is still away) waits
    // for space instead of running the disk out. KZ stays up, serves reads, says why it is not
    // ready, and never exits (issue 23: it used to exit 75 and crash-loop on restart).
    let filler = data.join("filler");
    fill_to(&data, &filler, 1 << 20);
    assert!(
        wait_until(Duration::from_secs(30), || net
            .metric("KZ", "disk_writes_paused")
            == 1),
        "the store's writes never waited: {}",
        tail(&net.log("KZ"), 20)
    );
    let (code, ready) = net.http("KZ", "GET", "/readyz", None);
    assert_eq!(code, 503, "{ready}");
    let writable = ready["checks"]["store_writable"]
        .as_str()
        .unwrap_or_default();
    assert!(writable.starts_with("paused"), "{ready}");
    assert!(writable.contains("min_free_disk_mb"), "{ready}");
    let (code, _) = net.http(
        "KZ",
        "GET",
        &format!("/v1/messages/{}", acknowledged[0]),
        None,
    );
    assert_eq!(code, 200, "reads are served while writes wait");
    std::thread::sleep(Duration::from_secs(10));
    assert!(!net.exited("KZ"), "KZ exited: {}", tail(&net.log("KZ"), 20));
    assert!(
        !net.log("KZ").contains("the disk refused a write"),
        "{}",
        tail(&net.log("KZ"), 20)
    );

    // Space returns: the waiting writes go on, without a restart; everything moves again.
    std::fs::remove_file(&filler).expect("rm filler");
    let out = Command::new("mount")
        .args(["-o", "remount,size=256m"])
        .arg(&data)
        .output()
        .expect("remount");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(wait_until(Duration::from_secs(10), || net
        .http("KZ", "GET", "/readyz", None)
        .0
        == 200));
    assert_eq!(net.metric("KZ", "disk_writes_paused"), 0);
    let after = net.submit("KZ", "RU", None).expect("intake open again");
    acknowledged.push(after);
    net.start("RU");
    assert!(
        wait_until(Duration::from_secs(90), || net
            .metric("KZ", "outbox_messages")
            == 0
            && net.metric("BY", "outbox_messages") == 0),
        "KZ {} / BY {} left",
        net.metric("KZ", "outbox_messages"),
        net.metric("BY", "outbox_messages")
    );
    net.assert_exactly_once("RU", &acknowledged);
    assert!(net.inbox_ids("KZ").contains(&from_by));
    net.stop("KZ");
    let (code, report) = net.audit_verify("KZ");
    assert_eq!(code, 0, "{report}");
    eprintln!(
        "disk full after {} messages on a 12 MiB data disk; writes waited under the floor, no exit; all delivered once space returned; {}",
        acknowledged.len() - 1,
        report.lines().last().unwrap_or_default()
    );
}

#[test]
fn a_last_checkpoint_the_store_refuses_at_shutdown_ends_the_node_for_a_restart_not_with_0() {
    let _machine = net::machine_shared();
    // KZ's store is a PostgreSQL database that goes away while KZ is idle: nothing is
    // written until SIGTERM, and then the last audit checkpoint cannot be.
    let mut pg = tereze_testkit::pgcluster::PgCluster::start().expect("PostgreSQL starts");
    let url = pg.create_database("kz").expect("database");
    let mut net = Net::init("KZ,RU", "", "", 26300, "");
    net.configure(
        "KZ",
        &format!("store = \"{url}\"\naudit_checkpoint_seconds = 3600"),
    );
    net.start("KZ");
    net.start("RU");
    let id = net.submit("KZ", "RU", None).expect("KZ takes it");
    assert!(
        wait_until(Duration::from_secs(30), || net
            .states("KZ", &id)
            .iter()
            .any(|s| s == "delivered")),
        "{}",
        net.log("KZ")
    );
    pg.kill9();

    net.signal("KZ", "TERM");
    let code = net.wait_exit("KZ", Duration::from_secs(40));
    let log = net.log("KZ");
    assert_eq!(
        code,
        Some(75),
        "a node that could not sign its last checkpoint exited as if all was well: {}",
        tail(&log, 20)
    );
    assert!(
        log.contains("the last audit checkpoint could not be signed at shutdown"),
        "{}",
        tail(&log, 20)
    );
    eprintln!(
        "exit {code:?}: {}",
        log.lines()
            .rev()
            .find(|l| l.starts_with("tereze: "))
            .unwrap_or_default()
    );
}

/// A TCP listener that accepts and then says nothing, holding every connection open: a TLS
/// handshake that never ends.
fn silent_listener(port: u16) -> Arc<Mutex<Vec<TcpStream>>> {
    let l = TcpListener::bind(("127.0.0.1", port)).expect("bind the silent port");
    let held = Arc::new(Mutex::new(Vec::new()));
    let h = held.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            h.lock().expect("lock").push(s);
        }
    });
    held
}

/// Sends KZ → `to` and returns how long until KZ knows it recognised.
fn round_trip(net: &Net, to: &str) -> Duration {
    let started = Instant::now();
    let id = net.submit("KZ", to, None).expect("accepted");
    assert!(
        wait_until(Duration::from_secs(30), || net
            .states("KZ", &id)
            .last()
            .is_some_and(|s| s == "recognised")),
        "{id} to {to}: {:?}",
        net.states("KZ", &id)
    );
    started.elapsed()
}

#[test]
fn a_stalled_peer_times_out_and_the_other_peers_do_not_wait_for_it() {
    let _machine = net::machine_shared();
    // A call timeout well above what a round trip takes on a slow machine, so that "BY did not
    // wait behind RU" has a margin on both sides.
    let relay = RELAY.replace("timeout_seconds = 3", "timeout_seconds = 12");
    let mut net = Net::init("KZ,RU,BY", "", "", 23300, &relay);
    net.start("KZ");
    net.start("RU");
    net.start("BY");
    let failed = r#"tereze_peer_calls_total{peer="RU",result="failed"}"#;
    let baseline = round_trip(&net, "BY");

    // 1. Half-open: RU's process is frozen. The kernel still accepts and acknowledges, the
    //    node never answers. KZ's call times out (relay.timeout_seconds = 12) and pauses RU;
    //    BY's traffic goes on meanwhile.
    net.signal("RU", "STOP");
    let frozen: Vec<String> = (0..5)
        .map(|_| net.submit("KZ", "RU", None).expect("accepted"))
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let mut worst = Duration::ZERO;
    for _ in 0..5 {
        worst = worst.max(round_trip(&net, "BY"));
    }
    assert!(
        wait_until(Duration::from_secs(60), || net.sample("KZ", failed) >= 1.0),
        "no timeout fired for the frozen peer"
    );
    assert!(
        net.log("KZ").contains("Timeout expired")
            || net.log("KZ").contains("DeadlineExceeded")
            || net.log("KZ").contains("Cancelled"),
        "the timeout is not named: {}",
        net.log("KZ")
    );
    assert!(
        worst < Duration::from_secs(8),
        "BY waited {worst:?} behind frozen RU (alone: {baseline:?})"
    );
    net.signal("RU", "CONT");
    assert!(
        wait_until(Duration::from_secs(60), || frozen.iter().all(|id| net
            .states("KZ", id)
            .last()
            .is_some_and(|s| s == "recognised"))),
        "RU's messages did not go through after it thawed"
    );

    // 2. A TLS handshake that never ends: RU's address answers TCP and then nothing.
    net.kill9("RU");
    let held = silent_listener(net.exchange_port("RU"));
    let before = net.sample("KZ", failed);
    let stalled = net.submit("KZ", "RU", None).expect("accepted");
    assert!(
        wait_until(Duration::from_secs(60), || net.sample("KZ", failed)
            > before),
        "the handshake stall never failed the call"
    );
    assert!(!held.lock().expect("lock").is_empty(), "KZ never connected");
    let during = round_trip(&net, "BY");
    assert!(during < Duration::from_secs(8), "BY waited {during:?}");
    assert_ne!(
        net.states("KZ", &stalled).last().map(String::as_str),
        Some("recognised")
    );

    // 3. Clients that connect to KZ's Exchange port and never start TLS: they are dropped
    //    after the handshake timeout and do not hold real peers back.
    let idle: Vec<TcpStream> = (0..200)
        .filter_map(|_| TcpStream::connect(("127.0.0.1", net.exchange_port("KZ"))).ok())
        .collect();
    assert_eq!(idle.len(), 200);
    let from_by = net.submit("BY", "KZ", None).expect("BY takes it");
    assert!(
        wait_until(Duration::from_secs(30), || net
            .states("BY", &from_by)
            .last()
            .is_some_and(|s| s == "recognised")),
        "BY could not deliver to KZ while 200 idle connections were open"
    );
    // KZ closes the idle ones (10 s handshake limit).
    let mut first = idle.into_iter().next().expect("one");
    first
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut buf = [0u8; 1];
    let waited = Instant::now();
    let closed = matches!(first.read(&mut buf), Ok(0) | Err(_));
    assert!(
        closed && waited.elapsed() < Duration::from_secs(19),
        "an idle connection stayed open"
    );

    eprintln!(
        "KZ→BY round trip alone {baseline:?}; worst while RU was frozen {worst:?}; during RU's handshake stall {during:?}; idle connections closed after {:?}",
        waited.elapsed()
    );
    drop(held);
}

/// libfaketime, which runs a process with its clock moved (Debian's faketime package).
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// Starts `state`'s node `offset` seconds ahead of the real clock.
fn start_ahead(net: &mut Net, state: &str, offset: i64) {
    let offset = format!("{offset:+}");
    net.start_with_env(
        state,
        &[
            ("LD_PRELOAD", LIBFAKETIME),
            ("FAKETIME", &offset),
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ],
    );
}

fn last_state(net: &Net, state: &str, id: &str) -> Option<String> {
    let settled = |s: &String| s == "recognised" || s == "rejected";
    let mut last = None;
    wait_until(Duration::from_secs(30), || {
        last = net.states(state, id).last().cloned();
        last.as_ref().is_some_and(settled)
    });
    last
}

#[test]
fn a_sender_whose_clock_runs_ahead_beyond_the_allowed_skew_is_rejected_with_the_reason() {
    let _machine = net::machine_shared();
    assert!(
        Path::new(LIBFAKETIME).exists(),
        "this test needs libfaketime ({LIBFAKETIME}; scripts/setup installs faketime)"
    );
    // The dev trust space allows 300 s of skew.
    let mut net = Net::init("KZ,RU", "", "", 23400, RELAY);
    net.start("RU");

    // Two minutes ahead: within the window, recognised.
    start_ahead(&mut net, "KZ", 120);
    let within = net.submit("KZ", "RU", None).expect("accepted");
    assert_eq!(
        last_state(&net, "KZ", &within).as_deref(),
        Some("recognised")
    );
    net.stop("KZ");

    // An hour ahead: RU refuses to recognise what claims to be signed in its future.
    let rejected_before = net.sample(
        "RU",
        r#"tereze_recognition_rejections_total{reason="signing-time-in-future"}"#,
    );
    start_ahead(&mut net, "KZ", 3600);
    let beyond = net.submit("KZ", "RU", None).expect("accepted");
    assert_eq!(last_state(&net, "KZ", &beyond).as_deref(), Some("rejected"));
    let (_, v) = net.http("KZ", "GET", &format!("/v1/messages/{beyond}"), None);
    let notes = v["history"].to_string();
    assert!(notes.contains("signing-time-in-future"), "{notes}");
    assert_eq!(
        net.sample(
            "RU",
            r#"tereze_recognition_rejections_total{reason="signing-time-in-future"}"#
        ),
        rejected_before + 1.0
    );
    // Not in RU's inbox for the national system: quarantined with its reason.
    assert!(!net.inbox_ids("RU").contains(&beyond));
    let (code, q) = net.admin("RU", "GET", "/admin/quarantine", None);
    assert_eq!(code, 200, "{q}");
    assert!(q.to_string().contains("signing-time-in-future"), "{q}");
}

/// The base64 lines of a PEM file (the secret part of a private key).
fn pem_body_lines(pem: &str) -> Vec<String> {
    pem.lines()
        .filter(|l| !l.starts_with("-----") && l.len() >= 16)
        .map(str::to_owned)
        .collect()
}

#[test]
fn secrets_never_reach_the_logs_even_at_trace_level() {
    let _machine = net::machine_shared();
    let mut net = Net::init("KZ,RU", "", "", 23450, "");
    net.start_with_env("KZ", &[("TEREZE_LOG", "trace")]);
    net.start_with_env("RU", &[("TEREZE_LOG", "trace")]);
    let id = net.submit("KZ", "RU", None).expect("accepted");
    assert!(wait_until(Duration::from_secs(30), || net
        .states("KZ", &id)
        .last()
        .is_some_and(|s| s == "recognised")));
    // The operator API with a wrong token, then the right one.
    let dir = net.node_dir("KZ");
    let node = format!("https://127.0.0.1:{}", net.exchange_port("KZ") + 3);
    let ca = net.dir.path().join("kz").join("root.pem");
    let wrong = net.dir.path().join("wrong.token");
    std::fs::write(&wrong, "not-the-token-but-long-enough-0123456789").expect("write");
    let mut perms = std::fs::metadata(&wrong).expect("meta").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    std::fs::set_permissions(&wrong, perms).expect("chmod");
    let mut codes = Vec::new();
    for token in [&wrong, &dir.join("admin.token")] {
        let (code, _, _) = net::tereze(&[
            "admin",
            "--node",
            &node,
            "--ca",
            ca.to_str().expect("utf-8"),
            "--token-file",
            token.to_str().expect("utf-8"),
            "versions",
        ]);
        codes.push(code);
    }
    assert_eq!(codes[1], 0, "the right token was refused");
    assert_ne!(codes[0], 0, "the wrong token was taken");
    net.stop("KZ");
    net.stop("RU");
    let log = net.log("KZ") + &net.log("RU");
    assert!(log.contains("TRACE"), "not at trace level");
    assert!(log.len() > 10_000, "too little logged to mean anything");
    for s in ["kz", "ru"] {
        for key in ["signer.key", "node-tls.key"] {
            let pem = std::fs::read_to_string(net.dir.path().join(s).join(key)).expect("key");
            for line in pem_body_lines(&pem) {
                assert!(!log.contains(&line), "{s}/{key} appears in the log");
            }
        }
    }
    let token = std::fs::read_to_string(dir.join("admin.token")).expect("token");
    assert!(
        !log.contains(token.trim()),
        "the operator token appears in the log"
    );
    assert!(
        !log.contains("not-the-token-but-long-enough"),
        "a presented token appears in the log"
    );
}
