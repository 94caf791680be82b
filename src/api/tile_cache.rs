//! Full tiles and entry bundles kept in memory by the server.
//!
//! A full tile is immutable: once the tree has its 256 items they never
//! change, so a cached copy cannot go stale and needs no invalidation.
//! Partial tiles are not kept (their width grows with the log). The cache
//! holds at most [`TILE_CACHE_BYTES_MAX`] bytes, evicting the oldest entry
//! first; an entry over an eighth of that is served but not kept.

use axum::body::Bytes;
use ledger::tile::Tile;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

/// The most bytes of tiles kept: 4,096 full hash tiles, or a few hundred
/// entry bundles of typical events.
pub const TILE_CACHE_BYTES_MAX: usize = 32 << 20;

/// Full tiles by name, oldest first for eviction.
#[derive(Default)]
pub struct TileCache {
    inner: Mutex<Entries>,
}

#[derive(Default)]
struct Entries {
    tiles: HashMap<Tile, Bytes>,
    order: VecDeque<Tile>,
    bytes: usize,
}

impl TileCache {
    /// The cached bytes of `tile`, if kept.
    pub fn get(&self, tile: &Tile) -> Option<Bytes> {
        self.inner
            .lock()
            .expect("tile cache lock")
            .tiles
            .get(tile)
            .cloned()
    }

    /// Keeps the bytes of a full `tile`; partial tiles are refused (not kept).
    pub fn insert(&self, tile: Tile, data: Bytes) {
        if !tile.is_full() || data.len() > TILE_CACHE_BYTES_MAX / 8 {
            return;
        }
        let mut entries = self.inner.lock().expect("tile cache lock");
        if entries.tiles.contains_key(&tile) {
            return;
        }
        while entries.bytes + data.len() > TILE_CACHE_BYTES_MAX {
            let Some(oldest) = entries.order.pop_front() else {
                break;
            };
            if let Some(evicted) = entries.tiles.remove(&oldest) {
                entries.bytes -= evicted.len();
            }
        }
        entries.bytes += data.len();
        entries.order.push_back(tile);
        entries.tiles.insert(tile, data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_tiles_are_kept_partial_ones_never() {
        let cache = TileCache::default();
        cache.insert(Tile::hashes(0, 0, 256), Bytes::from(vec![1; 8192]));
        cache.insert(Tile::hashes(0, 1, 17), Bytes::from(vec![2; 544]));
        assert_eq!(cache.get(&Tile::hashes(0, 0, 256)).unwrap().len(), 8192);
        assert!(cache.get(&Tile::hashes(0, 1, 17)).is_none());
    }

    #[test]
    fn the_oldest_tiles_go_first_and_the_bytes_stay_bounded() {
        let cache = TileCache::default();
        let tile_bytes = TILE_CACHE_BYTES_MAX / 8;
        for index in 0..10 {
            cache.insert(Tile::entries(index, 256), Bytes::from(vec![0; tile_bytes]));
        }
        assert!(cache.get(&Tile::entries(0, 256)).is_none());
        assert!(cache.get(&Tile::entries(1, 256)).is_none());
        assert!(cache.get(&Tile::entries(2, 256)).is_some());
        assert!(cache.get(&Tile::entries(9, 256)).is_some());
        assert!(cache.inner.lock().unwrap().bytes <= TILE_CACHE_BYTES_MAX);
        cache.insert(Tile::entries(10, 256), Bytes::from(vec![0; tile_bytes + 1]));
        assert!(
            cache.get(&Tile::entries(10, 256)).is_none(),
            "too large to keep"
        );
    }
}
