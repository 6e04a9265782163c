//! Tereze codecs: secure XML parsing, canonicalisation (C14N 1.0 and exclusive C14N),
//! XML Signature, and (later) the EAEU message model and national-document translation.
//!
//! Invariant: this crate does no network or file I/O and knows nothing of the node; callers
//! hand it bytes and keys and get bytes, trees and verdicts back.
#![forbid(unsafe_code)]

pub mod c14n;
pub mod der;
pub mod dsig;
pub mod envelope;
pub mod pki;
pub mod translate;
pub mod xml;
