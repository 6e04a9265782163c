//! Large attachments between real node processes (docs/attachments.md): a file uploaded to KZ
//! crosses the hub to RU in chunks with memory that does not grow with its size; a transfer
//! survives kill -9 of the sender and then of the receiver and resumes from what arrived;
//! small messages keep flowing beside a transfer; and, speaking the protocol as KZ's node, a
//! tampered chunk is refused and asked for again and a forged digest in the signed envelope
//! fails recognition; and a resumable upload from the national system survives kill -9 of its
//! node and continues from the bytes held. `TEREZE_ATTACHMENT_MIB` sets the hub test's size (default 256; the
//! 2 GiB figures in BENCHMARKS.md come from `TEREZE_ATTACHMENT_MIB=2048`).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tereze_codecs::dsig::SignTarget;
use tereze_codecs::envelope::AttachmentRef;
use tereze_proto::{
    deliver_outcome, AttachmentChunk, AttachmentHeader, AttachmentInfo, DeliverItem,
    DeliverRequest, Route,
};
use uuid::Uuid;

use crate::net::{self, exchange, header, sign, signer, urn, wait_until, Net, SAMPLE};

const MIB: u64 = 1 << 20;

/// Writes `size` bytes of a seeded pseudo-random stream to `path`; their SHA-256.
fn make_file(path: &Path, size: u64, seed: u64) -> [u8; 32] {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let mut h = openssl::sha::Sha256::new();
    let mut x = seed | 1;
    let mut buf = vec![0u8; MIB as usize];
    let mut left = size;
    while left > 0 {
        for w in buf.chunks_mut(8) {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            w.copy_from_slice(&x.to_le_bytes()[..w.len()]);
        }
        let n = left.min(MIB) as usize;
        f.write_all(&buf[..n]).expect("write");
        h.update(&buf[..n]);
        left -= n as u64;
    }
    f.flush().expect("flush");
    h.finish()
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// `PUT /v1/attachments` with a chunked body streamed from `path`: the answer.
fn upload(port: u16, path: &Path) -> (u16, Value) {
    let len = std::fs::metadata(path).expect("file").len();
    send_file(port, "PUT /v1/attachments", path, 0, len, true)
}

/// `request` (method and target) with bytes `from..to` of `path` as a chunked body: the
/// answer's status and JSON. With `end` false the body is left open after them, and the call
/// returns when the node answers or goes away (`0` when it went away).
fn send_file(port: u16, request: &str, path: &Path, from: u64, to: u64, end: bool) -> (u16, Value) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(600)))
        .expect("timeout");
    write!(
        s,
        "{request} HTTP/1.1\r\nHost: 127.0.0.1\r\n{}Connection: close\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n",
        net::auth_line(port)
    )
    .expect("head");
    let mut f = std::fs::File::open(path).expect("open");
    std::io::Seek::seek(&mut f, std::io::SeekFrom::Start(from)).expect("seek");
    let mut buf = vec![0u8; 256 * 1024];
    let mut left = to - from;
    // A node that refuses on the head answers and closes before reading the body, so a write
    // can fail with the answer already on its way: stop sending and read it.
    let mut sent = true;
    while left > 0 && sent {
        let n = f
            .read(&mut buf[..left.min(256 * 1024) as usize])
            .expect("read");
        assert!(n > 0, "the file is shorter than {to}");
        sent = s.write_all(format!("{n:x}\r\n").as_bytes()).is_ok()
            && s.write_all(&buf[..n]).is_ok()
            && s.write_all(b"\r\n").is_ok();
        left -= n as u64;
    }
    if sent && end {
        let _ = s.write_all(b"0\r\n\r\n");
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw);
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return (0, Value::Null);
    };
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = body.trim();
    // A chunked answer: the JSON is the line with the braces.
    let json_line = body.lines().find(|l| l.starts_with('{')).unwrap_or(body);
    (
        status,
        serde_json::from_str(json_line).unwrap_or(Value::Null),
    )
}

/// Begins an upload of `size` bytes at `state` and sends `part` of them in a `PATCH` with
/// `Content-Length: size`, left open: the upload's id and the connection.
fn open_upload(net: &Net, state: &str, size: u64, part: &[u8]) -> (String, TcpStream) {
    let (status, v) = net.http(state, "POST", "/v1/uploads", Some(&json!({ "size": size })));
    assert_eq!(status, 201, "{v}");
    let id = v["upload_id"].as_str().expect("id").to_owned();
    let mut s = TcpStream::connect(("127.0.0.1", net.http_port(state))).expect("connect");
    write!(
        s,
        "PATCH /v1/uploads/{id}?offset=0 HTTP/1.1\r\nHost: x\r\n{}Connection: close\r\nContent-Length: {size}\r\n\r\n",
        net::auth_line(net.http_port(state))
    )
    .expect("head");
    s.write_all(part).expect("part");
    (id, s)
}

/// The bytes an upload holds at `state` (`have` of `GET /v1/uploads/{id}`; 0 when unknown).
fn upload_have(net: &Net, state: &str, id: &str) -> u64 {
    net.http(state, "GET", &format!("/v1/uploads/{id}"), None).1["have"]
        .as_u64()
        .unwrap_or(0)
}

/// `PATCH /v1/uploads/{id}?offset=N` with bytes `from..to` of `path` (see [`send_file`]).
fn patch_upload(
    port: u16,
    id: &str,
    offset: u64,
    path: &Path,
    from: u64,
    to: u64,
    end: bool,
) -> (u16, Value) {
    send_file(
        port,
        &format!("PATCH /v1/uploads/{id}?offset={offset}"),
        path,
        from,
        to,
        end,
    )
}

/// Submits the sample declaration from `from` to `to` with `upload` as attachment `id`.
fn submit_with(net: &Net, from: &str, to: &str, upload: &str, id: &str) -> String {
    let body = json!({
        "format": "eaeu.export-declaration",
        "document": SAMPLE,
        "recipient_country": to,
        "recipient_authority": "FCS",
        "attachments": [{"upload_id": upload, "id": id, "media_type": "application/pdf"}],
    });
    let (status, v) = net.http(from, "POST", "/v1/messages", Some(&body));
    assert_eq!(status, 202, "{v}");
    v["messages"][0]["message_id"]
        .as_str()
        .expect("id")
        .to_owned()
}

/// Streams `GET /v1/messages/{id}/attachments/{att}` from `port`: its size and SHA-256, and
/// the digest the node says it has.
fn download(port: u16, id: &str, att: &str) -> (u64, [u8; 32], String) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    write!(
        s,
        "GET /v1/messages/{id}/attachments/{att} HTTP/1.1\r\nHost: 127.0.0.1\r\n{}Connection: close\r\n\r\n",
        net::auth_line(port)
    )
    .expect("request");
    let mut r = BufReader::new(s);
    let mut line = String::new();
    r.read_line(&mut line).expect("status");
    assert!(line.contains(" 200 "), "{line}");
    let (mut length, mut sha) = (None, String::new());
    loop {
        line.clear();
        r.read_line(&mut line).expect("header");
        let l = line.trim_end().to_ascii_lowercase();
        if l.is_empty() {
            break;
        }
        if let Some(v) = l.strip_prefix("content-length:") {
            length = v.trim().parse::<u64>().ok();
        }
        if let Some(v) = l.strip_prefix("x-tereze-sha256:") {
            sha = v.trim().to_owned();
        }
    }
    let length = length.expect("content-length");
    let mut h = openssl::sha::Sha256::new();
    let mut buf = vec![0u8; MIB as usize];
    let mut got = 0u64;
    while got < length {
        let n = r.read(&mut buf).expect("body");
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        got += n as u64;
    }
    (got, h.finish(), sha)
}

fn recognised_at(net: &Net, state: &str, id: &str) -> bool {
    net.states(state, id).iter().any(|s| s == "recognised")
}

/// Length of the partial or complete file of `message`'s attachment `att` at `state`.
fn held_bytes(net: &Net, state: &str, message: &str, att: &str) -> u64 {
    let uuid = message.trim_start_matches("urn:uuid:");
    std::fs::metadata(
        net.data_dir(state)
            .join("attachments")
            .join(uuid)
            .join(format!("{att}.data")),
    )
    .map(|m| m.len())
    .unwrap_or(0)
}

/// The `resumed_at=N` figures of the log lines that contain `what`.
fn resumed_at(log: &str, what: &str) -> Vec<u64> {
    log.lines()
        .filter(|l| l.contains(what))
        .filter_map(|l| {
            l.split_whitespace()
                .find_map(|w| w.strip_prefix("resumed_at="))
                .and_then(|v| v.parse().ok())
        })
        .collect()
}

#[test]
fn a_large_attachment_crosses_the_hub_in_bounded_memory_and_arrives_whole() {
    let mib: u64 = std::env::var("TEREZE_ATTACHMENT_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let mut net = Net::init("KZ,RU", "EEC", "KZ,RU", 24100, "");
    for s in ["EEC", "KZ", "RU"] {
        net.start(s);
    }
    let file = net.dir.path().join("large.bin");
    let digest = make_file(&file, mib * MIB, 0x5eed);
    // Idle memory after start, before any transfer.
    std::thread::sleep(Duration::from_millis(500));
    let before: Vec<(&str, u64)> = ["KZ", "EEC", "RU"]
        .iter()
        .map(|s| (*s, net::proc_status_kib(net.pid(s), "VmRSS:").unwrap_or(0)))
        .collect();
    let started = Instant::now();
    let (status, up) = upload(net.http_port("KZ"), &file);
    assert_eq!(status, 201, "{up}");
    assert_eq!(up["sha256"], hex(&digest), "{up}");
    assert_eq!(up["size"], mib * MIB, "{up}");
    let uploaded = started.elapsed();
    let id = submit_with(
        &net,
        "KZ",
        "RU",
        up["upload_id"].as_str().expect("id"),
        "scan.pdf",
    );
    let limit = Duration::from_secs(120 + mib / 4);
    assert!(
        wait_until(limit, || recognised_at(&net, "KZ", &id)),
        "not recognised within {limit:?}: KZ {:?}\n{}",
        net.states("KZ", &id),
        net.log("KZ")
    );
    let relayed = started.elapsed() - uploaded;
    let (size, got, said) = download(net.http_port("RU"), &id, "scan.pdf");
    assert_eq!(size, mib * MIB);
    assert_eq!(
        got, digest,
        "the bytes RU holds are not the bytes KZ was given"
    );
    assert_eq!(said, hex(&digest));
    // Counted where operators look: each node took it once and sent it on (the hub's relay
    // may find the recipient's copy complete just as its streaming-through ends, and count a
    // second completion).
    let bytes = mib * MIB;
    assert_eq!(net.metric("KZ", "uploads_total"), 1);
    for (s, received, sends) in [("KZ", 0, true), ("EEC", 1, true), ("RU", 1, false)] {
        let got = |name: &str| net.metric(s, name);
        assert_eq!(got("attachments_received_total"), received, "{s}");
        assert_eq!(
            got("attachment_bytes_received_total"),
            received * bytes,
            "{s}"
        );
        assert_eq!(got("attachments_sent_total") > 0, sends, "{s}");
        assert_eq!(got("attachment_bytes_sent_total") >= bytes, sends, "{s}");
    }
    assert_eq!(net.metric("RU", "attachments_receiving"), 0);
    // The hub sent it on while it arrived, not after.
    assert!(
        net.log("EEC").contains("attachment streamed through"),
        "the hub did not stream the attachment through\n{}",
        net.log("EEC")
    );
    let mut report = format!(
        "{mib} MiB KZ -> EEC -> RU: upload {:.1} s, relay to recognised {:.1} s;",
        uploaded.as_secs_f64(),
        relayed.as_secs_f64()
    );
    for (s, rss) in &before {
        let peak = net::proc_status_kib(net.pid(s), "VmHWM:").unwrap_or(0);
        let growth = peak.saturating_sub(*rss);
        report.push_str(&format!(
            " {s} RSS {} MiB -> peak {} MiB (+{} MiB);",
            rss / 1024,
            peak / 1024,
            growth / 1024
        ));
        assert!(
            growth < 64 * 1024,
            "{s}'s peak RSS grew by {growth} KiB moving a {mib} MiB attachment"
        );
    }
    println!("{report}");
}

#[test]
fn a_transfer_resumes_after_kill_9_of_the_sender_and_then_of_the_receiver() {
    // 8 MiB/s, so the transfer (about 20 s) is still running when each node is killed, even
    // on a slow machine.
    let extra = "\n[attachments]\nsend_rate_kib = 8192\n[relay]\nmax_backoff_ms = 1000\n";
    let mut net = Net::init("KZ,RU", "", "", 24200, extra);
    net.start("KZ");
    net.start("RU");
    let file = net.dir.path().join("scan.bin");
    let size = 160 * MIB;
    let digest = make_file(&file, size, 42);
    let (status, up) = upload(net.http_port("KZ"), &file);
    assert_eq!(status, 201, "{up}");
    let id = submit_with(
        &net,
        "KZ",
        "RU",
        up["upload_id"].as_str().expect("id"),
        "scan",
    );

    // Small messages keep flowing beside the transfer (their own lane and connection).
    assert!(wait_until(Duration::from_secs(30), || held_bytes(
        &net, "RU", &id, "scan"
    ) > 8 * MIB));
    let small: Vec<String> = (0..20)
        .map(|_| net.submit("KZ", "RU", None).expect("small submit"))
        .collect();
    assert!(
        wait_until(Duration::from_secs(30), || small
            .iter()
            .all(|m| recognised_at(&net, "KZ", m))),
        "small messages did not get through beside the transfer"
    );
    assert!(
        held_bytes(&net, "RU", &id, "scan") < size,
        "the transfer ended before the small messages were through; nothing was shown"
    );

    // Kill the sender mid-transfer.
    net.kill9("KZ");
    let at_kill = held_bytes(&net, "RU", &id, "scan");
    assert!(at_kill < size, "the transfer finished before the kill");
    net.start("KZ");
    assert!(
        wait_until(Duration::from_secs(60), || held_bytes(
            &net, "RU", &id, "scan"
        ) > at_kill
            + (16 * MIB).min((size - at_kill) / 2)),
        "the transfer did not go on after KZ's restart\n{}",
        net.log("KZ")
    );
    // Then the receiver.
    net.kill9("RU");
    let at_second_kill = held_bytes(&net, "RU", &id, "scan");
    assert!(
        at_second_kill < size,
        "the transfer finished before RU was killed"
    );
    net.start("RU");
    assert!(
        wait_until(Duration::from_secs(120), || recognised_at(&net, "KZ", &id)),
        "not recognised after the restarts: {:?}\n{}",
        net.states("KZ", &id),
        net.log("KZ")
    );
    let (got_size, got, _) = download(net.http_port("RU"), &id, "scan");
    assert_eq!(got_size, size);
    assert_eq!(got, digest, "the bytes received are not the bytes sent");
    // Each resumption began where the bytes held ended, not from zero.
    let sent = resumed_at(&net.log("KZ"), "attachment sent");
    assert!(
        sent.iter().any(|n| *n > 0),
        "KZ never resumed from what RU held: {sent:?}"
    );
    let received = resumed_at(&net.log("RU"), "attachment received");
    assert!(
        received.iter().any(|n| *n >= at_kill),
        "RU completed without resuming from {at_kill}: {received:?}"
    );
    println!(
        "killed KZ at {} MiB and RU at {} MiB of {} MiB; resumed at {:?} and completed with the same SHA-256",
        at_kill / MIB,
        at_second_kill / MIB,
        size / MIB,
        received
    );
}

#[test]
fn an_upload_resumes_after_kill_9_of_the_node_over_http_and_grpc() {
    let mut net = Net::init(
        "KZ,RU",
        "",
        "",
        24600,
        "\n[attachments]\nstall_seconds = 10\n",
    );
    net.start("KZ");
    net.start("RU");
    let file = net.dir.path().join("big.bin");
    let size = 96 * MIB;
    let digest = make_file(&file, size, 7);
    let (status, begun) = net.http(
        "KZ",
        "POST",
        "/v1/uploads",
        Some(&json!({"size": size, "sha256": hex(&digest)})),
    );
    assert_eq!(status, 201, "{begun}");
    assert_eq!(begun["have"], 0);
    assert_eq!(begun["complete"], false);
    let upload = begun["upload_id"].as_str().expect("id").to_owned();
    let partial = net
        .data_dir("KZ")
        .join("attachments")
        .join("uploads")
        .join(format!("{upload}.data"));

    // The first request sends 40 MiB and stalls; the node is killed meanwhile.
    let sent = 40 * MIB;
    let (port, u, f) = (net.http_port("KZ"), upload.clone(), file.clone());
    let first = std::thread::spawn(move || patch_upload(port, &u, 0, &f, 0, sent, false));
    assert!(
        wait_until(Duration::from_secs(60), || std::fs::metadata(&partial)
            .map(|m| m.len() >= 32 * MIB)
            .unwrap_or(false)),
        "the first part did not arrive"
    );
    net.kill9("KZ");
    let _ = first.join();
    net.start("KZ");

    // After the restart the node says what it holds; that is what continues.
    let (status, st) = net.http("KZ", "GET", &format!("/v1/uploads/{upload}"), None);
    assert_eq!(status, 200, "{st}");
    let have = st["have"].as_u64().expect("have");
    assert!(
        (32 * MIB..=sent).contains(&have),
        "{have} bytes held after the kill, sent {sent}"
    );
    assert_eq!(st["complete"], false);
    assert_eq!(st["size"], size);
    // A submission cannot name it yet, and says why.
    let body = json!({
        "format": "eaeu.export-declaration",
        "document": SAMPLE,
        "recipient_country": "RU",
        "recipient_authority": "FCS",
        "attachments": [{"upload_id": upload, "id": "big"}],
    });
    let (status, v) = net.http("KZ", "POST", "/v1/messages", Some(&body));
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains(&format!("holds {have} of its {size} bytes")),
        "{v}"
    );
    // Resending from zero is refused with where to continue.
    let (status, v) = patch_upload(net.http_port("KZ"), &upload, 0, &file, 0, 10, true);
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["have"], have);
    // The rest, from what is held, completes it with the sender's SHA-256.
    let (status, done) = patch_upload(net.http_port("KZ"), &upload, have, &file, have, size, true);
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["complete"], true, "{done}");
    assert_eq!(done["size"], size);
    assert_eq!(done["sha256"], hex(&digest));
    assert!(net.log("KZ").contains(&format!("resumed_at={have}")));
    let id = submit_with(&net, "KZ", "RU", &upload, "big");
    assert!(
        wait_until(Duration::from_secs(120), || recognised_at(&net, "KZ", &id)),
        "{:?}",
        net.states("KZ", &id)
    );
    let (got_size, got, _) = download(net.http_port("RU"), &id, "big");
    assert_eq!(
        (got_size, got),
        (size, digest),
        "the bytes received are not the bytes sent"
    );

    // A request that breaks off mid-body: every byte that arrived is kept.
    let (cut_id, cut) = open_upload(&net, "KZ", 3 * MIB, &vec![1u8; 1_500_000]);
    std::thread::sleep(Duration::from_millis(300));
    // Dropped: the connection closes 1,500,000 bytes into the body.
    drop(cut);
    assert!(
        wait_until(Duration::from_secs(20), || upload_have(&net, "KZ", &cut_id)
            == 1_500_000),
        "{}",
        net.http("KZ", "GET", &format!("/v1/uploads/{cut_id}"), None)
            .1
    );

    // Refusals, each with what was wrong.
    let (status, v) = net.http(
        "KZ",
        "POST",
        "/v1/uploads",
        Some(&json!({"size": 1u64 << 50})),
    );
    assert_eq!(status, 413, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("max_attachment_bytes"),
        "{v}"
    );
    let (status, v) = net.http(
        "KZ",
        "POST",
        "/v1/uploads",
        Some(&json!({"size": 4, "sha256": "xyz"})),
    );
    assert_eq!(status, 400, "{v}");
    let (status, v) = net.http("KZ", "GET", "/v1/uploads/not-an-id", None);
    assert_eq!(status, 400, "{v}");
    let (status, v) = net.http(
        "KZ",
        "GET",
        &format!("/v1/uploads/{}", Uuid::new_v4()),
        None,
    );
    assert_eq!(status, 404, "{v}");
    let (status, other) = net.http(
        "KZ",
        "POST",
        "/v1/uploads",
        Some(&json!({"size": MIB, "sha256": "00".repeat(32)})),
    );
    assert_eq!(status, 201, "{other}");
    let other_id = other["upload_id"].as_str().expect("id").to_owned();
    let (status, v) = patch_upload(net.http_port("KZ"), &other_id, 0, &file, 0, MIB, true);
    assert_eq!(status, 422, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("not the declared"),
        "{v}"
    );
    let (status, _) = net.http("KZ", "GET", &format!("/v1/uploads/{other_id}"), None);
    assert_eq!(status, 404, "a refused upload was kept");
    // Without ?offset=, and past the declared size: refused, and nothing held is lost.
    let (status, small) = net.http("KZ", "POST", "/v1/uploads", Some(&json!({"size": 1000})));
    assert_eq!(status, 201, "{small}");
    let small_id = small["upload_id"].as_str().expect("id").to_owned();
    let (status, v) = send_file(
        net.http_port("KZ"),
        &format!("PATCH /v1/uploads/{small_id}"),
        &file,
        0,
        10,
        true,
    );
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"].as_str().unwrap_or_default().contains("offset"),
        "{v}"
    );
    let (status, v) = patch_upload(net.http_port("KZ"), &small_id, 0, &file, 0, 600, true);
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["have"].as_u64(), v["complete"].as_bool()),
        (Some(600), Some(false)),
        "{v}"
    );
    let (status, v) = patch_upload(net.http_port("KZ"), &small_id, 600, &file, 600, 1600, true);
    assert_eq!(status, 413, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("declared size of 1000"),
        "{v}"
    );
    let (_, st) = net.http("KZ", "GET", &format!("/v1/uploads/{small_id}"), None);
    assert_eq!(
        (st["have"].as_u64(), st["complete"].as_bool()),
        (Some(600), Some(false)),
        "{st}"
    );

    // A request that goes quiet mid-body, its connection left open, is stopped after
    // attachments.stall_seconds, keeping what arrived (checked after the gRPC part).
    let (quiet_id, mut quiet_conn) = open_upload(&net, "KZ", 3 * MIB, &vec![2u8; 700_000]);
    let quiet_since = Instant::now();
    // A fetch whose client reads nothing is stopped after attachments.stall_seconds too: the
    // 96 MiB do not fit in the socket buffers, so the node waits on the client.
    let mut quiet_fetch = TcpStream::connect(("127.0.0.1", net.http_port("RU"))).expect("connect");
    write!(
        quiet_fetch,
        "GET /v1/messages/{id}/attachments/big HTTP/1.1\r\nHost: x\r\n{}Connection: close\r\n\r\n",
        net::auth_line(net.http_port("RU"))
    )
    .expect("request");

    // The same over gRPC: begin, a part, the state, a wrong offset, the rest.
    tokio::runtime::Runtime::new()
        .expect("runtime")
        .block_on(async {
            use tereze_proto::{BeginUploadRequest, UploadChunk, UploadStatusRequest};
            let mut kz = net::window(net.window_port("KZ")).await;
            let data: Vec<u8> = (0..3 * MIB as usize + 5).map(|i| (i % 239) as u8).collect();
            let sha = hex(&openssl::sha::sha256(&data));
            let begun = kz
                .begin_upload(BeginUploadRequest {
                    size: data.len() as u64,
                    sha256: sha.clone(),
                })
                .await
                .expect("begun")
                .into_inner();
            let part = MIB as usize + 7;
            let first = kz
                .upload_attachment(tokio_stream::iter(vec![UploadChunk {
                    data: data[..part].to_vec(),
                    upload_id: begun.upload_id.clone(),
                    offset: 0,
                }]))
                .await
                .expect("first part")
                .into_inner();
            assert!(!first.complete);
            assert_eq!(first.have, part as u64);
            let st = kz
                .upload_status(UploadStatusRequest {
                    upload_id: begun.upload_id.clone(),
                })
                .await
                .expect("status")
                .into_inner();
            assert_eq!((st.have, st.complete), (part as u64, false));
            let wrong = kz
                .upload_attachment(tokio_stream::iter(vec![UploadChunk {
                    data: data[..10].to_vec(),
                    upload_id: begun.upload_id.clone(),
                    offset: 0,
                }]))
                .await
                .expect_err("offset 0 again");
            assert_eq!(
                wrong.code(),
                tonic::Code::FailedPrecondition,
                "{}",
                wrong.message()
            );
            assert!(
                wrong.message().contains(&format!("continue from {part}")),
                "{}",
                wrong.message()
            );
            let rest: Vec<UploadChunk> = data[part..]
                .chunks(500_000)
                .enumerate()
                .map(|(i, c)| UploadChunk {
                    data: c.to_vec(),
                    upload_id: if i == 0 {
                        begun.upload_id.clone()
                    } else {
                        String::new()
                    },
                    offset: if i == 0 { part as u64 } else { 0 },
                })
                .collect();
            let done = kz
                .upload_attachment(tokio_stream::iter(rest))
                .await
                .expect("the rest")
                .into_inner();
            assert!(done.complete);
            assert_eq!(
                (done.size, done.have),
                (data.len() as u64, data.len() as u64)
            );
            assert_eq!(done.sha256, sha);
            let unknown = kz
                .upload_status(UploadStatusRequest {
                    upload_id: Uuid::new_v4().to_string(),
                })
                .await
                .expect_err("unknown");
            assert_eq!(unknown.code(), tonic::Code::NotFound);
            let bad = kz
                .begin_upload(BeginUploadRequest {
                    size: 10,
                    sha256: "not-hex".into(),
                })
                .await
                .expect_err("bad sha256");
            assert_eq!(bad.code(), tonic::Code::InvalidArgument);
            assert!(bad.message().starts_with("sha256:"), "{}", bad.message());
            let bad = kz
                .upload_attachment(tokio_stream::iter(vec![UploadChunk {
                    data: b"x".to_vec(),
                    upload_id: String::new(),
                    offset: 5,
                }]))
                .await
                .expect_err("an offset without an upload");
            assert_eq!(bad.code(), tonic::Code::InvalidArgument);
            assert!(bad.message().contains("upload_id"), "{}", bad.message());
        });
    quiet_conn
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut answer = String::new();
    let _ = quiet_conn.read_to_string(&mut answer);
    assert!(
        quiet_since.elapsed() >= Duration::from_secs(9),
        "stopped after {:?}, before stall_seconds: {answer}",
        quiet_since.elapsed()
    );
    assert!(answer.contains("stall_seconds"), "{answer}");
    let (_, st) = net.http("KZ", "GET", &format!("/v1/uploads/{quiet_id}"), None);
    assert_eq!(st["have"], 700_000, "{st}");
    // The quiet fetch is stopped once its writes have stalled for stall_seconds, which began
    // when the socket buffers filled, a moment after quiet_since: reading before then would
    // let it go on. Its client then gets what the buffers held and the end of the
    // connection, short of the 96 MiB.
    std::thread::sleep(
        (quiet_since + Duration::from_secs(15)).saturating_duration_since(Instant::now()),
    );
    quiet_fetch
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let mut fetched = Vec::new();
    let _ = quiet_fetch.read_to_end(&mut fetched);
    assert!(
        String::from_utf8_lossy(&fetched[..fetched.len().min(200)]).starts_with("HTTP/1.1 200"),
        "the fetch was not answered"
    );
    assert!(
        (fetched.len() as u64) < size,
        "a client that read nothing for stall_seconds still got all {} bytes",
        fetched.len()
    );
    assert!(
        net.log("RU").contains("fetch stopped"),
        "RU did not log the stopped fetch"
    );
    println!("KZ was killed with {have} of {size} bytes held; the upload continued from there and RU received the sender's SHA-256");
}

#[test]
fn a_backlog_of_messages_with_attachments_waits_in_the_outbox_not_in_the_lane() {
    // One transfer at a time to RU, each about 2 s (512 KiB in 64 KiB chunks at 256 KiB/s):
    // the lane takes 4 messages (4 × max_transfers_per_peer), the others wait in the outbox.
    let extra =
        "\n[attachments]\nmax_transfers_per_peer = 1\nchunk_bytes = 65536\nsend_rate_kib = 256\n";
    let mut net = Net::init("KZ,RU", "", "", 24700, extra);
    net.start("KZ");
    net.start("RU");
    let file = net.dir.path().join("annex.bin");
    let digest = make_file(&file, 512 * 1024, 3);
    let (status, up) = upload(net.http_port("KZ"), &file);
    assert_eq!(status, 201, "{up}");
    let upload_id = up["upload_id"].as_str().expect("id").to_owned();
    let ids: Vec<String> = (0..8)
        .map(|_| submit_with(&net, "KZ", "RU", &upload_id, "annex"))
        .collect();
    let mut most = 0;
    let done = wait_until(Duration::from_secs(120), || {
        most = most.max(net.metric("KZ", "attachment_lane_messages"));
        ids.iter().all(|id| recognised_at(&net, "KZ", id))
    });
    assert!(
        done,
        "not all recognised: {:?}",
        ids.iter()
            .map(|id| net.states("KZ", id))
            .collect::<Vec<_>>()
    );
    assert!(
        most <= 4,
        "{most} messages in the lane at once, over 4 × max_transfers_per_peer"
    );
    assert!(
        most >= 2,
        "the lane never held more than {most}: the backlog was not shown"
    );
    // A lane place is given back just after the message is recorded as recognised.
    assert!(
        wait_until(Duration::from_secs(10), || net
            .metric("KZ", "attachment_lane_messages")
            == 0),
        "messages left in the lane"
    );
    // Waiting for a place is not an attempt: none failed.
    assert_eq!(net.metric("KZ", "failed_attempts_total"), 0);
    assert!(
        !net.log("KZ").contains("attempt failed"),
        "{}",
        net.log("KZ")
    );
    let (size, got, _) = download(net.http_port("RU"), &ids[7], "annex");
    assert_eq!((size, got), (512 * 1024, digest));
}

fn info(id: &str, data: &[u8]) -> AttachmentInfo {
    AttachmentInfo {
        id: id.into(),
        size: data.len() as u64,
        sha256: openssl::sha::sha256(data).to_vec(),
    }
}

fn transfer_route(message: Uuid, attachments: Vec<AttachmentInfo>) -> Route {
    Route {
        message_id: urn(message),
        conversation_id: urn(Uuid::new_v4()),
        sender: "KZ".into(),
        recipient: "RU".into(),
        digest: Vec::new(),
        expires_at_ms: 0,
        attachments,
    }
}

/// Chunks of `data` from `from`, 1 MiB each, the first with the header; `tamper` flips a
/// byte in the chunk at that offset but keeps the digest of the original.
fn chunks(
    header: &AttachmentHeader,
    data: &[u8],
    from: usize,
    tamper: Option<usize>,
) -> Vec<AttachmentChunk> {
    let mut out = Vec::new();
    let mut at = from;
    while at < data.len() {
        let end = (at + MIB as usize).min(data.len());
        let mut bytes = data[at..end].to_vec();
        let sha256 = openssl::sha::sha256(&bytes).to_vec();
        if tamper == Some(at) {
            bytes[7] ^= 0x40;
        }
        out.push(AttachmentChunk {
            header: out.is_empty().then(|| header.clone()),
            offset: at as u64,
            data: bytes,
            sha256,
        });
        at = end;
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn a_tampered_chunk_is_asked_for_again_and_a_forged_digest_fails_recognition() {
    let mut net = Net::init(
        "KZ,RU",
        "",
        "",
        24300,
        "\n[attachments]\nstall_seconds = 10\n",
    );
    net.start("RU");
    let mut ru = exchange(&net, "RU", "KZ").await;
    let data: Vec<u8> = (0..3 * MIB as usize).map(|i| (i * 7 % 253) as u8).collect();
    let h = header("KZ", "RU");
    let message = h.message_id;
    let att = AttachmentHeader {
        route: Some(transfer_route(message, Vec::new())),
        attachment: Some(info("scan", &data)),
    };

    // The second chunk is tampered with: refused, the first kept, the rest asked for again.
    let answer = ru
        .put_attachment(tokio_stream::iter(chunks(
            &att,
            &data,
            0,
            Some(MIB as usize),
        )))
        .await
        .expect("answered")
        .into_inner();
    let refusal = answer.refused.expect("refused");
    assert_eq!(refusal.code, "chunk-digest-mismatch", "{}", refusal.reason);
    assert!(refusal.transient);
    assert!(!answer.complete);
    assert_eq!(answer.have, MIB, "the good chunk before it is kept");
    let status = ru
        .attachment_status(att.clone())
        .await
        .expect("status")
        .into_inner();
    assert_eq!((status.have, status.complete), (MIB, false));
    // Starting again from zero is refused: RU says where to continue.
    let again = ru
        .put_attachment(tokio_stream::iter(chunks(&att, &data, 0, None)))
        .await
        .expect("answered")
        .into_inner();
    assert_eq!(again.refused.expect("refused").code, "offset-mismatch");
    assert_eq!(again.have, MIB);
    let done = ru
        .put_attachment(tokio_stream::iter(chunks(&att, &data, MIB as usize, None)))
        .await
        .expect("answered")
        .into_inner();
    assert!(done.complete, "{:?}", done.refused);
    assert_eq!(done.have, data.len() as u64);

    // Bytes that are not what the transfer declared are discarded at the end.
    let other = Uuid::new_v4();
    let mut lie = info("scan", &data);
    lie.sha256[0] ^= 1;
    let lying = AttachmentHeader {
        route: Some(transfer_route(other, Vec::new())),
        attachment: Some(lie),
    };
    let answer = ru
        .put_attachment(tokio_stream::iter(chunks(&lying, &data, 0, None)))
        .await
        .expect("answered")
        .into_inner();
    let refusal = answer.refused.expect("refused");
    assert_eq!(refusal.code, "digest-mismatch");
    assert!(
        !refusal.transient,
        "every byte came in one stream: the sender's file is wrong, for good"
    );
    let status = ru
        .attachment_status(lying.clone())
        .await
        .expect("status")
        .into_inner();
    assert_eq!((status.have, status.complete), (0, false));
    // The same after a resumption: the bytes held on disk may be what is wrong, so the
    // refusal is transient and the next transfer starts from zero.
    let first: Vec<AttachmentChunk> = chunks(&lying, &data, 0, None).into_iter().take(1).collect();
    let answer = ru
        .put_attachment(tokio_stream::iter(first))
        .await
        .expect("answered")
        .into_inner();
    assert_eq!(answer.refused.expect("refused").code, "incomplete");
    let mut rest = chunks(&lying, &data, MIB as usize, None);
    rest[0].header = Some(lying.clone());
    let answer = ru
        .put_attachment(tokio_stream::iter(rest))
        .await
        .expect("answered")
        .into_inner();
    let refusal = answer.refused.expect("refused");
    assert_eq!(refusal.code, "digest-mismatch");
    assert!(refusal.transient, "resumed from disk: {}", refusal.reason);
    assert_eq!(answer.have, 0);

    // A sender that goes quiet mid-stream (its connection left open) is stopped after
    // attachments.stall_seconds: what arrived is kept and the attachment is free again.
    let quiet = AttachmentHeader {
        route: Some(transfer_route(Uuid::new_v4(), Vec::new())),
        attachment: Some(info("scan", &data)),
    };
    let (tx, rx) = tokio::sync::mpsc::channel(4);
    for c in chunks(&quiet, &data, 0, None).into_iter().take(1) {
        tx.send(c).await.expect("queued");
    }
    let began = Instant::now();
    let stalled = ru
        .clone()
        .put_attachment(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .expect_err("stopped as stalled");
    assert_eq!(
        stalled.code(),
        tonic::Code::DeadlineExceeded,
        "{}",
        stalled.message()
    );
    assert!(
        began.elapsed() >= Duration::from_secs(9),
        "stopped after {:?}, before stall_seconds",
        began.elapsed()
    );
    drop(tx);
    let status = ru
        .attachment_status(quiet.clone())
        .await
        .expect("status")
        .into_inner();
    assert_eq!(
        status.have, MIB,
        "the chunk that came before the stall is kept"
    );
    let done = ru
        .put_attachment(tokio_stream::iter(chunks(
            &quiet,
            &data,
            MIB as usize,
            None,
        )))
        .await
        .expect("answered")
        .into_inner();
    assert!(done.complete, "{:?}", done.refused);

    // The envelope's signed header declares another digest than the bytes that came: the
    // receipt says rejected, attachment-digest-mismatch.
    let key = signer(&net, "KZ");
    let mut forged = h.clone();
    let mut sha = openssl::sha::sha256(&data);
    sha[31] ^= 0x80;
    forged.attachments = vec![AttachmentRef {
        id: "scan".into(),
        media_type: "application/pdf".into(),
        size: data.len() as u64,
        sha256: sha,
    }];
    let envelope = sign(&forged, SAMPLE, &key, SignTarget::Document);
    let mut route = transfer_route(message, vec![info("scan", &data)]);
    route.digest = openssl::sha::sha256(&envelope).to_vec();
    let outcome = ru
        .deliver(DeliverRequest {
            items: vec![DeliverItem {
                route: Some(route),
                envelope,
                ..Default::default()
            }],
        })
        .await
        .expect("delivered")
        .into_inner()
        .outcomes
        .remove(0)
        .outcome;
    let Some(deliver_outcome::Outcome::Receipt(receipt)) = outcome else {
        panic!("expected a receipt, got {outcome:?}");
    };
    let text = String::from_utf8_lossy(&receipt);
    assert!(text.contains("rejected"), "{text}");
    assert!(text.contains("attachment-digest-mismatch"), "{text}");

    // Declared but never sent: rejected as missing. Listed by the route but not transferred:
    // refused for now (the sender transfers first and tries again).
    let mut missing = header("KZ", "RU");
    missing.attachments = vec![AttachmentRef {
        id: "annex".into(),
        media_type: "image/png".into(),
        size: 10,
        sha256: [1; 32],
    }];
    let envelope = sign(&missing, SAMPLE, &key, SignTarget::Document);
    let mut route = transfer_route(missing.message_id, Vec::new());
    route.digest = openssl::sha::sha256(&envelope).to_vec();
    let mut early = route.clone();
    early.attachments = vec![AttachmentInfo {
        id: "annex".into(),
        size: 10,
        sha256: vec![1; 32],
    }];
    let outcomes = ru
        .deliver(DeliverRequest {
            items: vec![DeliverItem {
                route: Some(early),
                envelope: envelope.clone(),
                ..Default::default()
            }],
        })
        .await
        .expect("delivered")
        .into_inner()
        .outcomes;
    match &outcomes[0].outcome {
        Some(deliver_outcome::Outcome::Refused(r)) => {
            assert_eq!(r.code, "attachments-incomplete", "{}", r.reason);
            assert!(r.transient);
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    let outcomes = ru
        .deliver(DeliverRequest {
            items: vec![DeliverItem {
                route: Some(route),
                envelope,
                ..Default::default()
            }],
        })
        .await
        .expect("delivered")
        .into_inner()
        .outcomes;
    let Some(deliver_outcome::Outcome::Receipt(receipt)) = &outcomes[0].outcome else {
        panic!("expected a receipt, got {:?}", outcomes[0]);
    };
    assert!(String::from_utf8_lossy(receipt).contains("attachment-missing"));

    // Over the size limit: refused before a byte is written.
    let mut huge = info("big", b"x");
    huge.size = 1 << 40;
    let err = ru
        .attachment_status(AttachmentHeader {
            route: Some(transfer_route(Uuid::new_v4(), Vec::new())),
            attachment: Some(huge),
        })
        .await
        .expect_err("too large");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(
        err.message().contains("max_attachment_bytes"),
        "{}",
        err.message()
    );

    // A body by reference that is not a valid document is rejected like an inline one.
    let mut by_ref = header("KZ", "RU");
    let junk = b"<not-closed>".to_vec();
    by_ref.attachments = vec![AttachmentRef {
        id: "body".into(),
        media_type: "application/xml".into(),
        size: junk.len() as u64,
        sha256: openssl::sha::sha256(&junk),
    }];
    let put = AttachmentHeader {
        route: Some(transfer_route(by_ref.message_id, Vec::new())),
        attachment: Some(info("body", &junk)),
    };
    let done = ru
        .put_attachment(tokio_stream::iter(chunks(&put, &junk, 0, None)))
        .await
        .expect("answered")
        .into_inner();
    assert!(done.complete, "{:?}", done.refused);
    let mut doc = tereze_codecs::envelope::Envelope::build_document_by_reference(
        tereze_codecs::envelope::VERSION,
        &by_ref,
        "body",
    )
    .expect("envelope");
    tereze_codecs::dsig::sign_enveloped(
        &mut doc,
        &SignTarget::Document,
        &key,
        &tereze_codecs::dsig::SignOptions::default(),
    )
    .expect("signed");
    let envelope = doc.to_xml().into_bytes();
    let mut route = transfer_route(by_ref.message_id, vec![info("body", &junk)]);
    route.digest = openssl::sha::sha256(&envelope).to_vec();
    let outcomes = ru
        .deliver(DeliverRequest {
            items: vec![DeliverItem {
                route: Some(route),
                envelope,
                ..Default::default()
            }],
        })
        .await
        .expect("delivered")
        .into_inner()
        .outcomes;
    let Some(deliver_outcome::Outcome::Receipt(receipt)) = &outcomes[0].outcome else {
        panic!("expected a receipt, got {:?}", outcomes[0]);
    };
    let text = String::from_utf8_lossy(receipt);
    assert!(text.contains("document-invalid"), "{text}");

    // The refused chunk is counted for the operators.
    assert!(net.metric("RU", "attachment_chunks_refused_total") >= 1);
    // Nothing hostile reached the inbox; the node is still up.
    assert!(net.inbox_ids("RU").is_empty());
}

/// The sample declaration to RU with one upload attached.
fn declaration_with(upload_id: String, id: &str, media_type: &str) -> tereze_proto::SubmitRequest {
    tereze_proto::SubmitRequest {
        format: "eaeu.export-declaration".into(),
        document: SAMPLE.as_bytes().to_vec(),
        recipient_country: "RU".into(),
        attachments: vec![tereze_proto::SubmitAttachment {
            upload_id,
            id: id.into(),
            media_type: media_type.into(),
        }],
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn grpc_doors_and_collection_after_settlement() {
    use tereze_proto::{FetchAttachmentRequest, UploadChunk};
    use tokio_stream::StreamExt;

    let extra = "\n[attachments]\nretention_hours = 0\ngc_interval_seconds = 1\nmax_national_transfers = 1\n";
    let mut net = Net::init("KZ,RU", "", "", 24400, extra);
    net.start("KZ");
    net.start("RU");
    let mut kz = net::window(net.window_port("KZ")).await;

    // One upload at a time here (attachments.max_national_transfers = 1): a second one while
    // an HTTP upload is in flight is refused, and the first still completes.
    let (first_id, mut open) = open_upload(&net, "KZ", 2 * MIB, &vec![6u8; MIB as usize + 1000]);
    // Bytes past a chunk buffer reach the file once the HTTP upload holds the slot.
    assert!(
        wait_until(Duration::from_secs(20), || upload_have(
            &net, "KZ", &first_id
        ) >= MIB),
        "the HTTP upload did not start"
    );
    let busy = kz
        .upload_attachment(tokio_stream::iter(vec![UploadChunk {
            data: b"second".to_vec(),
            ..Default::default()
        }]))
        .await
        .expect_err("over the limit");
    assert_eq!(
        busy.code(),
        tonic::Code::ResourceExhausted,
        "{}",
        busy.message()
    );
    assert!(
        busy.message().contains("max_national_transfers"),
        "{}",
        busy.message()
    );
    open.write_all(&vec![6u8; MIB as usize - 1000])
        .expect("the rest");
    let mut answer = String::new();
    open.read_to_string(&mut answer).expect("answer");
    assert!(
        answer.starts_with("HTTP/1.1 200") && answer.contains(r#""complete":true"#),
        "{answer}"
    );
    let data: Vec<u8> = (0..5 * MIB as usize + 123)
        .map(|i| (i % 241) as u8)
        .collect();
    // Uneven pieces: the node gathers them into its own chunks.
    let pieces: Vec<UploadChunk> = data
        .chunks(700_001)
        .map(|c| UploadChunk {
            data: c.to_vec(),
            ..Default::default()
        })
        .collect();
    let up = kz
        .upload_attachment(tokio_stream::iter(pieces))
        .await
        .expect("uploaded")
        .into_inner();
    assert_eq!(up.size, data.len() as u64);
    assert_eq!(up.sha256, hex(&openssl::sha::sha256(&data)));
    let unused = kz
        .upload_attachment(tokio_stream::iter(vec![UploadChunk {
            data: b"never named".to_vec(),
            ..Default::default()
        }]))
        .await
        .expect("uploaded")
        .into_inner();
    // A Submit naming an unknown upload or a bad id is refused with the field.
    let refused = kz
        .submit(declaration_with(Uuid::new_v4().to_string(), "a", ""))
        .await
        .expect_err("unknown upload");
    assert!(
        refused.message().starts_with("attachments[0].upload_id"),
        "{}",
        refused.message()
    );
    let refused = kz
        .submit(declaration_with(up.upload_id.clone(), "../etc", ""))
        .await
        .expect_err("bad id");
    assert!(
        refused.message().starts_with("attachments[0].id"),
        "{}",
        refused.message()
    );
    let id = kz
        .submit(declaration_with(
            up.upload_id.clone(),
            "annex-1",
            "application/pdf",
        ))
        .await
        .expect("submitted")
        .into_inner()
        .messages
        .remove(0)
        .message_id;
    assert!(
        wait_until(Duration::from_secs(60), || recognised_at(&net, "KZ", &id)),
        "{:?}",
        net.states("KZ", &id)
    );
    // The receiving national system reads it back through the Window.
    let mut ru = net::window(net.window_port("RU")).await;
    let mut stream = ru
        .fetch_attachment(FetchAttachmentRequest {
            message_id: id.clone(),
            id: "annex-1".into(),
            offset: 0,
        })
        .await
        .expect("fetch")
        .into_inner();
    let mut back = Vec::new();
    let mut declared = String::new();
    while let Some(m) = stream.next().await {
        let m = m.expect("chunk");
        assert_eq!(m.offset, back.len() as u64);
        if !m.sha256.is_empty() {
            declared = m.sha256;
        }
        back.extend_from_slice(&m.data);
    }
    assert_eq!(back, data);
    assert_eq!(declared, up.sha256);

    // Settled at KZ (retention 0): its copy goes at the next sweep. RU keeps its copy while
    // the message waits in the inbox, and lets it go once it is taken.
    let dir = |state: &str| {
        net.data_dir(state)
            .join("attachments")
            .join(id.trim_start_matches("urn:uuid:"))
    };
    assert!(
        wait_until(Duration::from_secs(20), || !dir("KZ").exists()),
        "KZ kept the attachment of a settled message"
    );
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        dir("RU").exists(),
        "RU collected an attachment still in its inbox"
    );
    let (status, v) = net.http(
        "RU",
        "POST",
        "/v1/inbox/ack",
        Some(&json!({"message_ids": [id]})),
    );
    assert_eq!(status, 200, "{v}");
    assert!(
        wait_until(Duration::from_secs(20), || !dir("RU").exists()),
        "RU kept the attachment after the inbox let it go"
    );
    // An upload no Submit named is kept (at least an hour) for the Submit still to come.
    let uploads = net.data_dir("KZ").join("attachments").join("uploads");
    assert!(uploads.join(format!("{}.done", unused.upload_id)).exists());
    assert!(net.log("KZ").contains("attachments collected"));
}

#[test]
fn a_body_sent_by_reference_is_checked_like_an_inline_one() {
    let mut net = Net::init(
        "KZ,RU",
        "",
        "",
        24500,
        "\n[attachments]\nmax_national_transfers = 1\n",
    );
    net.start("KZ");
    net.start("RU");
    let body = net.dir.path().join("body.xml");
    std::fs::write(&body, SAMPLE).expect("body");
    let (status, up) = upload(net.http_port("KZ"), &body);
    assert_eq!(status, 201, "{up}");
    let submit = |document: &str, format: &str, upload: &Value| {
        net.http(
            "KZ",
            "POST",
            "/v1/messages",
            Some(&json!({
                "format": format,
                "document": document,
                "recipient_country": "RU",
                "attachments": [{"upload_id": upload["upload_id"], "id": "body", "media_type": "application/xml"}],
                "body_attachment": "body",
            })),
        )
    };
    let (status, v) = submit("", "eaeu.export-declaration", &up);
    assert_eq!(status, 202, "{v}");
    let id = v["messages"][0]["message_id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert!(
        wait_until(Duration::from_secs(60), || recognised_at(&net, "KZ", &id)),
        "{:?}",
        net.states("KZ", &id)
    );
    let inbox = net.inbox("RU");
    let envelope = inbox[0]["envelope"].as_str().expect("envelope");
    assert!(envelope.contains("AttachmentBody"), "{envelope}");
    assert!(
        !envelope.contains("ExportDeclaration"),
        "the body travelled inline"
    );
    let (size, got, _) = download(net.http_port("RU"), &id, "body");
    assert_eq!(size, SAMPLE.len() as u64);
    assert_eq!(got, openssl::sha::sha256(SAMPLE.as_bytes()));

    // The sender checks it as it would an inline body, and refuses what makes no sense.
    let (status, v) = submit("<x/>", "eaeu.export-declaration", &up);
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .expect("error")
            .starts_with("document: must be empty"),
        "{v}"
    );
    let bad = net.dir.path().join("bad.xml");
    std::fs::write(&bad, "<not-closed>").expect("bad");
    let (_, bad_up) = upload(net.http_port("KZ"), &bad);
    let (status, v) = submit("", "eaeu.export-declaration", &bad_up);
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .expect("error")
            .starts_with("body_attachment body:"),
        "{v}"
    );

    // Reading a body by reference takes a national-transfer slot: with the only one held by
    // an upload in flight it is refused, retryably; an inline body is not held up.
    // More than a chunk buffer, so that bytes reach the file while the request goes on.
    let (held_id, conn) = open_upload(&net, "KZ", 4 * MIB, &vec![5u8; 2 * MIB as usize]);
    assert!(
        wait_until(Duration::from_secs(20), || upload_have(
            &net, "KZ", &held_id
        ) >= MIB),
        "the upload did not start"
    );
    let (status, v) = submit("", "eaeu.export-declaration", &up);
    assert_eq!(status, 429, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("max_national_transfers"),
        "{v}"
    );
    let (status, v) = net.http(
        "KZ",
        "POST",
        "/v1/messages",
        Some(&json!({
            "format": "eaeu.export-declaration",
            "document": SAMPLE,
            "recipient_country": "RU",
        })),
    );
    assert_eq!(status, 202, "{v}");
    drop(conn);
    assert!(
        wait_until(Duration::from_secs(20), || submit(
            "",
            "eaeu.export-declaration",
            &up
        )
        .0 == 202),
        "a body by reference is still refused after the upload stopped"
    );
}
