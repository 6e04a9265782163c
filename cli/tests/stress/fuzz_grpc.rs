//! Fuzzing a real node's intake: Exchange `Deliver` from a listed peer (its real client
//! certificate) with mutated signed envelopes and mutated routes, single and in batches; the
//! Window `Submit` and HTTP `POST /v1/messages` with mutated national documents and fields.
//!
//! Properties: the node stays up (`/healthz` answers, the process lives); every call ends
//! within a timeout in a well-formed answer (one outcome per item, each a receipt or a refusal
//! with a code) or a status the handler means to give, never `Unknown` or `Internal`; exactly
//! the messages that got a receipt are stored (inbox or quarantine), nothing refused is; the
//! refusal counter matches; the node's resident memory stays bounded over the run.
//!
//! `TEREZE_FUZZ_ITERATIONS` (calls, default [`DEFAULT_ITERATIONS`]) and `TEREZE_FUZZ_SEED`
//! choose the run (docs/fuzzing.md).

#[path = "../../../codecs/tests/mutator/mod.rs"]
mod mutator;

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::Utc;
use mutator::{mutate_some, Rng, Seed};
use openssl::hash::MessageDigest;
use prost::bytes::{Buf, BufMut};
use prost::Message;
use serde_json::json;
use tereze_codecs::dsig::{self, SignOptions, SignTarget, SigningKey};
use tereze_codecs::envelope::{DocumentRef, Envelope, Header, MessageKind, Participant, VERSION};
use tereze_codecs::xml::{self, Document};
use tereze_proto::exchange_client::ExchangeClient;
use tereze_proto::{
    deliver_outcome, DeliverItem, DeliverOutcome, DeliverRequest, DeliverResponse, Route,
    SubmitRequest,
};
use tonic::codec::{DecodeBuf, EncodeBuf};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;
use tonic::{Code, Status};
use uuid::Uuid;

use crate::net::{self, Net};

/// Enough for CI: well under a minute in a debug build on two cores.
const DEFAULT_ITERATIONS: u64 = 400;
const DEFAULT_SEED: u64 = 0x7E7E_2E5E_F022_0002;
const BASE: u16 = 22400;
const MAX_MESSAGE_BYTES: usize = 300_000;
const MAX_BATCH: usize = 16;
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim().replace('_', "");
    let parsed = match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => v.parse(),
    };
    Some(parsed.unwrap_or_else(|_| panic!("{name}={v} is not a number")))
}

/// Every sample document, with its format (the directory it is in).
fn samples() -> Vec<(String, Seed)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../codecs/samples");
    let mut out = Vec::new();
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .expect("samples")
        .flatten()
        .map(|e| e.path())
        .collect();
    dirs.sort();
    for dir in dirs {
        let format = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .expect("sample dir")
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "xml" || e == "json"))
            .collect();
        files.sort();
        for f in files {
            out.push((
                format.clone(),
                Seed {
                    name: f
                        .strip_prefix(&root)
                        .unwrap_or(&f)
                        .to_string_lossy()
                        .into_owned(),
                    bytes: std::fs::read(&f).expect("sample"),
                },
            ));
        }
    }
    out
}

/// An EAEU document the peer can send, with its model's codes (from the mapping).
struct Content {
    doc: Document,
    codes: BTreeMap<String, String>,
}

fn contents(samples: &[(String, Seed)]) -> Vec<Content> {
    let mappings = Path::new(env!("CARGO_MANIFEST_DIR")).join("../codecs/mappings/eaeu");
    samples
        .iter()
        .filter_map(|(format, s)| {
            let name = format.strip_prefix("eaeu.")?;
            let text = std::fs::read_to_string(mappings.join(format!("{name}.toml"))).ok()?;
            let table: toml::Table = text.parse().expect("mapping");
            let codes = ["type_code", "version", "process", "message", "transaction"]
                .iter()
                .map(|k| {
                    let v = table[*k].as_str().expect("code").to_owned();
                    ((*k).to_owned(), v)
                })
                .collect();
            Some(Content {
                doc: xml::parse(&s.bytes).expect("EAEU sample parses"),
                codes,
            })
        })
        .collect()
}

/// A fresh envelope from KZ to RU around `content`, signed with KZ's real signing key.
fn signed_envelope(content: &Content, key: &SigningKey, id: Uuid, conversation: Uuid) -> Vec<u8> {
    let party = |country: &str| Participant {
        country: country.into(),
        authority: "SW".into(),
    };
    let now = Utc::now().fixed_offset();
    let c = &content.codes;
    let header = Header {
        message_id: id,
        conversation_id: conversation,
        procedure_id: conversation,
        in_reply_to: None,
        process: c["process"].clone(),
        message: c["message"].clone(),
        transaction: c["transaction"].clone(),
        kind: MessageKind::Request,
        sender: party("KZ"),
        recipient: party("RU"),
        created_at: now,
        expires_at: Some(now + chrono::Duration::days(1)),
        document: DocumentRef {
            type_code: c["type_code"].clone(),
            version: c["version"].clone(),
            issuing_authority: party("KZ"),
        },
        traders: Vec::new(),
        attachments: Vec::new(),
        national_signatures: Vec::new(),
    };
    let mut doc = Envelope::build_document(VERSION, &header, &content.doc).expect("envelope");
    dsig::sign_enveloped(
        &mut doc,
        &SignTarget::Document,
        key,
        &SignOptions::default(),
    )
    .expect("signs");
    doc.to_xml().into_bytes()
}

fn sha256(b: &[u8]) -> Vec<u8> {
    openssl::hash::hash(MessageDigest::sha256(), b)
        .expect("hash")
        .to_vec()
}

fn uuid(rng: &mut Rng) -> Uuid {
    Uuid::from_u64_pair(rng.next(), rng.next())
}

/// A string field as a hostile peer might fill it.
fn odd_string(rng: &mut Rng, usual: &str) -> String {
    match rng.below(10) {
        0 => String::new(),
        1 => usual.to_lowercase(),
        2 => "x".repeat(*rng.pick(&[1000, 100_000])),
        3 => format!("{usual}\u{0}"),
        4 => "Қазақстан".into(),
        5 => "../../etc/passwd".into(),
        6 => (*rng.pick(&["KZ", "RU", "BY", "ZZ", "AM", "KG", "EEC"])).into(),
        7 => format!("urn:uuid:{}", uuid(rng)),
        8 => format!("{usual}{usual}"),
        _ => "<&\"'>".into(),
    }
}

/// One Deliver item: a freshly signed envelope (mutated in most cases) and a route that is
/// right or mutated.
struct Item {
    item: DeliverItem,
    mutated: bool,
}

struct Fixture {
    contents: Vec<Content>,
    key: SigningKey,
    seeds: Vec<Seed>,
}

impl Fixture {
    /// `delivered`: ids that already got a receipt, for duplicates.
    fn item(&self, rng: &mut Rng, delivered: &[String]) -> Item {
        let id = uuid(rng);
        let conversation = uuid(rng);
        let content = &self.contents[rng.below(self.contents.len())];
        let mut envelope = signed_envelope(content, &self.key, id, conversation);
        let mut mutated = false;
        if !rng.chance(6) {
            mutate_some(rng, &mut envelope, &self.seeds);
            mutated = true;
        }
        let mut route = Route {
            message_id: format!("urn:uuid:{id}"),
            conversation_id: format!("urn:uuid:{conversation}"),
            sender: "KZ".into(),
            recipient: "RU".into(),
            digest: sha256(&envelope),
            expires_at_ms: 0,
            attachments: Vec::new(),
        };
        if rng.chance(3) {
            mutated = true;
            match rng.below(9) {
                0 => route.message_id = odd_string(rng, &route.message_id),
                7 => {
                    // Attachments the route claims but nobody sent (or with odd fields).
                    let id = if rng.chance(2) {
                        odd_string(rng, "scan")
                    } else {
                        "scan".into()
                    };
                    route.attachments.push(tereze_proto::AttachmentInfo {
                        id,
                        size: *rng.pick(&[0, 1, u64::MAX, 1 << 40]),
                        sha256: if rng.chance(2) {
                            vec![0; 32]
                        } else {
                            vec![1; 3]
                        },
                    });
                }
                1 => {
                    if !delivered.is_empty() {
                        route.message_id = rng.pick(delivered).clone();
                    }
                }
                2 => route.conversation_id = odd_string(rng, &route.conversation_id),
                3 => route.sender = odd_string(rng, "KZ"),
                4 => route.recipient = odd_string(rng, "RU"),
                5 => {
                    let n = route.digest.len();
                    match rng.below(3) {
                        0 => route.digest.clear(),
                        1 => route.digest[rng.below(n)] ^= 1,
                        _ => route.digest.extend_from_slice(&[0; 32]),
                    }
                }
                6 => {
                    route.expires_at_ms =
                        *rng.pick(&[-1, i64::MIN, i64::MAX, 1, Utc::now().timestamp_millis()])
                }
                _ => route.message_id = id.to_string().to_uppercase(),
            }
        }
        Item {
            item: DeliverItem {
                route: Some(route),
                envelope,
                ..Default::default()
            },
            mutated,
        }
    }
}

/// What the run saw, to check against what the node stored.
#[derive(Default)]
struct Tally {
    calls: BTreeMap<String, u64>,
    receipted: HashSet<String>,
    /// The receipted ids in the order they first came.
    receipted_in_order: Vec<String>,
    refused: u64,
    refused_ids: Vec<String>,
    problems: Vec<String>,
    slowest: (Duration, String),
}

impl Tally {
    fn count(&mut self, class: String) {
        *self.calls.entry(class).or_default() += 1;
    }

    fn took(&mut self, took: Duration, what: &str) {
        if took > self.slowest.0 {
            self.slowest = (took, what.to_owned());
        }
    }
}

/// The request as protobuf bytes, sent as they are: mutated bytes reach the node's decoder.
#[derive(Clone, Copy, Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;

    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }

    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn encode(&mut self, item: Vec<u8>, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = Status;

    fn decode(&mut self, src: &mut DecodeBuf<'_>) -> Result<Option<Vec<u8>>, Status> {
        let bytes = src.copy_to_bytes(src.remaining()).to_vec();
        Ok(Some(bytes))
    }
}

/// Sends `request` (a valid `DeliverRequest`, mutated as bytes in most cases) as it is.
async fn deliver_raw(
    channel: Channel,
    request: Vec<u8>,
    tally: &mut Tally,
    what: &str,
) -> Result<(), String> {
    let mut grpc = tonic::client::Grpc::new(channel).max_decoding_message_size(64 << 20);
    grpc.ready()
        .await
        .map_err(|e| format!("{what}: not ready: {e}"))?;
    let path = PathAndQuery::from_static("/tereze.v1.Exchange/Deliver");
    let started = Instant::now();
    let call = tokio::time::timeout(
        CALL_TIMEOUT,
        grpc.unary(tonic::Request::new(request), path, RawCodec),
    )
    .await;
    tally.took(started.elapsed(), what);
    match call.map_err(|_| format!("{what}: no answer in {CALL_TIMEOUT:?}"))? {
        Ok(r) => {
            let answer = DeliverResponse::decode(&r.into_inner()[..])
                .map_err(|e| format!("{what}: the answer is not a DeliverResponse: {e}"))?;
            tally.outcomes(answer.outcomes, None, what);
            Ok(())
        }
        // What tonic answers to bytes that are not the request message.
        Err(status)
            if status.code() == Code::Internal
                && status
                    .message()
                    .starts_with("failed to decode Protobuf message") =>
        {
            tally.count("raw:status undecodable".into());
            Ok(())
        }
        Err(status) => {
            tally.status(&status, what);
            Ok(())
        }
    }
}

async fn deliver(
    client: &mut ExchangeClient<Channel>,
    items: Vec<DeliverItem>,
    tally: &mut Tally,
    what: &str,
) {
    let n = items.len();
    let started = Instant::now();
    let call = tokio::time::timeout(CALL_TIMEOUT, client.deliver(DeliverRequest { items })).await;
    tally.took(started.elapsed(), what);
    match call {
        Err(_) => tally
            .problems
            .push(format!("{what}: no answer in {CALL_TIMEOUT:?}")),
        Ok(Ok(r)) => tally.outcomes(r.into_inner().outcomes, Some(n), what),
        Ok(Err(status)) => tally.status(&status, what),
    }
}

impl Tally {
    /// One outcome per item, each a receipt for a well-formed id or a refusal with a code.
    fn outcomes(&mut self, outcomes: Vec<DeliverOutcome>, items: Option<usize>, what: &str) {
        if items.is_some_and(|n| n != outcomes.len()) {
            self.problems.push(format!(
                "{what}: {} outcomes for {items:?} items",
                outcomes.len()
            ));
        }
        for o in outcomes {
            match o.outcome {
                Some(deliver_outcome::Outcome::Receipt(r)) => {
                    let id_ok = o
                        .message_id
                        .strip_prefix("urn:uuid:")
                        .is_some_and(|u| Uuid::parse_str(u).is_ok());
                    if r.is_empty() || !id_ok {
                        self.problems.push(format!(
                            "{what}: empty receipt or bad id {:?}",
                            o.message_id
                        ));
                    }
                    self.count("deliver:receipt".into());
                    if self.receipted.insert(o.message_id.clone()) {
                        self.receipted_in_order.push(o.message_id);
                    }
                }
                Some(deliver_outcome::Outcome::Refused(r)) => {
                    self.refused += 1;
                    if r.code.is_empty() || r.reason.is_empty() {
                        self.problems
                            .push(format!("{what}: refusal without code or reason {r:?}"));
                    }
                    self.count(format!("deliver:refused {}", r.code));
                    self.refused_ids.push(o.message_id);
                }
                other => self
                    .problems
                    .push(format!("{what}: outcome {other:?} from a member node")),
            }
        }
    }

    /// The statuses Deliver means to give: a batch over the limit, a call over the size limit.
    fn status(&mut self, status: &Status, what: &str) {
        self.count(format!("deliver:status {:?}", status.code()));
        if !matches!(
            status.code(),
            Code::InvalidArgument | Code::OutOfRange | Code::ResourceExhausted
        ) {
            self.problems.push(format!(
                "{what}: status {:?}: {}",
                status.code(),
                status.message()
            ));
        }
    }
}

/// A national document as the national system might send it, mutated in most cases, with
/// fields right or odd.
fn submission(rng: &mut Rng, national: &[(String, Seed)], seeds: &[Seed]) -> SubmitRequest {
    let (format, seed) = &national[rng.below(national.len())];
    let mut document = seed.bytes.clone();
    if !rng.chance(5) {
        mutate_some(rng, &mut document, seeds);
    }
    let mut r = SubmitRequest {
        format: format.clone(),
        document,
        recipient_country: "KZ".into(),
        recipient_authority: String::new(),
        sender_authority: String::new(),
        conversation_id: String::new(),
        ttl_seconds: 0,
        traders: Vec::new(),
        attachments: Vec::new(),
        body_attachment: String::new(),
    };
    if rng.chance(2) {
        match rng.below(9) {
            // Uploads nobody made, odd ids and media types, a body naming nothing.
            6 => {
                r.attachments = (0..*rng.pick(&[1, 2, 100]))
                    .map(|_| tereze_proto::SubmitAttachment {
                        upload_id: odd_string(rng, "8d1f6d4e-0000-4000-8000-000000000000"),
                        id: odd_string(rng, "scan"),
                        media_type: odd_string(rng, "application/pdf"),
                    })
                    .collect()
            }
            7 => r.body_attachment = odd_string(rng, "body"),
            0 => r.format = odd_string(rng, format),
            1 => r.recipient_country = odd_string(rng, "KZ"),
            2 => r.recipient_authority = odd_string(rng, "KGD"),
            3 => r.sender_authority = odd_string(rng, "SW"),
            4 => r.conversation_id = odd_string(rng, "urn:uuid:"),
            5 => r.ttl_seconds = *rng.pick(&[1, 3600, u64::MAX, i64::MAX as u64 + 1]),
            _ => {
                r.traders = (0..*rng.pick(&[1, 3, 1000]))
                    .map(|_| odd_string(rng, "KZ120440789014"))
                    .collect()
            }
        }
    }
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// The guard is held for the whole test by its own future; no task of the test waits for
// the machine, so holding it across awaits blocks nothing.
#[allow(clippy::await_holding_lock)]
async fn mutated_deliveries_and_submissions_never_break_the_node() {
    let _machine = net::machine_alone();
    let seed = env_u64("TEREZE_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    let iterations = env_u64("TEREZE_FUZZ_ITERATIONS").unwrap_or(DEFAULT_ITERATIONS);
    let extra =
        format!("\n[limits]\nmax_message_bytes = {MAX_MESSAGE_BYTES}\nmax_batch = {MAX_BATCH}\n");
    let mut net = Net::init("KZ,RU,BY", "", "", BASE, &extra);
    net.start("RU");
    let pid = net.pid("RU");

    let national = samples();
    let seeds: Vec<Seed> = national
        .iter()
        .map(|(_, s)| Seed {
            name: s.name.clone(),
            bytes: s.bytes.clone(),
        })
        .collect();
    let kz = net.node_dir("KZ");
    let key = SigningKey::from_pem(
        &std::fs::read(kz.join("signer.key")).expect("key"),
        Some(&std::fs::read(kz.join("signer.pem")).expect("cert")),
    )
    .expect("KZ signing key");
    let fixture = Fixture {
        contents: contents(&national),
        key,
        seeds,
    };
    assert!(!fixture.contents.is_empty(), "no EAEU samples");
    let channel = net::exchange_channel(&net, "RU", net::node_identity(&net, "KZ"))
        .await
        .expect("connects");
    let mut exchange = ExchangeClient::new(channel.clone()).max_decoding_message_size(64 << 20);
    let mut window = net::window(net.window_port("RU")).await;

    println!("grpc fuzz: seed {seed:#018x}, {iterations} calls");
    let mut tally = Tally::default();
    let mut rss = Vec::new();
    let started = Instant::now();
    for case in 0..iterations {
        let mut rng = Rng::for_case(seed, case);
        let what = format!("case {case}");
        match rng.below(20) {
            0..=10 => {
                let i = fixture.item(&mut rng, &tally.receipted_in_order);
                tally.count(format!(
                    "sent:item {}",
                    if i.mutated { "mutated" } else { "as signed" }
                ));
                deliver(&mut exchange, vec![i.item], &mut tally, &what).await;
            }
            11 | 12 => {
                let n = *rng.pick(&[2, 5, MAX_BATCH, MAX_BATCH + 1, 100]);
                let items: Vec<DeliverItem> = (0..n)
                    .map(|_| fixture.item(&mut rng, &tally.receipted_in_order).item)
                    .collect();
                tally.count(format!("sent:batch of {n}"));
                deliver(&mut exchange, items, &mut tally, &what).await;
            }
            13 => {
                let mut item = fixture.item(&mut rng, &tally.receipted_in_order).item;
                let items = match rng.below(3) {
                    0 => Vec::new(),
                    1 => {
                        item.route = None;
                        vec![item]
                    }
                    _ => {
                        item.envelope = vec![b'<'; MAX_MESSAGE_BYTES + 1];
                        if let Some(r) = item.route.as_mut() {
                            r.digest = sha256(&item.envelope);
                        }
                        vec![item]
                    }
                };
                tally.count("sent:odd call".into());
                deliver(&mut exchange, items, &mut tally, &what).await;
            }
            14 => {
                let n = *rng.pick(&[1, 1, 3]);
                let items: Vec<DeliverItem> = (0..n)
                    .map(|_| fixture.item(&mut rng, &tally.receipted_in_order).item)
                    .collect();
                let mut bytes = DeliverRequest { items }.encode_to_vec();
                if !rng.chance(8) {
                    mutate_some(&mut rng, &mut bytes, &fixture.seeds);
                }
                tally.count("sent:raw protobuf".into());
                if let Err(e) = deliver_raw(channel.clone(), bytes, &mut tally, &what).await {
                    tally.problems.push(e);
                }
            }
            15 | 16 => {
                let request = submission(&mut rng, &national, &fixture.seeds);
                let started = Instant::now();
                let call = tokio::time::timeout(CALL_TIMEOUT, window.submit(request)).await;
                tally.took(started.elapsed(), &what);
                match call {
                    Err(_) => tally
                        .problems
                        .push(format!("{what}: Submit: no answer in {CALL_TIMEOUT:?}")),
                    Ok(Ok(r)) => {
                        if r.into_inner().messages.is_empty() {
                            tally
                                .problems
                                .push(format!("{what}: Submit accepted nothing"));
                        }
                        tally.count("submit:accepted".into());
                    }
                    Ok(Err(status)) => {
                        tally.count(format!("submit:status {:?}", status.code()));
                        if !matches!(
                            status.code(),
                            Code::InvalidArgument | Code::OutOfRange | Code::ResourceExhausted
                        ) {
                            tally.problems.push(format!(
                                "{what}: Submit: status {:?}: {}",
                                status.code(),
                                status.message()
                            ));
                        }
                    }
                }
            }
            _ => {
                let r = submission(&mut rng, &national, &fixture.seeds);
                let mut body = json!({
                    "format": r.format,
                    "document": String::from_utf8_lossy(&r.document),
                    "recipient_country": r.recipient_country,
                    "recipient_authority": r.recipient_authority,
                    "traders": r.traders,
                })
                .to_string()
                .into_bytes();
                if rng.chance(4) {
                    // The JSON itself mutated.
                    mutate_some(&mut rng, &mut body, &fixture.seeds);
                }
                let port = net.http_port("RU");
                let len = body.len();
                let started = Instant::now();
                let (status, v) = tokio::task::spawn_blocking(move || {
                    net::http_bytes(port, "POST", "/v1/messages", "application/json", &body)
                })
                .await
                .expect("http call");
                tally.took(started.elapsed(), &what);
                tally.count(format!("http:{status}"));
                // Over the body limit the node answers 413 and closes at once; the client may
                // still be writing and see only the reset.
                let refused_unread = status == 0 && len > 2 * MAX_MESSAGE_BYTES;
                if !matches!(status, 202 | 400 | 413 | 429) && !refused_unread {
                    tally.problems.push(format!(
                        "{what}: POST /v1/messages ({len} bytes): {status} {v}"
                    ));
                }
            }
        }
        if case % 25 == 24 || case + 1 == iterations {
            let (status, body) = net.http("RU", "GET", "/healthz", None);
            assert!(
                status == 200 && !net.exited("RU"),
                "{what}: the node is down ({status} {body}): {}",
                net.log("RU")
            );
            rss.push((case + 1, net::rss_kib(pid).unwrap_or(0)));
        }
        if tally.problems.len() >= 20 {
            break;
        }
    }
    let elapsed = started.elapsed();
    println!(
        "grpc fuzz: {iterations} calls in {:.1} s, {:.1} calls/s; slowest {:?} ({})",
        elapsed.as_secs_f64(),
        iterations as f64 / elapsed.as_secs_f64().max(1e-9),
        tally.slowest.0,
        tally.slowest.1
    );
    println!("RSS (calls, KiB): {rss:?}");
    for (class, n) in &tally.calls {
        println!("  {n:>6}  {class}");
    }
    assert!(
        tally.problems.is_empty(),
        "{} problem(s):\n{}",
        tally.problems.len(),
        tally.problems.join("\n")
    );

    // Exactly what got a receipt is stored: recognised in the inbox, rejected in quarantine.
    let ids = |path: &str| -> HashSet<String> {
        let (status, v) = if path.starts_with("/admin/") {
            net.admin("RU", "GET", path, None)
        } else {
            net.http("RU", "GET", path, None)
        };
        assert_eq!(status, 200, "{path}: {v}");
        v["messages"]
            .as_array()
            .map(|m| {
                m.iter()
                    .filter_map(|x| x["message_id"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    };
    let inbox = ids("/v1/inbox?limit=1000");
    let quarantine = ids("/admin/quarantine");
    println!(
        "stored: {} recognised (inbox), {} rejected (quarantine)",
        inbox.len(),
        quarantine.len()
    );
    let stored: HashSet<String> = inbox.union(&quarantine).cloned().collect();
    assert_eq!(
        stored, tally.receipted,
        "stored messages differ from those that got a receipt"
    );
    assert_eq!(
        net.metric("RU", "received_total"),
        tally.receipted.len() as u64
    );
    assert_eq!(net.metric("RU", "refused_total"), tally.refused);
    let mut checked = 0;
    for id in &tally.refused_ids {
        if checked == 30
            || tally.receipted.contains(id)
            || Uuid::parse_str(id.trim_start_matches("urn:uuid:")).is_err()
        {
            continue;
        }
        let (status, v) = net.http("RU", "GET", &format!("/v1/messages/{id}"), None);
        assert_eq!(status, 404, "refused {id} has a history: {v}");
        checked += 1;
    }
    if iterations >= 200 {
        assert!(!tally.receipted.is_empty(), "no delivery went through");
        assert!(tally.refused > 0, "nothing was refused");
        assert!(
            tally.calls.contains_key("submit:accepted") || tally.calls.contains_key("http:202")
        );
    }

    // Memory: after the first quarter, bounded growth (no leak per call).
    if rss.len() >= 4 {
        let early = rss[rss.len() / 4].1;
        let last = rss[rss.len() - 1].1;
        assert!(
            last <= early * 2 + 64 * 1024,
            "RSS grew from {early} KiB to {last} KiB: {rss:?}"
        );
    }
    net.stop("RU");
}
