//! Normative-reference directories (DESIGN §6): versioned classifiers with entries valid over
//! date intervals, "as of date D" queries, numbered change sets applied atomically and
//! idempotently, imports from CSV, JSON and XML, the integrated tariff, and trader
//! identifiers (`trader`: format, check digits and what each state's number encodes).
//!
//! Invariant: this crate never reads the network or the file system itself. The shipped
//! directories are embedded at build time (`Directories::builtin()`); anything else (a change
//! set received by the node, a file to import) is fed to it as text or bytes. Signatures over
//! change sets are checked by the node, which holds the trust space.
#![forbid(unsafe_code)]

mod apply;
mod change;
pub mod date;
mod directory;
pub mod import;
mod model;
pub mod tariff;
pub mod trader;

pub use apply::{Applied, ChangeError};
pub use change::{ChangeSet, Definition, Operation};
pub use directory::{diff, Difference, Directories, Directory, DirectoryError, LookupError, On};
pub use model::{Date, Entry, Kind, RawEntry, RawValue, Value};
