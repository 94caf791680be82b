//! The tile module against an independent implementation of C2SP
//! tlog-tiles: Cloudflare's `tlog_tiles` crate (a port of Go's
//! `golang.org/x/mod/sumdb/tlog`). Its paths carry the tile height
//! (`tile/8/...`) and name entry bundles `data`, as Go's sumdb does; the C2SP
//! path is the same path without the height, with `entries`.

use ledger::merkle::{self, Frontier, Hash, HashReader, MemoryHashes};
use ledger::tile::encoding::encode_hash_tile;
use ledger::tile::verify::TileHashes;
use ledger::tile::{new_hash_tiles, Tile, TileKind};
use std::cell::RefCell;
use std::collections::HashMap;

/// Their hashes, stored in their order (which should be ours).
struct TheirStore(Vec<tlog_tiles::Hash>);

impl tlog_tiles::HashReader for TheirStore {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<tlog_tiles::Hash>, tlog_tiles::Error> {
        indexes
            .iter()
            .map(|&i| {
                self.0
                    .get(i as usize)
                    .copied()
                    .ok_or(tlog_tiles::Error::IndexesNotInTree)
            })
            .collect()
    }
}

fn leaf(i: u64) -> Vec<u8> {
    format!("{{\"seq\":{i}}}").into_bytes()
}

/// The same tree built by both implementations, from the same leaves.
fn both_trees(size: u64) -> (MemoryHashes, Hash, TheirStore) {
    let mut frontier = Frontier::new();
    let mut ours = Vec::new();
    let mut theirs = TheirStore(Vec::new());
    for i in 0..size {
        frontier.append(merkle::leaf_hash(&leaf(i)), &mut ours);
        let new = tlog_tiles::stored_hashes(i, &leaf(i), &theirs).unwrap();
        theirs.0.extend(new);
    }
    let ours = MemoryHashes(ours.into_iter().map(|(_, h)| h).collect());
    (ours, frontier.root(), theirs)
}

fn their_tile(tile: &Tile) -> tlog_tiles::Tile {
    let (level, data) = match tile.kind {
        TileKind::Hashes { level } => (level, false),
        TileKind::Entries => (0, true),
    };
    tlog_tiles::Tile::new(8, level, tile.index, u32::from(tile.width), data)
}

/// Their path for a tile, in C2SP form.
fn their_c2sp_path(tile: &Tile) -> String {
    their_tile(tile)
        .path()
        .replacen("tile/8/", "tile/", 1)
        .replacen("tile/data/", "tile/entries/", 1)
}

#[test]
fn paths_match_the_independent_implementation() {
    let indexes = [
        0,
        1,
        999,
        1000,
        1001,
        123_456,
        1_234_067,
        999_999_999,
        u64::MAX / 256,
    ];
    for index in indexes {
        for width in [1, 17, 255, 256] {
            for tile in [
                Tile::hashes(0, index, width),
                Tile::hashes(3, index, width),
                Tile::entries(index, width),
            ] {
                let theirs = their_c2sp_path(&tile);
                assert_eq!(tile.path(), theirs);
                assert_eq!(Tile::parse_path(&theirs), Ok(tile));
                let back = tlog_tiles::Tile::from_path(&their_tile(&tile).path()).unwrap();
                assert_eq!(back, their_tile(&tile));
            }
        }
    }
}

#[test]
fn hash_tiles_match_the_independent_implementation() {
    for size in [1, 255, 256, 257, 70_000] {
        let (ours, _, theirs) = both_trees(size);
        for tile in new_hash_tiles(0, size) {
            let our_data =
                encode_hash_tile(&ours.read_hashes(&tile.stored_hash_indexes()).unwrap());
            let their_data = their_tile(&tile).read_data(&theirs).unwrap();
            assert_eq!(our_data, their_data, "{tile} of a tree of {size}");
        }
    }
}

/// Serves our tiles to their client.
struct OurTiles {
    tiles: HashMap<(u8, u64, u32), Vec<u8>>,
    reads: RefCell<usize>,
}

impl tlog_tiles::TileReader for OurTiles {
    fn height(&self) -> u8 {
        8
    }
    fn read_tiles(&self, tiles: &[tlog_tiles::Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        *self.reads.borrow_mut() += tiles.len();
        tiles
            .iter()
            .map(|t| {
                self.tiles
                    .get(&(t.level(), t.level_index(), t.width()))
                    .cloned()
                    .ok_or(tlog_tiles::Error::InvalidTile)
            })
            .collect()
    }
    fn save_tiles(&self, _: &[tlog_tiles::Tile], _: &[Vec<u8>]) {}
}

#[test]
fn their_client_rebuilds_our_root_from_our_tiles_and_ours_rebuilds_theirs() {
    let size = 70_000;
    let (ours, root, theirs) = both_trees(size);
    let their_root = tlog_tiles::tree_hash(size, &theirs).unwrap();
    assert_eq!(their_root.0, root);

    let mut served = OurTiles {
        tiles: HashMap::new(),
        reads: RefCell::new(0),
    };
    let mut client = TileHashes::new(size);
    for tile in new_hash_tiles(0, size) {
        let hashes = ours.read_hashes(&tile.stored_hash_indexes()).unwrap();
        let TileKind::Hashes { level } = tile.kind else {
            unreachable!()
        };
        served.tiles.insert(
            (level, tile.index, u32::from(tile.width)),
            encode_hash_tile(&hashes),
        );
        // Our client reads their tiles.
        let their_data = their_tile(&tile).read_data(&theirs).unwrap();
        let their_hashes = their_data
            .chunks(32)
            .map(|c| c.try_into().unwrap())
            .collect();
        client.insert(tile, their_hashes).unwrap();
    }
    client.verify(&their_root.0).unwrap();

    let reader = tlog_tiles::TileHashReader::new(size, their_root, &served);
    assert_eq!(tlog_tiles::tree_hash(size, &reader).unwrap(), their_root);
    for index in [0, 12_345, size - 1] {
        let proof = tlog_tiles::prove_record(size, index, &reader).unwrap();
        let leaf_hash = tlog_tiles::record_hash(&leaf(index));
        tlog_tiles::check_record(&proof, size, their_root, index, leaf_hash).unwrap();
        let our_proof = merkle::prove_inclusion(index, size, &client).unwrap();
        merkle::verify_inclusion(index, size, &leaf_hash.0, &our_proof, &root).unwrap();
    }
    assert!(*served.reads.borrow() > 0);
}
