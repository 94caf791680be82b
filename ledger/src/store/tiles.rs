//! Hash tiles and entry bundles (C2SP tlog-tiles, see [`crate::tile`])
//! read from any [`EventStore`], through the trait, so every backend serves
//! the same bytes from the same code.
//!
//! A level-0 tile is one range read: the leaf hashes of 256 consecutive
//! leaves lie among the ~511 stored hashes those leaves appended. A tile of
//! a higher level is one batched read of its 256 scattered stored hashes.
//! An entry bundle is one range read of leaves.

use crate::merkle::{stored_hash_index, Hash};
use crate::store::{EventStore, StoreError};
use crate::tile::encoding::{encode_entry_bundle, encode_hash_tile, TileEncodingError};
use crate::tile::{Tile, TileKind};

/// Why a tile could not be read.
#[derive(Debug, thiserror::Error)]
pub enum TileReadError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The log has a leaf longer than a bundle carries (appended before
    /// leaves were limited to 65,535 bytes).
    #[error(transparent)]
    Encoding(#[from] TileEncodingError),
    #[error("{tile} is not a {wanted}")]
    WrongKind { tile: String, wanted: &'static str },
}

/// The bytes of hash tile `tile`. The tile must be within the log: a store
/// lacking any of its hashes refuses the read.
pub async fn read_hash_tile(store: &dyn EventStore, tile: &Tile) -> Result<Vec<u8>, TileReadError> {
    let TileKind::Hashes { level } = tile.kind else {
        return Err(TileReadError::WrongKind {
            tile: tile.path(),
            wanted: "hash tile",
        });
    };
    let indexes = tile.stored_hash_indexes();
    let (Some(&first), Some(&last)) = (indexes.first(), indexes.last()) else {
        return Err(missing(store, tile).await);
    };
    let hashes = if level == 0 {
        // Leaf hashes in stored-hash order: every other one, with the
        // subtree hashes each leaf completes in between.
        let range = store.read_stored_hash_range(first, last + 1).await?;
        let mut wanted = indexes.iter().peekable();
        let hashes: Vec<Hash> = range
            .into_iter()
            .filter(|(index, _)| wanted.next_if_eq(&index).is_some())
            .map(|(_, hash)| hash)
            .collect();
        if hashes.len() != indexes.len() {
            return Err(missing(store, tile).await);
        }
        hashes
    } else {
        store.read_stored_hashes(indexes).await?
    };
    debug_assert_eq!(
        tile.stored_hash_indexes().first(),
        Some(&stored_hash_index(
            (level as u32 * 8) as u8,
            tile.index * 256
        ))
    );
    Ok(encode_hash_tile(&hashes))
}

/// The bytes of entry bundle `tile`: its leaves, each behind its 16-bit
/// length. The bundle must be within the log.
pub async fn read_entry_bundle(
    store: &dyn EventStore,
    tile: &Tile,
) -> Result<Vec<u8>, TileReadError> {
    if tile.kind != TileKind::Entries {
        return Err(TileReadError::WrongKind {
            tile: tile.path(),
            wanted: "entry bundle",
        });
    }
    let Some(first) = tile.first_item() else {
        return Err(missing(store, tile).await);
    };
    let leaves = store.read_leaves(first, usize::from(tile.width)).await?;
    if leaves.len() != usize::from(tile.width) {
        return Err(missing(store, tile).await);
    }
    Ok(encode_entry_bundle(
        first,
        leaves.iter().map(Vec::as_slice),
    )?)
}

/// The refusal of a tile the log does not hold (yet).
async fn missing(store: &dyn EventStore, tile: &Tile) -> TileReadError {
    match store.size().await {
        Ok(size) => TileReadError::Store(StoreError::OutOfRange {
            what: tile.path(),
            size,
        }),
        Err(error) => error.into(),
    }
}
