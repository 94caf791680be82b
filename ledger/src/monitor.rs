//! A monitor of a tlog-tiles log (C2SP tlog-tiles): it keeps a verified
//! mirror of the log ([`crate::store::sqlite::mirror`]) and brings it up to
//! each new checkpoint the log serves, downloading only the tiles and entry
//! bundles with items the mirror lacks.
//!
//! A round: the checkpoint's signature is checked with the log's key (and,
//! under a witness policy, its witnesses' cosignatures for a quorum); the
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
use crate::envelope::LeafHeader;
use crate::merkle::{Hash, HashReader};
use crate::store::sqlite::mirror::{MirrorError, SqliteMirror};
use crate::store::{SignedCheckpoint, StoreError, StoredEvent};
use crate::tile::encoding::{decode_entry_bundle, decode_hash_tile, TileEncodingError};
use crate::tile::verify::{TileHashes, TileVerifyError};
use crate::tile::{new_entry_bundles, new_hash_tiles, Tile, TILE_WIDTH_FULL};
use crate::witness_policy::WitnessPolicy;
use std::path::Path;
use std::sync::mpsc::SyncSender;

/// Level-0 tiles (and their bundles) fetched and added per chunk: 16,384
/// leaves, one mirror transaction.
pub const CHUNK_TILES: usize = 64;

/// Where a monitor reads a log: its checkpoint and its tiles. Shared by
/// the thread that fetches and verifies and the one that stores.
pub trait TileSource: Sync {
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
    /// The log's tiles or bundles do not match its own checkpoint, or hold
    /// a leaf that is not an event of its place in the log.
    #[error("the log's tiles do not match its checkpoint of size {size}: {detail}\n--- served checkpoint ---\n{note}")]
    BadTiles {
        size: u64,
        note: String,
        detail: String,
    },
    /// The checkpoint lacks the cosignatures the witness policy requires.
    #[error("the log's checkpoint is not witnessed: {report}\n--- served checkpoint ---\n{note}")]
    NotWitnessed { report: String, note: String },
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

/// The two checkpoints a round is about, for its errors.
struct Checkpoints {
    held_size: u64,
    held_note: String,
    served: SignedCheckpoint,
}

impl Checkpoints {
    fn inconsistent(&self, detail: String) -> MonitorError {
        MonitorError::Inconsistent {
            held_size: self.held_size,
            held_note: self.held_note.clone(),
            served_size: self.served.size,
            served_note: self.served.note.clone(),
            detail,
        }
    }

    fn bad_tiles(&self, detail: String) -> MonitorError {
        MonitorError::BadTiles {
            size: self.served.size,
            note: self.served.note.clone(),
            detail,
        }
    }

    /// A tile that rewrites what the mirror holds is an inconsistency;
    /// any other failure, tiles that do not match their own checkpoint.
    fn tile_error(&self, error: TileVerifyError) -> MonitorError {
        match error {
            TileVerifyError::HeldMismatch { .. } => self.inconsistent(error.to_string()),
            other => self.bad_tiles(other.to_string()),
        }
    }

    fn mirror_error(&self, error: MirrorError) -> MonitorError {
        match error {
            MirrorError::Store(error) => MonitorError::Mirror(error),
            MirrorError::RootMismatch { .. } => self.inconsistent(error.to_string()),
            MirrorError::BadLeaf { .. } => self.bad_tiles(error.to_string()),
        }
    }
}

/// Verified events of one chunk, from the thread that fetches and
/// verifies to the one that stores.
type Chunk = Vec<StoredEvent>;

/// A monitor over its mirror.
pub struct Monitor {
    mirror: SqliteMirror,
    verifier: NoteVerifier,
    /// Witnesses whose quorum must have cosigned a checkpoint before it is
    /// trusted, if any.
    policy: Option<WitnessPolicy>,
}

impl Monitor {
    /// Opens (creating on first use) the mirror in `data_dir` of the log
    /// whose checkpoints `verifier` checks.
    pub fn open(data_dir: &Path, verifier: NoteVerifier) -> Result<Monitor, StoreError> {
        let mirror = SqliteMirror::open(data_dir, verifier.name(), &verifier.verifier_key())?;
        Ok(Monitor {
            mirror,
            verifier,
            policy: None,
        })
    }

    /// Trusts a checkpoint only once a quorum of `policy`'s witnesses has
    /// cosigned it (C2SP tlog-cosignature), besides the log's signature.
    pub fn with_witness_policy(mut self, policy: WitnessPolicy) -> Monitor {
        self.policy = Some(policy);
        self
    }

    /// Events the mirror holds.
    pub fn size(&self) -> u64 {
        self.mirror.size()
    }

    /// Brings the mirror up to the checkpoint `source` serves. Each chunk
    /// of events goes to `on_events` once verified and stored;
    /// `progress(done, total)` follows them. One thread fetches and
    /// verifies the next chunk while this one stores the last.
    pub fn round(
        &mut self,
        source: &dyn TileSource,
        on_events: &mut dyn FnMut(&[StoredEvent]),
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
        if let Some(policy) = &self.policy {
            let report = policy
                .check(&note)
                .map_err(|e| MonitorError::BadCheckpoint {
                    reason: e.to_string(),
                    note: note.clone(),
                })?;
            if !report.is_met() {
                return Err(MonitorError::NotWitnessed {
                    report: report.to_string(),
                    note,
                });
            }
        }
        let held = self.mirror.latest_checkpoint()?;
        let checkpoints = Checkpoints {
            held_size: self.mirror.size(),
            held_note: held.as_ref().map_or_else(String::new, |c| c.note.clone()),
            served: SignedCheckpoint {
                size: signed.size,
                root: signed.root,
                note,
            },
        };
        let (held_size, served) = (checkpoints.held_size, &checkpoints.served);
        if served.size <= held_size {
            let root = self.mirror.root_at(served.size)?;
            if root != served.root {
                return Err(checkpoints.inconsistent(format!(
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
                    self.mirror
                        .finish_round(served)
                        .map_err(|e| checkpoints.mirror_error(e))?;
                    served.clone()
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
        let (sender, receiver) = std::sync::mpsc::sync_channel::<Chunk>(2);
        let mirror = &mut self.mirror;
        let (stored, fetched) = std::thread::scope(|scope| {
            let checkpoints = &checkpoints;
            let producer =
                scope.spawn(move || fetch_and_verify(source, checkpoints, &held_hashes, &sender));
            let mut stored = Ok(());
            for chunk in receiver {
                if let Err(error) = mirror.add_events(&chunk) {
                    stored = Err(checkpoints.mirror_error(error));
                    break;
                }
                on_events(&chunk);
                progress(mirror.size(), checkpoints.served.size);
            }
            (
                stored,
                producer.join().expect("the fetching thread does not panic"),
            )
        });
        let outcome = stored
            .and(fetched)
            .and_then(|(tiles_fetched, bundles_fetched)| {
                self.mirror
                    .finish_round(&checkpoints.served)
                    .map_err(|e| checkpoints.mirror_error(e))?;
                Ok((tiles_fetched, bundles_fetched))
            });
        let (tiles_fetched, bundles_fetched) = match outcome {
            Ok(fetched) => fetched,
            Err(error) => {
                self.mirror.drop_unfinished_round()?;
                return Err(error);
            }
        };
        Ok(Round {
            from: held_size,
            to: checkpoints.served.size,
            checkpoint: checkpoints.served,
            tiles_fetched,
            bundles_fetched,
        })
    }
}

/// Fetches and verifies what the mirror lacks of the served tree and sends
/// the new events a chunk at a time; returns the tiles and bundles
/// fetched. Stops early, without error, when the receiver is gone.
fn fetch_and_verify(
    source: &dyn TileSource,
    checkpoints: &Checkpoints,
    held_hashes: &dyn HashReader,
    sender: &SyncSender<Chunk>,
) -> Result<(usize, usize), MonitorError> {
    let (held_size, served) = (checkpoints.held_size, &checkpoints.served);
    let mut tiles = TileHashes::over_held(served.size, held_hashes, held_size);
    let encoding_error = |error: TileEncodingError| checkpoints.bad_tiles(error.to_string());

    // Everything above the bottom level, and the bottom's right edge:
    // what the root is rebuilt from.
    let (bottom, upper): (Vec<Tile>, Vec<Tile>) = new_hash_tiles(held_size, served.size)
        .into_iter()
        .partition(|tile| tile.level() == 0);
    let mut tiles_fetched = 0;
    for tile in upper.iter().chain(bottom.last().filter(|t| !t.is_full())) {
        let hashes = decode_hash_tile(tile, &source.tile(tile)?).map_err(encoding_error)?;
        tiles_fetched += 1;
        tiles
            .insert(*tile, hashes)
            .map_err(|e| checkpoints.tile_error(e))?;
    }
    tiles
        .verify(&served.root)
        .map_err(|e| checkpoints.tile_error(e))?;

    // The bottom level, a chunk at a time.
    let bundles = new_entry_bundles(held_size, served.size);
    debug_assert_eq!(bundles.len(), bottom.len());
    let mut bundles_fetched = 0;
    for (chunk_tiles, chunk_bundles) in bottom.chunks(CHUNK_TILES).zip(bundles.chunks(CHUNK_TILES))
    {
        let mut events = Vec::with_capacity(chunk_bundles.len() * usize::from(TILE_WIDTH_FULL));
        for (tile, bundle) in chunk_tiles.iter().zip(chunk_bundles) {
            let first = tile.index * u64::from(TILE_WIDTH_FULL);
            let hashes: Vec<Hash> = if tile.is_full() {
                let hashes = decode_hash_tile(tile, &source.tile(tile)?).map_err(encoding_error)?;
                tiles_fetched += 1;
                tiles
                    .check_full_tile(tile, &hashes)
                    .map_err(|e| checkpoints.tile_error(e))?;
                hashes
            } else {
                (first..first + u64::from(tile.width))
                    .map(|seq| tiles.leaf_hash(seq).expect("the right edge is held"))
                    .collect()
            };
            let data = source.tile(bundle)?;
            bundles_fetched += 1;
            let leaves = decode_entry_bundle(bundle, &data).map_err(encoding_error)?;
            for (offset, (leaf, hash)) in leaves.iter().zip(&hashes).enumerate() {
                let seq = first + offset as u64;
                let leaf_hash = crate::merkle::leaf_hash(leaf);
                if leaf_hash != *hash {
                    return Err(checkpoints.bad_tiles(format!(
                        "leaf {seq} in {bundle} does not hash to its hash in {tile}"
                    )));
                }
                if seq >= held_size {
                    events.push(decode_event(seq, leaf, leaf_hash).map_err(|problem| {
                        checkpoints
                            .bad_tiles(format!("leaf {seq} is not an event of the log: {problem}"))
                    })?);
                }
            }
        }
        if sender.send(events).is_err() {
            break;
        }
    }
    Ok((tiles_fetched, bundles_fetched))
}

/// The stored form of the event at `seq` from its leaf.
fn decode_event(seq: u64, leaf: &[u8], leaf_hash: Hash) -> Result<StoredEvent, String> {
    let header = LeafHeader::from_leaf(leaf).map_err(|e| e.to_string())?;
    if header.seq != seq {
        return Err(format!("it says seq {}", header.seq));
    }
    Ok(StoredEvent {
        seq,
        stream: header.stream.into_owned(),
        version: header.version,
        id: header.id,
        event_type: header.event_type.into_owned(),
        leaf: leaf.to_vec(),
        leaf_hash,
    })
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
