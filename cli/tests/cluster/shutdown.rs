//! Shutdown with real processes (issue 22): SIGTERM while the national system holds streams
//! open (`Window.Subscribe`, `SubscribeReference`, an idle HTTP keep-alive, a connection that
//! sent half a request's head) ends them at once,
//! and a call still open when the drain's share of `shutdown_seconds` runs out (an upload that
//! stops sending) is dropped; either way the node signs its last audit checkpoint and exits 0
//! within its budget.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use tereze_proto::{
    BeginUploadRequest, SubscribeReferenceRequest, SubscribeRequest, UploadChunk,
    UploadStatusRequest,
};

use crate::net::{self, Net};

/// No periodic checkpoint during a test: only the one signed at shutdown covers the chain's end.
const NO_PERIODIC_CHECKPOINT: &str = "audit_checkpoint_seconds = 3600";

/// Reads a server stream until it ends: `Ok(n)` after `n` items and a clean end, `Err` with
/// the status that ended it, or a panic when it is still open after `limit`.
async fn read_to_end<T>(
    stream: &mut tonic::Streaming<T>,
    limit: Duration,
    what: &str,
) -> Result<usize, tonic::Status> {
    let mut n = 0;
    loop {
        match tokio::time::timeout(limit, stream.message()).await {
            Ok(Ok(Some(_))) => n += 1,
            Ok(Ok(None)) => return Ok(n),
            Ok(Err(status)) => return Err(status),
            Err(_) => panic!("{what}: still open {limit:?} after SIGTERM"),
        }
    }
}

/// `tereze audit verify` on the stopped node: intact, with a checkpoint over its last entry.
fn assert_chain_signed_to_the_end(net: &Net, state: &str) {
    let (code, report) = net.audit_verify(state);
    assert_eq!(code, 0, "{report}");
    assert!(report.contains("intact"), "{report}");
    assert!(
        report.contains("after the last checkpoint 0\n"),
        "the last entries are not covered by a checkpoint: {report}"
    );
    assert!(!report.contains("checkpoints 0\n"), "{report}");
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_ends_open_streams_signs_a_last_checkpoint_and_exits_0_at_once() {
    let mut net = Net::init("KZ,RU", "", "", 26100, "");
    net.configure("KZ", NO_PERIODIC_CHECKPOINT);
    net.configure("KZ", "shutdown_seconds = 30");
    net.start("KZ");
    net.start("RU");
    let mut kz = net::window(net.window_port("KZ")).await;
    let mut events = kz
        .subscribe(SubscribeRequest::default())
        .await
        .expect("subscribed")
        .into_inner();
    let mut changes = kz
        .subscribe_reference(SubscribeReferenceRequest::default())
        .await
        .expect("subscribed to reference changes")
        .into_inner();
    // Entries after the last checkpoint, and an event on the stream: it is live.
    let id = net.submit("KZ", "RU", None).expect("KZ takes it");
    let first = tokio::time::timeout(Duration::from_secs(20), events.message())
        .await
        .expect("an event within 20 s")
        .expect("stream open")
        .expect("an event");
    assert!(
        first
            .message_id
            .ends_with(id.trim_start_matches("urn:uuid:")),
        "{first:?} is not about {id}"
    );
    // An HTTP client that keeps its connection open between requests.
    let mut keep_alive =
        TcpStream::connect(("127.0.0.1", net.http_port("KZ"))).expect("HTTP connects");
    keep_alive
        .set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    write!(
        keep_alive,
        "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    )
    .expect("request");
    let mut answer = [0u8; 512];
    let n = keep_alive.read(&mut answer).expect("an answer");
    assert!(n > 0 && answer.starts_with(b"HTTP/1.1 "), "no answer");
    // And one that has sent half a request's head.
    let mut half = TcpStream::connect(("127.0.0.1", net.http_port("KZ"))).expect("HTTP connects");
    half.set_read_timeout(Some(Duration::from_secs(60)))
        .expect("timeout");
    write!(half, "GET /healthz HTTP/1.1\r\nHost: 127.").expect("half a head");

    let stopping = Instant::now();
    net.signal("KZ", "TERM");
    let ended = read_to_end(&mut events, Duration::from_secs(10), "Subscribe").await;
    assert_eq!(
        ended.map_err(|s| s.code()),
        Err(tonic::Code::Unavailable),
        "Subscribe did not end with UNAVAILABLE"
    );
    let ended = read_to_end(&mut changes, Duration::from_secs(10), "SubscribeReference").await;
    assert_eq!(ended.map_err(|s| s.code()), Err(tonic::Code::Unavailable));
    let code = tokio::task::block_in_place(|| net.wait_exit("KZ", Duration::from_secs(40)));
    let took = stopping.elapsed();
    assert_eq!(code, Some(0), "{}", net.log("KZ"));
    // Well inside the 30 s budget: nothing waited for the budget to run out.
    assert!(took < Duration::from_secs(10), "stopped in {took:?}");
    assert!(
        !net.log("KZ").contains("the drain took longer"),
        "{}",
        net.log("KZ")
    );
    // The idle connections were closed, not left for the process's end.
    let rest = keep_alive.read(&mut answer);
    assert!(matches!(rest, Ok(0) | Err(_)), "{rest:?}");
    let rest = half.read(&mut answer);
    assert!(matches!(rest, Ok(0) | Err(_)), "{rest:?}");
    assert_chain_signed_to_the_end(&net, "KZ");
    eprintln!("stopped with two streams and two idle connections open in {took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_still_open_when_the_budget_runs_out_is_dropped_and_the_node_exits_0() {
    let mut net = Net::init("KZ,RU", "", "", 26140, "");
    net.configure("KZ", NO_PERIODIC_CHECKPOINT);
    net.configure("KZ", "shutdown_seconds = 10");
    net.start("KZ");
    net.submit("KZ", "RU", None)
        .expect("KZ takes it (RU is away)");
    let mut kz = net::window(net.window_port("KZ")).await;
    // A resumable upload whose client sent a first part and then nothing, without ending the
    // call: the server's graceful shutdown would wait for it up to attachments.stall_seconds.
    const MIB: usize = 1 << 20;
    let upload_id = kz
        .begin_upload(BeginUploadRequest {
            size: 2 * MIB as u64,
            ..Default::default()
        })
        .await
        .expect("upload begun")
        .into_inner()
        .upload_id;
    let (chunks, held_open) = tokio::sync::mpsc::channel(1);
    chunks
        .send(UploadChunk {
            upload_id: upload_id.clone(),
            offset: 0,
            // Past one chunk buffer, so that bytes reach the file while the call is open.
            data: vec![7; MIB + 1000],
        })
        .await
        .expect("queued");
    let upload = {
        let mut kz = kz.clone();
        tokio::spawn(async move {
            kz.upload_attachment(tokio_stream::wrappers::ReceiverStream::new(held_open))
                .await
        })
    };
    let mut held = 0;
    for _ in 0..200 {
        held = kz
            .upload_status(UploadStatusRequest {
                upload_id: upload_id.clone(),
            })
            .await
            .expect("status")
            .into_inner()
            .have;
        if held >= MIB as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        held >= MIB as u64,
        "the upload never started: {held} bytes held"
    );

    let stopping = Instant::now();
    net.signal("KZ", "TERM");
    let code = tokio::task::block_in_place(|| net.wait_exit("KZ", Duration::from_secs(40)));
    let took = stopping.elapsed();
    assert_eq!(code, Some(0), "{}", net.log("KZ"));
    // The drain (10 s less the 5 s reserve) waited for the upload, then dropped it.
    assert!(
        took >= Duration::from_secs(4) && took < Duration::from_secs(11),
        "stopped in {took:?}"
    );
    assert!(
        net.log("KZ")
            .contains("the drain took longer than shutdown_seconds allows"),
        "{}",
        net.log("KZ")
    );
    let ended = tokio::time::timeout(Duration::from_secs(10), upload)
        .await
        .expect("the upload call ended with the node")
        .expect("joined");
    assert!(ended.is_err(), "{ended:?}");
    drop(chunks);
    assert_chain_signed_to_the_end(&net, "KZ");
    eprintln!("stopped with an upload held open in {took:?} (shutdown_seconds = 10)");
}
