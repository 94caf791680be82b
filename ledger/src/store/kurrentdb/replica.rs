//! A node's in-memory copy of the log, rebuilt by replaying the ledger
//! stream and kept current by reading the records appended since.
//!
//! Every record is checked as it is applied: revisions are consecutive, a
//! batch starts at the log's size, each leaf sits at its seq and continues
//! its stream's version and hash chain, the carried Merkle hashes equal the
//! ones its leaves produce, and a checkpoint signs exactly the tree the
//! records before it describe. A record that fails is corruption and is
//! never served.

use super::record::{BatchRecord, Record};
use crate::merkle::{self, Frontier, Hash, HashReader, MemoryHashes, MerkleError};
use crate::store::sequencer::{leaf_time, SequencerView};
use crate::store::{missing_seq, PageBytes, SignedCheckpoint, StoreError, StoredEvent};
use std::collections::{BTreeMap, HashMap};
use time::OffsetDateTime;
use uuid::Uuid;

/// The log's format in the ledger stream header (the envelope and tree of
/// the other stores' format 1); opening another is refused.
pub const FORMAT_VERSION: &str = "1";

/// The log as the ledger stream's records `0..next_revision` describe it.
#[derive(Debug)]
pub struct Replica {
    origin: String,
    /// The ledger stream revision of the next record to apply.
    next_revision: u64,
    /// Every event, indexed by seq.
    events: Vec<StoredEvent>,
    by_id: HashMap<Uuid, u64>,
    /// Each stream's seqs, indexed by version.
    streams: HashMap<String, Vec<u64>>,
    /// Every stored Merkle hash, indexed by `merkle::stored_hash_index`.
    hashes: MemoryHashes,
    frontier: Frontier,
    checkpoints: BTreeMap<u64, SignedCheckpoint>,
    /// The time in the last event's leaf (the log's clock).
    last_time: OffsetDateTime,
}

impl Replica {
    /// The replica of a log that must carry `origin` in its header.
    pub fn new(origin: &str) -> Replica {
        Replica {
            origin: origin.to_owned(),
            next_revision: 0,
            events: Vec::new(),
            by_id: HashMap::new(),
            streams: HashMap::new(),
            hashes: MemoryHashes::default(),
            frontier: Frontier::new(),
            checkpoints: BTreeMap::new(),
            last_time: OffsetDateTime::UNIX_EPOCH,
        }
    }

    /// The ledger stream revision of the next record; 0 while the stream
    /// has no header, i.e. no log exists.
    pub fn next_revision(&self) -> u64 {
        self.next_revision
    }

    pub fn frontier(&self) -> &Frontier {
        &self.frontier
    }

    pub fn last_time(&self) -> OffsetDateTime {
        self.last_time
    }

    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// Applies the record at `revision`. A revision already applied is
    /// skipped (returns false): the writer and a reader's catch-up may both
    /// have read it.
    pub fn apply(&mut self, revision: u64, record: Record) -> Result<bool, StoreError> {
        if revision < self.next_revision {
            return Ok(false);
        }
        if revision > self.next_revision {
            return Err(StoreError::Corrupt(format!(
                "ledger stream revision {revision} follows {}; revisions must be consecutive (was the stream truncated or its events deleted?)",
                self.next_revision
            )));
        }
        match record {
            Record::Created { format, origin } => {
                if revision != 0 {
                    return Err(StoreError::Corrupt(format!(
                        "a second log header at ledger stream revision {revision}"
                    )));
                }
                if format != FORMAT_VERSION {
                    return Err(StoreError::Backend(format!(
                        "the log is in format {format:?}; this version reads format {FORMAT_VERSION}"
                    )));
                }
                if origin != self.origin {
                    return Err(StoreError::OriginMismatch {
                        stored: origin,
                        given: self.origin.clone(),
                    });
                }
            }
            _ if revision == 0 => {
                return Err(StoreError::Corrupt(
                    "the ledger stream does not start with a log header".into(),
                ))
            }
            Record::Batch(batch) => self.apply_batch(revision, batch)?,
            Record::Checkpoint(checkpoint) => self.apply_checkpoint(revision, checkpoint)?,
        }
        self.next_revision = revision + 1;
        Ok(true)
    }

    /// Checks a batch against the log in full before changing anything.
    fn apply_batch(&mut self, revision: u64, batch: BatchRecord) -> Result<(), StoreError> {
        let corrupt = |what: String| {
            StoreError::Corrupt(format!("ledger stream revision {revision}: {what}"))
        };
        if batch.first_seq != self.size() || batch.leaves.is_empty() {
            return Err(corrupt(format!(
                "a batch of {} events starts at seq {}, but the log holds {} events",
                batch.leaves.len(),
                batch.first_seq,
                self.size()
            )));
        }
        let mut frontier = self.frontier.clone();
        let mut added = Vec::with_capacity(batch.hashes.len());
        let mut events = Vec::with_capacity(batch.leaves.len());
        // Stream heads as this batch advances them: (next version, last hash).
        let mut heads: HashMap<String, (u64, Option<Hash>)> = HashMap::new();
        for (offset, leaf) in batch.leaves.into_iter().enumerate() {
            let seq = batch.first_seq + offset as u64;
            let header = crate::envelope::LeafHeader::from_leaf(&leaf)
                .map_err(|e| corrupt(format!("the leaf of seq {seq} is not an envelope: {e}")))?;
            let head = match heads.get(header.stream.as_ref()) {
                Some(head) => *head,
                None => {
                    let head = self.stream_head(&header.stream);
                    (
                        head.map_or(0, |(version, _)| version + 1),
                        head.map(|(_, hash)| hash),
                    )
                }
            };
            let prev = head.1.map(hex::encode);
            if header.seq != seq
                || header.version != head.0
                || header.prev.as_deref() != prev.as_deref()
            {
                return Err(corrupt(format!(
                    "the leaf at seq {seq} claims seq {}, version {} of {:?}, which does not continue the log",
                    header.seq, header.version, header.stream
                )));
            }
            if self.by_id.contains_key(&header.id)
                || events.iter().any(|e: &StoredEvent| e.id == header.id)
            {
                return Err(corrupt(format!(
                    "event id {} appears twice in the log",
                    header.id
                )));
            }
            let (stream, version, id, event_type) = (
                header.stream.into_owned(),
                header.version,
                header.id,
                header.event_type.into_owned(),
            );
            let leaf_hash = merkle::leaf_hash(&leaf);
            frontier.append(leaf_hash, &mut added);
            heads.insert(stream.clone(), (version + 1, Some(leaf_hash)));
            events.push(StoredEvent {
                seq,
                stream,
                version,
                id,
                event_type,
                leaf,
                leaf_hash,
            });
        }
        let recomputed = added.iter().map(|(_, hash)| *hash);
        if added.len() != batch.hashes.len() || !recomputed.eq(batch.hashes.iter().copied()) {
            return Err(corrupt(
                "the batch's Merkle hashes are not the ones its leaves produce".into(),
            ));
        }
        let last_time = leaf_time(&events.last().expect("a batch has events").leaf)?;
        self.commit(events, &added, frontier, last_time);
        Ok(())
    }

    /// Applies a batch this node planned and committed itself at `revision`:
    /// the sequencer built these leaves and hashes, so they are taken as
    /// they are rather than parsed again.
    pub fn apply_own_batch(
        &mut self,
        revision: u64,
        events: &[StoredEvent],
        hashes: &[(u64, Hash)],
        frontier: &Frontier,
    ) -> Result<(), StoreError> {
        if revision != self.next_revision
            || events.first().map(|e| e.seq) != Some(self.size())
            || frontier.size() != self.size() + events.len() as u64
        {
            return Err(StoreError::Corrupt(format!(
                "the batch committed at ledger stream revision {revision} does not follow the replica at revision {}",
                self.next_revision
            )));
        }
        let last_time = leaf_time(&events.last().expect("a batch has events").leaf)?;
        self.commit(events.to_vec(), hashes, frontier.clone(), last_time);
        self.next_revision = revision + 1;
        Ok(())
    }

    /// Applies a checkpoint this node signed and committed at `revision`.
    pub fn apply_own_checkpoint(
        &mut self,
        revision: u64,
        checkpoint: SignedCheckpoint,
    ) -> Result<(), StoreError> {
        self.apply(revision, Record::Checkpoint(checkpoint))
            .map(|_| ())
    }

    fn commit(
        &mut self,
        events: Vec<StoredEvent>,
        hashes: &[(u64, Hash)],
        frontier: Frontier,
        last_time: OffsetDateTime,
    ) {
        debug_assert_eq!(
            hashes.first().map(|(i, _)| *i),
            Some(self.hashes.0.len() as u64)
        );
        self.hashes.0.extend(hashes.iter().map(|(_, hash)| *hash));
        for event in events {
            self.by_id.insert(event.id, event.seq);
            self.streams
                .entry(event.stream.clone())
                .or_default()
                .push(event.seq);
            self.events.push(event);
        }
        self.frontier = frontier;
        self.last_time = self.last_time.max(last_time);
    }

    fn apply_checkpoint(
        &mut self,
        revision: u64,
        checkpoint: SignedCheckpoint,
    ) -> Result<(), StoreError> {
        if checkpoint.size != self.size() || checkpoint.root != self.frontier.root() {
            return Err(StoreError::Corrupt(format!(
                "the checkpoint at ledger stream revision {revision} claims size {} and root {}, but the log there has size {} and root {}",
                checkpoint.size,
                hex::encode(checkpoint.root),
                self.size(),
                hex::encode(self.frontier.root())
            )));
        }
        if let Some(stored) = self.checkpoints.get(&checkpoint.size) {
            if *stored != checkpoint {
                return Err(StoreError::Corrupt(format!(
                    "two different checkpoints of size {} are stored; nodes of one log must share one key",
                    checkpoint.size
                )));
            }
        }
        self.checkpoints.insert(checkpoint.size, checkpoint);
        Ok(())
    }

    pub fn latest_checkpoint(&self) -> Option<&SignedCheckpoint> {
        self.checkpoints.values().next_back()
    }

    pub fn checkpoint(&self, size: u64) -> Option<&SignedCheckpoint> {
        self.checkpoints.get(&size)
    }

    /// Every checkpoint, smallest (oldest) first.
    pub fn checkpoints(&self) -> Vec<SignedCheckpoint> {
        self.checkpoints.values().cloned().collect()
    }

    pub fn read_range(&self, from: u64, limit: usize) -> Vec<StoredEvent> {
        let from = usize::try_from(from).unwrap_or(usize::MAX);
        self.events.iter().skip(from).take(limit).cloned().collect()
    }

    pub fn read_range_bytes(
        &self,
        from: u64,
        limit: usize,
        leaf_bytes_max: usize,
    ) -> Vec<StoredEvent> {
        let from = usize::try_from(from).unwrap_or(usize::MAX);
        let mut page = PageBytes::new(leaf_bytes_max);
        self.events
            .iter()
            .skip(from)
            .take(limit)
            .take_while(|event| page.take(event.leaf.len()))
            .cloned()
            .collect()
    }

    pub fn read_stream(&self, stream: &str, from_version: u64, limit: usize) -> Vec<StoredEvent> {
        let from = usize::try_from(from_version).unwrap_or(usize::MAX);
        self.streams.get(stream).map_or_else(Vec::new, |seqs| {
            seqs.iter()
                .skip(from)
                .take(limit)
                .map(|&seq| self.events[seq as usize].clone())
                .collect()
        })
    }

    pub fn read_stream_bytes(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
        leaf_bytes_max: usize,
    ) -> Vec<StoredEvent> {
        let from = usize::try_from(from_version).unwrap_or(usize::MAX);
        let mut page = PageBytes::new(leaf_bytes_max);
        self.streams.get(stream).map_or_else(Vec::new, |seqs| {
            seqs.iter()
                .skip(from)
                .take(limit)
                .map(|&seq| &self.events[seq as usize])
                .take_while(|event| page.take(event.leaf.len()))
                .cloned()
                .collect()
        })
    }

    /// The events at `seqs`, in that order; the first seq past the log is an error.
    pub fn read_seqs(&self, seqs: &[u64]) -> Result<Vec<StoredEvent>, StoreError> {
        seqs.iter()
            .map(|&seq| {
                usize::try_from(seq)
                    .ok()
                    .and_then(|index| self.events.get(index))
                    .cloned()
                    .ok_or_else(|| missing_seq(seq, self.size()))
            })
            .collect()
    }

    pub fn read_event(&self, id: &Uuid) -> Option<StoredEvent> {
        self.by_id
            .get(id)
            .map(|&seq| self.events[seq as usize].clone())
    }

    /// Every stream and its number of events (what the per-stream copies
    /// in KurrentDB should hold).
    pub fn stream_lengths(&self) -> Vec<(String, u64)> {
        self.streams
            .iter()
            .map(|(stream, seqs)| (stream.clone(), seqs.len() as u64))
            .collect()
    }

    fn stream_head(&self, stream: &str) -> Option<(u64, Hash)> {
        let seqs = self.streams.get(stream)?;
        let seq = *seqs.last()?;
        Some(((seqs.len() - 1) as u64, self.events[seq as usize].leaf_hash))
    }

    /// The stored hashes, for the Merkle proof functions.
    pub fn hashes(&self) -> &impl HashReader {
        &self.hashes
    }

    /// Every stored hash with `start <= index < end`.
    pub fn stored_hash_range(&self, start: u64, end: u64) -> Vec<(u64, Hash)> {
        let len = self.hashes.0.len() as u64;
        (start.min(len)..end.min(len))
            .map(|index| (index, self.hashes.0[index as usize]))
            .collect()
    }

    /// The root of the tree of `size` leaves, `size` within the log.
    pub fn root_at(&self, size: u64) -> Result<Hash, MerkleError> {
        match self.checkpoints.get(&size) {
            Some(checkpoint) => Ok(checkpoint.root),
            None => merkle::tree_hash(size, &self.hashes),
        }
    }
}

/// The sequencer reads the replica, which the writer keeps current with the
/// ledger stream before it plans.
impl SequencerView for &Replica {
    fn event_by_id(&mut self, id: &Uuid) -> Result<Option<StoredEvent>, StoreError> {
        Ok(self.read_event(id))
    }

    fn stream_head(&mut self, stream: &str) -> Result<Option<(u64, Hash)>, StoreError> {
        Ok(Replica::stream_head(self, stream))
    }
}
