//! The `tereze` binary: parses arguments and hands off to the CLI module.
#![forbid(unsafe_code)]

mod cli;
mod config;
mod devpki;
mod node;
mod receipt;
mod store;
mod trust;

fn main() -> std::process::ExitCode {
    cli::run()
}
