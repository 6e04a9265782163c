//! The Tereze node: the daemon (`node`), its store, relay, services and receipts, and the
//! `tereze` command line (`cli`). The binary in `main.rs` only calls [`cli::run`]; the library
//! form exists so integration tests can speak the gRPC protocol ([`proto`]) to real node
//! processes.
#![forbid(unsafe_code)]

use tereze_attachments as attachments;
use tereze_support::class;
use tereze_trust as trust;
use tereze_trust::{
    change_set as reference_document, devpki, document as trust_document, receipt, traders,
};
pub mod cli;
mod cluster;
mod config;
mod logging;
mod node;
use tereze_doors::shutdown;
use tereze_recognition as recognition;
use tereze_store as store;

/// The gRPC contracts (`proto/tereze/v1/*.proto`): `Exchange` between nodes, `Window` for the
/// national system.
pub mod proto {
    pub use crate::node::proto::*;
}
