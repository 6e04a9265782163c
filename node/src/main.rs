//! The `tereze` binary: parses arguments and hands off to the CLI module.
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    tereze_node::cli::run()
}
