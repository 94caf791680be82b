//! The tables' rows as the store's types: events, checkpoints and the
//! durable size read and written by the writer, the reads and the copy.
//! Rows only; which connection runs a statement is the caller's business.

use crate::merkle::{self, Hash};
use crate::store::{SignedCheckpoint, StoreError, StoredEvent};
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Row};
use uuid::Uuid;

pub(super) fn hash_from(bytes: Vec<u8>, what: &str) -> Result<Hash, StoreError> {
    bytes.try_into().map_err(|bytes: Vec<u8>| {
        StoreError::Corrupt(format!("{what} is {} bytes, not 32", bytes.len()))
    })
}

pub(super) fn to_i64(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange {
        what: format!("{what} {value}"),
        size: i64::MAX as u64,
    })
}

pub(super) const EVENT_COLUMNS: &str = "seq, id, stream, version, type, leaf";

/// The log's durable size, as a subquery: no read of events goes past it
/// (`migrations/0003_durable_size.sql`).
macro_rules! durable_size {
    () => {
        "(SELECT coalesce(max(size), 0) FROM log_durable)"
    };
}
pub(super) use durable_size;

/// Publishes the log's size as this node sees it, as the node's row of
/// `log_durable`. Run in a durable transaction only: its commit flushes the
/// WAL up to its own commit record, so every event the statement could see
/// is durable once it commits, and only then does the row become visible.
pub(super) const PUBLISH_DURABLE_SIZE: &str =
    "INSERT INTO log_durable (node, size) SELECT $1, size FROM log_head
     ON CONFLICT (node) DO UPDATE SET size = greatest(log_durable.size, excluded.size)";

pub(super) fn event_row(row: &Row) -> Result<StoredEvent, StoreError> {
    let seq: i64 = row.try_get(0)?;
    let version: i64 = row.try_get(3)?;
    let leaf: Vec<u8> = row.try_get(5)?;
    Ok(StoredEvent {
        seq: seq as u64,
        id: row.try_get(1)?,
        stream: row.try_get(2)?,
        version: version as u64,
        event_type: row.try_get(4)?,
        leaf_hash: merkle::leaf_hash(&leaf),
        leaf,
    })
}

pub(super) fn checkpoint_row(row: &Row) -> Result<SignedCheckpoint, StoreError> {
    let size: i64 = row.try_get(0)?;
    Ok(SignedCheckpoint {
        size: size as u64,
        root: hash_from(row.try_get(1)?, "a checkpoint root")?,
        note: row.try_get(2)?,
    })
}

pub(super) async fn latest_checkpoint(
    client: &impl GenericClient,
) -> Result<Option<SignedCheckpoint>, StoreError> {
    client
        .query_opt(
            "SELECT size, root, note FROM checkpoints ORDER BY size DESC LIMIT 1",
            &[],
        )
        .await?
        .as_ref()
        .map(checkpoint_row)
        .transpose()
}

/// A group of events as the column arrays of one multi-row insert, each
/// with the Merkle hashes its append stored (`events.hashes`, migration
/// `0004_event_hashes`).
pub(super) struct EventRows<'a> {
    pub(super) seqs: Vec<i64>,
    pub(super) ids: Vec<Uuid>,
    pub(super) streams: Vec<&'a str>,
    pub(super) versions: Vec<i64>,
    pub(super) types: Vec<&'a str>,
    pub(super) leaves: Vec<&'a [u8]>,
    pub(super) hashes: Vec<Vec<u8>>,
}

/// The hashes the append of leaf `seq` stored (`1 + trailing_ones(seq)`,
/// from `stored_hash_count(seq)` on), concatenated, taken from the front of
/// `stored`; `None` if `stored` does not hold exactly those next.
pub(super) fn stored_by<'a>(
    seq: u64,
    stored: &mut impl Iterator<Item = &'a (u64, Hash)>,
) -> Option<Vec<u8>> {
    let first = merkle::stored_hash_count(seq);
    let count = 1 + u64::from(seq.trailing_ones());
    let mut hashes = Vec::with_capacity(32 * count as usize);
    for index in first..first + count {
        let (stored_index, hash) = stored.next()?;
        if *stored_index != index {
            return None;
        }
        hashes.extend_from_slice(hash);
    }
    Some(hashes)
}

/// The statement that inserts [`EventRows`].
pub(super) const INSERT_EVENTS: &str = "INSERT INTO events (seq, id, stream, version, type, leaf, hashes)
     SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::bigint[], $5::text[], $6::bytea[], $7::bytea[])";

impl<'a> EventRows<'a> {
    /// `events` (consecutive seqs) and `stored`, the hashes their appends
    /// stored, in order (what [`Frontier::append`](crate::merkle::Frontier::append) produced for them).
    pub(super) fn new(
        events: &'a [StoredEvent],
        stored: &[(u64, Hash)],
    ) -> Result<EventRows<'a>, StoreError> {
        let mut rows = EventRows {
            seqs: Vec::with_capacity(events.len()),
            ids: Vec::with_capacity(events.len()),
            streams: Vec::with_capacity(events.len()),
            versions: Vec::with_capacity(events.len()),
            types: Vec::with_capacity(events.len()),
            leaves: Vec::with_capacity(events.len()),
            hashes: Vec::with_capacity(events.len()),
        };
        let mut stored = stored.iter();
        for event in events {
            rows.seqs.push(to_i64(event.seq, "seq")?);
            rows.ids.push(event.id);
            rows.streams.push(&event.stream);
            rows.versions.push(to_i64(event.version, "version")?);
            rows.types.push(&event.event_type);
            rows.leaves.push(&event.leaf);
            let hashes = stored_by(event.seq, &mut stored).ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "event {}: the hashes planned for it are not those its append stores",
                    event.seq
                ))
            })?;
            rows.hashes.push(hashes);
        }
        if stored.next().is_some() {
            return Err(StoreError::Corrupt(
                "hashes planned past the group's last event".into(),
            ));
        }
        Ok(rows)
    }

    /// Parameters of [`INSERT_EVENTS`].
    pub(super) fn params(&self) -> [&(dyn ToSql + Sync); 7] {
        [
            &self.seqs,
            &self.ids,
            &self.streams,
            &self.versions,
            &self.types,
            &self.leaves,
            &self.hashes,
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::Frontier;

    /// Each event's row takes exactly the hashes its append stored, in
    /// order, and a plan that does not line up is refused.
    #[test]
    fn each_event_takes_the_hashes_its_append_stored() {
        let mut frontier = Frontier::new();
        let mut stored = Vec::new();
        for seq in 0..8u64 {
            frontier.append(merkle::leaf_hash(&seq.to_be_bytes()), &mut stored);
        }
        let mut hashes = stored.iter();
        let taken: Vec<usize> = (0..8)
            .map(|seq| stored_by(seq, &mut hashes).unwrap().len() / 32)
            .collect();
        // Leaf 3 completes subtrees of 2 and 4 leaves, leaf 7 of 2, 4 and 8.
        assert_eq!(taken, [1, 2, 1, 3, 1, 2, 1, 4]);
        assert!(hashes.next().is_none());
        assert_eq!(stored.len(), merkle::stored_hash_count(8) as usize);
        // Starting one hash late, nothing lines up.
        let mut late = stored[1..].iter();
        assert_eq!(stored_by(0, &mut late), None);
    }
}
