//! Real node processes on loopback doing what they are for: store-and-forward with receipts,
//! the admin API and console, trader and reference-data exchange, revocation, who may deliver,
//! the event log and webhooks,
//! large attachments, the conformance suite, high availability and shutdown. Each test starts
//! its own nodes on its own block of ports (`net::Net::init`), so the tests of all modules run
//! in parallel threads.
//!
//! One module per former test binary, so `cargo test -p tereze --test cluster -- relay::`
//! runs what `--test relay` used to.

use tereze_testkit::net;

mod admin;
mod attachments;
mod audit;
mod conformance;
mod console;
mod events;
mod exchange_security;
mod gost;
mod ha;
mod pkcs11;
mod reference;
mod relay;
mod revocation;
mod shutdown;
mod timestamps;
mod traders;
mod verdicts;
