//! What an inclusion proof is made of, kept in memory so that a proof whose
//! parts were all read before is answered without touching the store.
//!
//! Everything kept is immutable in an append-only log: stored hashes (a
//! complete subtree's hash never changes), the root of the tree of a given
//! size, and the fact that the log has reached a size (it never shrinks).
//! So nothing is ever invalidated; both caches are bounded and forget.

use crate::merkle::{self, Hash, HashReader, MerkleError};
use crate::store::hash_cache::HashCache;
use crate::store::InclusionProof;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// Tree roots remembered; past this the map starts again empty.
const ROOTS_MAX: usize = 4096;

/// Stored hashes, roots by tree size, and the largest tree size read.
pub struct ProofCache {
    hashes: HashCache,
    roots: Mutex<HashMap<u64, Hash>>,
    /// The largest tree size the store has been seen to hold.
    known_size: AtomicU64,
}

impl ProofCache {
    /// A cache of about `hash_entries` stored hashes (40 bytes each).
    pub fn new(hash_entries: usize) -> ProofCache {
        ProofCache {
            hashes: HashCache::new(hash_entries),
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
        let cached = InMemory(&self.hashes);
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
}

/// The hash cache alone: a miss is an error, never a store read.
struct InMemory<'a>(&'a HashCache);

impl HashReader for InMemory<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, MerkleError> {
        indexes
            .iter()
            .map(|&index| self.0.get(index).ok_or(MerkleError::MissingHash(index)))
            .collect()
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
        let reader = cache.hashes().reader(store);
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
}
