//! Small things every part of the node uses and that know nothing of it: hexadecimal, the
//! clock, SHA-256, the Merkle tree, secret files and tokens, a small HTTP/1.1 client, pauses between tries,
//! /proc readers, `urn:uuid` ids, and the classification of request errors.
//! **Invariant:** depends on no other crate of the workspace (ARCHITECTURE.md, "Dependency
//! rules").
#![forbid(unsafe_code)]

pub mod backoff;
pub mod class;
pub mod clock;
pub mod digest;
pub mod fs;
pub mod hex;
pub mod http;
pub mod merkle;
pub mod procfs;
pub mod urn;
