//! The `tereze` binary: the command line over the node library (`tereze-node`) and the
//! workspace's other crates. **Invariant:** it only parses arguments, calls library functions
//! and formats their results; it holds no logic of the node. `demo` and `bench`, which start
//! real node processes through the testkit, exist only with the `dev-tools` feature (on by
//! default; a production build turns it off and links no test tooling).
//!
//! This file sets up the allocator and hands off to [`cli::run`].
// One `unsafe` call, to tune the allocator (below); everything else is forbidden it.
#![deny(unsafe_code)]

mod admin;
mod audit;
#[cfg(feature = "dev-tools")]
mod bench;
mod cli;
mod common;
mod conformance;
#[cfg(feature = "dev-tools")]
mod demo;
mod keys;
mod node;
mod pki;
mod recognise;
mod reference;
mod trader;
mod translate;
mod trust;
mod xml;

/// mimalloc instead of the system allocator: measured in docs/decisions/0006-allocator.md.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_purge_delay` (its place in `mi_option_e` in mimalloc.h, v3; the
/// `libmimalloc-sys` crate names only some options).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Freed memory goes back to the system at once instead of after mimalloc's delay, which in
/// practice lasts until the thread that freed it allocates again: after a burst the node's
/// resident memory fell back by 100–200 MB more (docs/decisions/0006-allocator.md). An
/// operator's `MIMALLOC_PURGE_DELAY` wins.
fn purge_freed_memory_at_once() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one of mimalloc's integer options, which it reads atomically; any
        // value is valid for this option, and no pointer is passed.
        #[allow(unsafe_code)]
        unsafe {
            libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0)
        };
    }
}

fn main() -> std::process::ExitCode {
    purge_freed_memory_at_once();
    cli::run()
}
