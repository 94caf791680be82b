//! The full audit of a log.
//!
//! Recomputes, from the stored leaf bytes alone: every leaf hash, every
//! per-stream `prev` link and version, every stored Merkle hash, the root at
//! every stored checkpoint, each checkpoint's signature, and the consistency
//! proof between consecutive checkpoints as the store serves it. The first
//! problem found is reported with the seq (or checkpoint size) it concerns.
//! It reads through the `EventStore` trait, so every backend is audited by
//! the same code.

use crate::checkpoint::NoteVerifier;
use crate::envelope::LeafHeader;
use crate::merkle::{self, Frontier, Hash};
use crate::store::{EventStore, SignedCheckpoint, StoreError};
use std::collections::HashMap;

/// Events read per round trip.
const AUDIT_CHUNK_EVENTS: usize = 16_384;

/// What a passing audit saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditReport {
    pub events: u64,
    pub checkpoints: usize,
    /// Root of the whole log (all events, signed or not yet).
    pub root: Hash,
    /// Events appended after the newest checkpoint (not yet signed).
    pub unsigned_events: u64,
}

/// The first problem an audit found.
#[derive(Debug, thiserror::Error)]
pub enum AuditFailure {
    #[error("seq {seq}: {problem}")]
    Event { seq: u64, problem: String },
    #[error("checkpoint of size {size}: {problem}")]
    Checkpoint { size: u64, problem: String },
    #[error("the log is truncated: checkpoint of size {checkpoint_size} is signed, but the log holds only {events} events (seq {events} onwards is missing)")]
    Truncated { checkpoint_size: u64, events: u64 },
    #[error("the audit could not read the log: {0}")]
    Store(#[from] StoreError),
}

impl AuditFailure {
    /// The first bad seq, where the failure concerns one.
    pub fn seq(&self) -> Option<u64> {
        match self {
            AuditFailure::Event { seq, .. } => Some(*seq),
            AuditFailure::Truncated { events, .. } => Some(*events),
            _ => None,
        }
    }
}

struct StreamTip {
    next_version: u64,
    last_hash: Hash,
}

/// Audits the whole log against `verifier`'s key. `progress(done, total)` is
/// called after each chunk of events.
pub async fn audit(
    store: &dyn EventStore,
    verifier: &NoteVerifier,
    progress: &mut (dyn FnMut(u64, u64) + Send),
) -> Result<AuditReport, AuditFailure> {
    let checkpoints = store.checkpoints().await?;
    let total = store.size().await?;
    let mut pending = checkpoints.iter().peekable();
    let mut previous: Option<&SignedCheckpoint> = None;
    let mut frontier = Frontier::new();
    let mut streams: HashMap<String, StreamTip> = HashMap::new();
    let mut produced: Vec<(u64, Hash)> = Vec::with_capacity(AUDIT_CHUNK_EVENTS * 2);
    let mut produced_by: Vec<u64> = Vec::with_capacity(AUDIT_CHUNK_EVENTS * 2);
    // A chunk ends at the next checkpoint, so that each signed root is
    // compared with the tree of exactly its size.
    let chunk_limit = |from: u64| -> usize {
        let next = checkpoints.partition_point(|c| c.size <= from);
        checkpoints.get(next).map_or(AUDIT_CHUNK_EVENTS, |c| {
            (c.size - from).min(AUDIT_CHUNK_EVENTS as u64) as usize
        })
    };

    let mut from = 0;
    let mut events = store.read_range(from, chunk_limit(from)).await?;
    loop {
        // Checkpoints that the recomputed tree has reached.
        while let Some(checkpoint) = pending.next_if(|c| c.size <= frontier.size()) {
            check_checkpoint(store, verifier, checkpoint, previous, &frontier).await?;
            previous = Some(checkpoint);
        }
        if events.is_empty() {
            break;
        }
        let next_from = from + events.len() as u64;
        produced.clear();
        produced_by.clear();
        // The next chunk and this chunk's stored hashes are read while this
        // chunk's leaves are hashed (the reads run on blocking threads).
        let (next_events, stored, found) = tokio::join!(
            store.read_range(next_from, chunk_limit(next_from)),
            store.read_stored_hash_range(
                merkle::stored_hash_count(from),
                merkle::stored_hash_count(next_from)
            ),
            async {
                check_events(
                    &events,
                    &mut frontier,
                    &mut streams,
                    &mut produced,
                    &mut produced_by,
                )
            }
        );
        // A problem found in the leaves is held until the hashes before it
        // have been compared: the earlier seq is the one reported.
        check_stored_hashes(&stored?, &produced, &produced_by)?;
        found?;
        progress(frontier.size(), total);
        events = next_events?;
        from = next_from;
    }

    if let Some(checkpoint) = pending.next() {
        return Err(AuditFailure::Truncated {
            checkpoint_size: checkpoint.size,
            events: frontier.size(),
        });
    }
    Ok(AuditReport {
        events: frontier.size(),
        checkpoints: checkpoints.len(),
        root: frontier.root(),
        unsigned_events: frontier.size() - previous.map_or(0, |c| c.size),
    })
}

/// Checks a chunk of events in seq order, advancing the recomputed tree and
/// the stream tips; stops at the first bad event.
fn check_events(
    events: &[crate::store::StoredEvent],
    frontier: &mut Frontier,
    streams: &mut HashMap<String, StreamTip>,
    produced: &mut Vec<(u64, Hash)>,
    produced_by: &mut Vec<u64>,
) -> Result<(), AuditFailure> {
    for event in events {
        let seq = frontier.size();
        if event.seq != seq {
            return Err(AuditFailure::Event {
                seq,
                problem: format!(
                    "the event is missing (deleted): the next stored event is seq {}",
                    event.seq
                ),
            });
        }
        let bad = |problem: String| AuditFailure::Event { seq, problem };
        let header = LeafHeader::from_leaf(&event.leaf).map_err(|e| bad(e.to_string()))?;
        if header.seq != seq {
            return Err(bad(format!(
                "the leaf says seq {}: an event was inserted, moved or reordered",
                header.seq
            )));
        }
        if header.stream != event.stream || header.version != event.version {
            return Err(bad(format!(
                "the row says stream {:?} version {} but the leaf says stream {:?} version {}",
                event.stream, event.version, header.stream, header.version
            )));
        }
        let hash = merkle::leaf_hash(&event.leaf);
        match streams.get_mut(header.stream.as_ref()) {
            Some(tip) => {
                if header.version != tip.next_version {
                    return Err(bad(format!(
                            "stream {:?} jumps to version {} after version {}: an event of the stream was deleted, inserted or reordered",
                            header.stream,
                            header.version,
                            tip.next_version - 1
                        )));
                }
                if !prev_matches(header.prev.as_deref(), &tip.last_hash) {
                    return Err(bad(format!(
                            "prev does not match the leaf hash {} of the stream's previous event: an event was modified or replaced",
                            hex::encode(tip.last_hash)
                        )));
                }
                tip.next_version += 1;
                tip.last_hash = hash;
            }
            None => {
                if header.version != 0 || header.prev.is_some() {
                    return Err(bad(format!(
                            "stream {:?} starts at version {} (prev {:?}): its earlier events are missing",
                            header.stream, header.version, header.prev
                        )));
                }
                streams.insert(
                    header.stream.into_owned(),
                    StreamTip {
                        next_version: 1,
                        last_hash: hash,
                    },
                );
            }
        }
        frontier.append(hash, produced);
        produced_by.resize(produced.len(), seq);
    }
    Ok(())
}

fn prev_matches(prev: Option<&str>, expected: &Hash) -> bool {
    let mut decoded = [0u8; 32];
    matches!(prev, Some(text) if hex::decode_to_slice(text, &mut decoded).is_ok() && &decoded == expected && text.bytes().all(|b| !b.is_ascii_uppercase()))
}

/// Compares what the audit recomputed with the store's stored Merkle hashes.
fn check_stored_hashes(
    stored: &[(u64, Hash)],
    produced: &[(u64, Hash)],
    produced_by: &[u64],
) -> Result<(), AuditFailure> {
    let mut stored = stored.iter().peekable();
    for ((index, hash), seq) in produced.iter().zip(produced_by) {
        let problem = match stored.next_if(|(i, _)| i <= index) {
            Some((i, _)) if i < index => {
                format!("an unexpected Merkle hash is stored at index {i}")
            }
            Some((_, stored_hash)) if stored_hash == hash => continue,
            Some(_) => format!(
                "the stored Merkle hash {index} differs from the one recomputed from the leaves: the event (or the hash table) was modified after it was appended"
            ),
            None => format!("the stored Merkle hash {index} is missing"),
        };
        return Err(AuditFailure::Event { seq: *seq, problem });
    }
    Ok(())
}

async fn check_checkpoint(
    store: &dyn EventStore,
    verifier: &NoteVerifier,
    checkpoint: &SignedCheckpoint,
    previous: Option<&SignedCheckpoint>,
    frontier: &Frontier,
) -> Result<(), AuditFailure> {
    let size = checkpoint.size;
    let bad = |problem: String| AuditFailure::Checkpoint { size, problem };
    let signed = verifier
        .verify_checkpoint(&checkpoint.note)
        .map_err(|e| bad(format!("the signed note does not verify: {e}")))?;
    if signed.size != size || signed.root != checkpoint.root {
        return Err(bad(format!(
            "the stored row (size {size}, root {}) differs from the signed note (size {}, root {})",
            hex::encode(checkpoint.root),
            signed.size,
            hex::encode(signed.root)
        )));
    }
    debug_assert_eq!(frontier.size(), size);
    let root = frontier.root();
    if root != signed.root {
        let from = previous.map_or(0, |c| c.size);
        return Err(bad(format!(
            "the signed root is {} but events 0..{size} hash to {}: an event between seq {from} and {} was modified",
            hex::encode(signed.root),
            hex::encode(root),
            size.saturating_sub(1)
        )));
    }
    // RFC 9162 has no consistency proof from the empty tree (every tree
    // extends it), so the check starts from the first non-empty checkpoint.
    if let Some(previous) = previous.filter(|p| p.size > 0) {
        let proof = store.prove_consistency(previous.size, size).await?;
        merkle::verify_consistency(
            previous.size,
            size,
            &proof.proof,
            &previous.root,
            &signed.root,
        )
        .map_err(|e| {
            bad(format!(
                "the store's consistency proof from size {} does not verify: {e}",
                previous.size
            ))
        })?;
    }
    Ok(())
}
