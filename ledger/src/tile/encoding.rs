//! The bytes of tiles and entry bundles (C2SP tlog-tiles): a hash tile is
//! its hashes concatenated, 32 bytes each; an entry bundle is its leaves,
//! each behind its length as a big-endian uint16. Decoding checks the
//! count against the tile's width and refuses trailing bytes, so a
//! truncated or padded download is caught here.

use super::Tile;
use crate::merkle::{node_hash, Hash};

/// Why tile or bundle bytes could not be made or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileEncodingError {
    #[error("{tile} holds {got} bytes; a tile of width {width} holds {want}")]
    HashTileLength {
        tile: String,
        width: u16,
        got: usize,
        want: usize,
    },
    #[error("{tile} ends inside entry {entry}: its length says {length} bytes, {left} are left")]
    TruncatedEntry {
        tile: String,
        entry: usize,
        length: usize,
        left: usize,
    },
    #[error("{tile} holds {got} entries followed by {trailing} more bytes; a bundle of width {width} holds exactly {width} entries")]
    EntryCount {
        tile: String,
        width: u16,
        got: usize,
        trailing: usize,
    },
    #[error("leaf {seq} is {length} bytes; an entry bundle carries leaves of at most 65535 bytes")]
    LeafTooLong { seq: u64, length: usize },
}

/// A hash tile's bytes.
pub fn encode_hash_tile(hashes: &[Hash]) -> Vec<u8> {
    hashes.concat()
}

/// The hashes in a hash tile's bytes, exactly `tile.width` of them.
pub fn decode_hash_tile(tile: &Tile, data: &[u8]) -> Result<Vec<Hash>, TileEncodingError> {
    let want = usize::from(tile.width) * 32;
    if data.len() != want {
        return Err(TileEncodingError::HashTileLength {
            tile: tile.path(),
            width: tile.width,
            got: data.len(),
            want,
        });
    }
    Ok(data
        .chunks_exact(32)
        .map(|chunk| chunk.try_into().expect("32-byte chunks"))
        .collect())
}

/// An entry bundle's bytes from its leaves, which start at seq `first_seq`
/// (named in the error for a leaf too long to carry).
pub fn encode_entry_bundle<'a>(
    first_seq: u64,
    leaves: impl IntoIterator<Item = &'a [u8]>,
) -> Result<Vec<u8>, TileEncodingError> {
    let mut bundle = Vec::new();
    for (offset, leaf) in leaves.into_iter().enumerate() {
        let length = u16::try_from(leaf.len()).map_err(|_| TileEncodingError::LeafTooLong {
            seq: first_seq + offset as u64,
            length: leaf.len(),
        })?;
        bundle.extend_from_slice(&length.to_be_bytes());
        bundle.extend_from_slice(leaf);
    }
    Ok(bundle)
}

/// The leaves in an entry bundle's bytes, exactly `tile.width` of them.
pub fn decode_entry_bundle<'a>(
    tile: &Tile,
    data: &'a [u8],
) -> Result<Vec<&'a [u8]>, TileEncodingError> {
    let mut leaves = Vec::with_capacity(usize::from(tile.width));
    let mut rest = data;
    while leaves.len() < usize::from(tile.width) && !rest.is_empty() {
        let Some((length, tail)) = rest.split_first_chunk::<2>() else {
            return Err(TileEncodingError::TruncatedEntry {
                tile: tile.path(),
                entry: leaves.len(),
                length: 2,
                left: rest.len(),
            });
        };
        let length = usize::from(u16::from_be_bytes(*length));
        if tail.len() < length {
            return Err(TileEncodingError::TruncatedEntry {
                tile: tile.path(),
                entry: leaves.len(),
                length,
                left: tail.len(),
            });
        }
        let (leaf, tail) = tail.split_at(length);
        leaves.push(leaf);
        rest = tail;
    }
    if leaves.len() != usize::from(tile.width) || !rest.is_empty() {
        return Err(TileEncodingError::EntryCount {
            tile: tile.path(),
            width: tile.width,
            got: leaves.len(),
            trailing: rest.len(),
        });
    }
    Ok(leaves)
}

/// The Merkle tree hash of a power-of-two run of hashes of one level: a
/// full tile's hash in the tile above it, or a subtree inside a tile.
pub fn subtree_hash(hashes: &[Hash]) -> Hash {
    debug_assert!(hashes.len().is_power_of_two(), "{} hashes", hashes.len());
    match hashes {
        [single] => *single,
        _ => {
            let (left, right) = hashes.split_at(hashes.len() / 2);
            node_hash(&subtree_hash(left), &subtree_hash(right))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_bundles_round_trip_with_big_endian_lengths() {
        let leaves: [&[u8]; 3] = [b"", b"ab", &[7u8; 300]];
        let bundle = encode_entry_bundle(0, leaves).unwrap();
        assert_eq!(&bundle[..4], &[0, 0, 0, 2]);
        assert_eq!(&bundle[6..8], &[0x01, 0x2c]);
        let tile = Tile::entries(0, 3);
        assert_eq!(decode_entry_bundle(&tile, &bundle).unwrap(), leaves);
    }

    #[test]
    fn a_leaf_of_65536_bytes_cannot_be_bundled() {
        let long = vec![0u8; 65_536];
        assert_eq!(
            encode_entry_bundle(9, [&[1u8][..], &long]),
            Err(TileEncodingError::LeafTooLong {
                seq: 10,
                length: 65_536
            })
        );
        assert!(encode_entry_bundle(0, [&long[..65_535]]).is_ok());
    }

    #[test]
    fn truncated_or_padded_bundles_are_refused() {
        let bundle = encode_entry_bundle(0, [&b"abc"[..], b"de"]).unwrap();
        let tile = Tile::entries(0, 2);
        assert!(matches!(
            decode_entry_bundle(&tile, &bundle[..bundle.len() - 1]),
            Err(TileEncodingError::TruncatedEntry { entry: 1, .. })
        ));
        assert!(matches!(
            decode_entry_bundle(&tile, &bundle[..6]),
            Err(TileEncodingError::TruncatedEntry { entry: 1, .. })
        ));
        let padded = [bundle.as_slice(), &[0, 0]].concat();
        assert!(matches!(
            decode_entry_bundle(&tile, &padded),
            Err(TileEncodingError::EntryCount { trailing: 2, .. })
        ));
        assert!(matches!(
            decode_entry_bundle(&Tile::entries(0, 3), &bundle),
            Err(TileEncodingError::EntryCount { got: 2, .. })
        ));
    }

    #[test]
    fn hash_tiles_must_hold_exactly_their_width() {
        let hashes = [[1u8; 32], [2u8; 32]];
        let data = encode_hash_tile(&hashes);
        assert_eq!(
            decode_hash_tile(&Tile::hashes(0, 0, 2), &data).unwrap(),
            hashes
        );
        assert!(decode_hash_tile(&Tile::hashes(0, 0, 3), &data).is_err());
        assert!(decode_hash_tile(&Tile::hashes(0, 0, 1), &data).is_err());
    }
}
