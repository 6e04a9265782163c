//! What a node trusts and proves (DESIGN §5): the trust space (states, anchors, CRLs, nodes,
//! the recognition matrix) and its Commission-signed document, the checks on fetched CRLs, the
//! TLS server configurations that follow from it, signed receipts, signed trader answers and
//! register records, signed reference change sets, and the development PKI.
//! **Invariant:** knows `support`, `codecs` and `reference-data` only (ARCHITECTURE.md,
//! "Dependency rules"): no store, no network, no node state; callers hand it bytes and keys.
#![forbid(unsafe_code)]

pub mod algorithms;
pub mod change_set;
pub mod crl;
pub mod devpki;
pub mod document;
mod file;
pub mod receipt;
mod role;
mod space;
pub mod tls;
pub mod tls_signer;
pub mod traders;

pub use file::{
    File, FileAlgorithms, FileNationalSignature, FileNode, FileRecognition, FileState,
    FileTimestampAuthority,
};
pub use role::Role;
pub use space::*;
