//! RFC 3161 time-stamps for the node: what it asks an authority for ([`request`]), the
//! authority client ([`Client`]), the check of a token against the authorities the trust
//! space lists ([`verify()`]), and batch evidence ([`Evidence`], [`batch`]): one token over the
//! Merkle root of many signature values, each item with its path.
//! **Guarantee:** a [`Stamp`] comes only out of a token that passed every check of
//! [`verify()`]'s list. ASN.1 through RustCrypto's `x509-tsp`, `cms`, `x509-cert` and `der`;
//! signatures and chains through OpenSSL (docs/decisions/0016-rfc3161-timestamps.md). Knows
//! only `support` of the workspace.
#![forbid(unsafe_code)]

mod client;
mod error;
mod evidence;
mod oids;
mod request;
mod verify;

pub use client::Client;
pub use error::TimestampError;
pub use evidence::{batch, imprint_of, imprint_of_root, Evidence, MAX_STEPS, MAX_TOKEN};
pub use request::{request, Nonce};
pub use tereze_support::merkle::{Path, Step};
pub use verify::{verify, Authority, Stamp};
