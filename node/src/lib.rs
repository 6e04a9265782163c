//! The Tereze node as a library: the daemon (`node`), its configuration, store, relay,
//! services and receipts. The `tereze` binary (crate `tereze`, in `cli/`) loads a
//! [`NodeConfig`], starts logging and calls [`run`]; nothing else here is public.
//! **Invariant:** knows nothing of the command line or of test tooling (no `clap`, no
//! testkit); tests speak to the node as a process, over its protocol.
#![forbid(unsafe_code)]

use tereze_attachments as attachments;
use tereze_support::class;
use tereze_trust as trust;
use tereze_trust::{change_set as reference_document, receipt, traders};
mod config;
mod logging;
mod node;
use tereze_doors::shutdown;
use tereze_recognition as recognition;
use tereze_store as store;

pub use config::{ConfigError, Limits, NodeConfig};
pub use logging::init as init_logging;
pub use node::{run, CheckpointFailure, StartError};
pub use shutdown::RUNTIME_STOP;
