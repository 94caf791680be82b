//! The single-writer sequencer that every backend shares.
//!
//! A backend hands the sequencer a group of client requests inside one open
//! write transaction (group commit). The sequencer checks each client's
//! requests against the log (expected versions, idempotent retries), assigns
//! seq, version, time and prev, builds each canonical leaf, advances the
//! in-memory Merkle frontier and returns what the backend must persist. Each
//! client is all-or-nothing: a client whose request is refused leaves no
//! trace, and the other clients of the group commit still go through.

use crate::checkpoint::{Checkpoint, NoteSigner};
use crate::envelope::{
    format_time, validate_data, validate_event_type, validate_stream_name, EnvelopeError,
    LeafHeader, LEAF_SIZE_BYTES_MAX,
};
use crate::merkle::{leaf_hash, Frontier, Hash};
use crate::store::{
    AppendRequest, Appended, ExpectedVersion, SignedCheckpoint, StoreError, StoredEvent,
    APPEND_EVENTS_MAX,
};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// An event validated and canonicalized by the caller's task, so the single
/// writer only splices it into the envelope.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedEvent {
    pub id: Uuid,
    /// True when the client chose the id (a retry may repeat it); ids the
    /// server makes are random v4 UUIDs that no earlier event can hold.
    pub id_given: bool,
    pub event_type: String,
    pub schema: u32,
    /// RFC 8785 bytes of the payload object.
    pub data: Vec<u8>,
}

/// One stream's part of a client's append, validated.
#[derive(Debug, Clone)]
pub struct PreparedRequest {
    pub stream: String,
    pub expected: ExpectedVersion,
    pub events: Vec<PreparedEvent>,
}

/// The length of an event time, `YYYY-MM-DDTHH:MM:SS.ffffffZ` (see
/// [`format_time`]): every leaf's time has it.
const TIME_BYTES: usize = 27;

/// Every backend's `append_all`: prepares the requests on the caller's task,
/// hands them to the store's writer through `writer` and waits for its answer.
pub async fn submit(
    writer: &mpsc::Sender<WriterMessage>,
    requests: Vec<AppendRequest>,
) -> Result<Vec<Vec<Appended>>, StoreError> {
    let requests = prepare(requests)?;
    let (reply, answer) = oneshot::channel();
    writer
        .send(WriterMessage::Append { requests, reply })
        .await
        .map_err(|_| StoreError::Closed)?;
    answer.await.map_err(|_| StoreError::Closed)?
}

/// Every backend's `checkpoint_now`: asks the store's writer through
/// `writer` to sign a checkpoint of everything committed, and waits for it.
pub async fn checkpoint_now(
    writer: &mpsc::Sender<WriterMessage>,
) -> Result<SignedCheckpoint, StoreError> {
    let (reply, answer) = oneshot::channel();
    writer
        .send(WriterMessage::CheckpointNow { reply })
        .await
        .map_err(|_| StoreError::Closed)?;
    answer.await.map_err(|_| StoreError::Closed)?
}

/// Validates and canonicalizes one client's requests. Runs on the caller's
/// task, off the writer's critical path.
pub fn prepare(requests: Vec<AppendRequest>) -> Result<Vec<PreparedRequest>, StoreError> {
    let count: usize = requests.iter().map(|r| r.events.len()).sum();
    if count == 0 || requests.iter().any(|r| r.events.is_empty()) {
        return Err(StoreError::EmptyAppend);
    }
    if count > APPEND_EVENTS_MAX {
        return Err(StoreError::TooManyEvents { count });
    }
    let mut seen_ids = std::collections::HashSet::with_capacity(count);
    let mut seen_streams = std::collections::HashSet::with_capacity(requests.len());
    requests
        .into_iter()
        .map(|request| {
            validate_stream_name(&request.stream)?;
            if !seen_streams.insert(request.stream.clone()) {
                return Err(StoreError::BadEvent(EnvelopeError::BadLeaf(format!(
                    "stream {:?} appears twice in one append; put its events in one request",
                    request.stream
                ))));
            }
            let events = request
                .events
                .into_iter()
                .map(|event| {
                    validate_event_type(&event.event_type)?;
                    validate_data(&event.data)?;
                    let data = serde_json_canonicalizer::to_vec(&event.data)
                        .map_err(|e| EnvelopeError::BadLeaf(e.to_string()))?;
                    let id_given = event.id.is_some();
                    // Time-ordered (RFC 9562 v7): the id index grows at its end
                    // instead of dirtying one random page per event, which
                    // halves the pages each group commit writes and syncs.
                    let id = event.id.unwrap_or_else(Uuid::now_v7);
                    if !seen_ids.insert(id) {
                        return Err(StoreError::BadEvent(EnvelopeError::BadLeaf(format!(
                            "event id {id} appears twice in one append"
                        ))));
                    }
                    let prepared = PreparedEvent {
                        id,
                        id_given,
                        event_type: event.event_type,
                        schema: event.schema,
                        data,
                    };
                    // The shortest leaf this event can have (seq 0, version
                    // 0, no prev): refused here already when even that is
                    // too long; the writer checks the exact leaf.
                    let size_bytes = leaf_len(&prepared, 0, &request.stream, 0, false);
                    if size_bytes > LEAF_SIZE_BYTES_MAX {
                        return Err(EnvelopeError::TooLarge { size_bytes }.into());
                    }
                    Ok(prepared)
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            Ok(PreparedRequest {
                stream: request.stream,
                expected: request.expected,
                events,
            })
        })
        .collect()
}

/// Builds the canonical leaf. RFC 8785 orders members by their UTF-16 code
/// units, which for these ASCII names is
/// data, id, prev, schema, seq, stream, time, type, version. The stream and
/// type alphabets, the UUID and the time need no escaping, and the integers
/// are below 2^53, so splicing is exactly what a full canonicalizer would emit
/// (a unit test holds the two side by side).
pub fn assemble_leaf(
    event: &PreparedEvent,
    seq: u64,
    stream: &str,
    version: u64,
    time: &str,
    prev: Option<&Hash>,
) -> Vec<u8> {
    let mut leaf = Vec::with_capacity(event.data.len() + 256 + stream.len());
    leaf.extend_from_slice(b"{\"data\":");
    leaf.extend_from_slice(&event.data);
    let mut tail = String::with_capacity(256);
    let _ = write!(tail, ",\"id\":\"{}\",\"prev\":", event.id.hyphenated());
    match prev {
        Some(hash) => {
            tail.push('"');
            tail.push_str(&hex::encode(hash));
            tail.push('"');
        }
        None => tail.push_str("null"),
    }
    let _ = write!(
        tail,
        ",\"schema\":{},\"seq\":{seq},\"stream\":\"{stream}\",\"time\":\"{time}\",\"type\":\"{}\",\"version\":{version}}}",
        event.schema, event.event_type
    );
    leaf.extend_from_slice(tail.as_bytes());
    leaf
}

/// The length of the leaf [`assemble_leaf`] builds from these parts,
/// without building it.
pub fn leaf_len(
    event: &PreparedEvent,
    seq: u64,
    stream: &str,
    version: u64,
    has_prev: bool,
) -> usize {
    fn digits(n: u64) -> usize {
        n.checked_ilog10().map_or(1, |log| log as usize + 1)
    }
    const FIXED: &str =
        r#"{"data":,"id":"","prev":,"schema":,"seq":,"stream":"","time":"","type":"","version":}"#;
    let prev = if has_prev { 64 + 2 } else { "null".len() };
    FIXED.len()
        + event.data.len()
        + 36
        + prev
        + digits(u64::from(event.schema))
        + digits(seq)
        + stream.len()
        + TIME_BYTES
        + event.event_type.len()
        + digits(version)
}

/// What the sequencer needs to read inside the backend's write transaction.
pub trait SequencerView {
    /// The event with this id, if the log holds it.
    fn event_by_id(&mut self, id: &Uuid) -> Result<Option<StoredEvent>, StoreError>;
    /// The stream's last event as (version, leaf hash), if the stream exists.
    fn stream_head(&mut self, stream: &str) -> Result<Option<(u64, Hash)>, StoreError>;
}

/// One client's answer: where each of its requests' events landed, or why it was refused.
pub type ClientResult = Result<Vec<Vec<Appended>>, StoreError>;

/// What one group commit must persist, and each client's answer.
#[derive(Debug, Default)]
pub struct Plan {
    pub events: Vec<StoredEvent>,
    /// New complete-subtree hashes as (stored hash index, hash), ascending.
    pub hashes: Vec<(u64, Hash)>,
    pub results: Vec<ClientResult>,
}

/// The writer's in-memory state: the Merkle frontier and the clock.
#[derive(Debug, Clone)]
pub struct Sequencer {
    frontier: Frontier,
    last_time: OffsetDateTime,
}

#[derive(Clone)]
struct StreamHead {
    next_version: u64,
    last_hash: Option<Hash>,
}

impl Sequencer {
    pub fn new(frontier: Frontier, last_time: OffsetDateTime) -> Self {
        Sequencer {
            frontier,
            last_time,
        }
    }

    pub fn frontier(&self) -> &Frontier {
        &self.frontier
    }

    /// Sequences a group of clients' requests. The caller persists
    /// `plan.events` and `plan.hashes` in the same transaction it read from,
    /// and on any persistence failure discards this sequencer and reloads.
    pub fn plan(
        &mut self,
        view: &mut dyn SequencerView,
        clients: Vec<Vec<PreparedRequest>>,
        now: OffsetDateTime,
    ) -> Result<Plan, StoreError> {
        // Times never go backwards along the log, even if the wall clock does.
        self.last_time = self.last_time.max(now);
        let time = format_time(self.last_time);
        let mut plan = Plan::default();
        let mut heads: HashMap<String, StreamHead> = HashMap::new();
        // Events sequenced earlier in this group commit, by id, for retries
        // that race their original.
        let mut batch_ids: HashMap<Uuid, usize> = HashMap::new();
        for requests in clients {
            let result = self.plan_client(
                view,
                &requests,
                &time,
                &mut heads,
                &mut batch_ids,
                &mut plan,
            )?;
            plan.results.push(result);
        }
        Ok(plan)
    }

    /// Plans one client. Returns `Ok(Err(_))` when the client is refused (the
    /// group goes on) and `Err(_)` when the store itself failed.
    fn plan_client(
        &mut self,
        view: &mut dyn SequencerView,
        requests: &[PreparedRequest],
        time: &str,
        heads: &mut HashMap<String, StreamHead>,
        batch_ids: &mut HashMap<Uuid, usize>,
        plan: &mut Plan,
    ) -> Result<ClientResult, StoreError> {
        match self.find_retry(view, requests, batch_ids, plan)? {
            Retry::Original(results) => return Ok(Ok(results)),
            Retry::Refused(error) => return Ok(Err(error)),
            Retry::New => {}
        }
        // Check every stream before touching any state.
        let mut staged: Vec<(String, StreamHead)> = Vec::with_capacity(requests.len());
        for request in requests {
            let head = match heads.get(&request.stream) {
                Some(head) => head.clone(),
                None => {
                    let stored = view.stream_head(&request.stream)?;
                    let head = StreamHead {
                        next_version: stored.map_or(0, |(version, _)| version + 1),
                        last_hash: stored.map(|(_, hash)| hash),
                    };
                    heads.insert(request.stream.clone(), head.clone());
                    head
                }
            };
            if let ExpectedVersion::Exact(expected) = request.expected {
                if expected != head.next_version {
                    return Ok(Err(StoreError::VersionConflict {
                        stream: request.stream.clone(),
                        expected,
                        actual: head.next_version,
                    }));
                }
            }
            staged.push((request.stream.clone(), head));
        }
        // Build every leaf before touching any state: a leaf over the limit
        // (its exact length depends on its seq, version and prev) refuses
        // the whole client.
        let mut seq = self.frontier.size();
        let mut built = Vec::with_capacity(requests.len());
        for (request, (stream, mut head)) in requests.iter().zip(staged) {
            let mut events = Vec::with_capacity(request.events.len());
            for event in &request.events {
                let version = head.next_version;
                let leaf =
                    assemble_leaf(event, seq, &stream, version, time, head.last_hash.as_ref());
                if leaf.len() > LEAF_SIZE_BYTES_MAX {
                    return Ok(Err(EnvelopeError::TooLarge {
                        size_bytes: leaf.len(),
                    }
                    .into()));
                }
                let hash = leaf_hash(&leaf);
                events.push(StoredEvent {
                    seq,
                    stream: stream.clone(),
                    version,
                    id: event.id,
                    event_type: event.event_type.clone(),
                    leaf,
                    leaf_hash: hash,
                });
                seq += 1;
                head = StreamHead {
                    next_version: version + 1,
                    last_hash: Some(hash),
                };
            }
            built.push((stream, head, events));
        }
        let mut results = Vec::with_capacity(built.len());
        for (stream, head, events) in built {
            let mut appended = Vec::with_capacity(events.len());
            for event in events {
                debug_assert_eq!(event.seq, self.frontier.size());
                self.frontier.append(event.leaf_hash, &mut plan.hashes);
                batch_ids.insert(event.id, plan.events.len());
                appended.push(Appended {
                    seq: event.seq,
                    version: event.version,
                    leaf_hash: event.leaf_hash,
                });
                plan.events.push(event);
            }
            heads.insert(stream, head);
            results.push(appended);
        }
        Ok(Ok(results))
    }

    /// Decides whether a client's request repeats an earlier append.
    fn find_retry(
        &self,
        view: &mut dyn SequencerView,
        requests: &[PreparedRequest],
        batch_ids: &HashMap<Uuid, usize>,
        plan: &Plan,
    ) -> Result<Retry, StoreError> {
        let mut found = Vec::new();
        let mut missing = 0usize;
        for request in requests {
            for event in request.events.iter() {
                if !event.id_given {
                    missing += 1;
                    continue;
                }
                let existing = match batch_ids.get(&event.id) {
                    Some(&index) => Some(plan.events[index].clone()),
                    None => view.event_by_id(&event.id)?,
                };
                match existing {
                    Some(stored) => found.push((request, event, stored)),
                    None => missing += 1,
                }
            }
        }
        if found.is_empty() {
            return Ok(Retry::New);
        }
        for (request, event, stored) in &found {
            if missing > 0 || !same_event(request, event, stored) {
                return Ok(Retry::Refused(StoreError::IdReused {
                    id: event.id,
                    seq: stored.seq,
                }));
            }
        }
        let mut results = Vec::with_capacity(requests.len());
        let mut found = found.into_iter();
        for request in requests {
            let appended = found
                .by_ref()
                .take(request.events.len())
                .map(|(_, _, stored)| Appended {
                    seq: stored.seq,
                    version: stored.version,
                    leaf_hash: stored.leaf_hash,
                })
                .collect();
            results.push(appended);
        }
        Ok(Retry::Original(results))
    }
}

/// What the sequencer will ask a [`SequencerView`] about a group of
/// clients: the ids a client chose (possible retries) and the streams
/// appended to. A backend whose reads are asynchronous fetches these in a
/// couple of batched queries and plans over a [`PrefetchedView`].
pub fn lookups(clients: &[Vec<PreparedRequest>]) -> (Vec<Uuid>, Vec<String>) {
    let mut ids = Vec::new();
    let mut streams = HashSet::new();
    for request in clients.iter().flatten() {
        streams.insert(request.stream.as_str());
        ids.extend(request.events.iter().filter(|e| e.id_given).map(|e| e.id));
    }
    let streams = streams.into_iter().map(str::to_owned).collect();
    (ids, streams)
}

/// A [`SequencerView`] over rows read before planning (see [`lookups`]).
/// Valid only while the backend holds its write lock, so that nothing it
/// holds can change before the plan commits.
#[derive(Debug, Default)]
pub struct PrefetchedView {
    pub events_by_id: HashMap<Uuid, StoredEvent>,
    /// Each existing stream's last event as (version, leaf hash); a stream
    /// asked about and absent here does not exist.
    pub stream_heads: HashMap<String, (u64, Hash)>,
}

impl SequencerView for PrefetchedView {
    fn event_by_id(&mut self, id: &Uuid) -> Result<Option<StoredEvent>, StoreError> {
        Ok(self.events_by_id.get(id).cloned())
    }

    fn stream_head(&mut self, stream: &str) -> Result<Option<(u64, Hash)>, StoreError> {
        Ok(self.stream_heads.get(stream).copied())
    }
}

/// The time recorded in a stored leaf: a reopened writer continues the
/// log's clock from its last event, so times never go backwards. Only the
/// envelope is read: whatever the payload holds, the writer can go on.
pub fn leaf_time(leaf: &[u8]) -> Result<OffsetDateTime, StoreError> {
    let header = LeafHeader::from_leaf(leaf)?;
    OffsetDateTime::parse(&header.time, &time::format_description::well_known::Rfc3339).map_err(
        |e| {
            StoreError::Corrupt(format!(
                "event {} has a bad time {:?}: {e}",
                header.seq, header.time
            ))
        },
    )
}

/// The checkpoint signer of a writable store: the operator's key when one is
/// supplied, else the key file (created on first start). Its name must be
/// the log's origin.
pub fn load_signer(
    signing_key: Option<&str>,
    key_file: &Path,
    origin: &str,
) -> Result<NoteSigner, StoreError> {
    let signer = match signing_key {
        Some(text) => NoteSigner::from_private_key(text),
        None => NoteSigner::load_or_create(key_file, origin),
    }
    .map_err(|e| StoreError::Backend(e.to_string()))?;
    if signer.name() != origin {
        return Err(StoreError::Backend(format!(
            "the signing key is named {:?} but the log origin is {origin:?}; they must match",
            signer.name()
        )));
    }
    Ok(signer)
}

/// When the single writer signs: at most one checkpoint per interval, and a
/// batch committed sooner is covered by the one signed when the interval
/// ends (or on request, or at close).
pub struct CheckpointCadence {
    signer: NoteSigner,
    interval: Duration,
    latest: Option<SignedCheckpoint>,
    latest_at: Instant,
}

impl CheckpointCadence {
    pub fn new(signer: NoteSigner, interval: Duration, latest: Option<SignedCheckpoint>) -> Self {
        CheckpointCadence {
            signer,
            interval,
            latest,
            latest_at: Instant::now(),
        }
    }

    pub fn signer(&self) -> &NoteSigner {
        &self.signer
    }

    /// The newest checkpoint this writer signed or loaded.
    pub fn latest(&self) -> Option<&SignedCheckpoint> {
        self.latest.as_ref()
    }

    /// True when the log of `size` events has no checkpoint of its size yet.
    pub fn pending(&self, size: u64) -> bool {
        self.latest.as_ref().map(|c| c.size) != Some(size)
    }

    /// When the next checkpoint falls due, if one is pending for `size`.
    pub fn deadline(&self, size: u64) -> Option<Instant> {
        self.pending(size).then(|| self.latest_at + self.interval)
    }

    /// True when a checkpoint pending now should be signed in this commit.
    pub fn due(&self) -> bool {
        self.latest_at.elapsed() >= self.interval
    }

    /// Signs the tree the frontier describes; the caller stores it and,
    /// once committed, [`record`](Self::record)s it.
    pub fn sign(&self, frontier: &Frontier) -> SignedCheckpoint {
        let checkpoint = Checkpoint {
            origin: self.signer.name().to_owned(),
            size: frontier.size(),
            root: frontier.root(),
        };
        SignedCheckpoint {
            size: checkpoint.size,
            root: checkpoint.root,
            note: self.signer.sign(&checkpoint),
        }
    }

    /// After a failed signing (the database is unreachable), waits another
    /// interval before the next try rather than retrying at once.
    pub fn postpone(&mut self) {
        self.latest_at = Instant::now();
    }

    /// Notes a checkpoint that is now durable.
    pub fn record(&mut self, checkpoint: SignedCheckpoint) {
        self.latest = Some(checkpoint);
        self.latest_at = Instant::now();
    }
}

/// A message to a backend's single writer task.
pub enum WriterMessage {
    Append {
        requests: Vec<PreparedRequest>,
        reply: oneshot::Sender<ClientResult>,
    },
    CheckpointNow {
        reply: oneshot::Sender<Result<SignedCheckpoint, StoreError>>,
    },
}

/// Whether a store's writer can write: shared between the writer, which
/// records the outcome of each group commit and checkpoint it attempts,
/// and the store, which reports it (`EventStore::writer_fault`). A failed
/// write is the fault until a later write succeeds.
#[derive(Debug, Clone, Default)]
pub struct WriterHealth(Arc<Mutex<Option<String>>>);

impl WriterHealth {
    /// Records the outcome of one write.
    pub fn record<T>(&self, outcome: &Result<T, StoreError>) {
        match outcome {
            Ok(_) => self.succeeded(),
            Err(error) => self.failed(error),
        }
    }

    /// Records a write that succeeded.
    pub fn succeeded(&self) {
        self.set(None);
    }

    /// Records a write that failed.
    pub fn failed(&self, error: &StoreError) {
        self.set(Some(error.to_string()));
    }

    fn set(&self, fault: Option<String>) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = fault;
    }

    /// Why the writer whose queue is `queue` cannot write: it has stopped,
    /// or its last write failed. `None` while it writes.
    pub fn fault(&self, queue: &mpsc::Sender<WriterMessage>) -> Option<String> {
        if queue.is_closed() {
            return Some("the writer has stopped".into());
        }
        let fault = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        fault
            .as_ref()
            .map(|error| format!("the writer's last write failed: {error}"))
    }
}

/// Appends waiting for a writer before callers are made to wait (backpressure).
pub const WRITER_QUEUE_DEPTH: usize = 4096;
/// The most events one group commit takes from the queue.
pub const GROUP_COMMIT_EVENTS_MAX: usize = 20_000;

/// The messages one group commit serves, split by kind.
#[derive(Default)]
pub struct Batch {
    pub clients: Vec<Vec<PreparedRequest>>,
    replies: Vec<oneshot::Sender<ClientResult>>,
    checkpoint_waiters: Vec<oneshot::Sender<Result<SignedCheckpoint, StoreError>>>,
}

impl Batch {
    /// True when a caller asked for a checkpoint covering this commit.
    pub fn checkpoint_requested(&self) -> bool {
        !self.checkpoint_waiters.is_empty()
    }

    /// Answers every caller: each client its own result, or, when the
    /// commit failed (nothing was written), the failure; checkpoint callers
    /// get `latest`.
    pub fn answer(
        self,
        outcome: Result<Vec<ClientResult>, StoreError>,
        latest: Option<&SignedCheckpoint>,
    ) {
        match outcome {
            Ok(results) => {
                for (reply, result) in self.replies.into_iter().zip(results) {
                    let _ = reply.send(result);
                }
            }
            Err(error) => {
                let message = error.to_string();
                for reply in self.replies {
                    let _ = reply.send(Err(StoreError::Backend(message.clone())));
                }
            }
        }
        for reply in self.checkpoint_waiters {
            let _ = reply.send(latest.cloned().ok_or(StoreError::Closed));
        }
    }

    /// Adds every message waiting in `receiver` now, up to
    /// [`GROUP_COMMIT_EVENTS_MAX`] events in all.
    pub fn top_up(&mut self, receiver: &mut mpsc::Receiver<WriterMessage>) {
        let mut events: usize = self.clients.iter().flatten().map(|r| r.events.len()).sum();
        while events < GROUP_COMMIT_EVENTS_MAX {
            match receiver.try_recv() {
                Ok(message) => events += self.push(message),
                Err(_) => break,
            }
        }
    }

    fn push(&mut self, message: WriterMessage) -> usize {
        match message {
            WriterMessage::Append { requests, reply } => {
                let events = requests.iter().map(|r| r.events.len()).sum();
                self.clients.push(requests);
                self.replies.push(reply);
                events
            }
            WriterMessage::CheckpointNow { reply } => {
                self.checkpoint_waiters.push(reply);
                0
            }
        }
    }
}

/// What woke the writer.
pub enum Wake {
    /// Appends (and checkpoint requests) to commit together.
    Batch(Batch),
    /// A pending checkpoint's interval ended with nothing else to do.
    CheckpointDue,
    /// Every sender is gone: the store is closing.
    Closed,
}

/// Waits for the next message, or until `checkpoint_deadline`, then drains
/// every message already waiting (up to [`GROUP_COMMIT_EVENTS_MAX`] events)
/// into one batch: the group commit.
pub async fn next_batch(
    receiver: &mut mpsc::Receiver<WriterMessage>,
    checkpoint_deadline: Option<Instant>,
) -> Wake {
    let first = match checkpoint_deadline {
        Some(deadline) => {
            let deadline = tokio::time::Instant::from_std(deadline);
            match tokio::time::timeout_at(deadline, receiver.recv()).await {
                Ok(message) => message,
                Err(_elapsed) => return Wake::CheckpointDue,
            }
        }
        None => receiver.recv().await,
    };
    let Some(first) = first else {
        return Wake::Closed;
    };
    let mut batch = Batch::default();
    batch.push(first);
    batch.top_up(receiver);
    Wake::Batch(batch)
}

enum Retry {
    New,
    Original(Vec<Vec<Appended>>),
    Refused(StoreError),
}

/// True when a stored event is what this request would have appended.
fn same_event(request: &PreparedRequest, event: &PreparedEvent, stored: &StoredEvent) -> bool {
    if stored.stream != request.stream || stored.event_type != event.event_type {
        return false;
    }
    let Ok(envelope) = stored.envelope() else {
        return false;
    };
    envelope.schema == event.schema
        && serde_json_canonicalizer::to_vec(&envelope.data).is_ok_and(|data| data == event.data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envelope::{Envelope, NewEvent};
    use proptest::prelude::*;
    use serde_json::json;

    #[test]
    fn spliced_leaf_equals_full_canonicalization() {
        let prepared = prepare(vec![AppendRequest::new(
            "catalog",
            ExpectedVersion::Any,
            vec![NewEvent::new(
                "catalog.party-registered",
                json!({"z": 1, "a": "é\u{1}", "m": [1.5, null]}),
            )],
        )])
        .unwrap();
        let event = &prepared[0].events[0];
        let prev = [7u8; 32];
        for prev in [None, Some(&prev)] {
            let leaf = assemble_leaf(event, 12, "catalog", 3, "2026-11-26T09:00:00.000000Z", prev);
            let envelope = Envelope::from_leaf(&leaf).unwrap();
            assert_eq!(envelope.to_leaf().unwrap(), leaf);
            assert_eq!(
                leaf_len(event, 12, "catalog", 3, prev.is_some()),
                leaf.len()
            );
        }
    }

    /// Plans one client appending `data` to a new stream of a log of ten
    /// events, so that the event's seq has two digits.
    fn plan_one(data: serde_json::Value) -> ClientResult {
        let clients = vec![prepare(vec![AppendRequest::new(
            "s",
            ExpectedVersion::Any,
            vec![NewEvent::new("t", data)],
        )])?];
        let mut frontier = Frontier::new();
        for i in 0..10u8 {
            frontier.append(leaf_hash(&[i]), &mut Vec::new());
        }
        let mut sequencer = Sequencer::new(frontier, OffsetDateTime::UNIX_EPOCH);
        let mut plan = sequencer
            .plan(
                &mut PrefetchedView::default(),
                clients,
                OffsetDateTime::UNIX_EPOCH,
            )
            .unwrap();
        if plan.results[0].is_err() {
            assert!(plan.events.is_empty() && plan.hashes.is_empty());
            assert_eq!(sequencer.frontier().size(), 10, "a refusal changes nothing");
        }
        plan.results.pop().unwrap()
    }

    /// The limit is on the exact leaf, whose length the payload alone does
    /// not give (here the seq's second digit): a leaf of 65,535 bytes is
    /// planned, and one of 65,536 refused when it is planned, though the
    /// shortest leaf its payload could have had passes the early check.
    #[test]
    fn a_leaf_of_65535_bytes_is_accepted_and_one_byte_more_refused() {
        let padding = |length: usize| json!({"x": "y".repeat(length)});
        let prepared = prepare(vec![AppendRequest::new(
            "s",
            ExpectedVersion::Any,
            vec![NewEvent::new("t", padding(0))],
        )])
        .unwrap();
        let empty_leaf = leaf_len(&prepared[0].events[0], 10, "s", 0, false);
        let fitting = LEAF_SIZE_BYTES_MAX - empty_leaf;
        let Ok(appended) = plan_one(padding(fitting)) else {
            panic!("a leaf of exactly the limit is planned");
        };
        assert_eq!(appended[0][0].seq, 10);
        assert!(matches!(
            plan_one(padding(fitting + 1)),
            Err(StoreError::BadEvent(EnvelopeError::TooLarge { size_bytes })) if size_bytes == LEAF_SIZE_BYTES_MAX + 1
        ));
        assert!(matches!(
            plan_one(padding(fitting + 2)),
            Err(StoreError::BadEvent(EnvelopeError::TooLarge { .. }))
        ));
    }

    proptest! {
        #[test]
        fn spliced_leaf_is_canonical_for_any_payload(
            key in "[a-zA-Z\u{80}-\u{10ffff}]{0,8}",
            text in any::<String>(),
            number in -9_007_199_254_740_991i64..9_007_199_254_740_991i64,
            float in -1e300f64..1e300,
            seq in 0u64..(1 << 53),
            version in 0u64..(1 << 53),
        ) {
            let data = json!({ key.clone(): [text, number, float], "n": {"b": true, "a": null} });
            let prepared = prepare(vec![AppendRequest::new(
                "s-1", ExpectedVersion::Any, vec![NewEvent::new("t.x", data)],
            )]).unwrap();
            let leaf = assemble_leaf(&prepared[0].events[0], seq, "s-1", version, "2026-01-01T00:00:00.000000Z", None);
            let envelope = Envelope::from_leaf(&leaf).unwrap();
            prop_assert_eq!(envelope.to_leaf().unwrap(), leaf);
        }
    }

    #[test]
    fn ids_the_server_makes_are_time_ordered_v7() {
        let events = (0..3).map(|_| NewEvent::new("t", json!({}))).collect();
        let prepared =
            prepare(vec![AppendRequest::new("s", ExpectedVersion::Any, events)]).unwrap();
        let ids: Vec<Uuid> = prepared[0].events.iter().map(|e| e.id).collect();
        assert!(ids.iter().all(|id| id.get_version_num() == 7), "{ids:?}");
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");
        assert!(prepared[0].events.iter().all(|e| !e.id_given));
    }

    #[test]
    fn prepare_rejects_bad_requests() {
        let event = || NewEvent::new("t", json!({}));
        assert!(matches!(prepare(vec![]), Err(StoreError::EmptyAppend)));
        assert!(matches!(
            prepare(vec![AppendRequest::new(
                "a b",
                ExpectedVersion::Any,
                vec![event()]
            )]),
            Err(StoreError::BadEvent(EnvelopeError::BadStreamName(_)))
        ));
        let id = Uuid::new_v4();
        assert!(prepare(vec![AppendRequest::new(
            "s",
            ExpectedVersion::Any,
            vec![event().with_id(id), event().with_id(id)]
        )])
        .is_err());
        let many = (0..=APPEND_EVENTS_MAX).map(|_| event()).collect();
        assert!(matches!(
            prepare(vec![AppendRequest::new("s", ExpectedVersion::Any, many)]),
            Err(StoreError::TooManyEvents { .. })
        ));
        let big = NewEvent::new("t", json!({"x": "y".repeat(LEAF_SIZE_BYTES_MAX)}));
        assert!(matches!(
            prepare(vec![AppendRequest::new(
                "s",
                ExpectedVersion::Any,
                vec![big]
            )]),
            Err(StoreError::BadEvent(EnvelopeError::TooLarge { .. }))
        ));
    }
}
