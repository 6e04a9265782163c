//! The `tereze` binary: parses arguments and hands off to the CLI module.
#![forbid(unsafe_code)]

mod cli;
mod store;

fn main() -> std::process::ExitCode {
    cli::run()
}
