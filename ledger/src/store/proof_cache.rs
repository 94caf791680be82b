//! What an inclusion proof is made of, kept in memory so that a proof whose
//! parts were all read before is answered without touching the store.
//!
//! Everything kept is immutable in an append-only log: stored hashes (a
//! complete subtree's hash never changes), the root of the tree of a given
//! size, and the fact that the log has reached a size (it never shrinks).
//! So nothing is ever invalidated; every cache is bounded and forgets.
//!
//! A proof of a random leaf reads about eight hashes below level 8, within
//! the leaf's 256-leaf block, and the rest above it, which proofs of other
//! leaves share. Each kind is kept where a proof finds every one it needs:
//! a complete block's 511 stored hashes (contiguous in the stored-hash
//! order, like a level-0 tile's span) as one entry, read in one range on
//! the first proof that misses there; the hashes above level 8 in a map of
//! their own. The direct-mapped [`HashCache`] keeps the rest (the lower
//! hashes of the incomplete last block): in it, two indexes that share a
//! slot evict each other, which a proof needing every hash cannot afford
//! for hashes every proof reads.

use crate::merkle::{self, Hash, HashReader, MerkleError};
use crate::store::hash_cache::{read_through, HashCache};
use crate::store::InclusionProof;
use std::collections::HashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

/// Tree roots remembered; past this the map starts again empty.
const ROOTS_MAX: usize = 4096;
/// Leaves per block of stored hashes kept whole (a level-0 tile's width).
const BLOCK_LEAVES: u64 = 256;
/// The level of a block's own root: hashes from it up are shared.
const BLOCK_LEVEL: u8 = 8;
/// Stored hashes of one block: every complete subtree within it.
const BLOCK_HASHES: u64 = 2 * BLOCK_LEAVES - 1;
/// Blocks kept (16 KiB each: 32 MiB, the lower hashes of 524,288 leaves);
/// past this the map starts again empty.
const BLOCKS_MAX: usize = 2048;
/// Hashes above the blocks kept (40 bytes each: every one of a log of
/// about 8,000,000 leaves); past this the map starts again empty.
const UPPER_MAX: usize = 1 << 16;

/// Stored hashes, roots by tree size, and the largest tree size read.
pub struct ProofCache {
    hashes: HashCache,
    /// Block number (leaf index / [`BLOCK_LEAVES`]) to its stored hashes.
    blocks: RwLock<HashMap<u64, Arc<[Hash]>>>,
    /// Stored hashes at [`BLOCK_LEVEL`] and above, by stored-hash index.
    upper: RwLock<HashMap<u64, Hash>>,
    roots: Mutex<HashMap<u64, Hash>>,
    /// The largest tree size the store has been seen to hold.
    known_size: AtomicU64,
}

impl ProofCache {
    /// A cache of about `hash_entries` stored hashes (40 bytes each) beside
    /// the blocks and upper hashes inclusion proofs keep.
    pub fn new(hash_entries: usize) -> ProofCache {
        ProofCache {
            hashes: HashCache::new(hash_entries),
            blocks: RwLock::new(HashMap::new()),
            upper: RwLock::new(HashMap::new()),
            roots: Mutex::new(HashMap::new()),
            known_size: AtomicU64::new(0),
        }
    }

    /// The stored-hash cache, to read through in front of a store.
    pub fn hashes(&self) -> &HashCache {
        &self.hashes
    }

    /// The inclusion proof of leaf `index` in the tree of `size` leaves,
    /// when the log is known to hold that tree and every hash it needs is
    /// in memory; `None` sends the caller to the store.
    pub fn inclusion(&self, index: u64, size: u64) -> Option<InclusionProof> {
        if index >= size || size > self.known_size.load(Ordering::Relaxed) {
            return None;
        }
        let root_hash = *self.roots.lock().expect("root cache lock").get(&size)?;
        let cached = self.inclusion_reader::<MemoryOnly>(index, None);
        let leaf_hash = cached
            .read_hashes(&[merkle::stored_hash_index(0, index)])
            .ok()?[0];
        let proof = merkle::prove_inclusion(index, size, &cached).ok()?;
        Some(InclusionProof {
            leaf_index: index,
            tree_size: size,
            leaf_hash,
            root_hash,
            proof,
        })
    }

    /// The hashes of an inclusion proof of leaf `index`, read from memory
    /// and, for what is missing, from `store`, keeping what it reads.
    pub fn inclusion_hashes<'a, R: HashReader>(
        &'a self,
        index: u64,
        store: &'a R,
    ) -> InclusionHashes<'a, R> {
        self.inclusion_reader(index, Some(store))
    }

    fn inclusion_reader<'a, R: HashReader>(
        &'a self,
        index: u64,
        store: Option<&'a R>,
    ) -> InclusionHashes<'a, R> {
        let block = index / BLOCK_LEAVES;
        InclusionHashes {
            cache: self,
            block: self
                .blocks
                .read()
                .expect("block cache lock")
                .get(&block)
                .map(|hashes| (block_hashes(block).start, hashes.clone())),
            store,
        }
    }

    /// Remembers what a proof the store answered says: the log holds its
    /// tree, and the tree's root.
    pub fn remember(&self, proof: &InclusionProof) {
        self.known_size
            .fetch_max(proof.tree_size, Ordering::Relaxed);
        let mut roots = self.roots.lock().expect("root cache lock");
        if roots.len() >= ROOTS_MAX {
            roots.clear();
        }
        roots.insert(proof.tree_size, proof.root_hash);
    }

    /// The stored-hash indexes to read so that later proofs of leaf
    /// `index`'s neighbours are answered from memory: its block's, when the
    /// block is complete in a log of `stored_size` leaves and not yet held.
    pub fn block_to_read(&self, index: u64, stored_size: u64) -> Option<Range<u64>> {
        let block = index / BLOCK_LEAVES;
        let complete = (block + 1)
            .checked_mul(BLOCK_LEAVES)
            .is_some_and(|end| end <= stored_size);
        let held = self
            .blocks
            .read()
            .expect("block cache lock")
            .contains_key(&block);
        (complete && !held).then(|| block_hashes(block))
    }

    /// Holds the stored hashes read for [`ProofCache::block_to_read`]'s
    /// range of leaf `index`, `(stored-hash index, hash)` in order.
    /// Anything but that whole range is ignored: a block is held complete
    /// or not at all.
    pub fn hold_block(&self, index: u64, read: &[(u64, Hash)]) {
        let block = index / BLOCK_LEAVES;
        let expected = block_hashes(block);
        let whole = read.len() as u64 == BLOCK_HASHES
            && read
                .iter()
                .zip(expected)
                .all(|(&(index, _), wanted)| index == wanted);
        if !whole {
            return;
        }
        let hashes: Arc<[Hash]> = read.iter().map(|&(_, hash)| hash).collect();
        let mut blocks = self.blocks.write().expect("block cache lock");
        if blocks.len() >= BLOCKS_MAX {
            blocks.clear();
        }
        blocks.insert(block, hashes);
    }

    fn remember_hash(&self, index: u64, hash: Hash) {
        if merkle::stored_hash_leaf(index).1 >= BLOCK_LEVEL {
            let mut upper = self.upper.write().expect("upper hash lock");
            if upper.len() >= UPPER_MAX {
                upper.clear();
            }
            upper.insert(index, hash);
        } else {
            self.hashes.insert(index, hash);
        }
    }

    fn remembered_hash(&self, index: u64) -> Option<Hash> {
        if merkle::stored_hash_leaf(index).1 >= BLOCK_LEVEL {
            self.upper
                .read()
                .expect("upper hash lock")
                .get(&index)
                .copied()
        } else {
            self.hashes.get(index)
        }
    }
}

/// The stored-hash indexes of block `block`: contiguous, since a complete
/// subtree's hashes are stored as its leaves are appended, the subtree's
/// own root last (Go's `tlog.StoredHashIndex`).
fn block_hashes(block: u64) -> Range<u64> {
    let first = merkle::stored_hash_index(0, block * BLOCK_LEAVES);
    first..first + BLOCK_HASHES
}

/// An inclusion proof's hashes: the leaf's block when it is held, then the
/// cache's other hashes, then (if any) the store, whose answers are kept.
pub struct InclusionHashes<'a, R> {
    cache: &'a ProofCache,
    /// The first stored-hash index of the leaf's block and its hashes.
    block: Option<(u64, Arc<[Hash]>)>,
    store: Option<&'a R>,
}

impl<R: HashReader> InclusionHashes<'_, R> {
    fn in_memory(&self, index: u64) -> Option<Hash> {
        let in_block = self.block.as_ref().and_then(|(first, hashes)| {
            index
                .checked_sub(*first)
                .and_then(|offset| hashes.get(offset as usize))
                .copied()
        });
        in_block.or_else(|| self.cache.remembered_hash(index))
    }
}

impl<R: HashReader> HashReader for InclusionHashes<'_, R> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, MerkleError> {
        read_through(
            indexes,
            |index| self.in_memory(index),
            self.store,
            |index, hash| self.cache.remember_hash(index, hash),
        )
    }
}

/// The store of a reader that has none: it cannot be made, so such a
/// reader answers from memory alone.
enum MemoryOnly {}

impl HashReader for MemoryOnly {
    fn read_hashes(&self, _: &[u64]) -> Result<Vec<Hash>, MerkleError> {
        match *self {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{Frontier, MemoryHashes};

    fn tree(size: u64) -> (MemoryHashes, Hash) {
        let mut frontier = Frontier::new();
        let mut stored = Vec::new();
        for n in 0..size {
            frontier.append(merkle::leaf_hash(&n.to_be_bytes()), &mut stored);
        }
        (
            MemoryHashes(stored.into_iter().map(|(_, h)| h).collect()),
            frontier.root(),
        )
    }

    /// A proof as a store answers it, read through the cache.
    fn from_store(
        cache: &ProofCache,
        store: &MemoryHashes,
        index: u64,
        size: u64,
        root: Hash,
    ) -> InclusionProof {
        let reader = cache.inclusion_hashes(index, store);
        let proof = InclusionProof {
            leaf_index: index,
            tree_size: size,
            leaf_hash: reader
                .read_hashes(&[merkle::stored_hash_index(0, index)])
                .unwrap()[0],
            root_hash: root,
            proof: merkle::prove_inclusion(index, size, &reader).unwrap(),
        };
        cache.remember(&proof);
        proof
    }

    #[test]
    fn a_proof_read_once_is_answered_from_memory_and_equals_the_stores() {
        let (store, root) = tree(1000);
        let cache = ProofCache::new(1 << 14);
        assert!(cache.inclusion(7, 1000).is_none(), "nothing known yet");
        let first = from_store(&cache, &store, 7, 1000, root);
        assert_eq!(cache.inclusion(7, 1000), Some(first.clone()));
        merkle::verify_inclusion(7, 1000, &first.leaf_hash, &first.proof, &root).unwrap();
        // A smaller tree the log is known to hold, but whose root was never
        // read, goes to the store; so does a larger tree.
        assert!(cache.inclusion(7, 999).is_none());
        assert!(cache.inclusion(7, 1001).is_none());
        assert!(cache.inclusion(1000, 1000).is_none());
    }

    /// The `(index, hash)` pairs of `range` as a store's range read returns them.
    fn range_of(store: &MemoryHashes, range: Range<u64>) -> Vec<(u64, Hash)> {
        range
            .map(|index| (index, store.0[index as usize]))
            .collect()
    }

    #[test]
    fn a_block_read_once_answers_every_proof_of_its_leaves_from_memory() {
        let (store, root) = tree(1000);
        let cache = ProofCache::new(1 << 14);
        from_store(&cache, &store, 7, 1000, root);
        let block = cache.block_to_read(7, 1000).expect("block 0 is complete");
        assert_eq!(block, 0..511);
        cache.hold_block(7, &range_of(&store, block));
        assert_eq!(cache.block_to_read(7, 1000), None, "held already");
        for index in 0..256 {
            let proof = cache
                .inclusion(index, 1000)
                .unwrap_or_else(|| panic!("leaf {index} is answered from memory"));
            assert_eq!(
                proof.proof,
                merkle::prove_inclusion(index, 1000, &store).unwrap()
            );
            merkle::verify_inclusion(index, 1000, &proof.leaf_hash, &proof.proof, &root).unwrap();
        }
    }

    #[test]
    fn an_incomplete_or_partly_read_block_is_never_held() {
        let (store, root) = tree(1000);
        let cache = ProofCache::new(1 << 14);
        // Leaves 768..1000: their block is not complete in a log of 1000.
        assert_eq!(cache.block_to_read(999, 1000), None);
        // Block 1 is leaves 256..512; a range short of one hash is ignored.
        let block = cache.block_to_read(300, 1000).unwrap();
        let mut short = range_of(&store, block.clone());
        short.pop();
        cache.hold_block(300, &short);
        assert_eq!(cache.block_to_read(300, 1000), Some(block.clone()));
        // Another block's range, offered as this one's, is ignored too.
        cache.hold_block(300, &range_of(&store, 0..511));
        assert_eq!(cache.block_to_read(300, 1000), Some(block));
        // Without the block, a leaf nobody read goes to the store.
        from_store(&cache, &store, 7, 1000, root);
        assert!(cache.inclusion(300, 1000).is_none());
    }

    /// A proof as the embedded store answers one the cache missed: the
    /// leaf's block first, then the rest through the cache.
    fn as_the_store_does(
        cache: &ProofCache,
        store: &MemoryHashes,
        index: u64,
        size: u64,
        root: Hash,
    ) -> InclusionProof {
        if let Some(block) = cache.block_to_read(index, size) {
            cache.hold_block(index, &range_of(store, block));
        }
        from_store(cache, store, index, size, root)
    }

    #[test]
    fn once_warm_every_proof_in_a_complete_block_is_answered_from_memory() {
        // A hash cache far too small for the log: the blocks and the
        // upper hashes must not depend on it.
        let size = 20_000;
        let (store, root) = tree(size);
        let cache = ProofCache::new(1 << 8);
        let mut state: u64 = 7;
        let mut random_leaf = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % size
        };
        for _ in 0..3_000 {
            let index = random_leaf();
            if cache.inclusion(index, size).is_none() {
                as_the_store_does(&cache, &store, index, size, root);
            }
        }
        let complete_blocks_end = size / BLOCK_LEAVES * BLOCK_LEAVES;
        for _ in 0..3_000 {
            let index = random_leaf() % complete_blocks_end;
            let proof = cache
                .inclusion(index, size)
                .unwrap_or_else(|| panic!("leaf {index} is answered from memory"));
            merkle::verify_inclusion(index, size, &proof.leaf_hash, &proof.proof, &root).unwrap();
        }
    }
}
