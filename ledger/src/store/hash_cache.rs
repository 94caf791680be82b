//! A bounded in-memory cache of stored Merkle hashes, for proof reads.
//!
//! A stored hash is the hash of a complete subtree, so once written it never
//! changes (the log is append-only): a cached copy cannot go stale, whichever
//! process appended it. Every proof reads the few hashes near the top of the
//! tree, so after a short warm-up most of a proof's ~2·log2(n) reads are
//! memory reads and only the ones near its leaf reach the database.
//!
//! The audit (`verify`) never reads through this cache: it recomputes hashes
//! from the stored leaves and compares them with what the store holds.

use crate::merkle::{Hash, HashReader, MerkleError};
use std::sync::Mutex;

/// Independent locks, so that concurrent proofs rarely wait on each other.
const SHARDS: usize = 64;
/// Marks an empty slot; no stored-hash index reaches it.
const EMPTY: u64 = u64::MAX;

/// A direct-mapped cache of `(stored-hash index, hash)`: each index has one
/// slot, and a newer entry for the same slot replaces the older one.
pub struct HashCache {
    shards: Vec<Mutex<Vec<(u64, Hash)>>>,
    slots_per_shard: usize,
}

impl HashCache {
    /// A cache of about `entries` hashes (40 bytes each).
    pub fn new(entries: usize) -> Self {
        let slots_per_shard = entries.div_ceil(SHARDS).max(1);
        HashCache {
            shards: (0..SHARDS)
                .map(|_| Mutex::new(vec![(EMPTY, [0; 32]); slots_per_shard]))
                .collect(),
            slots_per_shard,
        }
    }

    /// The shard and slot of `index`: a multiplicative hash spreads the
    /// regular index patterns of one proof over all shards.
    fn slot(&self, index: u64) -> (usize, usize) {
        let mixed = index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let shard = (mixed >> 58) as usize % SHARDS;
        let slot = (mixed % self.slots_per_shard as u64) as usize;
        (shard, slot)
    }

    pub fn get(&self, index: u64) -> Option<Hash> {
        let (shard, slot) = self.slot(index);
        let entries = self.shards[shard].lock().expect("hash cache lock");
        let (stored, hash) = entries[slot];
        (stored == index).then_some(hash)
    }

    pub fn insert(&self, index: u64, hash: Hash) {
        let (shard, slot) = self.slot(index);
        self.shards[shard].lock().expect("hash cache lock")[slot] = (index, hash);
    }

    /// `inner` with this cache in front of it.
    pub fn reader<'a, R: HashReader>(&'a self, inner: &'a R) -> CachedHashes<'a, R> {
        CachedHashes { cache: self, inner }
    }
}

/// A [`HashReader`] that answers from the cache and reads only the misses
/// from `inner`, in one call, remembering what it read.
pub struct CachedHashes<'a, R> {
    cache: &'a HashCache,
    inner: &'a R,
}

impl<R: HashReader> HashReader for CachedHashes<'_, R> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, MerkleError> {
        read_through(
            indexes,
            |index| self.cache.get(index),
            Some(self.inner),
            |index, hash| self.cache.insert(index, hash),
        )
    }
}

/// The hashes of `indexes`: those `cached` answers, and the rest read from
/// `inner` in one call, each handed to `remember`. Without `inner`, a miss
/// is an error.
pub(crate) fn read_through<R: HashReader>(
    indexes: &[u64],
    cached: impl Fn(u64) -> Option<Hash>,
    inner: Option<&R>,
    remember: impl Fn(u64, Hash),
) -> Result<Vec<Hash>, MerkleError> {
    let mut found: Vec<Option<Hash>> = indexes.iter().map(|&i| cached(i)).collect();
    let missing: Vec<u64> = indexes
        .iter()
        .zip(&found)
        .filter(|(_, hit)| hit.is_none())
        .map(|(&index, _)| index)
        .collect();
    if let Some(&first_missing) = missing.first() {
        let inner = inner.ok_or(MerkleError::MissingHash(first_missing))?;
        let read = inner.read_hashes(&missing)?;
        let mut read = missing.iter().zip(read);
        for slot in found.iter_mut().filter(|hit| hit.is_none()) {
            let (&index, hash) = read.next().expect("one hash per missing index");
            remember(index, hash);
            *slot = Some(hash);
        }
    }
    Ok(found
        .into_iter()
        .map(|hash| hash.expect("every index answered"))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{self, MemoryHashes};
    use std::cell::RefCell;

    /// Counts what reaches the store behind the cache.
    struct Counting<'a> {
        inner: &'a MemoryHashes,
        reads: RefCell<Vec<u64>>,
    }

    impl HashReader for Counting<'_> {
        fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, MerkleError> {
            self.reads.borrow_mut().extend_from_slice(indexes);
            self.inner.read_hashes(indexes)
        }
    }

    fn tree(size: u64) -> MemoryHashes {
        let mut frontier = merkle::Frontier::new();
        let mut stored = Vec::new();
        for n in 0..size {
            frontier.append(merkle::leaf_hash(&n.to_be_bytes()), &mut stored);
        }
        MemoryHashes(stored.into_iter().map(|(_, hash)| hash).collect())
    }

    #[test]
    fn proofs_through_the_cache_equal_proofs_without_it_and_repeat_reads_stay_in_memory() {
        let hashes = tree(1000);
        let store = Counting {
            inner: &hashes,
            reads: RefCell::new(Vec::new()),
        };
        let cache = HashCache::new(1 << 14);
        for index in [0, 1, 499, 998, 999] {
            let direct = merkle::prove_inclusion(index, 1000, &hashes).unwrap();
            let cached = merkle::prove_inclusion(index, 1000, &cache.reader(&store)).unwrap();
            assert_eq!(cached, direct);
        }
        let first = store.reads.borrow().len();
        assert!(first > 0);
        for index in [0, 1, 499, 998, 999] {
            merkle::prove_inclusion(index, 1000, &cache.reader(&store)).unwrap();
        }
        assert_eq!(
            store.reads.borrow().len(),
            first,
            "the second round hit the cache"
        );
    }

    #[test]
    fn a_full_cache_evicts_but_answers_correctly_and_misses_report_errors() {
        let hashes = tree(300);
        let cache = HashCache::new(1);
        for index in 0..300 {
            let direct = merkle::prove_inclusion(index, 300, &hashes).unwrap();
            let cached = merkle::prove_inclusion(index, 300, &cache.reader(&hashes)).unwrap();
            assert_eq!(cached, direct);
        }
        let empty = MemoryHashes::default();
        assert!(matches!(
            cache.reader(&empty).read_hashes(&[1 << 40]),
            Err(MerkleError::MissingHash(_))
        ));
    }
}
