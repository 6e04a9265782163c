//! Where the `tereze` binary under test is. The testkit is a library of the workspace, so it
//! cannot name the binary at compile time (`CARGO_BIN_EXE_tereze` exists only for the
//! `tereze` package's own tests); it looks once, in this order:
//! 1. `$TEREZE_BIN`, to test another build (a release binary, an installed one);
//! 2. `$CARGO_BIN_EXE_tereze` at run time, which cargo sets when it runs the `tereze`
//!    package's integration tests;
//! 3. `tereze` beside the running executable, or one directory up: a test binary runs from
//!    `target/<profile>/deps/`, next to which cargo puts the binary.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The `tereze` binary's path (see the module's text for where it is looked for). Panics when
/// none is found: the test cannot run without it.
pub fn bin() -> &'static str {
    static BIN: OnceLock<String> = OnceLock::new();
    BIN.get_or_init(|| {
        let path = find().unwrap_or_else(|| {
            panic!(
                "no tereze binary: set TEREZE_BIN, or build it (cargo build -p tereze) next to \
                 this test's executable"
            )
        });
        path.to_string_lossy().into_owned()
    })
}

fn find() -> Option<PathBuf> {
    for name in ["TEREZE_BIN", "CARGO_BIN_EXE_tereze"] {
        if let Some(p) = std::env::var_os(name).filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(p));
        }
    }
    let exe = std::env::current_exe().ok()?;
    let dir = exe.parent()?;
    let found = [Some(dir), dir.parent()]
        .into_iter()
        .flatten()
        .map(|d: &Path| d.join("tereze"))
        .find(|p| p.is_file());
    found
}
