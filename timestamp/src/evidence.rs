//! Batch evidence: one token covers many signature values. The leaves are the signatures'
//! `SignatureValue` octets (base64-decoded), hashed as `support::merkle` says; the token's
//! imprint is SHA-256(root), so `openssl ts -verify -data root.bin` checks a token on its own.
//! [`Evidence`] is what an envelope keeps: the token and the path from its leaf to the root.
//!
//! Encoding (all integers big-endian; docs/timestamps.md):
//!
//! ```text
//! "TZTE" | version 0x01 | token length u32 | token (DER) | step count u8 | steps
//! step = side u8 (0x00: sibling on the right, 0x01: sibling on the left) | sibling hash (32)
//! ```
//!
//! **Guarantee:** [`Evidence::from_bytes`] refuses anything else (other magic or version, a
//! token over [`MAX_TOKEN`] bytes or empty, more than [`MAX_STEPS`] steps, a side byte other
//! than 0 or 1, missing or trailing bytes) without reading past the input.

use openssl::sha::sha256;
use tereze_support::merkle::{self, Hash, Path, Step};

use crate::error::TimestampError;
use crate::verify::{verify, Authority, Stamp};

const MAGIC: &[u8; 4] = b"TZTE";
const VERSION: u8 = 1;
/// The largest token kept (a token with a few certificates is 2 to 8 KiB).
pub const MAX_TOKEN: usize = 64 * 1024;
/// The longest path: a batch of up to 2^32 leaves.
pub const MAX_STEPS: usize = 32;

/// A token over a batch's root and one item's path to that root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evidence {
    /// TimeStampToken ContentInfo DER.
    pub token: Vec<u8>,
    pub path: Path,
}

/// The imprint a batch's token must stamp: SHA-256 of the Merkle root.
pub fn imprint_of_root(root: &Hash) -> [u8; 32] {
    sha256(root)
}

/// The batch over `signature_values` (each the raw `SignatureValue` octets): the imprint to
/// request a token for, and each value's path, in order. Give at least one value: an empty
/// batch has no paths, and its imprint (over an all-zero root) covers nothing.
pub fn batch<T: AsRef<[u8]>>(signature_values: &[T]) -> ([u8; 32], Vec<Path>) {
    let leaves: Vec<Hash> = signature_values
        .iter()
        .map(|v| merkle::leaf(v.as_ref()))
        .collect();
    let (root, paths) = merkle::tree(&leaves);
    (imprint_of_root(&root), paths)
}

/// The imprint that `signature_value` and `path` lead to.
pub fn imprint_of(signature_value: &[u8], path: &[Step]) -> [u8; 32] {
    imprint_of_root(&merkle::root_from_path(
        &merkle::leaf(signature_value),
        path,
    ))
}

impl Evidence {
    pub fn new(token: Vec<u8>, path: Path) -> Evidence {
        Evidence { token, path }
    }

    /// The documented encoding (module header). A token over [`MAX_TOKEN`] bytes or a path
    /// over [`MAX_STEPS`] steps (neither comes out of [`batch`] and an authority) is written as
    /// given and refused by [`Evidence::from_bytes`].
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(10 + self.token.len() + self.path.len() * 33);
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        let len = u32::try_from(self.token.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.token);
        out.push(u8::try_from(self.path.len()).unwrap_or(u8::MAX));
        for s in &self.path {
            out.push(u8::from(s.sibling_left));
            out.extend_from_slice(&s.sibling);
        }
        out
    }

    /// Reads the documented encoding; refuses anything else.
    pub fn from_bytes(bytes: &[u8]) -> Result<Evidence, TimestampError> {
        let bad = |s: &str| TimestampError::BadEvidence(s.to_owned());
        let mut r = Reader(bytes);
        if r.take(4).ok_or_else(|| bad("too short"))? != MAGIC {
            return Err(bad("does not start with \"TZTE\""));
        }
        let version = r.take(1).ok_or_else(|| bad("too short"))?[0];
        if version != VERSION {
            return Err(TimestampError::BadEvidence(format!(
                "version {version} is not 1"
            )));
        }
        let len = r.take(4).ok_or_else(|| bad("too short"))?;
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        if len == 0 || len > MAX_TOKEN {
            return Err(TimestampError::BadEvidence(format!(
                "token length {len} is not within 1..={MAX_TOKEN}"
            )));
        }
        let token = r
            .take(len)
            .ok_or_else(|| bad("shorter than its token length"))?
            .to_vec();
        let steps = r.take(1).ok_or_else(|| bad("no step count"))?[0] as usize;
        if steps > MAX_STEPS {
            return Err(TimestampError::BadEvidence(format!(
                "{steps} path steps, more than {MAX_STEPS}"
            )));
        }
        let mut path = Vec::with_capacity(steps);
        for i in 0..steps {
            let step = r
                .take(33)
                .ok_or_else(|| TimestampError::BadEvidence(format!("path step {i} cut short")))?;
            let sibling_left = match step[0] {
                0 => false,
                1 => true,
                other => {
                    return Err(TimestampError::BadEvidence(format!(
                        "path step {i}: side {other} is not 0 or 1"
                    )))
                }
            };
            let mut sibling = [0u8; 32];
            sibling.copy_from_slice(&step[1..]);
            path.push(Step {
                sibling_left,
                sibling,
            });
        }
        if !r.0.is_empty() {
            return Err(TimestampError::BadEvidence(format!(
                "{} bytes after the path",
                r.0.len()
            )));
        }
        Ok(Evidence { token, path })
    }

    /// Checks that this evidence stamps `signature_value` (its raw octets) and that the token
    /// verifies against `authorities` ([`verify()`]).
    pub fn verify(
        &self,
        signature_value: &[u8],
        authorities: &[Authority],
    ) -> Result<Stamp, TimestampError> {
        verify(
            &self.token,
            &imprint_of(signature_value, &self.path),
            authorities,
        )
    }
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(head)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_encoding_round_trips_and_refuses_garbage() {
        let (_, paths) = batch(&[b"a".as_slice(), b"b", b"c"]);
        let e = Evidence::new(vec![0x30, 0x03, 1, 2, 3], paths[2].clone());
        let bytes = e.to_bytes();
        assert_eq!(Evidence::from_bytes(&bytes).expect("round trip"), e);
        for bad in [
            &bytes[..bytes.len() - 1],
            &[bytes.as_slice(), &[0]].concat()[..],
            b"TZTX\x01",
            b"",
        ] {
            assert!(matches!(
                Evidence::from_bytes(bad),
                Err(TimestampError::BadEvidence(_))
            ));
        }
        let mut side = bytes.clone();
        let at = bytes.len() - 33;
        side[at] = 2;
        assert!(Evidence::from_bytes(&side).is_err(), "side 2");
    }
}
