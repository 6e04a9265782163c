//! The conformance suite, runnable against any node that speaks the Tereze protocol.
//!
//! The suite's cases and runner arrive with issue 9; the crate exists now so the workspace has
//! its final shape.
#![forbid(unsafe_code)]
