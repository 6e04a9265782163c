//! The one Merkle tree of the node: batch receipts (`trust::receipt`) and time-stamp batch
//! evidence (`tereze-timestamp`) both prove that one item is in a signed batch with it.
//! Leaf = SHA-256(0x00 ‖ data); node = SHA-256(0x01 ‖ left ‖ right); an odd node at the end of
//! a level moves up unchanged. The 0x00/0x01 prefixes keep a leaf from passing for a node
//! (RFC 6962 §2.1 uses the same rule). **Guarantee:** `root_from_path(leaf(x), path)` equals
//! the root exactly when `path` is `x`'s path in that tree (or a collision of SHA-256).

use openssl::sha::Sha256;

/// A SHA-256 value.
pub type Hash = [u8; 32];

/// One step of a path from a leaf to the root: the sibling's hash and on which side it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// `true`: the sibling is on the left (the node is hash(sibling ‖ current)).
    pub sibling_left: bool,
    pub sibling: Hash,
}

/// A leaf's path to the root, from the leaf upwards.
pub type Path = Vec<Step>;

/// The leaf hash of `data`: SHA-256(0x00 ‖ data).
pub fn leaf(data: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update(&[0]);
    h.update(data);
    h.finish()
}

/// The hash of an inner node: SHA-256(0x01 ‖ left ‖ right).
pub fn node(left: &Hash, right: &Hash) -> Hash {
    let mut h = Sha256::new();
    h.update(&[1]);
    h.update(left);
    h.update(right);
    h.finish()
}

/// The root over `leaves` (leaf hashes, in order) and every leaf's path to it. No leaves: the
/// all-zero hash and no paths (no caller signs an empty batch).
pub fn tree(leaves: &[Hash]) -> (Hash, Vec<Path>) {
    let mut paths: Vec<Path> = vec![Vec::new(); leaves.len()];
    // Which node of the current level each leaf's path is at.
    let mut position: Vec<usize> = (0..leaves.len()).collect();
    let mut level = leaves.to_vec();
    while level.len() > 1 {
        let next: Vec<Hash> = level
            .chunks(2)
            .map(|pair| match pair {
                [l, r] => node(l, r),
                [one, ..] => *one,
                [] => [0; 32],
            })
            .collect();
        for (leaf, pos) in position.iter_mut().enumerate() {
            let p = *pos;
            if p % 2 == 1 {
                paths[leaf].push(Step {
                    sibling_left: true,
                    sibling: level[p - 1],
                });
            } else if p + 1 < level.len() {
                paths[leaf].push(Step {
                    sibling_left: false,
                    sibling: level[p + 1],
                });
            }
            *pos = p / 2;
        }
        level = next;
    }
    (level.first().copied().unwrap_or([0; 32]), paths)
}

/// The root that `leaf` (a leaf hash) and `path` lead to.
pub fn root_from_path(leaf: &Hash, path: &[Step]) -> Hash {
    path.iter().fold(*leaf, |h, step| {
        if step.sibling_left {
            node(&step.sibling, &h)
        } else {
            node(&h, &step.sibling)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_leaf_path_leads_to_the_root_and_no_other_leaf_does() {
        for n in [1usize, 2, 3, 4, 5, 7, 8, 9, 64, 100] {
            let leaves: Vec<Hash> = (0..n).map(|i| leaf(&i.to_be_bytes())).collect();
            let (root, paths) = tree(&leaves);
            assert_eq!(paths.len(), n);
            for (i, p) in paths.iter().enumerate() {
                assert_eq!(root_from_path(&leaves[i], p), root, "leaf {i} of {n}");
                let other = leaf(&(n + i).to_be_bytes());
                assert_ne!(root_from_path(&other, p), root, "foreign leaf, {n}");
            }
        }
    }

    #[test]
    fn the_shape_is_the_documented_one() {
        let l: Vec<Hash> = [b"a", b"b", b"c"].iter().map(|d| leaf(*d)).collect();
        let (root, paths) = tree(&l);
        // Three leaves: (a b) then c moves up unchanged.
        assert_eq!(root, node(&node(&l[0], &l[1]), &l[2]));
        assert_eq!(paths[2].len(), 1, "c's only sibling is (a b)");
        assert_eq!(tree(&l[..1]).0, l[0], "one leaf is its own root");
        let mut prefixed = vec![0u8];
        prefixed.extend_from_slice(b"a");
        assert_eq!(leaf(b"a").to_vec(), crate::digest::sha256(&prefixed));
    }
}
