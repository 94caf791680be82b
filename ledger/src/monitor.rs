//! A monitor of a tlog-tiles log (C2SP tlog-tiles): it keeps a verified
//! mirror of the log ([`crate::store::sqlite::mirror`]) and brings it up to
//! each new checkpoint the log serves, downloading only the tiles and entry
//! bundles with items the mirror lacks.
//!
//! A round: the checkpoint's signature is checked with the log's key; the
//! hash tiles above level 0 and the right edge of level 0 are fetched and
//! authenticated against the signed root (and every hash the mirror
//! already had is compared with the one served: a log that rewrote history
//! is caught here); then, a chunk at a time, each level-0 tile is
//! authenticated by its hash in the tile above, each leaf of its entry
//! bundle by its hash in the tile, and the leaves are added to the mirror.
//! The round ends when the mirror's own tree of old and new leaves has the
//! signed root, and the checkpoint is stored. A checkpoint no larger than
//! the mirror's must have the root the mirror has at its size.
//!
//! What it does not do: HTTP (a [`TileSource`] fetches), or decide what a
//! failure means for a caller (every inconsistency is an error naming both
//! checkpoints, with both signed notes).

use crate::checkpoint::NoteVerifier;
use crate::merkle::Hash;
use crate::store::sqlite::mirror::{MirrorError, SqliteMirror};
use crate::store::{SignedCheckpoint, StoreError};
use crate::tile::encoding::{decode_entry_bundle, decode_hash_tile, TileEncodingError};
use crate::tile::verify::{TileHashes, TileVerifyError};
use crate::tile::{new_entry_bundles, new_hash_tiles, Tile, TILE_WIDTH_FULL};
use std::path::Path;

/// Level-0 tiles (and their bundles) fetched and added per chunk: 16,384
/// leaves, one mirror transaction.
pub const CHUNK_TILES: usize = 64;

/// Where a monitor reads a log: its checkpoint and its tiles.
pub trait TileSource {
    /// The log's checkpoint note, as served.
    fn checkpoint(&self) -> Result<String, SourceError>;
    /// The bytes of `tile` (a hash tile or an entry bundle).
    fn tile(&self, tile: &Tile) -> Result<Vec<u8>, SourceError>;
}

/// A read from the log that failed (it did not answer, or answered an error).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SourceError(pub String);

/// Why a round failed.
#[derive(Debug, thiserror::Error)]
pub enum MonitorError {
    #[error("cannot read the log: {0}")]
    Source(#[from] SourceError),
    /// The served checkpoint's signature does not verify with the key.
    #[error("the log's checkpoint does not verify with its key: {reason}\n--- served checkpoint ---\n{note}")]
    BadCheckpoint { reason: String, note: String },
    /// Two checkpoints of one log that cannot both be true: a fork (a split
    /// view) or rewritten history.
    #[error("the checkpoint of size {served_size} is not consistent with the checkpoint of size {held_size} verified before: {detail}\n--- verified before ---\n{held_note}--- served now ---\n{served_note}")]
    Inconsistent {
        held_size: u64,
        held_note: String,
        served_size: u64,
        served_note: String,
        detail: String,
    },
    /// The log's tiles or bundles do not match its own checkpoint.
    #[error("the log's tiles do not match its checkpoint of size {size}: {detail}\n--- served checkpoint ---\n{note}")]
    BadTiles {
        size: u64,
        note: String,
        detail: String,
    },
    #[error("the mirror failed: {0}")]
    Mirror(#[from] StoreError),
}

/// What a round did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Round {
    /// Events the mirror held before, and holds now.
    pub from: u64,
    pub to: u64,
    /// The newest checkpoint verified (the one served, unless it was older).
    pub checkpoint: SignedCheckpoint,
    /// Hash tiles and entry bundles downloaded.
    pub tiles_fetched: usize,
    pub bundles_fetched: usize,
}

/// A monitor over its mirror.
pub struct Monitor {
    mirror: SqliteMirror,
    verifier: NoteVerifier,
}

impl Monitor {
    /// Opens (creating on first use) the mirror in `data_dir` of the log
    /// whose checkpoints `verifier` checks.
    pub fn open(data_dir: &Path, verifier: NoteVerifier) -> Result<Monitor, StoreError> {
        let mirror = SqliteMirror::open(data_dir, verifier.name(), &verifier.verifier_key())?;
        Ok(Monitor { mirror, verifier })
    }

    /// Events the mirror holds.
    pub fn size(&self) -> u64 {
        self.mirror.size()
    }

    /// Brings the mirror up to the checkpoint `source` serves. The leaves
    /// of each chunk go to `on_leaves(first_seq, leaves)` once authenticated
    /// and added; `progress(done, total)` follows the leaves.
    pub fn round(
        &mut self,
        source: &dyn TileSource,
        on_leaves: &mut dyn FnMut(u64, &[&[u8]]),
        progress: &mut dyn FnMut(u64, u64),
    ) -> Result<Round, MonitorError> {
        let note = source.checkpoint()?;
        let signed =
            self.verifier
                .verify_checkpoint(&note)
                .map_err(|e| MonitorError::BadCheckpoint {
                    reason: e.to_string(),
                    note: note.clone(),
                })?;
        let served = SignedCheckpoint {
            size: signed.size,
            root: signed.root,
            note,
        };
        let held = self.mirror.latest_checkpoint()?;
        let held_size = self.mirror.size();
        let inconsistent = |detail: String| MonitorError::Inconsistent {
            held_size,
            held_note: held.as_ref().map_or_else(String::new, |c| c.note.clone()),
            served_size: served.size,
            served_note: served.note.clone(),
            detail,
        };
        if served.size <= held_size {
            let root = self.mirror.root_at(served.size)?;
            if root != served.root {
                return Err(inconsistent(format!(
                    "the mirror's first {} events hash to {}, the checkpoint says {}",
                    served.size,
                    hex::encode(root),
                    hex::encode(served.root)
                )));
            }
            let checkpoint = match held {
                Some(held) => held,
                None => {
                    // The empty log's first checkpoint.
                    self.finish(&served, &inconsistent)?;
                    served
                }
            };
            return Ok(Round {
                from: held_size,
                to: held_size,
                checkpoint,
                tiles_fetched: 0,
                bundles_fetched: 0,
            });
        }

        let held_hashes = self.mirror.hash_reader()?;
        let mut tiles = TileHashes::over_held(served.size, &held_hashes, held_size);
        let bad_tiles = |detail: String| MonitorError::BadTiles {
            size: served.size,
            note: served.note.clone(),
            detail,
        };
        let verify_error = |error: TileVerifyError| match error {
            TileVerifyError::HeldMismatch { .. } => inconsistent(error.to_string()),
            other => bad_tiles(other.to_string()),
        };
        let encoding_error = |error: TileEncodingError| bad_tiles(error.to_string());

        // Everything above the bottom level, and the bottom's right edge:
        // what the root is rebuilt from.
        let all = new_hash_tiles(held_size, served.size);
        let (bottom, upper): (Vec<Tile>, Vec<Tile>) =
            all.into_iter().partition(|tile| tile.level() == 0);
        let mut tiles_fetched = 0;
        for tile in upper.iter().chain(bottom.last().filter(|t| !t.is_full())) {
            let hashes = decode_hash_tile(tile, &source.tile(tile)?).map_err(encoding_error)?;
            tiles_fetched += 1;
            tiles.insert(*tile, hashes).map_err(verify_error)?;
        }
        tiles.verify(&served.root).map_err(verify_error)?;

        // The bottom level, a chunk at a time.
        let bundles = new_entry_bundles(held_size, served.size);
        debug_assert_eq!(bundles.len(), bottom.len());
        let mut bundles_fetched = 0;
        for chunk in bottom.chunks(CHUNK_TILES).zip(bundles.chunks(CHUNK_TILES)) {
            let (chunk_tiles, chunk_bundles) = chunk;
            let mut data = Vec::with_capacity(chunk_bundles.len());
            let mut leaf_hashes: Vec<Vec<Hash>> = Vec::with_capacity(chunk_tiles.len());
            for tile in chunk_tiles {
                if tile.is_full() {
                    let hashes =
                        decode_hash_tile(tile, &source.tile(tile)?).map_err(encoding_error)?;
                    tiles_fetched += 1;
                    tiles.check_full_tile(tile, &hashes).map_err(verify_error)?;
                    leaf_hashes.push(hashes);
                } else {
                    let first = tile.index * u64::from(TILE_WIDTH_FULL);
                    leaf_hashes.push(
                        (first..first + u64::from(tile.width))
                            .map(|seq| tiles.leaf_hash(seq).expect("the right edge is held"))
                            .collect(),
                    );
                }
            }
            for bundle in chunk_bundles {
                data.push(source.tile(bundle)?);
                bundles_fetched += 1;
            }
            let mut leaves: Vec<&[u8]> = Vec::with_capacity(chunk_bundles.len() * 256);
            for ((bundle, bytes), hashes) in chunk_bundles.iter().zip(&data).zip(&leaf_hashes) {
                let entries = decode_entry_bundle(bundle, bytes).map_err(encoding_error)?;
                let first = bundle.index * u64::from(TILE_WIDTH_FULL);
                for (offset, (leaf, hash)) in entries.iter().zip(hashes).enumerate() {
                    let seq = first + offset as u64;
                    if crate::merkle::leaf_hash(leaf) != *hash {
                        return Err(bad_tiles(format!(
                            "leaf {seq} in {bundle} does not hash to its hash in tile {}",
                            Tile::hashes(0, bundle.index, bundle.width)
                        )));
                    }
                    if seq >= held_size {
                        leaves.push(leaf);
                    }
                }
            }
            let first_seq = self.mirror.size();
            self.mirror.add_leaves(&leaves).map_err(|e| match e {
                MirrorError::Store(e) => MonitorError::Mirror(e),
                other => bad_tiles(other.to_string()),
            })?;
            on_leaves(first_seq, &leaves);
            progress(self.mirror.size(), served.size);
        }
        drop(tiles);
        self.finish(&served, &inconsistent)?;
        Ok(Round {
            from: held_size,
            to: served.size,
            checkpoint: served,
            tiles_fetched,
            bundles_fetched,
        })
    }

    /// Ends the round at `served`, which the mirror's tree must have.
    fn finish(
        &mut self,
        served: &SignedCheckpoint,
        inconsistent: &dyn Fn(String) -> MonitorError,
    ) -> Result<(), MonitorError> {
        self.mirror.finish_round(served).map_err(|e| match e {
            MirrorError::Store(e) => MonitorError::Mirror(e),
            other => inconsistent(other.to_string()),
        })
    }
}

/// A log read in-process, as `ledgerline serve` serves it under `/tlog/`:
/// its latest checkpoint, and tiles read through
/// [`crate::store::tiles`]. For tests and benchmarks of the monitor
/// without HTTP; call it from a thread outside `runtime` (it blocks on it).
pub struct StoreSource {
    pub store: std::sync::Arc<dyn crate::store::EventStore>,
    pub runtime: tokio::runtime::Handle,
}

impl TileSource for StoreSource {
    fn checkpoint(&self) -> Result<String, SourceError> {
        let latest = self
            .runtime
            .block_on(self.store.latest_checkpoint())
            .map_err(|e| SourceError(e.to_string()))?;
        latest
            .map(|c| c.note)
            .ok_or_else(|| SourceError("the log has no checkpoint yet".into()))
    }

    fn tile(&self, tile: &Tile) -> Result<Vec<u8>, SourceError> {
        use crate::store::tiles::{read_entry_bundle, read_hash_tile};
        let store = self.store.as_ref();
        let read = self.runtime.block_on(async {
            match tile.kind {
                crate::tile::TileKind::Hashes { .. } => read_hash_tile(store, tile).await,
                crate::tile::TileKind::Entries => read_entry_bundle(store, tile).await,
            }
        });
        read.map_err(|e| SourceError(format!("{tile}: {e}")))
    }
}
