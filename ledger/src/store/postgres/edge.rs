//! The Merkle frontier as the `log_head` row stores it, so that a node
//! whose log grew on another node takes the frontier from the row it locks
//! instead of reading stored hashes.

use super::hashes::{frontier_indexes, DynReader, FetchedHashes, RecordingReader};
use super::rows::hash_from;
use crate::merkle::{Frontier, Hash};
use crate::store::StoreError;
use std::cell::RefCell;
use std::collections::HashSet;

/// A frontier as the head row stores it: (stored hash index, hash) of each
/// complete subtree, largest first.
#[derive(Debug, Clone, Default)]
pub(super) struct Edge(Vec<(u64, Hash)>);

impl Edge {
    pub(super) fn from_bytes(size: u64, bytes: Vec<u8>) -> Result<Edge, StoreError> {
        let indexes = frontier_indexes(size);
        if bytes.len() != indexes.len() * 32 {
            return Err(StoreError::Corrupt(format!(
                "log_head.frontier holds {} bytes; a tree of {size} leaves needs {}",
                bytes.len(),
                indexes.len() * 32
            )));
        }
        let hashes = bytes
            .chunks_exact(32)
            .map(|chunk| hash_from(chunk.to_vec(), "a frontier hash"));
        Ok(Edge(
            indexes
                .into_iter()
                .zip(hashes)
                .map(|(index, hash)| hash.map(|hash| (index, hash)))
                .collect::<Result<_, _>>()?,
        ))
    }

    pub(super) fn to_bytes(&self) -> Vec<u8> {
        self.0.iter().flat_map(|(_, hash)| *hash).collect()
    }

    pub(super) fn frontier(&self, size: u64) -> Result<Frontier, StoreError> {
        let fetched = FetchedHashes {
            known: self.0.iter().copied().collect(),
            absent: HashSet::new(),
        };
        let reader = RecordingReader {
            fetched: &fetched,
            wanted: RefCell::new(Vec::new()),
        };
        Ok(Frontier::load(size, &DynReader(&reader))?)
    }

    /// The edge of the tree grown to `size` by appending leaves whose new
    /// stored hashes (ascending by index) are `added`. A complete subtree of
    /// the new frontier is either new or was already one of the old
    /// frontier's (a subtree that is maximal in the larger tree was maximal
    /// in the smaller one too).
    pub(super) fn advance(&self, size: u64, added: &[(u64, Hash)]) -> Result<Edge, StoreError> {
        frontier_indexes(size)
            .into_iter()
            .map(|index| {
                let hash = match added.binary_search_by_key(&index, |(i, _)| *i) {
                    Ok(position) => added[position].1,
                    Err(_) => self
                        .0
                        .iter()
                        .find(|(i, _)| *i == index)
                        .map(|(_, hash)| *hash)
                        .ok_or_else(|| {
                            StoreError::Corrupt(format!(
                                "frontier hash {index} of the tree of {size} leaves is unknown"
                            ))
                        })?,
                };
                Ok((index, hash))
            })
            .collect::<Result<_, _>>()
            .map(Edge)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{self, MemoryHashes};

    /// The head row's frontier, advanced batch by batch, always describes
    /// the same tree as the in-memory frontier and as the stored hashes.
    #[test]
    fn edge_advances_with_the_frontier() {
        let mut frontier = Frontier::new();
        let mut edge = Edge::default();
        let mut stored = Vec::new();
        let mut leaf = 0u64;
        for batch in [1usize, 1, 2, 3, 5, 8, 13, 1, 64, 7, 100, 1, 255] {
            let mut added = Vec::new();
            for _ in 0..batch {
                frontier.append(merkle::leaf_hash(&leaf.to_be_bytes()), &mut added);
                leaf += 1;
            }
            stored.extend(added.iter().map(|(_, hash)| *hash));
            edge = edge.advance(frontier.size(), &added).unwrap();
            let size = frontier.size();
            let from_row = Edge::from_bytes(size, edge.to_bytes()).unwrap();
            assert_eq!(from_row.frontier(size).unwrap(), frontier, "size {size}");
            let loaded = Frontier::load(size, &MemoryHashes(stored.clone())).unwrap();
            assert_eq!(loaded.root(), frontier.root());
        }
        assert!(
            Edge::from_bytes(5, vec![0; 32]).is_err(),
            "5 leaves need two hashes"
        );
    }
}
