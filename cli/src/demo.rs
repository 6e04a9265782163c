//! `tereze demo`: the five member states and the Commission's hub on loopback, each a real
//! `tereze node run` process with the embedded store and a development PKI; sample export
//! documents go through the national systems' Window service (direct and through the hub),
//! and every message's timeline and receipt is shown.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use clap::Args;
use tokio_stream::StreamExt;

use crate::common::Failure;
use tereze_proto::{
    StatusRequest, SubmitAttachment, SubmitRequest, SubmitResponse, SubscribeRequest,
};
use tereze_testkit::cluster::Cluster;
use tereze_trust::devpki::KeyAlgorithm;

/// Run the multi-state demo.
///
/// Without --exit it sends one message per scenario (and one "submit once" set), prints each
/// timeline and keeps the nodes running for exploration until Ctrl-C. With
/// `--messages N --exit` it sends N messages, waits until each is delivered with a verified,
/// signed receipt and recognised by its recipient, prints `delivered K/N` and exits 0 only
/// when K = N.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Messages to send (spread over the scenarios); default: one per scenario.
    #[arg(long)]
    messages: Option<usize>,
    /// Exit when every message is settled (0 only if all were delivered and recognised).
    #[arg(long)]
    exit: bool,
    /// Keep the nodes' files (PKI, configs, stores, logs) here instead of a temporary directory.
    #[arg(long, value_name = "DIR")]
    dir: Option<PathBuf>,
    /// First port of the nodes' port range (each node uses 3 ports of a block of 10).
    #[arg(long, default_value_t = 17100)]
    base_port: u16,
    /// Seconds to wait for every message to settle.
    #[arg(long, default_value_t = 120)]
    timeout: u64,
    /// National algorithms: KZ, KG and AM sign with GOST R 34.10-2012 (256-bit), RU with
    /// GOST R 34.10-2012 (512-bit) and the hub EEC with 256-bit, each with Streebog; BY stays
    /// on ECDSA P-256 (no STB 34.101 implementation is available). TLS stays ECDSA. Needs the
    /// OpenSSL GOST engine (Debian package libengine-gost-openssl; scripts/setup installs it).
    /// Every receipt must then be signed with its recipient's algorithm.
    #[arg(long)]
    gost: bool,
}

/// The states' key algorithms under `--gost`.
const GOST_STATES: &[(&str, KeyAlgorithm)] = &[
    ("KZ", KeyAlgorithm::Gost2012_256),
    ("KG", KeyAlgorithm::Gost2012_256),
    ("AM", KeyAlgorithm::Gost2012_256),
    ("RU", KeyAlgorithm::Gost2012_512),
    ("EEC", KeyAlgorithm::Gost2012_256),
];

/// The `SignatureMethod` a receipt signed by `state` carries under `--gost`.
fn expected_method(state: &str) -> &'static str {
    match GOST_STATES
        .iter()
        .find(|(s, _)| *s == state)
        .map(|(_, a)| *a)
    {
        Some(KeyAlgorithm::Gost2012_256) => {
            "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102012-gostr34112012-256"
        }
        Some(KeyAlgorithm::Gost2012_512) => {
            "urn:ietf:params:xml:ns:cpxmlsec:algorithms:gostr34102012-gostr34112012-512"
        }
        _ => "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    }
}

/// One message of each run carries a file beside its envelope, streamed through the hub
/// (docs/attachments.md): large enough to go in many chunks, small enough for a laptop.
const ATTACHMENT_MIB: u64 = 64;
/// The scenario (BY → KG, via the hub) whose first message carries it.
const WITH_ATTACHMENT: usize = 1;

struct Scenario {
    from: &'static str,
    to: &'static str,
    authority: &'static str,
    format: &'static str,
    document: &'static [u8],
    route: &'static str,
}

const SCENARIOS: &[Scenario] = &[
    Scenario {
        from: "KZ",
        to: "RU",
        authority: "FCS",
        format: "kz.export-declaration",
        document: include_bytes!("../../codecs/samples/kz.export-declaration/valid-grain.xml"),
        route: "direct",
    },
    Scenario {
        from: "BY",
        to: "KG",
        authority: "SW",
        format: "by.export-declaration",
        document: include_bytes!("../../codecs/samples/by.export-declaration/valid-apples.xml"),
        route: "via hub EEC",
    },
    Scenario {
        from: "RU",
        to: "KZ",
        authority: "KGD",
        format: "ru.veterinary-certificate",
        document: include_bytes!("../../codecs/samples/ru.veterinary-certificate/valid-beef.xml"),
        route: "direct",
    },
    Scenario {
        from: "KG",
        to: "BY",
        authority: "SW",
        format: "kg.certificate-of-origin",
        document: include_bytes!("../../codecs/samples/kg.certificate-of-origin/valid-onions.xml"),
        route: "direct",
    },
    Scenario {
        from: "AM",
        to: "RU",
        authority: "RSHN",
        format: "am.phytosanitary-certificate",
        document: include_bytes!(
            "../../codecs/samples/am.phytosanitary-certificate/valid-apples.xml"
        ),
        route: "direct",
    },
    Scenario {
        from: "KZ",
        to: "AM",
        authority: "SW",
        format: "kz.phytosanitary-certificate",
        document: include_bytes!(
            "../../codecs/samples/kz.phytosanitary-certificate/valid-wheat.xml"
        ),
        route: "via hub EEC",
    },
];

const SUBMISSION: &[u8] =
    include_bytes!("../../codecs/samples/kz.export-submission/valid-grain.xml");

const FINAL: &[&str] = &["recognised", "rejected", "dead", "expired"];

/// One sent message.
#[derive(Debug, Clone)]
struct Sent {
    id: String,
    from: &'static str,
    to: String,
    label: String,
}

pub(crate) fn run(args: DemoArgs) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Input(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(demo(args))
}

fn fail(e: impl std::fmt::Display) -> Failure {
    Failure::Input(e.to_string())
}

async fn demo(args: DemoArgs) -> Result<(), Failure> {
    let states = ["AM", "BY", "KZ", "KG", "RU"];
    if let Some(d) = &args.dir {
        std::fs::create_dir_all(d).map_err(|e| fail(format!("{}: {e}", d.display())))?;
    }
    println!("Starting nodes AM, BY, KZ, KG, RU and the Commission's hub EEC on 127.0.0.1 (ports {}..{})", args.base_port, args.base_port + 52);
    let algorithms: Vec<(String, KeyAlgorithm)> = if args.gost {
        println!("Signatures: GOST R 34.10-2012 with Streebog, 256-bit for KZ, KG, AM and EEC, 512-bit for RU; ECDSA P-256 for BY (no STB 34.101 implementation here); TLS on ECDSA");
        GOST_STATES
            .iter()
            .map(|(s, a)| (s.to_string(), *a))
            .collect()
    } else {
        Vec::new()
    };
    let cluster = tokio::task::block_in_place(|| {
        Cluster::start_with_algorithms(
            args.dir.as_deref(),
            &states,
            Some("EEC"),
            &["KG", "AM"],
            args.base_port,
            "",
            &Default::default(),
            &algorithms,
        )
    })
    .map_err(fail)?;
    println!(
        "Development PKI, trust space, configs, stores and logs: {}",
        cluster.dir.display()
    );

    // Follow every sender's status changes from before the first submission (each event with
    // the node it came from: a recipient reports the same message id as received and
    // recognised before the sender has the receipt).
    let (tx, mut events) = tokio::sync::mpsc::unbounded_channel::<(&'static str, String, String)>();
    for s in states {
        let mut w = cluster.window(s).await.map_err(fail)?;
        let stream = w
            .subscribe(SubscribeRequest {
                message_ids: vec![],
                after: None,
            })
            .await
            .map_err(|e| fail(format!("subscribe to {s}: {}", e.message())))?;
        let tx = tx.clone();
        tokio::spawn(async move {
            let mut stream = stream.into_inner();
            while let Some(Ok(ev)) = stream.next().await {
                if let Some(t) = ev.transition {
                    let _ = tx.send((s, ev.message_id, t.state));
                }
            }
        });
    }

    let started = Instant::now();
    let sent = match args.messages {
        Some(n) => send_many(&cluster, n).await?,
        None => send_tour(&cluster).await?,
    };
    let submitted_in = started.elapsed();
    println!(
        "Submitted {} messages in {:.2} s; waiting for receipts…",
        sent.len(),
        submitted_in.as_secs_f64()
    );

    // Wait until every message is settled at its sender.
    let wanted: HashMap<String, &'static str> =
        sent.iter().map(|s| (s.id.clone(), s.from)).collect();
    let mut settled: HashMap<String, String> = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(args.timeout);
    while settled.len() < wanted.len() {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some((at, id, state))) => {
                if wanted.get(&id) == Some(&at) && FINAL.contains(&state.as_str()) {
                    settled.insert(id, state);
                }
            }
            _ => break,
        }
    }
    // Events may have been missed (a lagging stream): ask for the stragglers directly.
    for s in &sent {
        if settled.contains_key(&s.id) {
            continue;
        }
        if let Ok(mut w) = cluster.window(s.from).await {
            if let Ok(r) = w
                .status(StatusRequest {
                    message_id: s.id.clone(),
                })
                .await
            {
                if let Some(last) = r.into_inner().history.last() {
                    if FINAL.contains(&last.state.as_str()) {
                        settled.insert(s.id.clone(), last.state.clone());
                    }
                }
            }
        }
    }
    let elapsed = started.elapsed();
    let delivered = settled.values().filter(|s| *s == "recognised").count();

    if args.messages.is_none() || sent.len() <= 12 {
        for s in &sent {
            print_timeline(&cluster, s).await;
        }
    }
    println!();
    println!(
        "delivered {delivered}/{} in {:.2} s ({:.0} msg/s end to end, receipts verified)",
        sent.len(),
        elapsed.as_secs_f64(),
        sent.len() as f64 / elapsed.as_secs_f64().max(1e-9)
    );
    for (state, n) in tally(&settled) {
        if state != "recognised" {
            println!("  {state}: {n}");
        }
    }
    let wrong_algorithm = if args.gost {
        check_receipt_algorithms(&cluster, &sent).await
    } else {
        0
    };
    if args.exit {
        drop(cluster);
        if wrong_algorithm > 0 {
            return Err(Failure::Verdict(format!(
                "{wrong_algorithm} receipts were not signed with their recipient's algorithm"
            )));
        }
        return if delivered == sent.len() {
            Ok(())
        } else {
            Err(Failure::Verdict(format!(
                "only {delivered} of {} messages were delivered and recognised",
                sent.len()
            )))
        };
    }
    println!();
    println!("The nodes keep running. Try:");
    let kz = cluster.http_ports.get("KZ").copied().unwrap_or_default();
    let ru = cluster.http_ports.get("RU").copied().unwrap_or_default();
    // The national doors want the national client's token (national.token in each node's
    // directory).
    let auth = |state: &str| {
        format!(
            "-H \"Authorization: Bearer $(cat {}/{}/national.token)\"",
            cluster.dir.display(),
            state.to_ascii_lowercase()
        )
    };
    if let Some(first) = sent.first() {
        println!(
            "  curl -s {} http://127.0.0.1:{}/v1/messages/{}",
            auth(first.from),
            cluster
                .http_ports
                .get(first.from)
                .copied()
                .unwrap_or_default(),
            first.id
        );
    }
    println!(
        "  curl -s {} http://127.0.0.1:{ru}/v1/inbox   # Russia's inbox",
        auth("RU")
    );
    println!("  curl -s http://127.0.0.1:{kz}/metrics");
    if args.gost {
        // Debian's xmlsec1 is built without GOST: verify GOST receipts with tereze itself.
        println!(
            "  tereze xml verify --trusted {}/ru/root.pem receipt.xml",
            cluster.dir.display()
        );
    } else {
        println!("  xmlsec1 --verify --id-attr:Id urn:tereze:receipt:Batch --trusted-pem {}/ru/root.pem receipt.xml", cluster.dir.display());
    }
    println!("Ctrl-C stops them.");
    let _ = tokio::signal::ctrl_c().await;
    drop(cluster);
    Ok(())
}

fn tally(settled: &HashMap<String, String>) -> Vec<(String, usize)> {
    let mut m: HashMap<String, usize> = HashMap::new();
    for s in settled.values() {
        *m.entry(s.clone()).or_default() += 1;
    }
    let mut v: Vec<_> = m.into_iter().collect();
    v.sort();
    v
}

async fn submit(
    cluster: &Cluster,
    from: &'static str,
    request: SubmitRequest,
    label: String,
) -> Result<Vec<Sent>, Failure> {
    let mut w = cluster.window(from).await.map_err(fail)?;
    let r = w
        .submit(request)
        .await
        .map_err(|e| fail(format!("{label}: submit refused: {}", e.message())))?;
    Ok(sent(r.into_inner(), from, &label))
}

/// What a submission queued, for the timelines.
fn sent(r: SubmitResponse, from: &'static str, label: &str) -> Vec<Sent> {
    r.messages
        .into_iter()
        .map(|m| Sent {
            id: m.message_id,
            from,
            to: format!("{} {}", m.recipient_country, m.recipient_authority),
            label: label.to_owned(),
        })
        .collect()
}

fn request(s: &Scenario) -> SubmitRequest {
    SubmitRequest {
        format: s.format.into(),
        document: s.document.to_vec(),
        recipient_country: s.to.into(),
        recipient_authority: s.authority.into(),
        ..Default::default()
    }
}

async fn send_tour(cluster: &Cluster) -> Result<Vec<Sent>, Failure> {
    let mut sent = Vec::new();
    for (i, s) in SCENARIOS.iter().enumerate() {
        let mut label = format!("{} → {} ({}), {}", s.from, s.to, s.route, s.format);
        let mut req = request(s);
        if i == WITH_ATTACHMENT {
            label.push_str(&attach(cluster, s, &mut req).await?);
        }
        sent.extend(submit(cluster, s.from, req, label).await?);
    }
    let submission = SubmitRequest {
        format: "kz.export-submission".into(),
        document: SUBMISSION.to_vec(),
        ..Default::default()
    };
    sent.extend(
        submit(
            cluster,
            "KZ",
            submission,
            "KZ → RU (direct), submit once: one kz.export-submission".into(),
        )
        .await?,
    );
    Ok(sent)
}

/// Uploads the demo's attachment to the scenario's sending node and names it in `req`; the
/// label's addition.
async fn attach(
    cluster: &Cluster,
    s: &Scenario,
    req: &mut SubmitRequest,
) -> Result<String, Failure> {
    let window = cluster.window(s.from).await.map_err(fail)?;
    let up = tereze_testkit::cluster::upload_generated(&window, ATTACHMENT_MIB)
        .await
        .map_err(fail)?;
    let short = up.sha256.get(..16).unwrap_or_default().to_owned();
    req.attachments = vec![SubmitAttachment {
        upload_id: up.upload_id,
        id: "scan.bin".into(),
        media_type: "application/octet-stream".into(),
    }];
    Ok(format!(
        ", with a {ATTACHMENT_MIB} MiB attachment (SHA-256 {short}…)"
    ))
}

async fn send_many(cluster: &Cluster, n: usize) -> Result<Vec<Sent>, Failure> {
    let mut clients = HashMap::new();
    for s in SCENARIOS {
        if !clients.contains_key(s.from) {
            clients.insert(s.from, cluster.window(s.from).await.map_err(fail)?);
        }
    }
    let mut tasks = tokio::task::JoinSet::new();
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(64));
    for i in 0..n {
        let s = &SCENARIOS[i % SCENARIOS.len()];
        let mut w = clients
            .get(s.from)
            .cloned()
            .ok_or_else(|| fail("no client"))?;
        let permit = sem.clone().acquire_owned().await.map_err(fail)?;
        let mut req = request(s);
        let mut label = format!("{} → {} ({})", s.from, s.to, s.route);
        if i == WITH_ATTACHMENT {
            label.push_str(&attach(cluster, s, &mut req).await?);
        }
        let from = s.from;
        tasks.spawn(async move {
            let r = w.submit(req).await;
            drop(permit);
            r.map(|r| sent(r.into_inner(), from, &label))
                .map_err(|e| format!("{label}: submit refused: {}", e.message()))
        });
    }
    let mut sent = Vec::new();
    while let Some(r) = tasks.join_next().await {
        sent.extend(r.map_err(fail)?.map_err(fail)?);
    }
    Ok(sent)
}

async fn print_timeline(cluster: &Cluster, s: &Sent) {
    println!();
    println!("{}  →  {}", s.label, s.to);
    println!("  {}", s.id);
    let Ok(mut w) = cluster.window(s.from).await else {
        return;
    };
    let Ok(r) = w
        .status(StatusRequest {
            message_id: s.id.clone(),
        })
        .await
    else {
        println!("  (status unavailable)");
        return;
    };
    let r = r.into_inner();
    let start = r.history.first().map(|t| t.at_ms).unwrap_or(0);
    for t in &r.history {
        let note = if t.note.is_empty() {
            String::new()
        } else {
            format!("  {}", t.note)
        };
        println!("    +{:>5} ms  {:<11}{note}", t.at_ms - start, t.state);
    }
    if !r.receipt.is_empty() {
        let text = String::from_utf8_lossy(&r.receipt);
        let at = text
            .split("<rc:ReceivedAt>")
            .nth(1)
            .and_then(|x| x.split('<').next())
            .unwrap_or("?");
        println!(
            "    receipt: {} bytes, XMLDSig over a Merkle batch root, received at {at}",
            r.receipt.len()
        );
    }
}

/// Reads every settled message's receipt from its sender and checks that its recipient signed
/// it with the recipient's algorithm; prints the receipts per `SignatureMethod` and returns
/// how many were not as expected (a receipt missing counts: the sender has none to show).
async fn check_receipt_algorithms(cluster: &Cluster, sent: &[Sent]) -> usize {
    let mut by_method: std::collections::BTreeMap<String, usize> = Default::default();
    let mut wrong = 0;
    for s in sent {
        let recipient = s.to.split(' ').next().unwrap_or_default();
        let receipt = match cluster.window(s.from).await {
            Ok(mut w) => w
                .status(StatusRequest {
                    message_id: s.id.clone(),
                })
                .await
                .map(|r| r.into_inner().receipt)
                .unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        let method = tereze_codecs::dsig::claimed_signature_method(&receipt)
            .unwrap_or_else(|| "(no receipt)".into());
        if method != expected_method(recipient) {
            wrong += 1;
            println!(
                "  {} to {recipient}: receipt signed with {method}, expected {}",
                s.id,
                expected_method(recipient)
            );
        }
        *by_method.entry(method).or_default() += 1;
    }
    println!("Receipts by signature method (each verified by its sender):");
    for (method, n) in by_method {
        println!("  {n:>5}  {method}");
    }
    wrong
}
