//! The `EventStore` trait: what every backend offers, and the types it speaks.
//!
//! A backend sequences appends into one gap-free global log (seq = Merkle leaf
//! index), keeps the Merkle tree's complete-subtree hashes, signs checkpoints
//! and serves proofs. Behaviour shared by all backends (envelope building,
//! the Merkle frontier, checkpoint cadence, proofs) lives once in
//! [`crate::store::sequencer`] and [`crate::merkle`]; a backend only persists.
//! [`open`] picks the backend for a location (a data directory or a URL).

pub mod hash_cache;
mod head_cache;
#[cfg(feature = "kurrentdb")]
pub mod kurrentdb;
mod node;
pub mod open;
pub mod payloads;
pub mod postgres;
pub mod proof_cache;
pub mod sequencer;
pub mod sqlite;
pub mod tiles;

use crate::checkpoint::NoteVerifier;
use crate::envelope::{EnvelopeError, LeafHeader, NewEvent};
use crate::merkle::{Hash, MerkleError};
use async_trait::async_trait;
use serde::Serialize;
use uuid::Uuid;

/// The connection-string schemes of a KurrentDB log (those the `kurrentdb`
/// client parses). Known even to a build without the `kurrentdb` feature,
/// so that such a `--store` is told which feature opens it.
pub const KURRENTDB_URL_SCHEMES: [&str; 8] = [
    "esdb",
    "esdb+discover",
    "kurrentdb",
    "kurrentdb+discover",
    "kurrent",
    "kurrent+discover",
    "kdb",
    "kdb+discover",
];

/// True for the URL of a KurrentDB log (see [`KURRENTDB_URL_SCHEMES`]).
pub fn is_kurrentdb_url(url: &str) -> bool {
    url.split_once("://")
        .is_some_and(|(scheme, _)| KURRENTDB_URL_SCHEMES.contains(&scheme))
}

/// The most events one append request may carry.
pub const APPEND_EVENTS_MAX: usize = 10_000;

/// Optimistic concurrency for one stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum ExpectedVersion {
    /// Append whatever the stream holds.
    Any,
    /// The stream must hold exactly this many events, so the first new event
    /// gets this version (0 means "the stream must not exist yet").
    Exact(u64),
}

/// Events to append to one stream, atomically.
#[derive(Debug, Clone)]
pub struct AppendRequest {
    pub stream: String,
    pub expected: ExpectedVersion,
    pub events: Vec<NewEvent>,
}

impl AppendRequest {
    pub fn new(
        stream: impl Into<String>,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Self {
        AppendRequest {
            stream: stream.into(),
            expected,
            events,
        }
    }
}

/// Where one appended event landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Appended {
    pub seq: u64,
    pub version: u64,
    #[serde(with = "crate::merkle::hex_hash")]
    pub leaf_hash: Hash,
}

/// One event as stored: its exact leaf bytes and their hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    pub seq: u64,
    pub stream: String,
    pub version: u64,
    pub id: Uuid,
    pub event_type: String,
    pub leaf: Vec<u8>,
    pub leaf_hash: Hash,
}

impl StoredEvent {
    /// Decodes the envelope from the stored bytes.
    pub fn envelope(&self) -> Result<crate::Envelope, EnvelopeError> {
        crate::Envelope::from_leaf(&self.leaf)
    }

    /// Decodes the envelope fields from the stored bytes, leaving the
    /// payload undecoded.
    pub fn header(&self) -> Result<LeafHeader<'_>, EnvelopeError> {
        LeafHeader::from_leaf(&self.leaf)
    }
}

/// An event's JSON form, one object per event in the CLI's `events` lines
/// and the API's event pages: `{"id", "leaf", "leaf_hash", "seq", "stream",
/// "type", "version"}`, members in that (byte) order, the leaf bytes in
/// standard base64 (RFC 4648 section 4), the leaf hash in lowercase hex.
impl Serialize for StoredEvent {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use base64::Engine;
        use serde::ser::SerializeStruct;
        let leaf = base64::engine::general_purpose::STANDARD.encode(&self.leaf);
        let mut event = serializer.serialize_struct("StoredEvent", 7)?;
        event.serialize_field("id", &self.id)?;
        event.serialize_field("leaf", &leaf)?;
        event.serialize_field("leaf_hash", &hex::encode(self.leaf_hash))?;
        event.serialize_field("seq", &self.seq)?;
        event.serialize_field("stream", &self.stream)?;
        event.serialize_field("type", &self.event_type)?;
        event.serialize_field("version", &self.version)?;
        event.end()
    }
}

/// A checkpoint as kept by the store: the signed note, byte for byte.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub size: u64,
    pub root: Hash,
    /// The full C2SP signed note, exactly as signed.
    pub note: String,
}

/// A witness's cosignature of a stored checkpoint (C2SP `cosignature/v1`),
/// as kept by the store: its signature line verbatim, and what identifies
/// and dates it. At most one is kept per checkpoint and witness key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCosignature {
    /// The size of the cosigned checkpoint.
    pub size: u64,
    /// The witness key's name.
    pub name: String,
    pub key_id: u32,
    /// When the witness cosigned (POSIX seconds).
    pub timestamp: u64,
    /// `— <name> <base64>\n`, exactly as served after the log's signature.
    pub line: String,
}

impl StoredCosignature {
    /// The record of `cosignature` on the checkpoint of `size`.
    pub fn new(size: u64, cosignature: &crate::cosignature::Cosignature) -> StoredCosignature {
        StoredCosignature {
            size,
            name: cosignature.name.clone(),
            key_id: cosignature.key_id,
            timestamp: cosignature.timestamp,
            line: cosignature.line(),
        }
    }
}

/// RFC 6962 inclusion proof of one leaf in a tree of `tree_size`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InclusionProof {
    pub leaf_index: u64,
    pub tree_size: u64,
    #[serde(with = "crate::merkle::hex_hash")]
    pub leaf_hash: Hash,
    #[serde(with = "crate::merkle::hex_hash")]
    pub root_hash: Hash,
    #[serde(with = "crate::merkle::hex_hashes")]
    pub proof: Vec<Hash>,
}

/// RFC 6962 consistency proof between two tree sizes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsistencyProof {
    pub from_size: u64,
    pub to_size: u64,
    #[serde(with = "crate::merkle::hex_hash")]
    pub from_root: Hash,
    #[serde(with = "crate::merkle::hex_hash")]
    pub to_root: Hash,
    #[serde(with = "crate::merkle::hex_hashes")]
    pub proof: Vec<Hash>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    BadEvent(#[from] EnvelopeError),
    #[error("stream {stream:?} holds {actual} events, but the append expected {expected}: re-read the stream and retry")]
    VersionConflict {
        stream: String,
        expected: u64,
        actual: u64,
    },
    #[error("event id {id} was already appended with different content (seq {seq}); use a new id for a new event")]
    IdReused { id: Uuid, seq: u64 },
    #[error("an append carries {count} events; the limit is {APPEND_EVENTS_MAX}")]
    TooManyEvents { count: usize },
    #[error("an append must carry at least one event")]
    EmptyAppend,
    #[error("the log holds {size} events; {what} is out of range")]
    OutOfRange { what: String, size: u64 },
    #[error("no checkpoint of size {0} is stored")]
    NoCheckpoint(u64),
    #[error(transparent)]
    Merkle(#[from] MerkleError),
    #[error("the store is closed")]
    Closed,
    #[error("the store was opened read-only")]
    ReadOnly,
    #[error("no log exists in {0}")]
    NoLog(String),
    /// The log was created for another origin (the name its checkpoints
    /// carry), so this opener's checkpoints would not belong to it.
    #[error("this log's origin is {stored:?}, not {given:?}")]
    OriginMismatch { stored: String, given: String },
    /// The key opening a shared log did not sign its checkpoints.
    #[error("the log's checkpoints are not signed by this node's key {key} ({reason}); every node of a log must sign with the same key")]
    ForeignKey { key: String, reason: String },
    /// A read-only opener found a schema older than its reads need; opening
    /// the log for writing migrates it.
    #[error("this log's schema is at migration {applied}, and reading it needs migration {needed}; open it once for writing to migrate it")]
    SchemaBehind { applied: i32, needed: i32 },
    #[error("storage failed: {0}")]
    Backend(String),
    #[error("stored data is inconsistent: {0}")]
    Corrupt(String),
}

impl StoreError {
    /// True for errors caused by the request rather than the store: the CLI
    /// maps these to exit code 2 and the API to 4xx.
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            StoreError::BadEvent(_)
                | StoreError::VersionConflict { .. }
                | StoreError::IdReused { .. }
                | StoreError::TooManyEvents { .. }
                | StoreError::EmptyAppend
                | StoreError::OutOfRange { .. }
                | StoreError::NoCheckpoint(_)
                | StoreError::NoLog(_)
        )
    }
}

/// The request check every backend makes before an inclusion proof, once
/// `size` is known to be within the log: the leaf must be in that tree.
pub(crate) fn check_inclusion_request(index: u64, size: u64) -> Result<(), StoreError> {
    if index >= size {
        return Err(StoreError::OutOfRange {
            what: format!("leaf {index} in a tree of size {size}"),
            size,
        });
    }
    Ok(())
}

/// The request check every backend makes before a consistency proof, once
/// `to` is known to be within the log: a tree is consistent with a smaller one.
pub(crate) fn check_consistency_request(from: u64, to: u64) -> Result<(), StoreError> {
    if from > to {
        return Err(StoreError::OutOfRange {
            what: format!("a consistency proof from size {from} to the smaller size {to}"),
            size: to,
        });
    }
    Ok(())
}

/// The largest seq or version any log can hold: stores keep them as signed
/// 64-bit integers.
pub const POSITION_MAX: u64 = i64::MAX as u64;

/// Refuses a read from `what` at `value`, past [`POSITION_MAX`], in a log of
/// `size` events: no log holds it, and a store must not wrap it around to
/// read from the start instead.
pub(crate) fn check_position(what: &str, value: u64, size: u64) -> Result<(), StoreError> {
    if value > POSITION_MAX {
        return Err(StoreError::OutOfRange {
            what: format!("{what} {value} (at most 2^63-1)"),
            size,
        });
    }
    Ok(())
}

/// The error for a seq that [`EventStore::read_seqs`] did not find in a log of `size` events.
pub(crate) fn missing_seq(seq: u64, size: u64) -> StoreError {
    StoreError::OutOfRange {
        what: format!("event {seq}"),
        size,
    }
}

/// The leaf bytes a page of events may gather: events are taken while the
/// bytes before them are under the budget, so the event that reaches it is
/// the last, and a page holds at least one event whenever one exists.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PageBytes {
    taken: usize,
    max: usize,
}

impl PageBytes {
    pub(crate) fn new(leaf_bytes_max: usize) -> PageBytes {
        PageBytes {
            taken: 0,
            max: leaf_bytes_max,
        }
    }

    /// Takes a leaf of `leaf_bytes` into the page, if the page has room.
    pub(crate) fn take(&mut self, leaf_bytes: usize) -> bool {
        if self.taken > 0 && self.taken >= self.max {
            return false;
        }
        self.taken = self.taken.saturating_add(leaf_bytes);
        true
    }
}

/// An append-only, verifiable event log.
#[async_trait]
pub trait EventStore: Send + Sync {
    /// Appends each request's events to its stream, all requests or none.
    /// Retrying with the same event ids returns the first result and writes
    /// nothing.
    async fn append_all(
        &self,
        requests: Vec<AppendRequest>,
    ) -> Result<Vec<Vec<Appended>>, StoreError>;

    /// Appends events to one stream atomically.
    async fn append(&self, request: AppendRequest) -> Result<Vec<Appended>, StoreError> {
        let mut results = self.append_all(vec![request]).await?;
        Ok(results.pop().unwrap_or_default())
    }

    /// Number of events in the log (the current tree size).
    async fn size(&self) -> Result<u64, StoreError>;
    /// Events with `seq >= from`, in seq order, at most `limit`.
    async fn read_range(&self, from: u64, limit: usize) -> Result<Vec<StoredEvent>, StoreError>;
    /// Events with `seq >= from`, in seq order, at most `limit`, and no
    /// more once their leaves reach `leaf_bytes_max` bytes in all: the event
    /// that reaches it is the last, so at least one event is returned
    /// whenever one exists. A page's memory is bounded by its bytes, whatever
    /// size its events are.
    async fn read_range_bytes(
        &self,
        from: u64,
        limit: usize,
        leaf_bytes_max: usize,
    ) -> Result<Vec<StoredEvent>, StoreError>;
    /// The stored leaf bytes of the events with `seq >= from`, in seq
    /// order, at most `limit`: all that a fold of the whole log reads. A
    /// backend that hashes each leaf as it reads an event answers this
    /// without hashing: a fold needs none of what the hashes check (`verify`
    /// and the proofs do that).
    async fn read_leaves(&self, from: u64, limit: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        let events = self.read_range(from, limit).await?;
        Ok(events.into_iter().map(|e| e.leaf).collect())
    }
    /// Events of one stream with `version >= from_version`, in order.
    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError>;
    /// Events of one stream with `version >= from_version`, in order, at
    /// most `limit`, and no more once their leaves reach `leaf_bytes_max`
    /// bytes in all, as [`EventStore::read_range_bytes`] bounds a page of
    /// the log.
    async fn read_stream_bytes(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
        leaf_bytes_max: usize,
    ) -> Result<Vec<StoredEvent>, StoreError>;
    /// One event by id.
    async fn read_event(&self, id: Uuid) -> Result<Option<StoredEvent>, StoreError>;
    /// The events at `seqs` (ascending, no repeats), in that order; an
    /// error names the first seq the log does not hold. Answers that cite
    /// scattered events (a lineage cites every usage line of a derivative)
    /// read them in one round trip where the backend can.
    async fn read_seqs(&self, seqs: Vec<u64>) -> Result<Vec<StoredEvent>, StoreError> {
        let mut events = Vec::with_capacity(seqs.len());
        for seq in seqs {
            match self.read_range(seq, 1).await?.pop() {
                Some(event) if event.seq == seq => events.push(event),
                _ => return Err(missing_seq(seq, self.size().await?)),
            }
        }
        Ok(events)
    }

    /// The newest signed checkpoint, if any.
    async fn latest_checkpoint(&self) -> Result<Option<SignedCheckpoint>, StoreError>;
    /// The stored checkpoint of exactly this size.
    async fn checkpoint(&self, size: u64) -> Result<Option<SignedCheckpoint>, StoreError>;
    /// Every stored checkpoint, oldest first.
    async fn checkpoints(&self) -> Result<Vec<SignedCheckpoint>, StoreError>;
    /// The `limit` newest stored checkpoints, newest first. Stores that keep
    /// checkpoints in a table read only those; this default reads them all.
    async fn newest_checkpoints(&self, limit: usize) -> Result<Vec<SignedCheckpoint>, StoreError> {
        let mut all = self.checkpoints().await?;
        all.reverse();
        all.truncate(limit);
        Ok(all)
    }
    /// Signs a checkpoint covering every committed event now, rather than on
    /// the next tick, and returns it.
    async fn checkpoint_now(&self) -> Result<SignedCheckpoint, StoreError>;

    /// Keeps witness cosignatures of stored checkpoints, all or none: one
    /// per checkpoint and witness key (name and key id), the first kept. The
    /// caller verifies them against the witness keys first; the store keeps
    /// what it is given. A cosignature of a size with no stored checkpoint
    /// is refused with [`StoreError::NoCheckpoint`].
    async fn add_cosignatures(
        &self,
        cosignatures: Vec<StoredCosignature>,
    ) -> Result<(), StoreError> {
        let _ = cosignatures;
        Err(StoreError::Backend(
            "this store backend does not keep witness cosignatures".into(),
        ))
    }
    /// The cosignatures kept for the checkpoint of `size`, by witness name
    /// and key id.
    async fn cosignatures(&self, size: u64) -> Result<Vec<StoredCosignature>, StoreError> {
        let _ = size;
        Ok(Vec::new())
    }
    /// The largest checkpoint size cosigned by at least `quorum` of the
    /// witness keys `witnesses` (name, key id), if any: with one key and a
    /// quorum of 1, the latest checkpoint that witness cosigned.
    async fn latest_cosigned_size(
        &self,
        witnesses: Vec<(String, u32)>,
        quorum: usize,
    ) -> Result<Option<u64>, StoreError> {
        let _ = (witnesses, quorum);
        Ok(None)
    }

    /// The verifier of the key this log's checkpoints are signed with.
    fn verifier(&self) -> &NoteVerifier;
    /// That key in the Go note format, `name+hex8+base64(0x01||key)`.
    fn verifier_key(&self) -> &str;
    /// Appends waiting for this process's writer (a metric; 0 when read-only).
    fn queue_depth(&self) -> usize;
    /// Why this process's writer cannot write now: it has stopped, or the
    /// last group commit or checkpoint it attempted failed (the fault stays
    /// until a write succeeds). `None` while it writes, and for a read-only
    /// store, which has no writer.
    fn writer_fault(&self) -> Option<String>;

    /// Inclusion proof of leaf `index` in the tree of `size` leaves.
    async fn prove_inclusion(&self, index: u64, size: u64) -> Result<InclusionProof, StoreError>;
    /// Consistency proof from tree size `from` to tree size `to`.
    async fn prove_consistency(&self, from: u64, to: u64) -> Result<ConsistencyProof, StoreError>;
    /// The stored complete-subtree hashes at these `merkle::stored_hash_index` positions.
    async fn read_stored_hashes(&self, indexes: Vec<u64>) -> Result<Vec<Hash>, StoreError>;
    /// Every stored hash with `start <= index < end`, as (index, hash) in
    /// index order; the audit compares them with what it recomputes.
    async fn read_stored_hash_range(
        &self,
        start: u64,
        end: u64,
    ) -> Result<Vec<(u64, Hash)>, StoreError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The JSON form is compact, its members sorted by name, the leaf in
    /// base64 and its hash in hex: the exact bytes readers of the CLI and
    /// the API parse.
    #[test]
    fn stored_event_serializes_to_its_documented_json() {
        let event = StoredEvent {
            seq: 3,
            stream: "track-1".into(),
            version: 2,
            id: Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef),
            event_type: "TrackRegistered".into(),
            leaf: b"{}".to_vec(),
            leaf_hash: [0xab; 32],
        };
        assert_eq!(
            serde_json::to_string(&event).unwrap(),
            format!(
                r#"{{"id":"01234567-89ab-cdef-0123-456789abcdef","leaf":"e30=","leaf_hash":"{}","seq":3,"stream":"track-1","type":"TrackRegistered","version":2}}"#,
                "ab".repeat(32)
            )
        );
    }
}
