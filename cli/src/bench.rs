//! `tereze bench`: a load generator against real nodes. Starts a sending node (KZ) and a
//! receiving node (RU) as processes on loopback with the embedded store (fsync before every
//! acknowledgement), submits 4.5 KB EAEU export declarations through KZ's Window service, and
//! measures each message from the submit call to the moment KZ has verified RU's signed
//! receipt (sign, relay over mutual TLS, verify, store, receipt, verify receipt). With
//! `--store postgres` the sender's store is a PostgreSQL server started for the run (and
//! `--replicas 2` runs two replicas of the sender on it, the submissions spread over both).
//! With `--algorithm` the states' CAs and document signers use the keys asked for (GOST
//! R 34.10-2012: `KZ=gost2012-256,RU=gost2012-256`), as `pki init-dev --algorithm` makes them.
//! Also samples each node's resident set size, idle (before the load) and under load, and
//! reads one delivered message back from RU's inbox to report what really signed it.
//!
//! The side-by-side suite (`scripts/bench`, the `tereze-bench` crate) runs this with `--json`
//! and compares it with a RabbitMQ durable queue on the same machine.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use tokio_stream::StreamExt;

use crate::common::Failure;
use tereze_proto::{SubmitAttachment, SubmitRequest, SubscribeRequest};
use tereze_testkit::cluster::Cluster;

/// Measure end-to-end throughput and latency between two real nodes.
///
/// Closed loop by default (--concurrency submissions in flight); with --rate, an open loop at
/// that many messages per second. Prints throughput, latency percentiles (submit
/// acknowledgement and end to end), the nodes' CPU time per message and their resident
/// memory, idle and under load. For the side-by-side comparison with python-xmlsec, xmlsec1,
/// lxml and RabbitMQ, run `scripts/bench` (BENCHMARKS.md).
#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Messages to send.
    #[arg(long, default_value_t = 20_000)]
    messages: usize,
    /// Submissions in flight (closed loop).
    #[arg(long, default_value_t = 128)]
    concurrency: usize,
    /// Messages per second (open loop); 0 for a closed loop.
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// First port of the nodes' port range.
    #[arg(long, default_value_t = 17700)]
    base_port: u16,
    /// Seconds to wait for the last receipts.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
    /// The sender's store: `embedded` (redb) or `postgres` (a throwaway PostgreSQL server on
    /// loopback, started and removed by the run; Debian's postgresql must be installed).
    #[arg(long, default_value = "embedded", value_parser = ["embedded", "postgres"])]
    store: String,
    /// Replicas of the sender sharing its PostgreSQL store (1 or 2).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=2))]
    replicas: u8,
    /// Also send one attachment of this many MiB (generated, streamed through the Window's
    /// UploadAttachment), submitted just before the small messages, so their latencies are
    /// measured while it is in transit; reports its transfer time and the small messages'
    /// percentiles during it. The nodes' memory peaks then include the transfer.
    #[arg(long, default_value_t = 0, value_name = "MIB")]
    attachment_mib: u64,
    /// The nodes' `attachments.send_rate_kib` (KiB/s per transfer; 0: no cap): how much a
    /// capped transfer spares the small messages.
    #[arg(long, default_value_t = 0, value_name = "KIB")]
    attachment_rate_kib: u64,
    /// The nodes' `limits.store_cache_mb` (MiB of store pages kept in memory), to compare
    /// memory with another cache size.
    #[arg(long, value_name = "MIB", default_value_t = tereze_store::DEFAULT_CACHE_BYTES >> 20)]
    store_cache_mb: usize,
    /// The nodes' `limits.max_queue_bytes` (bytes of messages on their way into the store
    /// above which submissions are refused), to compare memory under overload.
    #[arg(long, value_name = "BYTES", default_value_t = tereze_node::Limits::default().max_queue_bytes)]
    max_queue_bytes: u64,
    /// The nodes' `limits.blocking_threads`.
    #[arg(long, value_name = "N", default_value_t = tereze_node::Limits::default().blocking_threads)]
    blocking_threads: usize,
    /// After the last receipt, wait this many seconds with no load and report each node's
    /// memory then (does it return near idle?).
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    settle: u64,
    /// Route KZ → RU through a hub (EEC), as DESIGN §1's star topology does.
    #[arg(long)]
    via_hub: bool,
    /// Key algorithm of a state's CA and document signer, as STATE=ALGORITHM, comma-separated
    /// (e.g. KZ=gost2012-256,RU=gost2012-256), as `tereze pki init-dev --algorithm` takes it:
    /// ecdsa-p256 (the default), rsa-2048, gost2012-256 or gost2012-512 (needs the OpenSSL
    /// GOST engine, Debian package libengine-gost-openssl). TLS keys stay ECDSA P-256.
    #[arg(long, value_name = "STATE=ALG", value_delimiter = ',')]
    algorithm: Vec<String>,
    /// Also follow KZ's event log with one webhook (a receiver on loopback that acknowledges
    /// every POST, docs/notifications.md) and report the events written and delivered per
    /// second; compare the throughput with a run without it.
    #[arg(long)]
    webhook: bool,
    /// Also write the figures to this file as JSON (for the benchmark suite).
    #[arg(long, value_name = "FILE")]
    json: Option<std::path::PathBuf>,
}

const DOCUMENT: &[u8] =
    include_bytes!("../../codecs/samples/eaeu.export-declaration/valid-grain.xml");

pub(crate) fn run(args: BenchArgs) -> Result<(), Failure> {
    if args.messages == 0 || args.concurrency == 0 {
        return Err(Failure::Input(
            "--messages and --concurrency must be at least 1".into(),
        ));
    }
    if args.replicas > 1 && args.store != "postgres" {
        return Err(Failure::Input(
            "--replicas 2 needs --store postgres (replicas share one PostgreSQL store)".into(),
        ));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Input(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(bench(args))
}

/// The sample export declaration, KZ → RU.
fn declaration() -> SubmitRequest {
    SubmitRequest {
        format: "eaeu.export-declaration".into(),
        document: DOCUMENT.to_vec(),
        recipient_country: "RU".into(),
        recipient_authority: "FCS".into(),
        ..Default::default()
    }
}

fn fail(e: impl std::fmt::Display) -> Failure {
    Failure::Input(e.to_string())
}

/// Milliseconds at the given percentile of sorted durations.
fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p / 100.0).round() as usize;
    sorted[i.min(sorted.len() - 1)].as_secs_f64() * 1e3
}

/// Percentiles of sorted durations as a JSON object (milliseconds).
fn pct_json(sorted: &[Duration]) -> serde_json::Value {
    serde_json::json!({
        "p50": pct(sorted, 50.0),
        "p90": pct(sorted, 90.0),
        "p99": pct(sorted, 99.0),
        "p999": pct(sorted, 99.9),
        "max": pct(sorted, 100.0),
    })
}

async fn bench(args: BenchArgs) -> Result<(), Failure> {
    let hook = args.webhook.then(Webhook::start).transpose()?;
    let (pg, cluster) = start_nodes(&args, hook.as_ref())?;
    let pids = cluster.pids();
    let mut windows = vec![cluster.window("KZ").await.map_err(fail)?];
    if args.replicas > 1 {
        windows.push(cluster.window("KZ-B").await.map_err(fail)?);
    }
    let members = cluster.members();
    let memory = Memory::start(&members).await;
    let tally = Tally::default();
    let (mut finished_rx, mut big_rx) = tally.follow(&windows, args.messages).await?;
    let attachment = if args.attachment_mib > 0 {
        Some(send_attachment(&windows[0], args.attachment_mib, &tally.big).await?)
    } else {
        None
    };
    let pg_pids = pg.as_ref().map(|p| p.pids()).unwrap_or_default();
    let pg_cpu_before = cpu_seconds(&pg_pids);
    let cpu_before = cpu_seconds(&pids);
    let started = Instant::now();
    let (acks, refused) = submit_all(&args, &windows, &tally, started).await?;
    let submit_time = started.elapsed();
    wait_for_receipts(&args, &tally, refused, &mut finished_rx).await;
    let total = started.elapsed();
    let webhook = match &hook {
        Some(h) => Some(h.settle(started, total, args.timeout).await),
        None => None,
    };
    if attachment.is_some() {
        let _ = tokio::time::timeout(Duration::from_secs(args.timeout), big_rx.recv()).await;
    }
    tally.settle_early().await;
    let signed = sample_signatures(&cluster).await;
    let pg_cpu = cpu_seconds(&pg_pids) - pg_cpu_before;
    let cpu = cpu_seconds(&pids) - cpu_before;
    let (rss_idle, rss_peak) = memory.stop().await;
    let rss_after = settled_memory(&members, args.settle).await;
    let mut e2e = tally.done.lock().map(|d| d.clone()).unwrap_or_default();
    e2e.sort();
    let figures = Figures {
        refused,
        total,
        submit_time,
        acks,
        e2e,
        cpu,
        pg_cpu: pg.as_ref().map(|_| pg_cpu),
        members,
        rss_idle,
        rss_peak,
        rss_after,
        signed,
        webhook,
    };
    print_figures(&args, &figures);
    let big_settled = tally.big_done.lock().ok().and_then(|d| d.clone());
    let big_report = report_attachment(&args, attachment.as_ref(), &tally, &big_settled);
    if let Some(path) = &args.json {
        write_json(path, &args, &figures, big_report)?;
    }
    drop(cluster);
    drop(pg);
    outcome(
        &args,
        figures.e2e.len(),
        refused,
        attachment.is_some(),
        big_settled,
    )
}

/// The run's verdict: the attachment's message (if sent) recognised, and every message the
/// sender accepted delivered.
fn outcome(
    args: &BenchArgs,
    n: usize,
    refused: usize,
    attachment_sent: bool,
    big_settled: Option<(Instant, String)>,
) -> Result<(), Failure> {
    let big_ok = !attachment_sent || big_settled.is_some_and(|(_, s)| s == "recognised");
    if !big_ok {
        return Err(Failure::Verdict(
            "the attachment's message was not recognised".into(),
        ));
    }
    // Every accepted message must come back; refused ones were never the node's.
    if n == args.messages - refused {
        Ok(())
    } else {
        Err(Failure::Verdict(format!(
            "only {n} of the {} messages accepted were delivered",
            args.messages - refused
        )))
    }
}

/// With `--settle`: each node's memory after that many seconds without load (KiB).
async fn settled_memory(members: &[(String, u32)], settle: u64) -> Vec<Option<u64>> {
    if settle == 0 {
        return Vec::new();
    }
    tokio::time::sleep(Duration::from_secs(settle)).await;
    members
        .iter()
        .map(|(_, p)| tereze_support::procfs::rss_kib(*p))
        .collect()
}

/// The PostgreSQL server of `--store postgres`, then KZ and RU (and the hub, and KZ's second
/// replica) as processes.
fn start_nodes(
    args: &BenchArgs,
    hook: Option<&Webhook>,
) -> Result<(Option<tereze_testkit::pgcluster::PgCluster>, Cluster), Failure> {
    let pg = if args.store == "postgres" {
        Some(
            tokio::task::block_in_place(tereze_testkit::pgcluster::PgCluster::start)
                .map_err(|e| fail(format!("PostgreSQL: {e}")))?,
        )
    } else {
        None
    };
    let algorithms = tereze_trust::devpki::parse_algorithms(&args.algorithm)
        .map_err(|e| Failure::Input(e.to_string()))?;
    let mut top = std::collections::BTreeMap::new();
    if let Some(pg) = &pg {
        let url = tokio::task::block_in_place(|| pg.create_database("bench")).map_err(fail)?;
        top.insert("KZ".to_string(), format!("store = \"{url}\""));
    }
    if let Some(h) = hook {
        let line = top
            .remove("KZ")
            .map_or(h.config(), |s| format!("{s}\n{}", h.config()));
        top.insert("KZ".to_string(), line);
    }
    let cluster = tokio::task::block_in_place(|| {
        let extra = format!(
            "\n[limits]\nmax_queue = 1000000\nmax_queue_bytes = {}\nblocking_threads = {}\nstore_cache_mb = {}\n[attachments]\nsend_rate_kib = {}\n",
            args.max_queue_bytes, args.blocking_threads, args.store_cache_mb, args.attachment_rate_kib
        );
        let mut c = Cluster::start_with_algorithms(
            None,
            &["KZ", "RU"],
            args.via_hub.then_some("EEC"),
            if args.via_hub { &["KZ", "RU"] } else { &[] },
            args.base_port,
            &extra,
            &top,
            &algorithms,
        )?;
        if args.replicas > 1 {
            c.start_replica("KZ", "KZ-B")?;
        }
        Ok::<_, tereze_testkit::cluster::ClusterError>(c)
    })
    .map_err(fail)?;
    Ok((pg, cluster))
}

/// The CPU time the processes `pids` have used, in seconds.
fn cpu_seconds(pids: &[u32]) -> f64 {
    pids.iter()
        .filter_map(|p| tereze_support::procfs::cpu_seconds(*p))
        .sum()
}

/// The nodes' resident memory: idle when started, and its peak sampled every 100 ms until
/// stopped.
struct Memory {
    idle: Vec<Option<u64>>,
    peak: Arc<Mutex<Vec<u64>>>,
    sampling: Arc<std::sync::atomic::AtomicBool>,
    sampler: tokio::task::JoinHandle<()>,
}

impl Memory {
    async fn start(members: &[(String, u32)]) -> Self {
        // Idle memory: started, connected, nothing sent yet.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let idle: Vec<Option<u64>> = members
            .iter()
            .map(|(_, p)| tereze_support::procfs::rss_kib(*p))
            .collect();
        let peak: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(vec![0; members.len()]));
        let sampling = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let sampler = {
            let pids: Vec<u32> = members.iter().map(|(_, p)| *p).collect();
            let peak = peak.clone();
            let sampling = sampling.clone();
            tokio::spawn(async move {
                while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                    if let Ok(mut peak) = peak.lock() {
                        for (i, p) in pids.iter().enumerate() {
                            if let Some(r) = tereze_support::procfs::rss_kib(*p) {
                                peak[i] = peak[i].max(r);
                            }
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        Self {
            idle,
            peak,
            sampling,
            sampler,
        }
    }

    /// Idle and peak memory of each node (KiB).
    async fn stop(self) -> (Vec<Option<u64>>, Vec<u64>) {
        self.sampling
            .store(false, std::sync::atomic::Ordering::Relaxed);
        let _ = self.sampler.await;
        let peak = self.peak.lock().map(|p| p.clone()).unwrap_or_default();
        (self.idle, peak)
    }
}

/// What the nodes report back: when each message was submitted and settled, shared by the
/// submitting tasks and the tasks following each replica's status stream.
#[derive(Clone, Default)]
struct Tally {
    submitted: Arc<Mutex<HashMap<String, Instant>>>,
    /// End-to-end times of the small messages.
    done: Arc<Mutex<Vec<Duration>>>,
    /// Receipts that came back before their submit call returned here: settled at the end.
    early: Arc<Mutex<HashMap<String, Instant>>>,
    settled: Arc<std::sync::atomic::AtomicUsize>,
    /// The attachment's message (id, when submitted) and when it was settled; small messages
    /// settled in between are the ones measured "during the transfer".
    big: Arc<Mutex<Option<(String, Instant)>>>,
    big_done: Arc<Mutex<Option<(Instant, String)>>>,
    during: Arc<Mutex<Vec<Duration>>>,
}

impl Tally {
    /// Follows each replica's status stream (each tells of the messages it settled,
    /// whichever replica sent them). The first receiver hears when all `n` small messages
    /// are settled, the second when the attachment's message is.
    async fn follow(
        &self,
        windows: &[tereze_testkit::cluster::Window],
        n: usize,
    ) -> Result<
        (
            tokio::sync::mpsc::UnboundedReceiver<()>,
            tokio::sync::mpsc::UnboundedReceiver<()>,
        ),
        Failure,
    > {
        let (finished_tx, finished_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        let (big_tx, big_rx) = tokio::sync::mpsc::unbounded_channel::<()>();
        for window in windows {
            let mut w = window.clone();
            let stream = w
                .subscribe(SubscribeRequest {
                    message_ids: vec![],
                    after: None,
                })
                .await
                .map_err(|e| fail(e.message()))?;
            let tally = self.clone();
            let (finished_tx, big_tx) = (finished_tx.clone(), big_tx.clone());
            tokio::spawn(async move {
                let mut stream = stream.into_inner();
                while let Some(ev) = stream.next().await {
                    let Ok(ev) = ev else { continue };
                    let Some(t) = ev.transition else { continue };
                    if t.state != "recognised" && t.state != "rejected" {
                        continue;
                    }
                    if tally.settle(ev.message_id, t.state, n, &finished_tx, &big_tx) {
                        break;
                    }
                }
            });
        }
        Ok((finished_rx, big_rx))
    }

    /// Records that message `id` was settled (`state`); true once all `n` small messages
    /// are and no attachment is still on its way.
    fn settle(
        &self,
        id: String,
        state: String,
        n: usize,
        finished_tx: &tokio::sync::mpsc::UnboundedSender<()>,
        big_tx: &tokio::sync::mpsc::UnboundedSender<()>,
    ) -> bool {
        let now = Instant::now();
        let is_big = self
            .big
            .lock()
            .ok()
            .and_then(|b| b.as_ref().map(|(big, _)| *big == id))
            .unwrap_or(false);
        if is_big {
            if let Ok(mut d) = self.big_done.lock() {
                *d = Some((now, state));
            }
            let _ = big_tx.send(());
            return self.settled.load(std::sync::atomic::Ordering::SeqCst) >= n;
        }
        let in_transit = self.attachment_in_transit();
        let start = self.submitted.lock().ok().and_then(|m| m.get(&id).copied());
        match start {
            Some(s) => {
                if let Ok(mut d) = self.done.lock() {
                    d.push(now - s);
                }
                if in_transit {
                    if let Ok(mut d) = self.during.lock() {
                        d.push(now - s);
                    }
                }
            }
            None => {
                if let Ok(mut e) = self.early.lock() {
                    e.insert(id, now);
                }
            }
        }
        if self
            .settled
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1
            == n
        {
            let _ = finished_tx.send(());
        }
        // Done once the small messages are and no attachment is still on its way.
        self.settled.load(std::sync::atomic::Ordering::SeqCst) >= n && !self.attachment_in_transit()
    }

    /// An attachment's message was submitted and is not settled yet.
    fn attachment_in_transit(&self) -> bool {
        self.big.lock().ok().is_some_and(|b| b.is_some())
            && self.big_done.lock().ok().is_some_and(|d| d.is_none())
    }

    /// Settles the early ones against their submit times (their submit calls may still be
    /// returning).
    async fn settle_early(&self) {
        for _ in 0..250 {
            if let (Ok(s), Ok(mut d), Ok(mut e)) =
                (self.submitted.lock(), self.done.lock(), self.early.lock())
            {
                e.retain(|id, at| match s.get(id) {
                    Some(start) => {
                        d.push(at.saturating_duration_since(*start));
                        false
                    }
                    None => true,
                });
                if e.is_empty() {
                    break;
                }
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Submits `--messages` declarations spread over the windows, `--concurrency` in flight or
/// at `--rate`; the acknowledgement times (sorted) and how many the sender refused for now.
async fn submit_all(
    args: &BenchArgs,
    windows: &[tereze_testkit::cluster::Window],
    tally: &Tally,
    started: Instant,
) -> Result<(Vec<Duration>, usize), Failure> {
    let acks: Arc<Mutex<Vec<Duration>>> = Arc::default();
    // Submissions the sender refused for now (RESOURCE_EXHAUSTED: its queues are full), so
    // never sent: an open loop above capacity is pushed back, not failed.
    let refused = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let sem = Arc::new(tokio::sync::Semaphore::new(if args.rate > 0 {
        100_000
    } else {
        args.concurrency
    }));
    let mut tasks = tokio::task::JoinSet::new();
    let interval = (args.rate > 0).then(|| Duration::from_secs_f64(1.0 / args.rate as f64));
    for i in 0..args.messages {
        if let Some(iv) = interval {
            let due = started + iv * i as u32;
            tokio::time::sleep_until(due.into()).await;
        }
        let permit = sem.clone().acquire_owned().await.map_err(fail)?;
        let mut w = windows[i % windows.len()].clone();
        let submitted = tally.submitted.clone();
        let acks = acks.clone();
        let refused = refused.clone();
        tasks.spawn(async move {
            let t0 = Instant::now();
            let r = w.submit(declaration()).await;
            drop(permit);
            let r = match r {
                Err(e) if e.code() == tonic::Code::ResourceExhausted => {
                    refused.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    return Ok(());
                }
                r => r.map_err(|e| e.message().to_owned())?,
            };
            if let Ok(mut a) = acks.lock() {
                a.push(t0.elapsed());
            }
            if let (Ok(mut s), Some(m)) = (submitted.lock(), r.into_inner().messages.first()) {
                s.insert(m.message_id.clone(), t0);
            }
            Ok::<(), String>(())
        });
        while let Some(r) = tasks.try_join_next() {
            r.map_err(fail)?.map_err(fail)?;
        }
    }
    while let Some(r) = tasks.join_next().await {
        r.map_err(fail)?.map_err(fail)?;
    }
    let mut acks = acks.lock().map(|a| a.clone()).unwrap_or_default();
    acks.sort();
    Ok((acks, refused.load(std::sync::atomic::Ordering::Relaxed)))
}

/// Waits up to `--timeout` for the receipts of every message the sender accepted.
async fn wait_for_receipts(
    args: &BenchArgs,
    tally: &Tally,
    refused: usize,
    finished_rx: &mut tokio::sync::mpsc::UnboundedReceiver<()>,
) {
    if refused == 0 {
        let _ = tokio::time::timeout(Duration::from_secs(args.timeout), finished_rx.recv()).await;
    } else {
        // Only the accepted ones come back.
        let accepted = args.messages - refused;
        let deadline = Instant::now() + Duration::from_secs(args.timeout);
        while tally.settled.load(std::sync::atomic::Ordering::SeqCst) < accepted
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// What a run measured.
struct Figures {
    refused: usize,
    total: Duration,
    submit_time: Duration,
    /// Sorted.
    acks: Vec<Duration>,
    /// Sorted; one per message delivered.
    e2e: Vec<Duration>,
    cpu: f64,
    /// With `--store postgres`: the server's CPU time.
    pg_cpu: Option<f64>,
    members: Vec<(String, u32)>,
    rss_idle: Vec<Option<u64>>,
    rss_peak: Vec<u64>,
    rss_after: Vec<Option<u64>>,
    signed: Signed,
    /// With `--webhook`: what it received.
    webhook: Option<WebhookFigures>,
}

/// The sender's event log followed by one webhook (`--webhook`).
#[derive(Debug, Clone, Copy)]
struct WebhookFigures {
    /// Events KZ wrote (the newest sequence number the webhook received: it follows every
    /// kind).
    written: u64,
    /// Distinct events the receiver acknowledged, and POSTs.
    delivered: u64,
    posts: usize,
    /// From the first submission to the last event acknowledged.
    seconds: f64,
    /// The last event's delay behind the last receipt.
    behind_seconds: f64,
}

/// The receiver of `--webhook` and its secret file.
struct Webhook {
    receiver: tereze_testkit::webhook::WebhookReceiver,
    /// Removed when the run ends.
    secret_file: std::path::PathBuf,
}

impl Drop for Webhook {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.secret_file);
    }
}

impl Webhook {
    fn start() -> Result<Self, Failure> {
        let secret_file = std::env::temp_dir().join(format!(
            "tereze-bench-{}.webhook-secret",
            std::process::id()
        ));
        std::fs::write(&secret_file, "bench webhook secret").map_err(fail)?;
        std::fs::set_permissions(
            &secret_file,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .map_err(fail)?;
        Ok(Self {
            receiver: tereze_testkit::webhook::WebhookReceiver::start(),
            secret_file,
        })
    }

    /// KZ's `[[notifications.webhooks]]`, put before its first table.
    fn config(&self) -> String {
        format!(
            "[[notifications.webhooks]]\nname = \"bench\"\nurl = \"{}\"\nsecret_file = \"{}\"\nmax_batch = 100",
            self.receiver.url(),
            self.secret_file.display()
        )
    }

    /// Waits until the receiver has had nothing new for two seconds (at most `timeout`): what
    /// it received, timed from `started`.
    async fn settle(&self, started: Instant, receipts: Duration, timeout: u64) -> WebhookFigures {
        let deadline = Instant::now() + Duration::from_secs(timeout);
        let (mut high, mut at) = (0u64, started.elapsed());
        let mut quiet_since = Instant::now();
        loop {
            let posts = self.receiver.posts();
            let now_high = posts.iter().flat_map(|p| p.seqs()).max().unwrap_or(0);
            if now_high > high {
                (high, at) = (now_high, started.elapsed());
                quiet_since = Instant::now();
            }
            if quiet_since.elapsed() > Duration::from_secs(2) || Instant::now() > deadline {
                let seen: std::collections::HashSet<u64> =
                    posts.iter().flat_map(|p| p.seqs()).collect();
                return WebhookFigures {
                    written: high,
                    delivered: seen.len() as u64,
                    posts: posts.len(),
                    seconds: at.as_secs_f64(),
                    behind_seconds: (at.as_secs_f64() - receipts.as_secs_f64()).max(0.0),
                };
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Prints the run's figures: throughput, latencies, CPU and memory.
fn print_figures(args: &BenchArgs, f: &Figures) {
    let (acks, e2e, refused, cpu) = (&f.acks, &f.e2e, f.refused, f.cpu);
    let n = e2e.len();
    println!(
        "tereze bench: {} messages of {} bytes (EAEU export declaration), KZ → RU, fsync per commit, sender's store {}, {}",
        args.messages,
        DOCUMENT.len(),
        match (f.pg_cpu.is_some(), args.replicas) {
            (false, _) => "embedded (redb)".to_string(),
            (true, 1) => "PostgreSQL, 1 replica".to_string(),
            (true, n) => format!("PostgreSQL, {n} replicas"),
        },
        if args.rate > 0 {
            format!("open loop at {} msg/s", args.rate)
        } else {
            format!("closed loop, {} in flight", args.concurrency)
        }
    );
    println!(
        "delivered {n}/{} with verified receipts in {:.2} s: {:.0} msg/s end to end (submissions took {:.2} s: {:.0} msg/s){}",
        args.messages - refused,
        f.total.as_secs_f64(),
        n as f64 / f.total.as_secs_f64(),
        f.submit_time.as_secs_f64(),
        args.messages as f64 / f.submit_time.as_secs_f64(),
        if refused > 0 {
            format!("; {refused} of {} refused (RESOURCE_EXHAUSTED)", args.messages)
        } else {
            String::new()
        }
    );
    println!(
        "submit acknowledged (durable)  p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms",
        pct(acks, 50.0),
        pct(acks, 90.0),
        pct(acks, 99.0),
        pct(acks, 99.9),
        pct(acks, 100.0)
    );
    println!(
        "end to end (receipt verified)  p50 {:.2} ms  p90 {:.2} ms  p99 {:.2} ms  p99.9 {:.2} ms  max {:.2} ms",
        pct(e2e, 50.0),
        pct(e2e, 90.0),
        pct(e2e, 99.0),
        pct(e2e, 99.9),
        pct(e2e, 100.0)
    );
    println!(
        "node CPU: {:.2} s for the nodes, {:.0} µs per message (this load generator not included)",
        cpu,
        cpu * 1e6 / args.messages as f64
    );
    if let Some(pg_cpu) = f.pg_cpu {
        println!(
            "PostgreSQL CPU: {:.2} s, {:.0} µs per message",
            pg_cpu,
            pg_cpu * 1e6 / args.messages as f64
        );
    }
    let mb = |kib: Option<u64>| kib.map_or("?".to_owned(), |k| format!("{:.1}", k as f64 / 1024.0));
    let memory: Vec<String> = f
        .members
        .iter()
        .enumerate()
        .map(|(i, (state, _))| {
            let after = match f.rss_after.get(i) {
                Some(r) => format!(", {} MB {} s after", mb(*r), args.settle),
                None => String::new(),
            };
            format!(
                "{state} idle {} MB, peak under load {} MB{after}",
                mb(f.rss_idle.get(i).copied().flatten()),
                mb(f.rss_peak.get(i).copied())
            )
        })
        .collect();
    println!("node memory (RSS): {}", memory.join("; "));
    if let Some(w) = f.webhook {
        println!(
            "event log (one webhook following KZ): {} events written ({:.0}/s over the run), {} delivered in {} POSTs in {:.2} s ({:.0}/s), the last {:.2} s after the last receipt",
            w.written,
            w.written as f64 / f.total.as_secs_f64(),
            w.delivered,
            w.posts,
            w.seconds,
            w.delivered as f64 / w.seconds.max(1e-9),
            w.behind_seconds
        );
    }
    let or_none = |v: &Option<String>| v.clone().unwrap_or_else(|| "none read".into());
    println!(
        "signed with (one message read back from RU's inbox): envelope {}, receipt {}, RU's verdict {}",
        or_none(&f.signed.envelope),
        or_none(&f.signed.receipt),
        or_none(&f.signed.verdict)
    );
}

/// The algorithms a delivered message was really signed with, read back from the receiver's
/// inbox (the envelope's and the receipt's `SignatureMethod`) with the receiver's verdict: the
/// suite checks these, so a run cannot claim an algorithm the nodes did not use.
#[derive(Debug, Default)]
struct Signed {
    envelope: Option<String>,
    receipt: Option<String>,
    verdict: Option<String>,
}

/// Reads the oldest message of RU's inbox (a cursor read: nothing is taken out).
async fn sample_signatures(cluster: &Cluster) -> Signed {
    let Ok(mut window) = cluster.window("RU").await else {
        return Signed::default();
    };
    let request = tereze_proto::InboxPullRequest {
        limit: 1,
        after: String::new(),
    };
    let Ok(answer) = window.inbox_pull(request).await else {
        return Signed::default();
    };
    let Some(m) = answer.into_inner().messages.into_iter().next() else {
        return Signed::default();
    };
    Signed {
        envelope: tereze_codecs::dsig::claimed_signature_method(&m.envelope),
        receipt: tereze_codecs::dsig::claimed_signature_method(&m.receipt),
        verdict: Some(m.verdict),
    }
}

/// Prints how the attachment went and the small messages' latencies meanwhile; its JSON.
fn report_attachment(
    args: &BenchArgs,
    attachment: Option<&Uploaded>,
    tally: &Tally,
    big_settled: &Option<(Instant, String)>,
) -> Option<serde_json::Value> {
    let mut during = tally.during.lock().map(|d| d.clone()).unwrap_or_default();
    during.sort();
    match (
        attachment,
        tally.big.lock().ok().and_then(|b| b.clone()),
        big_settled,
    ) {
        (Some(a), Some((_, at)), Some((end, state))) => {
            let secs = end.saturating_duration_since(at).as_secs_f64();
            println!(
                "attachment: {} MiB (SHA-256 {}) uploaded in {:.2} s, then {} in {:.2} s after its submit ({:.0} MiB/s{}); {} small messages settled meanwhile: end to end p50 {:.2} ms  p99 {:.2} ms  max {:.2} ms",
                args.attachment_mib,
                a.sha256,
                a.upload_seconds,
                state,
                secs,
                args.attachment_mib as f64 / secs.max(1e-9),
                if args.via_hub { ", through the hub" } else { "" },
                during.len(),
                pct(&during, 50.0),
                pct(&during, 99.0),
                pct(&during, 100.0)
            );
            Some(serde_json::json!({
                "mib": args.attachment_mib,
                "sha256": a.sha256,
                "upload_seconds": a.upload_seconds,
                "transfer_seconds": secs,
                "verdict": state,
                "small_messages_during": during.len(),
                "small_e2e_ms_during": pct_json(&during),
            }))
        }
        (Some(_), _, _) => {
            println!("attachment: not settled within --timeout");
            Some(serde_json::json!({"mib": args.attachment_mib, "verdict": null}))
        }
        _ => None,
    }
}

/// Writes the figures as JSON for the benchmark suite (`--json`).
fn write_json(
    path: &std::path::Path,
    args: &BenchArgs,
    f: &Figures,
    big_report: Option<serde_json::Value>,
) -> Result<(), Failure> {
    let n = f.e2e.len();
    let summary = serde_json::json!({
        "messages": args.messages,
        "delivered": n,
        "refused": f.refused,
        "bytes": DOCUMENT.len(),
        "concurrency": args.concurrency,
        "rate": args.rate,
        "seconds": f.total.as_secs_f64(),
        "throughput": n as f64 / f.total.as_secs_f64(),
        "submit_seconds": f.submit_time.as_secs_f64(),
        "ack_ms": pct_json(&f.acks),
        "e2e_ms": pct_json(&f.e2e),
        "node_cpu_seconds": f.cpu,
        "node_cpu_us_per_message": f.cpu * 1e6 / args.messages as f64,
        "store": args.store,
        "replicas": args.replicas,
        "via_hub": args.via_hub,
        "attachment_rate_kib": args.attachment_rate_kib,
        "attachment": big_report,
        "postgresql_cpu_seconds": f.pg_cpu,
        "webhook": f.webhook.map(|w| serde_json::json!({
            "events_written": w.written,
            "events_delivered": w.delivered,
            "posts": w.posts,
            "seconds": w.seconds,
            "delivered_per_second": w.delivered as f64 / w.seconds.max(1e-9),
            "behind_last_receipt_seconds": w.behind_seconds,
        })),
        "signature_methods": {
            "envelope": f.signed.envelope,
            "receipt": f.signed.receipt,
            "verdict": f.signed.verdict,
        },
        "nodes": f.members.iter().enumerate().map(|(i, (state, pid))| serde_json::json!({
            "state": state,
            "pid": pid,
            "rss_idle_kib": f.rss_idle.get(i).copied().flatten(),
            "rss_peak_kib": f.rss_peak.get(i).copied(),
            "rss_after_kib": f.rss_after.get(i).copied().flatten(),
        })).collect::<Vec<_>>(),
    });
    std::fs::write(path, summary.to_string())
        .map_err(|e| Failure::Input(format!("{}: {e}", path.display())))
}

/// What the attachment upload gave.
struct Uploaded {
    sha256: String,
    upload_seconds: f64,
}

/// Uploads `mib` MiB of generated bytes to KZ and submits a message with them to RU; records
/// the message in `big`.
async fn send_attachment(
    window: &tereze_testkit::cluster::Window,
    mib: u64,
    big: &Arc<Mutex<Option<(String, Instant)>>>,
) -> Result<Uploaded, Failure> {
    let mut w = window.clone();
    let t0 = Instant::now();
    let up = tereze_testkit::cluster::upload_generated(window, mib)
        .await
        .map_err(Failure::Verdict)?;
    let upload_seconds = t0.elapsed().as_secs_f64();
    let r = w
        .submit(SubmitRequest {
            attachments: vec![SubmitAttachment {
                upload_id: up.upload_id,
                id: "large.bin".into(),
                media_type: "application/octet-stream".into(),
            }],
            ..declaration()
        })
        .await
        .map_err(|e| fail(format!("submit with the attachment: {}", e.message())))?
        .into_inner();
    let id = r
        .messages
        .first()
        .map(|m| m.message_id.clone())
        .ok_or_else(|| fail("the submit returned no message"))?;
    if let Ok(mut b) = big.lock() {
        *b = Some((id, Instant::now()));
    }
    Ok(Uploaded {
        sha256: up.sha256,
        upload_seconds,
    })
}
