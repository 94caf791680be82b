//! The global log's Merkle tree: RFC 6962 section 2.1, as restated by
//! RFC 9162 section 2.1, as pure functions over a tiny storage trait.
//!
//! The model is Go's `golang.org/x/mod/sumdb/tlog`. Every complete subtree
//! hash is stored exactly once, in append order, at the position given by
//! [`stored_hash_index`]; a store only has to keep a flat array of hashes and
//! answer [`HashReader::read_hashes`]. A subtree that is not complete (the
//! right edge of a tree whose size is not a power of two) is never stored: it
//! is computed from the complete subtrees it decomposes into (RFC 6962 MTH is
//! the right fold of the descending power-of-two pieces). Every proof reads all
//! the hashes it needs in one batch, so a database backend pays one round trip.
//!
//! The verifiers follow `transparency-dev/merkle`'s `proof` package, whose
//! test vectors (vendored in `ledger/tests/testdata/merkle`) they must all
//! pass, including the cases that must be rejected.

use sha2::{Digest, Sha256};
use std::fmt;

/// A SHA-256 digest: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; 32];

/// The root of the empty tree, `SHA-256("")` (RFC 9162 section 2.1.1).
pub const EMPTY_ROOT: Hash = [
    0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
    0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55,
];

/// The largest tree size the storage functions accept (2^62 leaves). Above it
/// [`stored_hash_index`] would overflow `u64`; no log will get near it.
pub const TREE_SIZE_MAX: u64 = 1 << 62;

/// Domain separation prefixes of RFC 6962 section 2.1, which keep a leaf from
/// ever being mistaken for an interior node (second-preimage resistance).
const LEAF_PREFIX: u8 = 0x00;
const NODE_PREFIX: u8 = 0x01;

/// The most hashes in any inclusion or consistency proof over a tree of at
/// most [`TREE_SIZE_MAX`] leaves, plus the pieces of the one incomplete
/// subtree a proof can contain. Used to size buffers once.
const PROOF_HASHES_MAX: usize = 128;

/// Hashes one leaf: `SHA-256(0x00 || leaf)` (RFC 9162 section 2.1.1).
pub fn leaf_hash(leaf: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([LEAF_PREFIX]);
    hasher.update(leaf);
    hasher.finalize().into()
}

/// Hashes two children into their parent: `SHA-256(0x01 || left || right)`
/// (RFC 9162 section 2.1.1).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([NODE_PREFIX]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// Where the hash of the complete subtree number `n` at height `level` is
/// stored: the subtree covering leaves `[n << level, (n + 1) << level)`.
///
/// Hashes are stored in append order: leaf hash `i`, then the hashes of every
/// subtree leaf `i` completes, lowest first. This is Go's
/// `tlog.StoredHashIndex`, in closed form: level `L`'s `n`th hash is stored
/// right after level 0's hash of the subtree's last leaf `m = ((n+1) << L) - 1`,
/// which is stored at `m + m/2 + m/4 + ... = 2m - popcount(m)`.
///
/// Requires `level < 63` and `(n + 1) << level <= TREE_SIZE_MAX`.
pub fn stored_hash_index(level: u8, n: u64) -> u64 {
    debug_assert!(level < 63, "level {level} is beyond any tree");
    debug_assert!(
        (n + 1) <= TREE_SIZE_MAX >> level,
        "subtree {n} at level {level} is beyond TREE_SIZE_MAX"
    );
    let last_leaf = ((n + 1) << level) - 1;
    2 * last_leaf - u64::from(last_leaf.count_ones()) + u64::from(level)
}

/// How many hashes a tree of `size` leaves stores: one per complete subtree,
/// `2 * size - popcount(size)` (Go's `tlog.StoredHashCount`). The stored
/// hashes of the tree are exactly the indexes `0..stored_hash_count(size)`.
pub fn stored_hash_count(size: u64) -> u64 {
    debug_assert!(size <= TREE_SIZE_MAX);
    2 * size - u64::from(size.count_ones())
}

/// The leaf whose append stored the hash at stored-hash `index`, and the
/// hash's level: the inverse of [`stored_hash_index`] (Go's
/// `tlog.SplitStoredHashIndex`, which answers the subtree instead). Leaf `m`
/// stores `1 + trailing_ones(m)` hashes from `stored_hash_count(m)` on: its
/// own at level 0, then those of the subtrees it completes, lowest first.
pub fn stored_hash_leaf(index: u64) -> (u64, u8) {
    // stored_hash_count(m) = 2m - popcount(m) lies in (2m - 64, 2m], so the
    // leaf is at most 32 past index / 2.
    let mut leaf = index / 2;
    let mut first = stored_hash_count(leaf);
    loop {
        let next = first + 1 + u64::from(leaf.trailing_ones());
        if next > index {
            return (leaf, (index - first) as u8);
        }
        leaf += 1;
        first = next;
    }
}

/// Why a Merkle computation or verification failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MerkleError {
    /// A leaf index that is not inside the tree.
    #[error("leaf index {index} is out of range for a tree of {size} leaves; the index must be less than the tree size")]
    IndexOutOfRange { index: u64, size: u64 },
    /// Tree sizes that do not admit the requested proof.
    #[error("tree sizes {from} and {to} do not admit a proof: {reason}")]
    BadSizes {
        from: u64,
        to: u64,
        reason: &'static str,
    },
    /// A proof with the wrong number of hashes for its sizes.
    #[error("proof has {got} hashes, but these tree sizes need exactly {want}")]
    ProofLength { got: usize, want: usize },
    /// A well-formed proof that does not lead to the expected root.
    #[error("the proof does not lead to the expected root hash")]
    RootMismatch,
    /// The store does not hold the stored hash with this index.
    #[error("stored hash {0} is missing; the tree is smaller than the requested size")]
    MissingHash(u64),
    /// The store failed to read hashes.
    #[error("reading stored hashes failed: {0}")]
    Read(String),
}

/// Read access to stored hashes, addressed by [`stored_hash_index`].
pub trait HashReader {
    /// Returns the stored hashes at `indexes`, in the same order.
    ///
    /// Every function in this module asks for all the hashes it needs in one
    /// call, so a database backend answers with a single query. A missing
    /// index is [`MerkleError::MissingHash`].
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, MerkleError>;
}

/// A [`HashReader`] over hashes held in memory, indexed by
/// [`stored_hash_index`] (for tests and for the audit, which rebuilds the
/// tree from the leaves).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemoryHashes(pub Vec<Hash>);

impl HashReader for MemoryHashes {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, MerkleError> {
        indexes
            .iter()
            .map(|&index| {
                usize::try_from(index)
                    .ok()
                    .and_then(|i| self.0.get(i))
                    .copied()
                    .ok_or(MerkleError::MissingHash(index))
            })
            .collect()
    }
}

/// Reads `indexes` and checks that the reader kept its contract.
fn read_exact(indexes: &[u64], r: &impl HashReader) -> Result<Vec<Hash>, MerkleError> {
    let hashes = r.read_hashes(indexes)?;
    if hashes.len() != indexes.len() {
        return Err(MerkleError::Read(format!(
            "asked for {} hashes, the reader returned {}",
            indexes.len(),
            hashes.len()
        )));
    }
    Ok(hashes)
}

/// The largest power of two strictly less than `n` (RFC 9162 section 2.1.1's
/// `k`), for `n >= 2`.
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// Appends the stored-hash indexes of the complete subtrees that make up the
/// leaves `[lo, hi)`, largest first. `lo` must be a multiple of the first
/// (largest) piece, which holds for every range a proof asks for.
fn push_subtree_indexes(mut lo: u64, hi: u64, indexes: &mut Vec<u64>) {
    debug_assert!(lo < hi);
    while lo < hi {
        let level = 63 - (hi - lo).leading_zeros();
        debug_assert_eq!(lo & ((1 << level) - 1), 0, "range start is not aligned");
        indexes.push(stored_hash_index(level as u8, lo >> level));
        lo += 1 << level;
    }
}

/// The number of complete subtrees that make up `[lo, hi)`; see
/// [`push_subtree_indexes`].
fn subtree_count(lo: u64, hi: u64) -> usize {
    (hi - lo).count_ones() as usize
}

/// RFC 6962 MTH of a range from its descending power-of-two pieces: the right
/// fold `p0 . (p1 . (p2 . ...))`.
fn fold_subtrees(pieces: &[Hash]) -> Hash {
    let (last, rest) = pieces.split_last().expect("a range has at least one piece");
    rest.iter()
        .rev()
        .fold(*last, |right, left| node_hash(left, &right))
}

/// Reads the hashes of the leaf ranges `ranges` (given root first) in one
/// batch and returns them bottom first, which is the order RFC 9162 proofs
/// list them in.
fn read_ranges_bottom_up(
    ranges: &[(u64, u64)],
    r: &impl HashReader,
) -> Result<Vec<Hash>, MerkleError> {
    if ranges.is_empty() {
        return Ok(Vec::new());
    }
    let mut indexes = Vec::with_capacity(PROOF_HASHES_MAX);
    for &(lo, hi) in ranges.iter().rev() {
        push_subtree_indexes(lo, hi, &mut indexes);
    }
    let hashes = read_exact(&indexes, r)?;
    let mut proof = Vec::with_capacity(ranges.len());
    let mut next = 0;
    for &(lo, hi) in ranges.iter().rev() {
        let count = subtree_count(lo, hi);
        proof.push(fold_subtrees(&hashes[next..next + count]));
        next += count;
    }
    debug_assert_eq!(next, hashes.len());
    Ok(proof)
}

fn check_tree_size(from: u64, to: u64) -> Result<(), MerkleError> {
    if to > TREE_SIZE_MAX {
        return Err(MerkleError::BadSizes {
            from,
            to,
            reason: "the tree size is beyond TREE_SIZE_MAX (2^62)",
        });
    }
    Ok(())
}

/// The root hash of the tree made of the first `size` leaves, RFC 9162
/// section 2.1.1 MTH; [`EMPTY_ROOT`] for `size == 0`. Reads one hash per set
/// bit of `size`, in one batch.
pub fn tree_hash(size: u64, r: &impl HashReader) -> Result<Hash, MerkleError> {
    check_tree_size(size, size)?;
    if size == 0 {
        return Ok(EMPTY_ROOT);
    }
    let mut indexes = Vec::with_capacity(subtree_count(0, size));
    push_subtree_indexes(0, size, &mut indexes);
    let hashes = read_exact(&indexes, r)?;
    Ok(fold_subtrees(&hashes))
}

/// The inclusion proof of leaf `index` in the tree of the first `size`
/// leaves: RFC 9162 section 2.1.3.1 `PATH(index, D[size])`, bottom first.
///
/// Walks from the root down to the leaf, collecting the sibling of every node
/// on the path; all of them are read in one batch.
pub fn prove_inclusion(
    index: u64,
    size: u64,
    r: &impl HashReader,
) -> Result<Vec<Hash>, MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    check_tree_size(index, size)?;
    let mut siblings = Vec::with_capacity(64);
    let (mut lo, mut hi) = (0, size);
    while hi - lo > 1 {
        let k = split_point(hi - lo);
        if index < lo + k {
            siblings.push((lo + k, hi));
            hi = lo + k;
        } else {
            siblings.push((lo, lo + k));
            lo += k;
        }
    }
    read_ranges_bottom_up(&siblings, r)
}

/// The consistency proof between the trees of the first `from` and the first
/// `to` leaves: RFC 9162 section 2.1.4.1 `PROOF(from, D[to])`, bottom first.
///
/// `from == to` and `from == 0` have nothing to prove and give the empty
/// proof. Note that [`verify_consistency`] rejects `from == 0` (any tree
/// extends the empty tree, so such a check proves nothing); a caller that
/// holds no earlier checkpoint should skip the check instead.
pub fn prove_consistency(
    from: u64,
    to: u64,
    r: &impl HashReader,
) -> Result<Vec<Hash>, MerkleError> {
    if from > to {
        return Err(MerkleError::BadSizes {
            from,
            to,
            reason: "the first size is larger than the second",
        });
    }
    check_tree_size(from, to)?;
    if from == to || from == 0 {
        return Ok(Vec::new());
    }
    // SUBPROOF(m, D[lo:hi], b) of RFC 9162, unrolled: `from` is the absolute
    // boundary of the old tree, `complete` is the flag b.
    let mut nodes = Vec::with_capacity(64);
    let (mut lo, mut hi, mut complete) = (0, to, true);
    loop {
        if from == hi {
            if !complete {
                nodes.push((lo, hi));
            }
            break;
        }
        let k = split_point(hi - lo);
        if from <= lo + k {
            nodes.push((lo + k, hi));
            hi = lo + k;
        } else {
            nodes.push((lo, lo + k));
            lo += k;
            complete = false;
        }
    }
    read_ranges_bottom_up(&nodes, r)
}

/// How an inclusion proof for `index` in a tree of `size` leaves splits:
/// `inner` hashes below the point where the paths to `index` and to
/// `size - 1` diverge, then `border` hashes along the right border.
fn decompose_inclusion(index: u64, size: u64) -> (usize, usize) {
    let inner = 64 - (index ^ (size - 1)).leading_zeros();
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner as usize, border as usize)
}

/// Chains `seed` up through `proof`, taking each hash as left or right
/// sibling according to the bits of `index`.
fn chain_inner(seed: Hash, proof: &[Hash], index: u64) -> Hash {
    proof.iter().enumerate().fold(seed, |hash, (i, sibling)| {
        if (index >> i) & 1 == 0 {
            node_hash(&hash, sibling)
        } else {
            node_hash(sibling, &hash)
        }
    })
}

/// Like [`chain_inner`], but only takes left siblings, which gives the hash of
/// the same subtree as it was before the leaves to the right were appended.
fn chain_inner_right(seed: Hash, proof: &[Hash], index: u64) -> Hash {
    proof.iter().enumerate().fold(seed, |hash, (i, sibling)| {
        if (index >> i) & 1 == 1 {
            node_hash(sibling, &hash)
        } else {
            hash
        }
    })
}

/// Chains `seed` up the right border, where every sibling is on the left.
fn chain_border_right(seed: Hash, proof: &[Hash]) -> Hash {
    proof
        .iter()
        .fold(seed, |hash, sibling| node_hash(sibling, &hash))
}

/// Verifies that `proof` proves leaf `index` with hash `leaf_hash` is in the
/// tree of `size` leaves with root `root` (RFC 9162 section 2.1.3.2).
///
/// Rejects `index >= size` (so every proof for the empty tree), a proof of
/// any length other than the exact one the sizes need, and a proof that does
/// not lead to `root`.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf_hash: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexOutOfRange { index, size });
    }
    let (inner, border) = decompose_inclusion(index, size);
    if proof.len() != inner + border {
        return Err(MerkleError::ProofLength {
            got: proof.len(),
            want: inner + border,
        });
    }
    let hash = chain_inner(*leaf_hash, &proof[..inner], index);
    let hash = chain_border_right(hash, &proof[inner..]);
    if hash != *root {
        return Err(MerkleError::RootMismatch);
    }
    Ok(())
}

/// Verifies that `proof` proves the tree of `from` leaves with root
/// `from_root` is a prefix of the tree of `to` leaves with root `to_root`
/// (RFC 9162 section 2.1.4.2).
///
/// Requires `0 < from <= to`. `from == to` needs an empty proof and equal
/// roots. `from == 0` is rejected whatever the proof: the empty tree is a
/// prefix of every tree, so the check would prove nothing (as in
/// `transparency-dev/merkle`, whose test vectors pin this down).
pub fn verify_consistency(
    from: u64,
    to: u64,
    proof: &[Hash],
    from_root: &Hash,
    to_root: &Hash,
) -> Result<(), MerkleError> {
    if to < from {
        return Err(MerkleError::BadSizes {
            from,
            to,
            reason: "the first size is larger than the second",
        });
    }
    if from == 0 {
        return Err(MerkleError::BadSizes {
            from,
            to,
            reason: "a consistency proof from the empty tree is meaningless",
        });
    }
    if from == to {
        if !proof.is_empty() {
            return Err(MerkleError::ProofLength {
                got: proof.len(),
                want: 0,
            });
        }
        if from_root != to_root {
            return Err(MerkleError::RootMismatch);
        }
        return Ok(());
    }

    // The proof is a suffix of the inclusion proof of leaf `from - 1` in the
    // tree of `to` leaves, starting at level `shift` (the largest complete
    // subtree that ends at `from`), preceded by that subtree's hash unless it
    // is the whole old tree (`from` a power of two).
    let (inner, border) = decompose_inclusion(from - 1, to);
    let shift = from.trailing_zeros() as usize;
    debug_assert!(shift < inner, "from < to puts the divergence above shift");
    let inner = inner - shift;
    let from_is_subtree = from == 1 << shift;
    let start = usize::from(!from_is_subtree);
    let want = start + inner + border;
    if proof.len() != want {
        return Err(MerkleError::ProofLength {
            got: proof.len(),
            want,
        });
    }
    let seed = if from_is_subtree {
        *from_root
    } else {
        proof[0]
    };
    let proof = &proof[start..];
    let mask = (from - 1) >> shift;

    let hash1 = chain_inner_right(seed, &proof[..inner], mask);
    let hash1 = chain_border_right(hash1, &proof[inner..]);
    if hash1 != *from_root {
        return Err(MerkleError::RootMismatch);
    }
    let hash2 = chain_inner(seed, &proof[..inner], mask);
    let hash2 = chain_border_right(hash2, &proof[inner..]);
    if hash2 != *to_root {
        return Err(MerkleError::RootMismatch);
    }
    Ok(())
}

/// The right edge of the tree (the complete subtrees of a tree of `size`
/// leaves), kept in memory by the single writer so an append never reads.
///
/// A tree of `size` leaves is the concatenation of one complete subtree per
/// set bit of `size`, largest first; the frontier holds their hashes. An
/// append merges the smallest subtrees the new leaf completes, exactly like a
/// binary counter increment, so it costs O(1) hashes amortized and allocates
/// nothing.
#[derive(Clone)]
pub struct Frontier {
    size: u64,
    /// `edge[..len]`: the complete subtrees, largest first. `len` is
    /// `size.count_ones()`; slots past it are stale.
    edge: [Hash; 64],
    len: usize,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Frontier {
            size: 0,
            edge: [[0; 32]; 64],
            len: 0,
        }
    }

    /// Rebuilds the frontier of the tree of `size` leaves from its stored
    /// hashes, with one batched read of `size.count_ones()` hashes.
    pub fn load(size: u64, r: &impl HashReader) -> Result<Self, MerkleError> {
        check_tree_size(size, size)?;
        let mut frontier = Frontier::new();
        if size == 0 {
            return Ok(frontier);
        }
        let mut indexes = Vec::with_capacity(subtree_count(0, size));
        push_subtree_indexes(0, size, &mut indexes);
        let hashes = read_exact(&indexes, r)?;
        frontier.edge[..hashes.len()].copy_from_slice(&hashes);
        frontier.len = hashes.len();
        frontier.size = size;
        Ok(frontier)
    }

    /// The number of leaves in the tree.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends one leaf hash and pushes onto `out` every newly completed
    /// stored hash as `(stored_hash_index, hash)`: the leaf's own hash first,
    /// then each parent it completes, in increasing (consecutive) index order.
    ///
    /// # Panics
    ///
    /// If the tree already holds [`TREE_SIZE_MAX`] leaves.
    pub fn append(&mut self, leaf_hash: Hash, out: &mut Vec<(u64, Hash)>) {
        let index = self.size;
        assert!(
            index < TREE_SIZE_MAX,
            "the tree is full ({TREE_SIZE_MAX} leaves)"
        );
        let mut hash = leaf_hash;
        let mut stored = stored_hash_index(0, index);
        out.push((stored, hash));
        // Each trailing one bit of `index` is a complete subtree of that
        // height which the new leaf's subtree now completes.
        let mut level: u8 = 0;
        while (index >> level) & 1 == 1 {
            self.len -= 1;
            hash = node_hash(&self.edge[self.len], &hash);
            level += 1;
            stored += 1;
            debug_assert_eq!(stored, stored_hash_index(level, index >> level));
            out.push((stored, hash));
        }
        self.edge[self.len] = hash;
        self.len += 1;
        self.size = index + 1;
        debug_assert_eq!(self.len, self.size.count_ones() as usize);
    }

    /// The root hash of the current tree; [`EMPTY_ROOT`] when empty.
    pub fn root(&self) -> Hash {
        if self.len == 0 {
            return EMPTY_ROOT;
        }
        fold_subtrees(&self.edge[..self.len])
    }
}

impl Default for Frontier {
    fn default() -> Self {
        Frontier::new()
    }
}

impl PartialEq for Frontier {
    fn eq(&self, other: &Self) -> bool {
        self.size == other.size && self.edge[..self.len] == other.edge[..other.len]
    }
}

impl Eq for Frontier {}

impl fmt::Debug for Frontier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let edge: Vec<String> = self.edge[..self.len].iter().map(hex::encode).collect();
        f.debug_struct("Frontier")
            .field("size", &self.size)
            .field("edge", &edge)
            .finish()
    }
}

/// Serde helpers for a [`Hash`](type@Hash) as a lowercase hex string; use as
/// `#[serde(with = "crate::merkle::hex_hash")]`. Deserializing accepts
/// exactly 64 lowercase hex digits, so every hash has one spelling.
pub mod hex_hash {
    use super::Hash;
    use serde::{de, Deserializer, Serializer};
    use std::fmt;

    pub fn serialize<S: Serializer>(hash: &Hash, serializer: S) -> Result<S::Ok, S::Error> {
        let mut text = [0u8; 64];
        hex::encode_to_slice(hash, &mut text).expect("64 bytes hold 32 bytes of hex");
        serializer.serialize_str(std::str::from_utf8(&text).expect("hex is ASCII"))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Hash, D::Error> {
        deserializer.deserialize_str(HexHashVisitor)
    }

    /// Parses exactly 64 lowercase hex digits.
    pub(super) fn parse(text: &str) -> Option<Hash> {
        let canonical = text.len() == 64
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !canonical {
            return None;
        }
        let mut hash = [0u8; 32];
        hex::decode_to_slice(text, &mut hash).ok()?;
        Some(hash)
    }

    struct HexHashVisitor;

    impl de::Visitor<'_> for HexHashVisitor {
        type Value = Hash;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a SHA-256 hash as 64 lowercase hex digits")
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<Hash, E> {
            parse(text).ok_or_else(|| E::invalid_value(de::Unexpected::Str(text), &self))
        }
    }
}

/// Serde helpers for a `Vec<Hash>` as an array of lowercase hex strings; use
/// as `#[serde(with = "crate::merkle::hex_hashes")]`.
pub mod hex_hashes {
    use super::{hex_hash, Hash};
    use serde::{de, Deserialize, Deserializer, Serialize, Serializer};
    use std::fmt;

    struct HexRef<'a>(&'a Hash);

    impl Serialize for HexRef<'_> {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            hex_hash::serialize(self.0, serializer)
        }
    }

    struct HexOwned(Hash);

    impl<'de> Deserialize<'de> for HexOwned {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
            hex_hash::deserialize(deserializer).map(HexOwned)
        }
    }

    pub fn serialize<S: Serializer>(hashes: &[Hash], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(hashes.iter().map(HexRef))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<Hash>, D::Error> {
        deserializer.deserialize_seq(HexHashesVisitor)
    }

    struct HexHashesVisitor;

    impl<'de> de::Visitor<'de> for HexHashesVisitor {
        type Value = Vec<Hash>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array of SHA-256 hashes as 64 lowercase hex digits each")
        }

        fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<Hash>, A::Error> {
            // Never trust a length hint from the input for the allocation.
            let mut hashes =
                Vec::with_capacity(seq.size_hint().unwrap_or(0).min(super::PROOF_HASHES_MAX));
            while let Some(HexOwned(hash)) = seq.next_element()? {
                hashes.push(hash);
            }
            Ok(hashes)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::{engine::general_purpose::STANDARD, Engine as _};
    use proptest::prelude::*;
    use serde::{Deserialize, Serialize};
    use std::path::{Path, PathBuf};
    use std::sync::OnceLock;

    #[test]
    fn stored_hash_leaf_inverts_stored_hash_index() {
        for leaf in 0..5000u64 {
            for level in 0..=leaf.trailing_ones() as u8 {
                let index = stored_hash_index(level, leaf >> level);
                assert_eq!(index, stored_hash_count(leaf) + u64::from(level));
                assert_eq!(stored_hash_leaf(index), (leaf, level), "index {index}");
            }
        }
        let leaf = TREE_SIZE_MAX - 1;
        let top = stored_hash_count(leaf) + u64::from(leaf.trailing_ones());
        assert_eq!(stored_hash_leaf(top), (leaf, leaf.trailing_ones() as u8));
    }

    fn test_leaf(i: u64) -> Hash {
        leaf_hash(&i.to_le_bytes())
    }

    /// Builds the stored hashes of a tree of `size` leaves with a
    /// [`Frontier`], checking the append contract on the way.
    fn build(size: u64) -> (Vec<Hash>, MemoryHashes) {
        let mut frontier = Frontier::new();
        let mut stored = Vec::new();
        let mut leaves = Vec::new();
        let mut out = Vec::new();
        for i in 0..size {
            out.clear();
            let leaf = test_leaf(i);
            leaves.push(leaf);
            frontier.append(leaf, &mut out);
            for &(index, hash) in &out {
                assert_eq!(index, stored.len() as u64, "stored hashes arrive in order");
                stored.push(hash);
            }
        }
        assert_eq!(stored.len() as u64, stored_hash_count(size));
        (leaves, MemoryHashes(stored))
    }

    /// A tree shared by the property tests.
    fn big_tree() -> &'static (Vec<Hash>, MemoryHashes) {
        static TREE: OnceLock<(Vec<Hash>, MemoryHashes)> = OnceLock::new();
        TREE.get_or_init(|| build(1100))
    }

    /// RFC 6962 section 2.1 MTH, straight from the definition.
    fn naive_root(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => EMPTY_ROOT,
            1 => leaves[0],
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(&naive_root(&leaves[..k]), &naive_root(&leaves[k..]))
            }
        }
    }

    /// RFC 9162 section 2.1.3.1 PATH, straight from the definition.
    fn naive_path(m: usize, leaves: &[Hash]) -> Vec<Hash> {
        let n = leaves.len();
        if n <= 1 {
            return Vec::new();
        }
        let k = split_point(n as u64) as usize;
        if m < k {
            let mut path = naive_path(m, &leaves[..k]);
            path.push(naive_root(&leaves[k..]));
            path
        } else {
            let mut path = naive_path(m - k, &leaves[k..]);
            path.push(naive_root(&leaves[..k]));
            path
        }
    }

    /// RFC 9162 section 2.1.4.1 SUBPROOF, straight from the definition.
    fn naive_subproof(m: usize, leaves: &[Hash], complete: bool) -> Vec<Hash> {
        let n = leaves.len();
        if m == n {
            return if complete {
                Vec::new()
            } else {
                vec![naive_root(leaves)]
            };
        }
        let k = split_point(n as u64) as usize;
        if m <= k {
            let mut proof = naive_subproof(m, &leaves[..k], complete);
            proof.push(naive_root(&leaves[k..]));
            proof
        } else {
            let mut proof = naive_subproof(m - k, &leaves[k..], false);
            proof.push(naive_root(&leaves[..k]));
            proof
        }
    }

    fn h(hex_text: &str) -> Hash {
        hex_hash::parse(hex_text).expect("test hash is 64 lowercase hex digits")
    }

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        let digest: Hash = Sha256::digest(b"").into();
        assert_eq!(EMPTY_ROOT, digest);
        assert_eq!(
            hex::encode(EMPTY_ROOT),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(tree_hash(0, &MemoryHashes::default()), Ok(EMPTY_ROOT));
        assert_eq!(Frontier::new().root(), EMPTY_ROOT);
    }

    /// The RFC 6962 reference leaves used by Certificate Transparency and
    /// `transparency-dev/merkle` (`proof/verify_test.go`), with the roots of
    /// every prefix and the known proofs.
    fn reference_leaves() -> Vec<Hash> {
        [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ]
        .iter()
        .map(|data| leaf_hash(&hex::decode(data).unwrap()))
        .collect()
    }

    const REFERENCE_ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    fn reference_store() -> MemoryHashes {
        let mut frontier = Frontier::new();
        let mut out = Vec::new();
        for leaf in reference_leaves() {
            frontier.append(leaf, &mut out);
        }
        MemoryHashes(out.into_iter().map(|(_, hash)| hash).collect())
    }

    #[test]
    fn reference_roots_known_answers() {
        let leaves = reference_leaves();
        let store = reference_store();
        let mut frontier = Frontier::new();
        let mut out = Vec::new();
        for (i, want) in REFERENCE_ROOTS.iter().enumerate() {
            let size = i as u64 + 1;
            frontier.append(leaves[i], &mut out);
            assert_eq!(frontier.root(), h(want), "frontier root of size {size}");
            assert_eq!(
                tree_hash(size, &store).unwrap(),
                h(want),
                "tree_hash of size {size}"
            );
            assert_eq!(
                naive_root(&leaves[..i + 1]),
                h(want),
                "naive root of size {size}"
            );
        }
    }

    #[test]
    fn reference_inclusion_proofs_known_answers() {
        // (leaf index, tree size, proof) from transparency-dev/merkle.
        let cases: [(u64, u64, &[&str]); 5] = [
            (0, 1, &[]),
            (
                0,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                3,
                &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            ),
            (
                1,
                5,
                &[
                    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        let leaves = reference_leaves();
        let store = reference_store();
        for (index, size, want) in cases {
            let want: Vec<Hash> = want.iter().map(|x| h(x)).collect();
            let proof = prove_inclusion(index, size, &store).unwrap();
            assert_eq!(proof, want, "inclusion proof of {index} in {size}");
            let root = h(REFERENCE_ROOTS[size as usize - 1]);
            verify_inclusion(index, size, &leaves[index as usize], &proof, &root).unwrap();
        }
    }

    #[test]
    fn reference_consistency_proofs_known_answers() {
        let cases: [(u64, u64, &[&str]); 5] = [
            (1, 1, &[]),
            (
                1,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                5,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
            (
                6,
                7,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
        ];
        let store = reference_store();
        for (from, to, want) in cases {
            let want: Vec<Hash> = want.iter().map(|x| h(x)).collect();
            let proof = prove_consistency(from, to, &store).unwrap();
            assert_eq!(proof, want, "consistency proof {from} -> {to}");
            let from_root = h(REFERENCE_ROOTS[from as usize - 1]);
            let to_root = h(REFERENCE_ROOTS[to as usize - 1]);
            verify_consistency(from, to, &proof, &from_root, &to_root).unwrap();
        }
    }

    /// Go's `tlog.StoredHashIndex`, loop for loop.
    fn go_stored_hash_index(level: u8, mut n: u64) -> u64 {
        for _ in 0..level {
            n = 2 * n + 1;
        }
        let mut i = 0;
        while n > 0 {
            i += n;
            n >>= 1;
        }
        i + u64::from(level)
    }

    /// Go's `tlog.StoredHashCount`, loop for loop.
    fn go_stored_hash_count(n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let mut count = go_stored_hash_index(0, n - 1) + 1;
        let mut i = n - 1;
        while i & 1 != 0 {
            count += 1;
            i >>= 1;
        }
        count
    }

    #[test]
    fn stored_hash_addressing_matches_go() {
        // The first hashes in storage order: leaf 0, leaf 1, node (1,0), ...
        let order = [
            (0, 0),
            (0, 1),
            (1, 0),
            (0, 2),
            (0, 3),
            (1, 1),
            (2, 0),
            (0, 4),
        ];
        for (i, &(level, n)) in order.iter().enumerate() {
            assert_eq!(stored_hash_index(level, n), i as u64);
        }
        for level in 0..20u8 {
            for n in 0..300u64 {
                assert_eq!(stored_hash_index(level, n), go_stored_hash_index(level, n));
            }
        }
        for size in 0..5000u64 {
            assert_eq!(
                stored_hash_count(size),
                go_stored_hash_count(size),
                "size {size}"
            );
        }
        let big = TREE_SIZE_MAX - 1;
        assert_eq!(stored_hash_index(0, big), go_stored_hash_index(0, big));
        assert_eq!(
            stored_hash_count(TREE_SIZE_MAX),
            go_stored_hash_count(TREE_SIZE_MAX)
        );
        assert_eq!(stored_hash_index(61, 1), go_stored_hash_index(61, 1));
    }

    #[test]
    fn frontier_matches_naive_mth_for_every_size_and_subtree() {
        let size = 300u64;
        let (leaves, store) = build(size);
        let mut frontier = Frontier::new();
        let mut out = Vec::new();
        for n in 0..size {
            assert_eq!(
                frontier.root(),
                naive_root(&leaves[..n as usize]),
                "root at {n}"
            );
            out.clear();
            frontier.append(leaves[n as usize], &mut out);
            // The leaf hash, then one parent per trailing one bit of n.
            assert_eq!(out.len() as u32, 1 + n.trailing_ones());
            assert_eq!(out[0], (stored_hash_index(0, n), leaves[n as usize]));
            assert_eq!(out.last().unwrap().0 + 1, stored_hash_count(n + 1));
        }
        assert_eq!(frontier.size(), size);
        // Every stored hash is the MTH of the complete subtree it addresses.
        for level in 0..9u8 {
            let width = 1u64 << level;
            for k in 0..size / width {
                let range = (k * width) as usize..((k + 1) * width) as usize;
                let stored = store.0[stored_hash_index(level, k) as usize];
                assert_eq!(stored, naive_root(&leaves[range]), "subtree ({level}, {k})");
            }
        }
    }

    #[test]
    fn frontier_load_equals_frontier_built() {
        let (_, store) = big_tree();
        let mut built = Frontier::new();
        let mut out = Vec::new();
        for n in 0..=200u64 {
            let loaded = Frontier::load(n, store).unwrap();
            assert_eq!(loaded, built, "size {n}");
            assert_eq!(loaded.root(), tree_hash(n, store).unwrap());
            built.append(test_leaf(n), &mut out);
        }
        // A reloaded frontier keeps appending the same hashes.
        let mut loaded = Frontier::load(777, store).unwrap();
        let mut out = Vec::new();
        for n in 777..1100 {
            loaded.append(test_leaf(n), &mut out);
        }
        let want: Vec<(u64, Hash)> = (stored_hash_count(777)..stored_hash_count(1100))
            .map(|i| (i, store.0[i as usize]))
            .collect();
        assert_eq!(out, want);
        assert!(format!("{loaded:?}").starts_with("Frontier { size: 1100"));
        assert_eq!(Frontier::default(), Frontier::new());
    }

    /// Counts the batches a function asks for.
    struct CountingReader<'a> {
        inner: &'a MemoryHashes,
        calls: std::cell::Cell<usize>,
    }

    impl HashReader for CountingReader<'_> {
        fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, MerkleError> {
            self.calls.set(self.calls.get() + 1);
            self.inner.read_hashes(indexes)
        }
    }

    #[test]
    fn every_operation_reads_in_one_batch() {
        let (_, store) = big_tree();
        let reader = CountingReader {
            inner: store,
            calls: Default::default(),
        };
        for (index, size) in [(0, 1000), (999, 1000), (513, 1000), (5, 1023)] {
            reader.calls.set(0);
            prove_inclusion(index, size, &reader).unwrap();
            assert_eq!(reader.calls.get(), 1, "prove_inclusion({index}, {size})");
        }
        for (from, to) in [(1, 1000), (999, 1000), (513, 1000), (7, 1023)] {
            reader.calls.set(0);
            prove_consistency(from, to, &reader).unwrap();
            assert_eq!(reader.calls.get(), 1, "prove_consistency({from}, {to})");
        }
        reader.calls.set(0);
        tree_hash(1000, &reader).unwrap();
        Frontier::load(1000, &reader).unwrap();
        assert_eq!(reader.calls.get(), 2);
        // Nothing to read, no round trip.
        reader.calls.set(0);
        prove_inclusion(0, 1, &reader).unwrap();
        prove_consistency(5, 5, &reader).unwrap();
        tree_hash(0, &reader).unwrap();
        assert_eq!(reader.calls.get(), 0);
    }

    #[test]
    fn proofs_match_the_rfc_definitions() {
        let (leaves, store) = big_tree();
        for size in 1..=70u64 {
            let prefix = &leaves[..size as usize];
            for index in 0..size {
                let want = naive_path(index as usize, prefix);
                assert_eq!(
                    prove_inclusion(index, size, store).unwrap(),
                    want,
                    "PATH({index}, {size})"
                );
            }
            for from in 1..size {
                let want = naive_subproof(from as usize, prefix, true);
                assert_eq!(
                    prove_consistency(from, size, store).unwrap(),
                    want,
                    "PROOF({from}, {size})"
                );
            }
        }
    }

    #[test]
    fn missing_hashes_and_bad_arguments_are_errors() {
        let (_, store) = build(10);
        assert_eq!(
            tree_hash(11, &store),
            Err(MerkleError::MissingHash(stored_hash_index(0, 10)))
        );
        assert!(matches!(
            prove_inclusion(3, 12, &store),
            Err(MerkleError::MissingHash(_))
        ));
        assert!(matches!(
            prove_consistency(3, 12, &store),
            Err(MerkleError::MissingHash(_))
        ));
        assert!(matches!(
            Frontier::load(11, &store),
            Err(MerkleError::MissingHash(_))
        ));
        assert_eq!(
            prove_inclusion(10, 10, &store),
            Err(MerkleError::IndexOutOfRange {
                index: 10,
                size: 10
            })
        );
        assert!(matches!(
            prove_inclusion(0, 0, &store),
            Err(MerkleError::IndexOutOfRange { .. })
        ));
        assert!(matches!(
            prove_consistency(5, 4, &store),
            Err(MerkleError::BadSizes { .. })
        ));
        assert!(matches!(
            tree_hash(TREE_SIZE_MAX + 1, &store),
            Err(MerkleError::BadSizes { .. })
        ));
        assert_eq!(prove_consistency(0, 10, &store), Ok(Vec::new()));
        assert_eq!(prove_consistency(10, 10, &store), Ok(Vec::new()));

        struct ShortReader;
        impl HashReader for ShortReader {
            fn read_hashes(&self, _: &[u64]) -> Result<Vec<Hash>, MerkleError> {
                Ok(vec![EMPTY_ROOT])
            }
        }
        assert!(matches!(
            tree_hash(3, &ShortReader),
            Err(MerkleError::Read(_))
        ));
        assert!(matches!(
            Frontier::load(3, &ShortReader),
            Err(MerkleError::Read(_))
        ));
        let message = MerkleError::IndexOutOfRange { index: 4, size: 4 }.to_string();
        assert!(
            message.contains("must be less than the tree size"),
            "{message}"
        );
    }

    #[test]
    fn verifiers_never_panic_on_extreme_sizes() {
        let hash = EMPTY_ROOT;
        let long = vec![hash; 200];
        for (index, size) in [
            (0, u64::MAX),
            (u64::MAX - 1, u64::MAX),
            (u64::MAX, u64::MAX),
            (1 << 63, u64::MAX),
        ] {
            assert!(verify_inclusion(index, size, &hash, &long, &hash).is_err());
            assert!(verify_inclusion(index, size, &hash, &[], &hash).is_err());
        }
        for (from, to) in [
            (1, u64::MAX),
            (u64::MAX - 1, u64::MAX),
            (1 << 63, u64::MAX),
            (u64::MAX, 1),
        ] {
            assert!(verify_consistency(from, to, &long, &hash, &hash).is_err());
            assert!(verify_consistency(from, to, &[], &hash, &hash).is_err());
        }
    }

    #[test]
    fn tampering_is_detected() {
        let (leaves, store) = big_tree();
        let size = 1000;
        let root = tree_hash(size, store).unwrap();
        let proof = prove_inclusion(617, size, store).unwrap();
        verify_inclusion(617, size, &leaves[617], &proof, &root).unwrap();
        assert_eq!(
            verify_inclusion(617, size, &leaves[618], &proof, &root),
            Err(MerkleError::RootMismatch)
        );
        assert_eq!(
            verify_inclusion(618, size, &leaves[617], &proof, &root),
            Err(MerkleError::RootMismatch)
        );
        for i in 0..proof.len() {
            let mut bad = proof.clone();
            bad[i][31] ^= 1;
            assert_eq!(
                verify_inclusion(617, size, &leaves[617], &bad, &root),
                Err(MerkleError::RootMismatch)
            );
        }
        let mut longer = proof.clone();
        longer.push(root);
        assert!(matches!(
            verify_inclusion(617, size, &leaves[617], &longer, &root),
            Err(MerkleError::ProofLength { .. })
        ));
        assert!(matches!(
            verify_inclusion(617, size, &leaves[617], &proof[1..], &root),
            Err(MerkleError::ProofLength { .. })
        ));

        let old_root = tree_hash(300, store).unwrap();
        let proof = prove_consistency(300, size, store).unwrap();
        verify_consistency(300, size, &proof, &old_root, &root).unwrap();
        // A rewritten log: leaf 5 replaced, everything rehashed.
        let mut forked = Frontier::new();
        let mut out = Vec::new();
        for i in 0..size {
            let leaf = if i == 5 {
                leaf_hash(b"rewritten")
            } else {
                leaves[i as usize]
            };
            forked.append(leaf, &mut out);
        }
        let forked_store = MemoryHashes(out.iter().map(|&(_, h)| h).collect());
        let forked_proof = prove_consistency(300, size, &forked_store).unwrap();
        assert_eq!(
            verify_consistency(300, size, &forked_proof, &old_root, &forked.root()),
            Err(MerkleError::RootMismatch)
        );
        assert_eq!(
            verify_consistency(300, size, &proof, &old_root, &forked.root()),
            Err(MerkleError::RootMismatch)
        );
    }

    fn arb_index_size() -> impl Strategy<Value = (u64, u64)> {
        (1u64..=1100).prop_flat_map(|size| (0..size, Just(size)))
    }

    fn arb_from_to() -> impl Strategy<Value = (u64, u64)> {
        (1u64..=1100).prop_flat_map(|to| (1..=to, Just(to)))
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(512))]

        #[test]
        fn any_inclusion_proof_verifies((index, size) in arb_index_size()) {
            let (leaves, store) = big_tree();
            let root = tree_hash(size, store).unwrap();
            let proof = prove_inclusion(index, size, store).unwrap();
            prop_assert_eq!(verify_inclusion(index, size, &leaves[index as usize], &proof, &root), Ok(()));
            if size > 1 {
                let other = (index + 1) % size;
                prop_assert!(verify_inclusion(other, size, &leaves[index as usize], &proof, &root).is_err());
            }
        }

        #[test]
        fn any_consistency_proof_verifies((from, to) in arb_from_to()) {
            let (_, store) = big_tree();
            let from_root = tree_hash(from, store).unwrap();
            let to_root = tree_hash(to, store).unwrap();
            let proof = prove_consistency(from, to, store).unwrap();
            prop_assert_eq!(verify_consistency(from, to, &proof, &from_root, &to_root), Ok(()));
            if from < to {
                prop_assert!(verify_consistency(from, to, &proof, &to_root, &from_root).is_err());
                let mut bad = proof.clone();
                bad[0][0] ^= 0x80;
                prop_assert!(verify_consistency(from, to, &bad, &from_root, &to_root).is_err());
            }
        }

        #[test]
        fn hex_serde_round_trips(hashes in proptest::collection::vec(any::<[u8; 32]>(), 0..5)) {
            #[derive(Serialize, Deserialize, PartialEq, Debug)]
            struct Wire {
                #[serde(with = "crate::merkle::hex_hash")]
                root: Hash,
                #[serde(with = "crate::merkle::hex_hashes")]
                proof: Vec<Hash>,
            }
            let wire = Wire { root: hashes.first().copied().unwrap_or(EMPTY_ROOT), proof: hashes };
            let json = serde_json::to_string(&wire).unwrap();
            prop_assert_eq!(serde_json::from_str::<Wire>(&json).unwrap(), wire);
        }
    }

    #[test]
    fn hex_serde_is_strict() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct Wire {
            #[serde(with = "crate::merkle::hex_hash")]
            root: Hash,
            #[serde(with = "crate::merkle::hex_hashes")]
            proof: Vec<Hash>,
        }
        let wire = Wire {
            root: EMPTY_ROOT,
            proof: vec![[0xab; 32]],
        };
        let json = serde_json::to_string(&wire).unwrap();
        assert_eq!(
            json,
            format!(
                r#"{{"root":"{}","proof":["{}"]}}"#,
                hex::encode(EMPTY_ROOT),
                "ab".repeat(32)
            )
        );
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(serde_json::from_value::<Wire>(value).unwrap(), wire);
        for bad in [
            json.replace("e3b0", "E3B0"),
            json.replace("e3b0", "e3b"),
            json.replace("e3b0", "e3b0aa"),
            json.replace("e3b0", "xyz0"),
            json.replace(r#"["ab"#, r#"[1,"ab"#),
            json.replace(r#""proof":["#, r#""proof":"#)
                .replace("\"]}", "\"}"),
        ] {
            assert!(
                serde_json::from_str::<Wire>(&bad).is_err(),
                "accepted {bad}"
            );
        }
    }

    // ---- transparency-dev/merkle conformance vectors ----

    fn vectors_dir() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/testdata/merkle")
    }

    fn json_files(dir: &Path, files: &mut Vec<PathBuf>) {
        let entries = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("cannot read test vector directory {}: {e}", dir.display()));
        for entry in entries {
            let path = entry.unwrap().path();
            if path.is_dir() {
                json_files(&path, files);
            } else if path.extension().is_some_and(|ext| ext == "json") {
                files.push(path);
            }
        }
    }

    /// Decodes a base64 hash of the vectors. Some are not 32 bytes long
    /// ("", "WrongLeaf", "don't care 1"): Go's verifier takes byte slices,
    /// ours takes `[u8; 32]`, so such a value cannot even be passed.
    fn vector_bytes(value: &serde_json::Value) -> Result<Hash, Vec<u8>> {
        let text = value.as_str().expect("hash is a base64 string");
        let bytes = STANDARD.decode(text).expect("hash is valid base64");
        Hash::try_from(bytes.as_slice()).map_err(|_| bytes)
    }

    /// A leaf hash or proof hash that is not 32 bytes is refused where it
    /// would be decoded into a [`Hash`], before verification (Go's verifier
    /// refuses a short leaf hash the same way).
    fn vector_hash(value: &serde_json::Value) -> Result<Hash, String> {
        vector_bytes(value).map_err(|bytes| format!("a {}-byte value is not a hash", bytes.len()))
    }

    fn vector_proof(value: &serde_json::Value) -> Result<Vec<Hash>, String> {
        match value {
            serde_json::Value::Null => Ok(Vec::new()),
            serde_json::Value::Array(items) => items.iter().map(vector_hash).collect(),
            other => panic!("proof is neither null nor an array: {other}"),
        }
    }

    /// Go compares roots as opaque byte strings and never checks their
    /// length, and two cases that must verify use 12-byte "don't care"
    /// roots. A root that is not 32 bytes therefore becomes a stand-in digest
    /// of itself, which keeps equal roots equal and unequal roots unequal.
    fn vector_root(value: &serde_json::Value, stand_ins: &mut usize) -> Hash {
        vector_bytes(value).unwrap_or_else(|bytes| {
            *stand_ins += 1;
            let mut hasher = Sha256::new();
            hasher.update(b"ledgerline test stand-in for a non-32-byte root\0");
            hasher.update(&bytes);
            hasher.finalize().into()
        })
    }

    fn vector_u64(case: &serde_json::Value, field: &str) -> u64 {
        case[field]
            .as_u64()
            .unwrap_or_else(|| panic!("{field} is not a u64"))
    }

    #[test]
    fn transparency_dev_vectors() {
        let root = vectors_dir();
        assert!(
            root.is_dir(),
            "the Merkle conformance vectors are missing: expected the transparency-dev/merkle \
             testdata at {} (scripts/merkle-vectors --check says what is wrong with the copy)",
            root.display()
        );
        let (mut inclusion, mut consistency, mut must_fail) = (0, 0, 0);
        let (mut stand_ins, mut refused_at_decoding) = (0, 0);
        let mut failures = Vec::new();
        for kind in ["inclusion", "consistency"] {
            let mut files = Vec::new();
            json_files(&root.join(kind), &mut files);
            files.sort();
            for path in files {
                let text = std::fs::read_to_string(&path).unwrap();
                let case: serde_json::Value = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                let want_err = case["wantErr"].as_bool().expect("wantErr is a bool");
                let result = if kind == "inclusion" {
                    inclusion += 1;
                    let root_hash = vector_root(&case["root"], &mut stand_ins);
                    let decoded = vector_hash(&case["leafHash"])
                        .and_then(|leaf| Ok((leaf, vector_proof(&case["proof"])?)));
                    refused_at_decoding += usize::from(decoded.is_err());
                    decoded.and_then(|(leaf, proof)| {
                        verify_inclusion(
                            vector_u64(&case, "leafIdx"),
                            vector_u64(&case, "treeSize"),
                            &leaf,
                            &proof,
                            &root_hash,
                        )
                        .map_err(|e| e.to_string())
                    })
                } else {
                    consistency += 1;
                    let root1 = vector_root(&case["root1"], &mut stand_ins);
                    let root2 = vector_root(&case["root2"], &mut stand_ins);
                    let decoded = vector_proof(&case["proof"]);
                    refused_at_decoding += usize::from(decoded.is_err());
                    decoded.and_then(|proof| {
                        verify_consistency(
                            vector_u64(&case, "size1"),
                            vector_u64(&case, "size2"),
                            &proof,
                            &root1,
                            &root2,
                        )
                        .map_err(|e| e.to_string())
                    })
                };
                must_fail += usize::from(want_err);
                if result.is_err() != want_err {
                    failures.push(format!(
                        "{} ({}): wantErr {want_err}, got {result:?}",
                        path.strip_prefix(&root).unwrap().display(),
                        case["desc"]
                    ));
                }
            }
        }
        println!(
            "transparency-dev vectors: {inclusion} inclusion + {consistency} consistency cases, \
             {must_fail} must fail ({refused_at_decoding} of them refused at decoding: \
             a leaf or proof hash not 32 bytes), {stand_ins} non-32-byte roots stood in"
        );
        assert!(
            failures.is_empty(),
            "{} vector cases failed:\n{}",
            failures.len(),
            failures.join("\n")
        );
        assert!(
            inclusion > 50 && consistency > 50,
            "too few vectors: {inclusion} + {consistency}"
        );
        assert!(
            inclusion + consistency > 100,
            "too few vectors: {}",
            inclusion + consistency
        );
        assert!(must_fail > 50, "too few negative vectors: {must_fail}");
    }
}
