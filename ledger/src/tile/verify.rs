//! A client's side of tlog-tiles: hash tiles checked against a checkpoint's
//! root, and the tree read from them.
//!
//! [`TileHashes`] holds the hash tiles of one tree (and, for a client that
//! verified an earlier tree, that tree's stored hashes) and answers
//! [`HashReader`] reads from them, so the proof functions of
//! [`crate::merkle`] run over tiles as they do over a store.
//! [`TileHashes::verify`] authenticates every tile it holds: the partial
//! tiles on the right edge by rebuilding the root from them (every hash of
//! a right-edge tile is part of the root), each full tile by its hash in
//! the tile above, and every hash the earlier tree already had by
//! comparing it with the one held, so that a tile that rewrites history
//! is caught as an inconsistency rather than accepted.

use super::encoding::subtree_hash;
use super::{items_at_level, Tile, TileKind, TILE_HEIGHT, TILE_WIDTH_FULL};
use crate::merkle::{self, stored_hash_count, stored_hash_index, Hash, HashReader, MerkleError};
use std::collections::BTreeMap;

/// Why tiles do not belong to the tree they were fetched for.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TileVerifyError {
    #[error("{tile} is not a hash tile of the tree of {size} leaves")]
    NotInTree { tile: String, size: u64 },
    #[error("{tile} is partial, but the tree of {size} leaves has {items} items at its level: only the right edge's partial tile belongs to it")]
    NotRightEdge { tile: String, size: u64, items: u64 },
    #[error(
        "the tiles give the tree of {size} leaves the root {computed}, not the signed {signed}"
    )]
    RootMismatch {
        size: u64,
        computed: String,
        signed: String,
    },
    #[error("{tile} hashes to {computed}, but the tile above holds {parent} for it")]
    ParentMismatch {
        tile: String,
        computed: String,
        parent: String,
    },
    #[error("{tile} holds {served} for node {node} of tree level {tree_level}, which the earlier tree of {held_size} leaves has as {held}: the log rewrote history")]
    HeldMismatch {
        tile: String,
        tree_level: u32,
        node: u64,
        held_size: u64,
        served: String,
        held: String,
    },
    #[error("the tiles lack hashes of the tree: {0}")]
    Incomplete(#[from] MerkleError),
}

/// The hash tiles of the tree of `size` leaves, over the stored hashes of
/// an earlier tree of `held_size` leaves that the client verified before.
pub struct TileHashes<'a> {
    size: u64,
    tiles: BTreeMap<(u8, u64), Vec<Hash>>,
    held: Option<&'a dyn HashReader>,
    held_size: u64,
}

impl<'a> TileHashes<'a> {
    /// No tiles yet, of the tree of `size` leaves.
    pub fn new(size: u64) -> TileHashes<'a> {
        TileHashes {
            size,
            tiles: BTreeMap::new(),
            held: None,
            held_size: 0,
        }
    }

    /// No tiles yet, of the tree of `size` leaves, which extends the tree of
    /// `held_size` leaves whose stored hashes `held` reads.
    pub fn over_held(size: u64, held: &'a dyn HashReader, held_size: u64) -> TileHashes<'a> {
        TileHashes {
            size,
            tiles: BTreeMap::new(),
            held: Some(held),
            held_size,
        }
    }

    /// The tree size the tiles are of.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Adds a hash tile (decoded), replacing a narrower one of the same place.
    pub fn insert(&mut self, tile: Tile, hashes: Vec<Hash>) -> Result<(), TileVerifyError> {
        let TileKind::Hashes { level } = tile.kind else {
            return Err(TileVerifyError::NotInTree {
                tile: tile.path(),
                size: self.size,
            });
        };
        if !tile.is_within(self.size) || hashes.len() != usize::from(tile.width) {
            return Err(TileVerifyError::NotInTree {
                tile: tile.path(),
                size: self.size,
            });
        }
        self.tiles.insert((level, tile.index), hashes);
        Ok(())
    }

    /// Leaf hash `seq`, from the level-0 tiles held.
    pub fn leaf_hash(&self, seq: u64) -> Option<Hash> {
        let width = u64::from(TILE_WIDTH_FULL);
        let tile = self.tiles.get(&(0, seq / width))?;
        tile.get((seq % width) as usize).copied()
    }

    /// Authenticates every tile against `root`, the signed root of the tree
    /// of [`TileHashes::size`] leaves (see the module documentation).
    pub fn verify(&self, root: &Hash) -> Result<(), TileVerifyError> {
        for (&(level, index), hashes) in &self.tiles {
            let tile = Tile::hashes(level, index, hashes.len() as u16);
            if !tile.is_full() {
                let items = items_at_level(self.size, level);
                if index * u64::from(TILE_WIDTH_FULL) + hashes.len() as u64 != items {
                    return Err(TileVerifyError::NotRightEdge {
                        tile: tile.path(),
                        size: self.size,
                        items,
                    });
                }
            }
            self.check_held(&tile, hashes)?;
        }
        let computed = merkle::tree_hash(self.size, self)?;
        if computed != *root {
            return Err(TileVerifyError::RootMismatch {
                size: self.size,
                computed: hex::encode(computed),
                signed: hex::encode(root),
            });
        }
        for (&(level, index), hashes) in &self.tiles {
            if hashes.len() == usize::from(TILE_WIDTH_FULL) {
                self.check_parent(&Tile::hashes(level, index, TILE_WIDTH_FULL), hashes)?;
            }
        }
        Ok(())
    }

    /// Authenticates a full tile without keeping it (a client streaming
    /// through the bottom level holds one chunk at a time): its hash must
    /// be the one the tiles held (once [verified](TileHashes::verify)) hold
    /// for it, and the hashes the earlier tree had must be the ones held.
    pub fn check_full_tile(&self, tile: &Tile, hashes: &[Hash]) -> Result<(), TileVerifyError> {
        if !tile.is_full() || !tile.is_within(self.size) || hashes.len() != usize::from(tile.width)
        {
            return Err(TileVerifyError::NotInTree {
                tile: tile.path(),
                size: self.size,
            });
        }
        self.check_held(tile, hashes)?;
        self.check_parent(tile, hashes)
    }

    /// Compares a full tile's hash with its hash in the tile above.
    fn check_parent(&self, tile: &Tile, hashes: &[Hash]) -> Result<(), TileVerifyError> {
        let parent_level = ((u32::from(tile.level()) + 1) * TILE_HEIGHT) as u8;
        let parent = self.read_hashes(&[stored_hash_index(parent_level, tile.index)])?[0];
        let computed = subtree_hash(hashes);
        if computed != parent {
            return Err(TileVerifyError::ParentMismatch {
                tile: tile.path(),
                computed: hex::encode(computed),
                parent: hex::encode(parent),
            });
        }
        Ok(())
    }

    /// Compares the hashes of `tile` that the earlier tree already had with
    /// the ones held.
    fn check_held(&self, tile: &Tile, hashes: &[Hash]) -> Result<(), TileVerifyError> {
        let Some(held) = self.held else {
            return Ok(());
        };
        let first = tile.index * u64::from(TILE_WIDTH_FULL);
        let held_items = items_at_level(self.held_size, tile.level());
        if held_items <= first {
            return Ok(());
        }
        let tree_level = u32::from(tile.level()) * TILE_HEIGHT;
        let count = (held_items - first).min(hashes.len() as u64);
        let indexes: Vec<u64> = (first..first + count)
            .map(|node| stored_hash_index(tree_level as u8, node))
            .collect();
        let known = held.read_hashes(&indexes)?;
        for (offset, (served, known)) in hashes.iter().zip(&known).enumerate() {
            if served != known {
                return Err(TileVerifyError::HeldMismatch {
                    tile: tile.path(),
                    tree_level,
                    node: first + offset as u64,
                    held_size: self.held_size,
                    served: hex::encode(served),
                    held: hex::encode(known),
                });
            }
        }
        Ok(())
    }

    /// The hash at stored-hash `index`, from a tile that covers it.
    fn read_from_tiles(&self, index: u64) -> Option<Hash> {
        let (leaf, level) = merkle::stored_hash_leaf(index);
        let node = leaf >> level;
        let tile_level = u32::from(level) / TILE_HEIGHT;
        let below = u32::from(level) % TILE_HEIGHT;
        let first = node << below;
        let width = u64::from(TILE_WIDTH_FULL);
        let hashes = self.tiles.get(&(tile_level as u8, first / width))?;
        let start = (first % width) as usize;
        let run = hashes.get(start..start + (1 << below))?;
        Some(subtree_hash(run))
    }
}

impl HashReader for TileHashes<'_> {
    /// Reads each hash from the tiles, or else from the earlier tree's
    /// stored hashes when that tree has it.
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, MerkleError> {
        let mut found: Vec<Option<Hash>> =
            indexes.iter().map(|&i| self.read_from_tiles(i)).collect();
        let missing: Vec<u64> = indexes
            .iter()
            .zip(&found)
            .filter(|(_, hash)| hash.is_none())
            .map(|(&index, _)| index)
            .collect();
        if !missing.is_empty() {
            let held_count = stored_hash_count(self.held_size);
            let (Some(held), true) = (self.held, missing.iter().all(|&i| i < held_count)) else {
                let absent = missing
                    .iter()
                    .find(|&&i| self.held.is_none() || i >= held_count)
                    .copied()
                    .unwrap_or(missing[0]);
                return Err(MerkleError::MissingHash(absent));
            };
            let mut read = held.read_hashes(&missing)?.into_iter();
            for slot in found.iter_mut().filter(|hash| hash.is_none()) {
                *slot = read.next();
            }
        }
        found
            .into_iter()
            .zip(indexes)
            .map(|(hash, &index)| hash.ok_or(MerkleError::MissingHash(index)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{leaf_hash, Frontier, MemoryHashes};
    use crate::tile::encoding::{decode_hash_tile, encode_hash_tile};
    use crate::tile::new_hash_tiles;

    /// The tree of 70,000 leaves the specification's example describes.
    fn tree_70000() -> &'static (MemoryHashes, Hash) {
        static TREE: std::sync::OnceLock<(MemoryHashes, Hash)> = std::sync::OnceLock::new();
        TREE.get_or_init(|| tree(70_000))
    }

    /// A tree of `size` leaves `"leaf <i>"`, with its stored hashes.
    fn tree(size: u64) -> (MemoryHashes, Hash) {
        let mut frontier = Frontier::new();
        let mut stored = Vec::new();
        for i in 0..size {
            frontier.append(leaf_hash(format!("leaf {i}").as_bytes()), &mut stored);
        }
        (
            MemoryHashes(stored.into_iter().map(|(_, h)| h).collect()),
            frontier.root(),
        )
    }

    /// The tiles a server holding `hashes` serves for `tile`.
    fn serve(hashes: &MemoryHashes, tile: &Tile) -> Vec<Hash> {
        let data = encode_hash_tile(&hashes.read_hashes(&tile.stored_hash_indexes()).unwrap());
        decode_hash_tile(tile, &data).unwrap()
    }

    #[test]
    fn tiles_rebuild_the_root_and_serve_proofs_for_every_size() {
        for size in [1, 2, 255, 256, 257, 511, 600, 65_537] {
            let (hashes, root) = tree(size);
            let mut tiles = TileHashes::new(size);
            for tile in new_hash_tiles(0, size) {
                tiles.insert(tile, serve(&hashes, &tile)).unwrap();
            }
            tiles.verify(&root).unwrap();
            for index in [0, size / 2, size - 1] {
                assert_eq!(
                    merkle::prove_inclusion(index, size, &tiles),
                    merkle::prove_inclusion(index, size, &hashes),
                );
                assert_eq!(
                    tiles.leaf_hash(index),
                    Some(hashes.0[stored_hash_index(0, index) as usize])
                );
            }
        }
    }

    #[test]
    fn a_tampered_tile_is_caught_by_the_root_or_its_parent() {
        let size = 70_000;
        let (hashes, root) = tree_70000();
        let all = new_hash_tiles(0, size);
        let served: Vec<Vec<Hash>> = all.iter().map(|tile| serve(hashes, tile)).collect();
        for victim in [0usize, 100, 273, 274, 275, 276] {
            let mut tiles = TileHashes::new(size);
            for (i, tile) in all.iter().enumerate() {
                let mut served = served[i].clone();
                if i == victim {
                    served[0][0] ^= 1;
                }
                tiles.insert(*tile, served).unwrap();
            }
            assert!(tiles.verify(root).is_err(), "tile {} tampered", all[victim]);
        }
    }

    #[test]
    fn a_partial_tile_off_the_right_edge_is_refused() {
        let (hashes, root) = tree(600);
        let mut tiles = TileHashes::new(600);
        for tile in new_hash_tiles(0, 600) {
            tiles.insert(tile, serve(&hashes, &tile)).unwrap();
        }
        let narrow = Tile::hashes(0, 2, 10);
        tiles.insert(narrow, serve(&hashes, &narrow)).unwrap();
        assert!(matches!(
            tiles.verify(&root),
            Err(TileVerifyError::NotRightEdge { .. })
        ));
        assert!(tiles.insert(Tile::hashes(0, 3, 1), vec![[0; 32]]).is_err());
    }

    #[test]
    fn growing_from_a_held_tree_needs_only_new_tiles_and_catches_a_rewrite() {
        let (held, _) = tree(600);
        let (hashes, root) = tree(800);
        let mut tiles = TileHashes::over_held(800, &held, 600);
        for tile in new_hash_tiles(600, 800) {
            tiles.insert(tile, serve(&hashes, &tile)).unwrap();
        }
        tiles.verify(&root).unwrap();

        // A log that rewrote leaf 550 serves tiles consistent with its own
        // root, but not with what the client held.
        let mut frontier = Frontier::new();
        let mut stored = Vec::new();
        for i in 0..800u64 {
            let leaf = if i == 550 {
                "rewritten".to_string()
            } else {
                format!("leaf {i}")
            };
            frontier.append(leaf_hash(leaf.as_bytes()), &mut stored);
        }
        let forked = MemoryHashes(stored.into_iter().map(|(_, h)| h).collect());
        let mut tiles = TileHashes::over_held(800, &held, 600);
        for tile in new_hash_tiles(600, 800) {
            tiles.insert(tile, serve(&forked, &tile)).unwrap();
        }
        assert!(matches!(
            tiles.verify(&frontier.root()),
            Err(TileVerifyError::HeldMismatch { node: 550, .. })
        ));
    }
}
