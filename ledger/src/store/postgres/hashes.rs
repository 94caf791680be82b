//! Fetching stored Merkle hashes for the pure functions of [`crate::merkle`],
//! which read through the synchronous [`HashReader`]: a first pass learns
//! which hashes a function needs, one query fetches them, a second pass
//! computes. No hash is computed or written here.

use super::rows::{hash_from, to_i64};
use crate::merkle::{self, Frontier, Hash, HashReader, MerkleError};
use crate::store::StoreError;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use tokio_postgres::GenericClient;

/// Passes over a Merkle function while fetching the hashes it asks for
/// (each function reads in one batch, so two passes suffice; see
/// [`with_stored_hashes`]).
pub(super) const HASH_FETCH_PASSES_MAX: usize = 4;

/// Stored hashes fetched so far for one Merkle computation.
#[derive(Default)]
pub(super) struct FetchedHashes {
    pub(super) known: HashMap<u64, Hash>,
    /// Indexes asked for and not stored.
    pub(super) absent: HashSet<u64>,
}

/// A [`HashReader`] over [`FetchedHashes`] that notes which indexes it lacks.
pub(super) struct RecordingReader<'a> {
    pub(super) fetched: &'a FetchedHashes,
    pub(super) wanted: RefCell<Vec<u64>>,
}

impl HashReader for RecordingReader<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, MerkleError> {
        let mut hashes = Vec::with_capacity(indexes.len());
        let mut first_missing = None;
        for &index in indexes {
            match self.fetched.known.get(&index) {
                Some(hash) => hashes.push(*hash),
                None if self.fetched.absent.contains(&index) => {
                    return Err(MerkleError::MissingHash(index))
                }
                None => {
                    self.wanted.borrow_mut().push(index);
                    first_missing.get_or_insert(index);
                }
            }
        }
        match first_missing {
            Some(index) => Err(MerkleError::MissingHash(index)),
            None => Ok(hashes),
        }
    }
}

/// Runs a pure Merkle function (which reads through the synchronous
/// [`HashReader`]) over hashes read asynchronously. Every function in
/// [`merkle`] asks for all its hashes in one call, so the first pass learns
/// the indexes, one query fetches them, and the second pass succeeds.
pub(super) async fn with_stored_hashes<R>(
    client: &impl GenericClient,
    f: impl Fn(&dyn HashReader) -> Result<R, MerkleError>,
) -> Result<R, StoreError> {
    let mut fetched = FetchedHashes::default();
    for _ in 0..HASH_FETCH_PASSES_MAX {
        let wanted = {
            let reader = RecordingReader {
                fetched: &fetched,
                wanted: RefCell::new(Vec::new()),
            };
            match f(&reader) {
                Ok(result) => return Ok(result),
                Err(error) => {
                    let wanted = reader.wanted.into_inner();
                    if wanted.is_empty() {
                        return Err(error.into());
                    }
                    wanted
                }
            }
        };
        for (index, hash) in read_stored_hashes(client, &wanted).await? {
            fetched.known.insert(index, hash);
        }
        for index in wanted {
            if !fetched.known.contains_key(&index) {
                fetched.absent.insert(index);
            }
        }
    }
    Err(StoreError::Corrupt(format!(
        "a Merkle computation still lacked hashes after {HASH_FETCH_PASSES_MAX} reads"
    )))
}

/// The stored hashes at `indexes` that exist, from the rows of the events
/// whose appends stored them, or from `merkle_hashes` for events appended
/// before migration `0004_event_hashes`.
pub(super) async fn read_stored_hashes(
    client: &impl GenericClient,
    indexes: &[u64],
) -> Result<Vec<(u64, Hash)>, StoreError> {
    let mut wanted = Vec::with_capacity(indexes.len());
    let mut seqs = Vec::with_capacity(indexes.len());
    let mut levels = Vec::with_capacity(indexes.len());
    for &index in indexes {
        let (leaf, level) = merkle::stored_hash_leaf(index);
        wanted.push(to_i64(index, "stored hash index")?);
        seqs.push(to_i64(leaf, "seq")?);
        levels.push(i32::from(level));
    }
    let rows = client
        .query(
            "SELECT w.idx, coalesce(substring(e.hashes FROM w.level * 32 + 1 FOR 32), m.hash)
             FROM unnest($1::bigint[], $2::bigint[], $3::integer[]) AS w(idx, seq, level)
             LEFT JOIN events e ON e.seq = w.seq
             LEFT JOIN merkle_hashes m ON e.hashes IS NULL AND m.idx = w.idx",
            &[&wanted, &seqs, &levels],
        )
        .await?;
    let mut found = Vec::with_capacity(rows.len());
    for row in rows {
        let index: i64 = row.try_get(0)?;
        if let Some(hash) = row.try_get::<_, Option<Vec<u8>>>(1)? {
            found.push((index as u64, hash_from(hash, "a stored Merkle hash")?));
        }
    }
    Ok(found)
}

/// Adapts `&dyn HashReader` to the `&impl HashReader` the Merkle functions take.
pub(super) struct DynReader<'a>(pub(super) &'a dyn HashReader);

impl HashReader for DynReader<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, MerkleError> {
        self.0.read_hashes(indexes)
    }
}

/// The stored-hash indexes of the complete subtrees that make up the
/// frontier of the tree of `size` leaves, in the order [`Frontier::load`]
/// reads them (largest subtree first).
pub(super) fn frontier_indexes(size: u64) -> Vec<u64> {
    let nothing = FetchedHashes::default();
    let reader = RecordingReader {
        fetched: &nothing,
        wanted: RefCell::new(Vec::new()),
    };
    // It fails for want of the hashes; what it asked for is the answer.
    let _ = Frontier::load(size, &DynReader(&reader));
    reader.wanted.into_inner()
}
