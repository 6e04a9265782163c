//! Normative-reference directories (classifiers) and, later, unique trader identifiers: the
//! tables the translation engine uses to turn national codes into EAEU union codes and back.
//!
//! Invariant: this crate never reads the network or the file system itself. The shipped
//! directories are embedded at build time (`Directories::builtin()`); anything else, such as
//! a change set received by the node, is fed to it as text (`Directories::add_toml`).
//! Versioned directories, change sets and "as of date" queries arrive with issue 7; trader
//! identifiers with issue 8.
#![forbid(unsafe_code)]

mod directory;

pub use directory::{Directories, Directory, DirectoryError, Entry, LookupError};
