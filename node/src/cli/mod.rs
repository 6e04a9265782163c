//! Maps subcommands to library calls and formats their results. No business logic lives here.
//!
//! Exit codes (DESIGN §7): 0 success, 1 a negative verdict (invalid signature, failed check),
//! 2 usage or input errors, 75 a running node that needs a restart (its store refused a write,
//! or its last audit checkpoint could not be signed at shutdown). Errors go to stderr and name the file, the place and the reason.

mod admin;
mod audit;
mod bench;
mod conformance;
mod demo;
mod node;
mod pki;
mod recognise;
mod reference;
mod trader;
mod translate;
mod trust;
mod xml;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Tereze: a node for the EAEU single-window exchange of trade documents.
#[derive(Debug, Parser)]
#[command(name = "tereze", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Canonicalise, sign and verify XML documents.
    #[command(subcommand)]
    Xml(xml::XmlCommand),
    /// Translate between national formats and EAEU documents.
    Translate(translate::TranslateArgs),
    /// Start the five member states and the hub on loopback and send documents between them.
    Demo(demo::DemoArgs),
    /// Measure end-to-end throughput and latency between two real nodes.
    ///
    /// Closed loop by default (--concurrency submissions in flight); with --rate, an open loop
    /// at that many messages per second. Prints throughput, latency percentiles (submit
    /// acknowledgement and end to end), the nodes' CPU time per message and their resident
    /// memory, idle and under load. For the side-by-side comparison with python-xmlsec,
    /// xmlsec1, lxml and RabbitMQ, run `scripts/bench` (BENCHMARKS.md).
    Bench(bench::BenchArgs),
    /// Build, sign, verify, show and compare trust-space documents.
    #[command(subcommand)]
    Trust(trust::TrustCommand),
    /// Run the mutual-recognition checks on a signed envelope, offline.
    Recognise(recognise::RecogniseArgs),
    /// Run a node.
    #[command(subcommand)]
    Node(node::NodeCommand),
    /// Development keys, certificates and trust space.
    #[command(subcommand)]
    Pki(pki::PkiCommand),
    /// Normative-reference directories: query as of a date, the integrated tariff, import,
    /// publish and sync change sets.
    #[command(subcommand, name = "ref")]
    Ref(reference::RefCommand),
    /// Trader identifiers: validate, import the register into a node, resolve through a node.
    #[command(subcommand)]
    Trader(trader::TraderCommand),
    /// The operators' admin API from the command line (search, timelines, requeue, re-run
    /// recognition, peers, versions, audit).
    Admin(admin::AdminArgs),
    /// The conformance suite: run it against any node, or list its cases.
    #[command(subcommand)]
    Conformance(conformance::ConformanceCommand),
    /// Check a node's tamper-evident audit log.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
}

/// The outcome of a command, mapped to the process exit code.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A check said no (exit 1).
    Verdict(String),
    /// The input or the invocation was wrong (exit 2).
    Input(String),
    /// A running node met a condition a restart mends, e.g. a disk that refused a write
    /// (exit 75, EX_TEMPFAIL; systemd's `Restart=on-failure` restarts it).
    Unavailable(String),
}

/// Reads a file, or stdin for "-".
pub(crate) fn read_input(path: &std::path::Path) -> Result<Vec<u8>, Failure> {
    if path.as_os_str() == "-" {
        let mut buf = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut buf)
            .map_err(|e| Failure::Input(format!("stdin: cannot read: {e}")))?;
        return Ok(buf);
    }
    std::fs::read(path).map_err(|e| Failure::Input(format!("{}: cannot read: {e}", path.display())))
}

/// Aligned columns, the first line a header.
pub(crate) fn table(rows: &[Vec<String>]) -> String {
    let mut widths = Vec::new();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            let w = c.chars().count();
            if widths.len() <= i {
                widths.push(w);
            } else if widths[i] < w {
                widths[i] = w;
            }
        }
    }
    let mut out = String::new();
    for r in rows {
        let last = r.len().saturating_sub(1);
        for (i, c) in r.iter().enumerate() {
            out.push_str(c);
            if i < last {
                let pad = widths[i] - c.chars().count() + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    }
    out
}

/// A single-threaded runtime for a command that makes a few network calls.
/// How a command authenticates to a node's national door (HTTP).
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct NationalAuth {
    /// A national client's token file (a `token_file` of node.toml's `[[national.client]]`;
    /// `tereze pki init-dev` writes `national.token`), sent as `Authorization: Bearer …`.
    #[arg(long, value_name = "FILE")]
    pub(crate) token_file: Option<std::path::PathBuf>,
}

impl NationalAuth {
    /// The `Authorization` header's value, if a token file was given.
    pub(crate) fn header(&self) -> Result<Option<String>, Failure> {
        self.token_file
            .as_deref()
            .map(|p| {
                tereze_support::fs::read_token(p, "a national client token")
                    .map(|t| format!("Bearer {t}"))
                    .map_err(|e| Failure::Input(format!("--token-file {e}")))
            })
            .transpose()
    }
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::Input(format!("cannot start the runtime: {e}")))
}

/// The `*.xml` files of a directory with their bytes, in no particular order.
pub(crate) fn xml_files(
    dir: &std::path::Path,
) -> Result<Vec<(std::path::PathBuf, Vec<u8>)>, Failure> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Failure::Input(format!("{}: cannot read: {e}", dir.display())))?;
    let mut out = Vec::new();
    for path in entries.flatten().map(|e| e.path()) {
        if path.extension().is_some_and(|e| e == "xml") {
            let bytes = read_input(&path)?;
            out.push((path, bytes));
        }
    }
    Ok(out)
}

/// Reads and parses an XML file; errors name the file, line and column.
pub(crate) fn load(
    path: &std::path::Path,
    limits: &tereze_codecs::xml::Limits,
) -> Result<tereze_codecs::xml::Document, Failure> {
    let bytes = read_input(path)?;
    tereze_codecs::xml::parse_with_limits(&bytes, limits)
        .map_err(|e| Failure::Input(format!("{}:{e}", path.display())))
}

pub(crate) fn write_stdout(bytes: &[u8]) -> Result<(), Failure> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .map_err(|e| Failure::Input(format!("cannot write to stdout: {e}")))
}

/// Parses the command line, runs the command and maps its outcome to the exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Xml(cmd) => xml::run(cmd),
        Command::Translate(args) => translate::run(args),
        Command::Node(cmd) => node::run(cmd),
        Command::Demo(args) => demo::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Recognise(args) => recognise::run(args),
        Command::Trust(cmd) => trust::run(cmd),
        Command::Pki(cmd) => pki::run(cmd),
        Command::Audit(cmd) => audit::run(cmd),
        Command::Ref(cmd) => reference::run(cmd),
        Command::Trader(cmd) => trader::run(cmd),
        Command::Conformance(cmd) => conformance::run(cmd),
        Command::Admin(args) => admin::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Verdict(msg)) => {
            eprintln!("tereze: {msg}");
            ExitCode::from(1)
        }
        Err(Failure::Input(msg)) => {
            eprintln!("tereze: {msg}");
            ExitCode::from(2)
        }
        Err(Failure::Unavailable(msg)) => {
            eprintln!("tereze: {msg}");
            ExitCode::from(75)
        }
    }
}
