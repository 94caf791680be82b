//! Reading the log's rows: the queries and row decoders that the store's
//! reads, its writer and its cosignature records share.

use crate::merkle::{self, Hash, HashReader, MerkleError};
use crate::store::sequencer;
use crate::store::{
    check_position, PageBytes, SignedCheckpoint, StoreError, StoredEvent, POSITION_MAX,
};
use rusqlite::{params, Connection, OptionalExtension};
use time::OffsetDateTime;
use uuid::Uuid;

pub(super) fn tree_size(conn: &Connection) -> Result<u64, StoreError> {
    let size: i64 = conn
        .prepare_cached("SELECT COALESCE(MAX(seq) + 1, 0) FROM events")?
        .query_row([], |row| row.get(0))?;
    Ok(size as u64)
}

pub(super) fn last_event_time(conn: &Connection) -> Result<Option<OffsetDateTime>, StoreError> {
    let leaf: Option<Vec<u8>> = conn
        .query_row(
            "SELECT leaf FROM events ORDER BY seq DESC LIMIT 1",
            [],
            |row| row.get(0),
        )
        .optional()?;
    leaf.map(|leaf| sequencer::leaf_time(&leaf)).transpose()
}

pub(super) fn latest_checkpoint(conn: &Connection) -> Result<Option<SignedCheckpoint>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT size, root, note FROM checkpoints ORDER BY size DESC LIMIT 1",
            [],
            checkpoint_row,
        )
        .optional()?)
}

pub(super) fn checkpoint_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<SignedCheckpoint> {
    let size: i64 = row.get(0)?;
    Ok(SignedCheckpoint {
        size: size as u64,
        root: hash_column(row, 1)?,
        note: row.get(2)?,
    })
}

pub(super) fn hash_column(row: &rusqlite::Row<'_>, index: usize) -> rusqlite::Result<Hash> {
    let bytes: Vec<u8> = row.get(index)?;
    bytes.try_into().map_err(|bytes: Vec<u8>| {
        rusqlite::Error::FromSqlConversionFailure(
            index,
            rusqlite::types::Type::Blob,
            format!("a hash must be 32 bytes, found {}", bytes.len()).into(),
        )
    })
}

/// A seq or version to read from, as SQLite's signed integer, once
/// [`check_position`] has refused one that would wrap around.
pub(super) fn position(conn: &Connection, value: u64, what: &str) -> Result<i64, StoreError> {
    if value > POSITION_MAX {
        check_position(what, value, tree_size(conn)?)?;
    }
    Ok(value as i64)
}

pub(super) const EVENT_COLUMNS: &str = "seq, id, stream, version, type, leaf";

pub(super) fn event_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEvent> {
    let seq: i64 = row.get(0)?;
    let id: Vec<u8> = row.get(1)?;
    let version: i64 = row.get(3)?;
    let leaf: Vec<u8> = row.get(5)?;
    Ok(StoredEvent {
        seq: seq as u64,
        id: Uuid::from_slice(&id).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(1, rusqlite::types::Type::Blob, Box::new(e))
        })?,
        stream: row.get(2)?,
        version: version as u64,
        event_type: row.get(4)?,
        leaf_hash: merkle::leaf_hash(&leaf),
        leaf,
    })
}

/// The events of `rows` (of [`EVENT_COLUMNS`]) that fit a page of
/// `leaf_bytes_max` leaf bytes (see [`PageBytes`]). Rows are stepped one at
/// a time, so a leaf past the budget is never copied out of SQLite.
pub(super) fn page_of(
    mut rows: rusqlite::Rows<'_>,
    leaf_bytes_max: usize,
) -> Result<Vec<StoredEvent>, StoreError> {
    let mut page = PageBytes::new(leaf_bytes_max);
    let mut events = Vec::new();
    while let Some(row) = rows.next()? {
        let leaf_bytes = row
            .get_ref(5)?
            .as_blob()
            .map_err(rusqlite::Error::from)?
            .len();
        if !page.take(leaf_bytes) {
            break;
        }
        events.push(event_row(row)?);
    }
    Ok(events)
}

/// Reads stored Merkle hashes through one connection.
pub(super) struct SqliteHashes<'a>(pub(super) &'a Connection);

impl HashReader for SqliteHashes<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, MerkleError> {
        let mut statement = self
            .0
            .prepare_cached("SELECT hash FROM merkle_hashes WHERE idx = ?1")
            .map_err(|e| MerkleError::Read(e.to_string()))?;
        indexes
            .iter()
            .map(|&index| {
                let bytes: Option<Vec<u8>> = statement
                    .query_row([index as i64], |row| row.get(0))
                    .optional()
                    .map_err(|e| MerkleError::Read(e.to_string()))?;
                let bytes = bytes.ok_or(MerkleError::MissingHash(index))?;
                bytes
                    .try_into()
                    .map_err(|_| MerkleError::Read(format!("stored hash {index} is not 32 bytes")))
            })
            .collect()
    }
}

/// The root of the tree of `size` leaves: a signed checkpoint's root when
/// one of that size is stored (one row), else computed from stored hashes.
pub(super) fn root_at(
    conn: &Connection,
    size: u64,
    hashes: &impl HashReader,
) -> Result<Hash, StoreError> {
    let mut statement = conn.prepare_cached("SELECT root FROM checkpoints WHERE size = ?1")?;
    let stored = statement
        .query_row([size as i64], |row| hash_column(row, 0))
        .optional()?;
    match stored {
        Some(root) => Ok(root),
        None => Ok(merkle::tree_hash(size, hashes)?),
    }
}

pub(super) fn check_size(conn: &Connection, what: &str, size: u64) -> Result<(), StoreError> {
    let tree_size = tree_size(conn)?;
    if size > tree_size {
        return Err(StoreError::OutOfRange {
            what: format!("{what} {size}"),
            size: tree_size,
        });
    }
    Ok(())
}

/// The stored hashes with indexes in `start..end`, `(index, hash)` in order.
pub(super) fn stored_hash_range(
    conn: &Connection,
    start: u64,
    end: u64,
) -> Result<Vec<(u64, Hash)>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT idx, hash FROM merkle_hashes WHERE idx >= ?1 AND idx < ?2 ORDER BY idx",
    )?;
    let rows = statement.query_map(params![start as i64, end as i64], |row| {
        let index: i64 = row.get(0)?;
        Ok((index as u64, hash_column(row, 1)?))
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}
