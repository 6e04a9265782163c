//! Normative-reference directories (versioned classifiers) and unique trader identifiers.
//!
//! Invariant: this crate never reads the network itself; the node feeds it change sets.
//! The directories and identifiers arrive with issues 7 and 8; the crate exists now so the
//! workspace has its final shape.
#![forbid(unsafe_code)]
