//! `tereze admin`: the admin API from the command line (docs/operations.md), with tables or
//! `--format json`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Bytes;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, ServerName};
use serde_json::Value;

use crate::common::Failure;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum OutputFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub(crate) struct AdminArgs {
    /// The node's admin API, e.g. https://127.0.0.1:7103
    #[arg(long, value_name = "URL")]
    node: String,
    /// The CA (PEM) the node's TLS certificate chains to.
    #[arg(long, value_name = "FILE")]
    ca: PathBuf,
    /// The file holding the operator token.
    #[arg(long, value_name = "FILE")]
    token_file: PathBuf,
    #[arg(long, value_enum, default_value = "table", global = true)]
    format: OutputFormat,
    #[command(subcommand)]
    command: AdminCommand,
}

#[derive(Debug, Subcommand)]
pub(crate) enum AdminCommand {
    /// Search messages (newest first).
    Messages {
        /// A message id or its prefix.
        #[arg(long)]
        id: Option<String>,
        /// The current state (queued, delivered, dead, recognised, rejected…).
        #[arg(long)]
        state: Option<String>,
        /// Next hop of an outgoing message, sender of an incoming one.
        #[arg(long)]
        peer: Option<String>,
        #[arg(long)]
        conversation: Option<String>,
        /// The common process, e.g. P.CC.01.
        #[arg(long)]
        process: Option<String>,
        /// RFC 3339: first seen at or after.
        #[arg(long)]
        since: Option<String>,
        /// RFC 3339: first seen at or before.
        #[arg(long)]
        until: Option<String>,
        #[arg(long, default_value = "100")]
        limit: usize,
    },
    /// One message's timeline, recognition verdict and receipt.
    Message { id: String },
    /// Requeue a dead or expired message.
    Requeue { id: String },
    /// Run recognition again on the quarantine under the trust space in force.
    Recognise,
    /// Forget the kept answers about another state's trader ID (all traders without ID), so
    /// that its node is asked again: after its register was corrected.
    FlushTraders { id: Option<String> },
    /// Conformance traffic: messages from tester states, kept out of the national inbox.
    #[command(subcommand)]
    Conformance(ConformanceCommand),
    /// Peers' health: queue depth and a live probe.
    Peers,
    /// Node, trust-space and reference-directory versions.
    Versions,
    /// Verify the audit chain (exit 1 when it is not intact).
    Audit,
    /// Show the log filter in force, or put FILTER in force (EnvFilter syntax, e.g. "debug"
    /// or "info,tereze_relay=debug").
    LogLevel { filter: Option<String> },
}

#[derive(Debug, Subcommand)]
pub(crate) enum ConformanceCommand {
    /// List the messages held in the conformance area (oldest first).
    List,
    /// Purge the conformance area (recorded in the audit chain).
    Purge,
}

fn input(e: impl std::fmt::Display) -> Failure {
    Failure::Input(e.to_string())
}

/// One HTTPS request to the admin API; the JSON answer, or the API's error.
async fn call(
    base: &str,
    ca: &[u8],
    token: &str,
    method: &str,
    path_and_query: &str,
    body: Option<Vec<u8>>,
) -> Result<Value, Failure> {
    let rest = base
        .trim_end_matches('/')
        .strip_prefix("https://")
        .ok_or_else(|| Failure::Input(format!("--node {base:?}: the admin API is https://")))?;
    let (host, port) = rest
        .rsplit_once(':')
        .and_then(|(h, p)| Some((h.to_owned(), p.parse::<u16>().ok()?)))
        .ok_or_else(|| Failure::Input(format!("--node {base:?}: expected https://HOST:PORT")))?;
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(ca) {
        roots
            .add(c.map_err(|e| Failure::Input(format!("--ca: {e}")))?)
            .map_err(|e| Failure::Input(format!("--ca: {e}")))?;
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(input)?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let name =
        ServerName::try_from(host.clone()).map_err(|e| Failure::Input(format!("{host}: {e}")))?;
    let tcp = tokio::net::TcpStream::connect((host.as_str(), port))
        .await
        .map_err(|e| Failure::Input(format!("{base}: cannot connect: {e}")))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(name, tcp)
        .await
        .map_err(|e| Failure::Input(format!("{base}: TLS: {e}")))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(|e| Failure::Input(format!("{base}: HTTP: {e}")))?;
    let conn = tokio::spawn(conn);
    let request = hyper::Request::builder()
        .method(method)
        .uri(path_and_query)
        .header(hyper::header::HOST, format!("{host}:{port}"))
        .header(hyper::header::AUTHORIZATION, format!("Bearer {token}"))
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .map_err(input)?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| Failure::Input(format!("{base}: HTTP: {e}")))?;
    let status = response.status();
    let body = Limited::new(response.into_body(), 64 << 20)
        .collect()
        .await
        .map_err(|e| Failure::Input(format!("{base}: {e}")))?
        .to_bytes();
    conn.abort();
    let v: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if !status.is_success() {
        let why = v["error"].as_str().unwrap_or("no reason given");
        // No such message, or an action the node refuses for a reason it gives (a requeue
        // past the signed expiry): a negative answer, not the caller's bad input.
        return Err(
            if matches!(
                status,
                hyper::StatusCode::NOT_FOUND | hyper::StatusCode::CONFLICT
            ) {
                Failure::Verdict(format!("{status}: {why}"))
            } else {
                Failure::Input(format!("{status}: {why}"))
            },
        );
    }
    Ok(v)
}

fn s(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn when(ms: &Value) -> String {
    ms.as_i64()
        .and_then(chrono::DateTime::from_timestamp_millis)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|| "-".into())
}

fn encode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b':' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub(crate) fn run(args: AdminArgs) -> Result<(), Failure> {
    let ca = crate::common::read_input(&args.ca)?;
    let token = tereze_support::fs::read_token(&args.token_file, "the operator token")
        .map_err(|e| Failure::Input(e.to_string()))?;
    let mut body = None;
    let (method, path) = match &args.command {
        AdminCommand::Messages {
            id,
            state,
            peer,
            conversation,
            process,
            since,
            until,
            limit,
        } => {
            let mut q = vec![format!("limit={limit}")];
            for (k, v) in [
                ("id", id),
                ("state", state),
                ("peer", peer),
                ("conversation", conversation),
                ("process", process),
                ("since", since),
                ("until", until),
            ] {
                if let Some(v) = v {
                    q.push(format!("{k}={}", encode(v)));
                }
            }
            ("GET", format!("/admin/messages?{}", q.join("&")))
        }
        AdminCommand::Message { id } => ("GET", format!("/admin/messages/{}", encode(id))),
        AdminCommand::Requeue { id } => ("POST", format!("/admin/messages/{}/requeue", encode(id))),
        AdminCommand::Recognise => ("POST", "/admin/recognition/rerun".to_owned()),
        AdminCommand::FlushTraders { id: None } => ("POST", "/admin/traders/flush".to_owned()),
        AdminCommand::FlushTraders { id: Some(id) } => {
            ("POST", format!("/admin/traders/flush?id={}", encode(id)))
        }
        AdminCommand::Conformance(ConformanceCommand::List) => {
            ("GET", "/admin/conformance".to_owned())
        }
        AdminCommand::Conformance(ConformanceCommand::Purge) => {
            ("POST", "/admin/conformance/purge".to_owned())
        }
        AdminCommand::Peers => ("GET", "/admin/peers".to_owned()),
        AdminCommand::Versions => ("GET", "/admin/versions".to_owned()),
        AdminCommand::Audit => ("POST", "/admin/audit/verify".to_owned()),
        AdminCommand::LogLevel { filter: None } => ("GET", "/admin/log-level".to_owned()),
        AdminCommand::LogLevel { filter: Some(f) } => {
            body = Some(serde_json::json!({ "filter": f }).to_string().into_bytes());
            ("PUT", "/admin/log-level".to_owned())
        }
    };
    let rt = crate::common::runtime()?;
    let v = rt.block_on(async {
        tokio::time::timeout(
            Duration::from_secs(60),
            call(&args.node, &ca, &token, method, &path, body),
        )
        .await
        .map_err(|_| Failure::Input(format!("{}: no answer within 60 s", args.node)))?
    })?;
    let text = if args.format == OutputFormat::Json {
        let mut t = serde_json::to_string_pretty(&v).map_err(input)?;
        t.push('\n');
        t
    } else {
        render(&args.command, &v)
    };
    crate::common::write_stdout(text.as_bytes())?;
    if matches!(args.command, AdminCommand::Audit) && v["intact"] != Value::Bool(true) {
        return Err(Failure::Verdict("the audit chain is not intact".into()));
    }
    Ok(())
}

fn render(cmd: &AdminCommand, v: &Value) -> String {
    let list = |k: &str| v[k].as_array().cloned().unwrap_or_default();
    match cmd {
        AdminCommand::Messages { .. } => {
            let mut rows = vec![[
                "MESSAGE",
                "STATE",
                "DIRECTION",
                "PEER",
                "FIRST SEEN",
                "LAST CHANGE",
            ]
            .map(str::to_owned)
            .to_vec()];
            for m in list("messages") {
                rows.push(vec![
                    s(&m["message_id"]),
                    s(&m["state"]),
                    s(&m["direction"]),
                    s(&m["peer"]),
                    when(&m["first_at_ms"]),
                    when(&m["last_at_ms"]),
                ]);
            }
            crate::common::table(&rows)
        }
        AdminCommand::Message { .. } => {
            let mut out = format!(
                "{} ({} {}, conversation {})\n",
                s(&v["message_id"]),
                s(&v["direction"]),
                s(&v["peer"]),
                s(&v["conversation_id"])
            );
            let mut rows = vec![vec!["AT".to_owned(), "STATE".to_owned(), "NOTE".to_owned()]];
            for t in list("timeline") {
                rows.push(vec![when(&t["at_ms"]), s(&t["state"]), s(&t["note"])]);
            }
            out.push_str(&crate::common::table(&rows));
            if !v["verdict"].is_null() {
                out.push_str(&format!(
                    "verdict: {} {}\n",
                    s(&v["verdict"]["verdict"]),
                    s(&v["verdict"]["note"])
                ));
            }
            if let Some(why) = v["requeue_refused"].as_str() {
                out.push_str(&format!("requeue: refused: {why}\n"));
            }
            out.push_str(&format!(
                "receipt: {}\n",
                if v["receipt"].is_string() {
                    "signed receipt held (--format json shows it)"
                } else {
                    "none yet"
                }
            ));
            out
        }
        AdminCommand::Requeue { .. } => format!(
            "{} requeued for {}\n",
            s(&v["message_id"]),
            s(&v["requeued_to"])
        ),
        AdminCommand::Recognise => format!(
            "recognised now: {}; still rejected: {} (trust space v{})\n",
            v["recognised_now"].as_array().map_or(0, Vec::len),
            s(&v["still_rejected"]),
            s(&v["trust_space_version"])
        ),
        AdminCommand::Conformance(ConformanceCommand::List) => {
            let mut rows = vec![["MESSAGE", "SENDER", "VERDICT", "REASONS", "RECEIVED"]
                .map(str::to_owned)
                .to_vec()];
            for m in list("messages") {
                let reasons: Vec<String> = m["reasons"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(s)
                    .collect();
                rows.push(vec![
                    s(&m["message_id"]),
                    s(&m["sender"]),
                    s(&m["verdict"]),
                    if reasons.is_empty() {
                        "-".to_owned()
                    } else {
                        reasons.join(",")
                    },
                    when(&m["received_at_ms"]),
                ]);
            }
            let mut out = crate::common::table(&rows);
            out.push_str(&format!("{} conformance messages held\n", rows.len() - 1));
            out
        }
        AdminCommand::Conformance(ConformanceCommand::Purge) => format!(
            "purged {} conformance messages\n",
            v["purged"].as_array().map_or(0, Vec::len)
        ),
        AdminCommand::FlushTraders { id } => format!(
            "flushed {} kept trader answer(s){}\n",
            s(&v["flushed"]),
            id.as_ref()
                .map(|i| format!(" about {i}"))
                .unwrap_or_default()
        ),
        AdminCommand::Peers => {
            let mut rows = vec![[
                "PEER",
                "ROLE",
                "QUEUED",
                "REACHABLE",
                "RTT MS",
                "ENDPOINT",
                "ERROR",
            ]
            .map(str::to_owned)
            .to_vec()];
            for p in list("peers") {
                rows.push(vec![
                    s(&p["state"]),
                    s(&p["role"]),
                    s(&p["queued"]),
                    s(&p["reachable"]),
                    s(&p["round_trip_ms"]),
                    s(&p["endpoint"]),
                    s(&p["error"]),
                ]);
            }
            crate::common::table(&rows)
        }
        AdminCommand::Versions => {
            let mut out = format!(
                "node {} {}\ntrust space v{} issued {} signed by {}\n",
                s(&v["state"]),
                s(&v["version"]),
                s(&v["trust_space"]["version"]),
                s(&v["trust_space"]["issued_at"]),
                s(&v["trust_space"]["signed_by"])
            );
            let mut rows = vec![["DIRECTORY", "VERSION", "OWNER", "ENTRIES"]
                .map(str::to_owned)
                .to_vec()];
            for d in list("directories") {
                rows.push(vec![
                    s(&d["id"]),
                    s(&d["version"]),
                    s(&d["owner"]),
                    s(&d["entries"]),
                ]);
            }
            out.push_str(&crate::common::table(&rows));
            out
        }
        AdminCommand::LogLevel { .. } => format!("log filter: {}\n", s(&v["filter"])),
        AdminCommand::Audit => {
            let mut out = format!(
                "entries {}\ncheckpoints {}\nafter the last checkpoint {}\n",
                s(&v["entries"]),
                s(&v["checkpoints"]),
                s(&v["after_last_checkpoint"])
            );
            for p in list("problems") {
                out.push_str(&format!("problem: {}\n", s(&p)));
            }
            out.push_str(if v["intact"] == Value::Bool(true) {
                "intact\n"
            } else {
                "NOT intact\n"
            });
            out
        }
    }
}
