//! The `tereze` binary: parses arguments and hands off to the CLI module.
#![forbid(unsafe_code)]

/// mimalloc instead of the system allocator: measured in docs/decisions/0006-allocator.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    tereze_node::cli::run()
}
