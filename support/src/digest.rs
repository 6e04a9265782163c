//! SHA-256, as receipts, routes and the audit log carry it.

use openssl::hash::{hash, MessageDigest};

/// The SHA-256 of `data` (empty only if OpenSSL fails, which it does not for SHA-256).
pub fn sha256(data: &[u8]) -> Vec<u8> {
    hash(MessageDigest::sha256(), data)
        .map(|d| d.to_vec())
        .unwrap_or_default()
}
