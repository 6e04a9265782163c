//! The schemes every signer and verifier knows: `Algorithms::default()`, the families of
//! `algorithm.rs` and those of `gost.rs`. Kept apart so that neither of those modules depends
//! on the other's registration.

use super::algorithm::Algorithms;
use super::gost;

impl Default for Algorithms {
    fn default() -> Self {
        let mut algorithms = Algorithms::builtin();
        gost::register_all(&mut algorithms);
        algorithms
    }
}
