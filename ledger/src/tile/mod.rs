//! C2SP tlog-tiles (<https://c2sp.org/tlog-tiles>): the log's Merkle tree
//! and entries as static resources, as pure functions.
//!
//! What it does: names tiles and entry bundles and parses their paths
//! (strictly: only the one canonical spelling of each resource is accepted),
//! says which stored hashes make a hash tile ([`Tile::stored_hash_indexes`],
//! in the [`crate::merkle::stored_hash_index`] order the stores keep),
//! encodes and decodes tiles and bundles ([`encoding`]), and, for a client,
//! checks tiles against a checkpoint and rebuilds the tree from them
//! ([`verify`]).
//!
//! What it does not do: HTTP, reading a store (`crate::store::tiles`),
//! signatures (`crate::checkpoint`), or choosing what to download (the
//! monitor's job).
//!
//! A tile at level `L` holds the hashes of tree level `8L`: hash `i` of
//! tile `N` is the Merkle tree hash of leaves
//! `[(256N + i) * 256^L, (256N + i + 1) * 256^L)`. A full tile holds 256; the
//! one at the right edge of a tree of `size` leaves is partial, of width
//! `(size / 256^L) mod 256`, and is named with a `.p/<W>` suffix.

pub mod encoding;
pub mod verify;

use crate::merkle::{stored_hash_index, TREE_SIZE_MAX};
use std::fmt;

/// Tree levels per tile level: a tile is a subtree 8 levels high.
pub const TILE_HEIGHT: u32 = 8;
/// Hashes in a full tile, entries in a full bundle.
pub const TILE_WIDTH_FULL: u16 = 1 << TILE_HEIGHT;
/// The highest tile level a path may name (the specification's bound).
pub const TILE_LEVEL_MAX: u8 = 63;
/// Characters in the longest tile path this module accepts; a longer one
/// is refused before it is split.
const TILE_PATH_BYTES_MAX: usize = 64;

/// Which resource a tile is: hashes of one tile level, or leaf entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TileKind {
    /// `tile/<L>/...`: 32-byte hashes of tree level `8L`.
    Hashes { level: u8 },
    /// `tile/entries/...`: the leaves themselves, each behind its length.
    Entries,
}

/// One tile or entry bundle: `width` consecutive items from item
/// `256 * index` of its level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tile {
    pub kind: TileKind,
    pub index: u64,
    /// 1 to 256; 256 is a full tile.
    pub width: u16,
}

/// Why a tile path was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path:?} is not a tlog-tiles path: {reason}; expected tile/<L>/<N>[.p/<W>] or tile/entries/<N>[.p/<W>], L from 0 to 63 and W from 1 to 255 without leading zeros, N in 3-digit groups (x001/x234/067)")]
pub struct TilePathError {
    pub path: String,
    pub reason: &'static str,
}

impl Tile {
    /// A hash tile. Panics on a width of 0 or over 256, or a level over 63.
    pub fn hashes(level: u8, index: u64, width: u16) -> Tile {
        assert!(level <= TILE_LEVEL_MAX, "tile level {level} is over 63");
        assert!((1..=TILE_WIDTH_FULL).contains(&width), "tile width {width}");
        Tile {
            kind: TileKind::Hashes { level },
            index,
            width,
        }
    }

    /// An entry bundle. Panics on a width of 0 or over 256.
    pub fn entries(index: u64, width: u16) -> Tile {
        assert!(
            (1..=TILE_WIDTH_FULL).contains(&width),
            "bundle width {width}"
        );
        Tile {
            kind: TileKind::Entries,
            index,
            width,
        }
    }

    /// True for a tile of 256 items: immutable once the tree has it.
    pub fn is_full(&self) -> bool {
        self.width == TILE_WIDTH_FULL
    }

    /// The tile level; entry bundles sit beside level 0.
    pub fn level(&self) -> u8 {
        match self.kind {
            TileKind::Hashes { level } => level,
            TileKind::Entries => 0,
        }
    }

    /// The first item of the tile: a node index at tree level `8L`, or for
    /// a bundle the first leaf's seq. `None` past any tree.
    pub fn first_item(&self) -> Option<u64> {
        self.index.checked_mul(u64::from(TILE_WIDTH_FULL))
    }

    /// True when the tree of `size` leaves holds every item of this tile.
    pub fn is_within(&self, size: u64) -> bool {
        self.first_item()
            .and_then(|first| first.checked_add(u64::from(self.width)))
            .is_some_and(|end| end <= items_at_level(size, self.level()))
    }

    /// The [`stored_hash_index`]es of a hash tile's hashes, in tile order:
    /// what a store reads to build it. Empty for an entry bundle, and for a
    /// tile past [`TREE_SIZE_MAX`].
    pub fn stored_hash_indexes(&self) -> Vec<u64> {
        let TileKind::Hashes { level } = self.kind else {
            return Vec::new();
        };
        if !self.is_within(TREE_SIZE_MAX) {
            return Vec::new();
        }
        let first = self.index * u64::from(TILE_WIDTH_FULL);
        let tree_level = (u32::from(level) * TILE_HEIGHT) as u8;
        (first..first + u64::from(self.width))
            .map(|node| stored_hash_index(tree_level, node))
            .collect()
    }

    /// The path below the log's prefix, e.g. `tile/0/x001/234.p/5` or
    /// `tile/entries/067`.
    pub fn path(&self) -> String {
        let mut groups = vec![format!("{:03}", self.index % 1000)];
        let mut rest = self.index / 1000;
        while rest > 0 {
            groups.push(format!("x{:03}", rest % 1000));
            rest /= 1000;
        }
        groups.reverse();
        let level = match self.kind {
            TileKind::Hashes { level } => level.to_string(),
            TileKind::Entries => "entries".to_string(),
        };
        let mut path = format!("tile/{level}/{}", groups.join("/"));
        if !self.is_full() {
            path.push_str(&format!(".p/{}", self.width));
        }
        path
    }

    /// Parses a path below the log's prefix (`tile/...`). Only the
    /// canonical spelling is accepted, so that each resource has one name
    /// (and one cache entry): no leading zeros in a level or width, every N
    /// group three digits, `x` on all but the last, no `.p/256`.
    pub fn parse_path(path: &str) -> Result<Tile, TilePathError> {
        let refuse = |reason| TilePathError {
            path: path.chars().take(TILE_PATH_BYTES_MAX * 2).collect(),
            reason,
        };
        if path.len() > TILE_PATH_BYTES_MAX {
            return Err(refuse("it is too long"));
        }
        let rest = path
            .strip_prefix("tile/")
            .ok_or_else(|| refuse("it does not start with tile/"))?;
        let (level, rest) = rest
            .split_once('/')
            .ok_or_else(|| refuse("it has no tile index"))?;
        let kind = if level == "entries" {
            TileKind::Entries
        } else {
            let level = parse_decimal(level).ok_or_else(|| refuse("the level is not a number"))?;
            match u8::try_from(level) {
                Ok(level) if level <= TILE_LEVEL_MAX => TileKind::Hashes { level },
                _ => return Err(refuse("the level is over 63")),
            }
        };
        let (index_path, width) = match rest.split_once(".p/") {
            Some((index_path, width)) => {
                let width =
                    parse_decimal(width).ok_or_else(|| refuse("the width is not a number"))?;
                match u16::try_from(width) {
                    Ok(width) if (1..TILE_WIDTH_FULL).contains(&width) => (index_path, width),
                    _ => return Err(refuse("a partial tile's width must be 1 to 255")),
                }
            }
            None => (rest, TILE_WIDTH_FULL),
        };
        let groups: Vec<&str> = index_path.split('/').collect();
        let mut index: u64 = 0;
        for (position, group) in groups.iter().enumerate() {
            let last = position + 1 == groups.len();
            let digits = match (last, group.strip_prefix('x')) {
                (false, Some(digits)) => digits,
                (true, None) => group,
                (false, None) => {
                    return Err(refuse("every index group but the last starts with x"))
                }
                (true, Some(_)) => return Err(refuse("the last index group has no x")),
            };
            if digits.len() != 3 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(refuse("each index group has exactly three digits"));
            }
            let value: u64 = digits.parse().expect("three ASCII digits");
            index = index
                .checked_mul(1000)
                .and_then(|index| index.checked_add(value))
                .ok_or_else(|| refuse("the index is too large"))?;
        }
        if groups.len() > 1 && groups[0] == "x000" {
            return Err(refuse("the index has a leading group of zeros"));
        }
        Ok(Tile { kind, index, width })
    }
}

impl fmt::Display for Tile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.path())
    }
}

/// A decimal with no sign and no leading zeros ("0" itself is fine).
fn parse_decimal(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.len() <= 20
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

/// How many items a tree of `size` leaves has at tile level `level`: the
/// complete subtrees of height `8 * level` (for level 0, the leaves).
pub fn items_at_level(size: u64, level: u8) -> u64 {
    size.checked_shr(u32::from(level) * TILE_HEIGHT)
        .unwrap_or(0)
}

/// The tiles a tree of `size` leaves is made of at `level`, from the one
/// holding item `from_item` on: full tiles, then the partial right edge if
/// the level's item count is not a multiple of 256.
pub fn tiles_at_level(size: u64, level: u8, from_item: u64, kind: TileKind) -> Vec<Tile> {
    let items = items_at_level(size, level);
    let width_full = u64::from(TILE_WIDTH_FULL);
    let mut tiles = Vec::new();
    let mut index = from_item / width_full;
    while index * width_full < items {
        let width = (items - index * width_full).min(width_full) as u16;
        tiles.push(Tile { kind, index, width });
        index += 1;
    }
    tiles
}

/// The hash tiles a client that holds the tree of `old_size` leaves needs
/// for the tree of `new_size`: at each level, the tiles holding items the
/// old tree lacks (Go's `tlog.NewTiles`, for C2SP tiles). Lowest level first.
pub fn new_hash_tiles(old_size: u64, new_size: u64) -> Vec<Tile> {
    let mut tiles = Vec::new();
    for level in 0..=TILE_LEVEL_MAX {
        let (old, new) = (
            items_at_level(old_size, level),
            items_at_level(new_size, level),
        );
        if new == 0 {
            break;
        }
        if new > old {
            tiles.extend(tiles_at_level(
                new_size,
                level,
                old,
                TileKind::Hashes { level },
            ));
        }
    }
    tiles
}

/// The entry bundles holding leaves `old_size..new_size`.
pub fn new_entry_bundles(old_size: u64, new_size: u64) -> Vec<Tile> {
    if new_size <= old_size {
        return Vec::new();
    }
    tiles_at_level(new_size, 0, old_size, TileKind::Entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Go's `TestTilePath` cases, less the height Go's paths carry: the same
    /// tiles under their C2SP names.
    #[test]
    fn paths_follow_the_specification() {
        let cases = [
            ("tile/0/001", Tile::hashes(0, 1, 256)),
            ("tile/0/001.p/5", Tile::hashes(0, 1, 5)),
            ("tile/5/x123/x456/078", Tile::hashes(5, 123_456_078, 256)),
            ("tile/5/x123/x456/078.p/2", Tile::hashes(5, 123_456_078, 2)),
            ("tile/0/x003/x057/500", Tile::hashes(0, 3_057_500, 256)),
            ("tile/entries/x003/x057/500", Tile::entries(3_057_500, 256)),
            ("tile/entries/000.p/1", Tile::entries(0, 1)),
            ("tile/63/x001/x234/067", Tile::hashes(63, 1_234_067, 256)),
        ];
        for (path, tile) in cases {
            assert_eq!(tile.path(), path);
            assert_eq!(Tile::parse_path(path), Ok(tile), "{path}");
        }
        let largest = Tile::entries(u64::MAX, 255);
        assert_eq!(Tile::parse_path(&largest.path()), Ok(largest));
    }

    #[test]
    fn non_canonical_paths_are_refused() {
        for path in [
            "tile/3/5/123/456/078",
            "tile/3/-1/123/456/078",
            "tile/5/123/456/078",
            "tile/05/001",
            "tile/64/001",
            "tile/0/1",
            "tile/0/0001",
            "tile/0/x001",
            "tile/0/001/002",
            "tile/0/x000/001",
            "tile/0/001.p/0",
            "tile/0/001.p/256",
            "tile/0/001.p/05",
            "tile/0/001.p/",
            "tile/0/001.p/5/6",
            "tile/0/x001/x002/x003/x004/x005/x006/x007/x008/x009/x010/011",
            "tile/0/x018/x446/x744/x073/x709/x551/616",
            "tile/data/000",
            "tile/entries",
            "tile/0",
            "tiles/0/000",
            "/tile/0/000",
            "tile/0/000/",
            "tile//000",
            "tile/0/+01",
        ] {
            assert!(Tile::parse_path(path).is_err(), "{path} was accepted");
        }
    }

    #[test]
    fn a_tree_of_70000_leaves_is_the_tiles_the_specification_lists() {
        // "273 full level 0 tiles, one partial level 0 tile of width 112,
        // one full level 1 tile, one partial level 1 tile of width 17, and
        // one partial level 2 tile of width 1."
        let tiles = new_hash_tiles(0, 70_000);
        let level = |l| -> Vec<u16> {
            tiles
                .iter()
                .filter(|t| t.level() == l)
                .map(|t| t.width)
                .collect()
        };
        assert_eq!(level(0).len(), 274);
        assert!(level(0)[..273].iter().all(|&w| w == 256));
        assert_eq!(level(0)[273], 112);
        assert_eq!(level(1), vec![256, 17]);
        assert_eq!(level(2), vec![1]);
        assert_eq!(tiles.len(), 277);
        assert_eq!(
            new_hash_tiles(0, 256).len(),
            2,
            "a full tile and a level-1 tile of width 1"
        );
    }

    /// Go's `TestNewTilesForSize` counts, for tiles of height 8 rather
    /// than 10, recomputed with its algorithm: growing a tree needs the
    /// tiles holding new items only.
    #[test]
    fn growing_a_tree_needs_only_the_tiles_with_new_items() {
        assert!(new_hash_tiles(1, 1).is_empty());
        assert_eq!(new_hash_tiles(100, 101), vec![Tile::hashes(0, 0, 101)]);
        assert_eq!(
            new_hash_tiles(255, 257),
            vec![
                Tile::hashes(0, 0, 256),
                Tile::hashes(0, 1, 1),
                Tile::hashes(1, 0, 1)
            ]
        );
        assert_eq!(new_hash_tiles(256, 300), vec![Tile::hashes(0, 1, 44)]);
        assert_eq!(
            new_entry_bundles(600, 800),
            vec![Tile::entries(2, 256), Tile::entries(3, 32)]
        );
    }

    #[test]
    fn a_tile_is_within_a_tree_when_the_tree_has_all_its_items() {
        let tile = Tile::hashes(1, 0, 3);
        assert!(!tile.is_within(767));
        assert!(tile.is_within(768));
        assert!(!Tile::hashes(63, 0, 1).is_within(u64::MAX));
        assert!(!Tile::entries(u64::MAX, 256).is_within(u64::MAX));
        assert!(Tile::entries(0, 256).is_within(256));
    }

    #[test]
    fn a_hash_tile_reads_the_stored_hashes_of_its_tree_level() {
        assert_eq!(
            Tile::hashes(0, 0, 4).stored_hash_indexes(),
            vec![0, 1, 3, 4]
        );
        assert_eq!(
            Tile::hashes(1, 2, 1).stored_hash_indexes(),
            vec![stored_hash_index(8, 512)]
        );
        assert!(Tile::entries(0, 4).stored_hash_indexes().is_empty());
        assert!(Tile::hashes(8, 0, 1).stored_hash_indexes().is_empty());
    }
}
