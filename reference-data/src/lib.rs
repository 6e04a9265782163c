//! Normative-reference directories (classifiers) and, later, unique trader identifiers.
//!
//! Invariant: this crate never reads the network or the file system itself; the shipped
//! directories are embedded at build time, and the node feeds it anything else as text.
//! Versioned directories, change sets and "as of date" queries arrive with issue 7; trader
//! identifiers with issue 8.
#![forbid(unsafe_code)]

mod directory;

pub use directory::{Directories, Directory, DirectoryError, Entry, LookupError};
