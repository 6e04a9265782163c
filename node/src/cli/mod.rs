//! Maps subcommands to library calls and formats their results. No business logic lives here.
//!
//! Exit codes (DESIGN §7): 0 success, 1 a negative verdict (invalid signature, failed check),
//! 2 usage or input errors. Errors go to stderr and name the file, the place and the reason.

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
}

/// The outcome of a command, mapped to the process exit code.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A check said no (exit 1).
    Verdict(String),
    /// The input or the invocation was wrong (exit 2).
    Input(String),
}

pub(crate) fn run() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Xml(cmd) => xml::run(cmd),
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
    }
}
