//! The command line's dispatcher: parses it, maps each subcommand to its module's `run` and
//! the outcome to the exit code. No business logic lives here, nor in the subcommands, which
//! call library functions and format their results.
//!
//! Exit codes (DESIGN §7): 0 success, 1 a negative verdict (invalid signature, failed check),
//! 2 usage or input errors, 75 a running node that needs a restart (its store refused a write,
//! or its last audit checkpoint could not be signed at shutdown). Errors go to stderr and name the file, the place and the reason.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::common::Failure;
use crate::{
    admin, audit, conformance, node, pki, recognise, reference, trader, translate, trust, xml,
};
#[cfg(feature = "dev-tools")]
use crate::{bench, demo};

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
    #[cfg(feature = "dev-tools")]
    Demo(demo::DemoArgs),
    /// Measure end-to-end throughput and latency between two real nodes.
    ///
    /// Closed loop by default (--concurrency submissions in flight); with --rate, an open loop
    /// at that many messages per second. Prints throughput, latency percentiles (submit
    /// acknowledgement and end to end), the nodes' CPU time per message and their resident
    /// memory, idle and under load. For the side-by-side comparison with python-xmlsec,
    /// xmlsec1, lxml and RabbitMQ, run `scripts/bench` (BENCHMARKS.md).
    #[cfg(feature = "dev-tools")]
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

/// Parses the command line, runs the command and maps its outcome to the exit code.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Xml(cmd) => xml::run(cmd),
        Command::Translate(args) => translate::run(args),
        Command::Node(cmd) => node::run(cmd),
        #[cfg(feature = "dev-tools")]
        Command::Demo(args) => demo::run(args),
        #[cfg(feature = "dev-tools")]
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
