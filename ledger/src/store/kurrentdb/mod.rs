//! The KurrentDB (formerly EventStoreDB) store, behind the cargo feature
//! `kurrentdb`: several ledgerline nodes appending to one KurrentDB
//! database, and still one gap-free, verifiable Merkle log.
//!
//! KurrentDB has no transaction across streams, so one stream, the ledger
//! stream, is the commit point. A node's group commit is one KurrentDB event
//! there (see [`record`]), appended with the revision the node last read as
//! the expected revision: KurrentDB accepts exactly one of two nodes racing
//! for the same revision, which is the same guarantee PostgreSQL's head row
//! lock gives, so seqs stay gap-free and commit order is seq order. The
//! loser gets `WrongExpectedVersion`, reads the records it missed, and plans
//! its clients again from scratch, so expected versions and idempotent
//! retries are checked against the log as it now is; nothing of the losing
//! attempt was written. A checkpoint is a record on the same stream, so it
//! can only sign the tree the records before it describe, and two different
//! checkpoints of one size cannot both commit. The planning itself
//! (expected versions, retries, leaf splicing, the Merkle frontier) is the
//! shared [`sequencer`], as for every backend.
//!
//! "Streams map to KurrentDB streams": after a group commit, each event is
//! also appended to its own KurrentDB stream, with our event id as the
//! KurrentDB event id and the exact expected revision, so a repeated copy is
//! deduplicated by the server. Those copies are for KurrentDB consumers
//! (subscriptions, projections); they are not the log, so a crash between
//! the commit and the copy loses nothing, and a writable node repairs
//! missing copies when it opens (one read per stream) and whenever a later
//! copy finds a gap.
//!
//! Reads are served from an in-memory replica of the log, rebuilt by
//! replaying the ledger stream on open, and brought current before every
//! read by reading the records appended since (one round trip that returns
//! nothing when no other node appended): per-stream reads then cannot see a
//! copy that lags its commit, and proofs need no hash lookups over the
//! network. The cost is memory: each event's leaf plus about 300 bytes
//! (the event's fields, its id and stream index entries, two stored
//! hashes), so a log of ten million 1 KiB events needs about 13 GB on every
//! node; a log larger than a node's memory belongs in the PostgreSQL store.
//!
//! KurrentDB refuses an append larger than its `MaxAppendSize` (1 MiB by
//! default); a group commit is split into ledger records below
//! [`KurrentDbConfig::append_size_bytes_max`], each client's events staying in one record, so
//! only a single append larger than the server's limit fails (raise the
//! server's limit for such appends).
//!
//! Connections and the writer run on a private runtime on the store's own
//! thread, as in the PostgreSQL store, so the store works from any caller's
//! runtime and its `Drop` can wait for the final checkpoint.

mod client;
mod copies;
pub mod record;
pub mod replica;
#[cfg(test)]
mod tests;
mod writer;

use crate::checkpoint::{NoteSigner, NoteVerifier};
use crate::merkle::{self, Hash};
use crate::store::node;
use crate::store::sequencer::{
    self, CheckpointCadence, Sequencer, WriterHealth, WriterMessage, WRITER_QUEUE_DEPTH,
};
use crate::store::{
    check_consistency_request, check_inclusion_request, check_position, AppendRequest, Appended,
    ConsistencyProof, EventStore, InclusionProof, SignedCheckpoint, StoreError, StoredEvent,
};
use async_trait::async_trait;
use record::Record;
use replica::{Replica, FORMAT_VERSION};
use std::future::Future;
use std::sync::{Arc, RwLock, RwLockReadGuard};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

/// KurrentDB's default `MaxAppendSize`, the largest append it accepts.
pub const SERVER_APPEND_SIZE_BYTES_DEFAULT: usize = 1 << 20;
/// Ledger records read per request while catching up.
const CATCH_UP_RECORDS_MAX: usize = 512;

/// How to open the KurrentDB store.
#[derive(Debug, Clone)]
pub struct KurrentDbConfig {
    /// A KurrentDB connection string: `esdb://HOST:2113?tls=false`,
    /// `kurrentdb://USER:PASSWORD@HOST:2113`, or a `+discover` variant.
    pub url: String,
    /// The checkpoint signer; its name is the log's origin. Every node of
    /// one log must hold the same key.
    pub signer: NoteSigner,
    /// At most one checkpoint per interval per node.
    pub checkpoint_interval: Duration,
    /// When set, every KurrentDB stream of this log is named
    /// `NAMESPACE/...`, so several logs can share one database; when unset
    /// each ledgerline stream keeps its own name in KurrentDB.
    pub namespace: Option<String>,
    /// The largest ledger record this node appends, in bytes: the server's
    /// `MaxAppendSize`, when it was changed from the default.
    pub append_size_bytes_max: usize,
}

impl KurrentDbConfig {
    pub fn new(url: impl Into<String>, signer: NoteSigner) -> Self {
        KurrentDbConfig {
            url: url.into(),
            signer,
            checkpoint_interval: Duration::from_secs(1),
            namespace: None,
            append_size_bytes_max: SERVER_APPEND_SIZE_BYTES_DEFAULT,
        }
    }
}

pub use super::{is_kurrentdb_url, KURRENTDB_URL_SCHEMES as URL_SCHEMES};

/// What the store needs from KurrentDB, so that the commit protocol can be
/// tested against an in-memory model of the server's optimistic
/// concurrency (no server can run in the test environment).
#[async_trait]
trait Streams: Send + Sync {
    /// Ledger stream records from revision `from` on, at most `limit`, as
    /// (revision, record); none when the stream does not exist.
    async fn read_ledger(&self, from: u64, limit: usize) -> Result<Vec<(u64, Record)>, StoreError>;
    /// Appends `records` if the ledger stream holds exactly `expected_len`
    /// records (0: the stream must not exist).
    async fn append_ledger(
        &self,
        expected_len: u64,
        records: &[Record],
    ) -> Result<LedgerAppend, StoreError>;
    /// Copies events of one stream (consecutive versions) to its KurrentDB
    /// stream, if that holds exactly the events before the first of them.
    async fn copy_events(
        &self,
        stream: &str,
        events: &[StoredEvent],
    ) -> Result<CopyOutcome, StoreError>;
    /// Events in a stream's KurrentDB copy.
    async fn copied_len(&self, stream: &str) -> Result<u64, StoreError>;
    /// Where the log lives, for messages.
    fn describe(&self) -> String;
}

/// The answer to an append with an expected revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LedgerAppend {
    Committed,
    /// The stream moved on: another node committed first. Nothing was written.
    Conflict,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CopyOutcome {
    Written,
    /// The copy holds `copied` events, not the number expected.
    Conflict {
        copied: u64,
    },
}

/// What the store's reads and its writer share.
struct Shared {
    streams: Box<dyn Streams>,
    replica: RwLock<Replica>,
    /// Held while the replica catches up or the writer commits, so records
    /// are applied once and in order.
    sync: tokio::sync::Mutex<()>,
}

impl Shared {
    fn replica(&self) -> RwLockReadGuard<'_, Replica> {
        self.replica.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Brings the replica up to the ledger stream's end.
    async fn catch_up(&self) -> Result<(), StoreError> {
        let _sync = self.sync.lock().await;
        self.catch_up_locked().await
    }

    /// [`catch_up`](Self::catch_up) for a caller already holding `sync`.
    async fn catch_up_locked(&self) -> Result<(), StoreError> {
        loop {
            let from = self.replica().next_revision();
            let records = self.streams.read_ledger(from, CATCH_UP_RECORDS_MAX).await?;
            let count = records.len();
            {
                let mut replica = self.replica.write().unwrap_or_else(|e| e.into_inner());
                for (revision, record) in records {
                    replica.apply(revision, record)?;
                }
            }
            if count < CATCH_UP_RECORDS_MAX {
                return Ok(());
            }
        }
    }
}

/// The KurrentDB event store of one node.
pub struct KurrentDbStore {
    shared: Arc<Shared>,
    runtime: Handle,
    writer: Option<mpsc::Sender<WriterMessage>>,
    writer_health: WriterHealth,
    /// Dropped to stop a read-only store's thread (a writable one stops when
    /// its writer's queue closes).
    close: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    verifier: NoteVerifier,
    verifier_key: String,
}

fn backend(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(error.to_string())
}

impl KurrentDbStore {
    /// Connects, creates the log's header if the ledger stream is new,
    /// replays the log and checks its format, origin and signing key, signs
    /// a checkpoint if the log has none of its size, starts this node's
    /// writer, and repairs missing per-stream copies in the background.
    pub async fn open(config: KurrentDbConfig) -> Result<KurrentDbStore, StoreError> {
        let (runtime, start, thread) = start_runtime()?;
        let streams = client::KurrentDbStreams::connect(&config, runtime.clone())?;
        Self::open_over(Box::new(streams), config, runtime, start, thread, true).await
    }

    /// Opens an existing log for reading only: no writer, no signing, no
    /// header, no repairs. The audit and the read commands use it.
    pub async fn open_read_only(config: KurrentDbConfig) -> Result<KurrentDbStore, StoreError> {
        let (runtime, start, thread) = start_runtime()?;
        let streams = client::KurrentDbStreams::connect(&config, runtime.clone())?;
        Self::open_over(Box::new(streams), config, runtime, start, thread, false).await
    }

    async fn open_over(
        streams: Box<dyn Streams>,
        config: KurrentDbConfig,
        runtime: Handle,
        start: oneshot::Sender<Start>,
        thread: JoinHandle<()>,
        writable: bool,
    ) -> Result<KurrentDbStore, StoreError> {
        let origin = config.signer.name().to_owned();
        let where_ = streams.describe();
        let shared = Arc::new(Shared {
            streams,
            replica: RwLock::new(Replica::new(&origin)),
            sync: tokio::sync::Mutex::new(()),
        });
        let writer_health = WriterHealth::default();
        let setup = {
            let shared = shared.clone();
            let config = config.clone();
            let health = writer_health.clone();
            runtime.spawn(async move {
                if writable {
                    // Whichever node creates the log first writes its header;
                    // the others find it there.
                    let header = Record::Created {
                        format: FORMAT_VERSION.to_owned(),
                        origin: config.signer.name().to_owned(),
                    };
                    shared.streams.append_ledger(0, &[header]).await?;
                }
                shared.catch_up().await?;
                if shared.replica().next_revision() == 0 {
                    return Err(StoreError::NoLog(where_));
                }
                node::check_key(
                    &config.signer.verifier(),
                    shared.replica().latest_checkpoint(),
                )?;
                if !writable {
                    return Ok(None);
                }
                let (sequencer, latest) = {
                    let replica = shared.replica();
                    (
                        Sequencer::new(replica.frontier().clone(), replica.last_time()),
                        replica.latest_checkpoint().cloned(),
                    )
                };
                let mut writer = writer::Writer::new(
                    shared.clone(),
                    sequencer,
                    CheckpointCadence::new(
                        config.signer.clone(),
                        config.checkpoint_interval,
                        latest,
                    ),
                    config.append_size_bytes_max,
                    health,
                );
                // A log that was just created, or whose last batch committed
                // before a crash could sign it, gets its checkpoint now.
                writer.sign_checkpoint().await?;
                tokio::spawn(copies::repair(shared));
                Ok::<_, StoreError>(Some(writer))
            })
        };
        let outcome = setup.await.map_err(backend).and_then(|outcome| outcome);
        let (writer, close) = match outcome {
            Ok(Some(writer)) => {
                let (sender, receiver) = mpsc::channel(WRITER_QUEUE_DEPTH);
                start
                    .send(Start::Writer(Box::new(writer), receiver))
                    .map_err(|_| StoreError::Closed)?;
                (Some(sender), None)
            }
            Ok(None) => {
                let (close, closed) = oneshot::channel();
                start
                    .send(Start::ReadOnly(closed))
                    .map_err(|_| StoreError::Closed)?;
                (None, Some(close))
            }
            Err(error) => {
                drop(start);
                let _ = thread.join();
                return Err(error);
            }
        };
        Ok(KurrentDbStore {
            shared,
            runtime,
            writer,
            writer_health,
            close,
            thread: Some(thread),
            verifier: config.signer.verifier(),
            verifier_key: config.signer.verifier_key(),
        })
    }

    /// Appends waiting in this node's writer queue (for metrics).
    pub fn queue_depth(&self) -> usize {
        self.writer
            .as_ref()
            .map_or(0, |w| WRITER_QUEUE_DEPTH - w.capacity())
    }

    fn sender(&self) -> Result<&mpsc::Sender<WriterMessage>, StoreError> {
        self.writer.as_ref().ok_or(StoreError::ReadOnly)
    }

    /// Runs a KurrentDB call on the store's runtime, which drives the client.
    async fn on_runtime<R: Send + 'static>(
        &self,
        work: impl Future<Output = Result<R, StoreError>> + Send + 'static,
    ) -> Result<R, StoreError> {
        self.runtime
            .spawn(work)
            .await
            .map_err(|_| StoreError::Closed)?
    }

    /// Answers a read from the replica once it has caught up with every
    /// record committed before the read began.
    async fn read<R>(&self, read: impl FnOnce(&Replica) -> R) -> Result<R, StoreError> {
        let shared = self.shared.clone();
        self.on_runtime(async move { shared.catch_up().await })
            .await?;
        Ok(read(&self.shared.replica()))
    }

    /// Refuses a tree size past the log's end.
    fn check_size(replica: &Replica, size: u64) -> Result<(), StoreError> {
        if size > replica.size() {
            return Err(StoreError::OutOfRange {
                what: format!("tree size {size}"),
                size: replica.size(),
            });
        }
        Ok(())
    }
}

impl Drop for KurrentDbStore {
    /// Closing the queue lets the writer finish what it holds and sign a
    /// final checkpoint; waiting for the store's thread means a clean exit
    /// leaves no acknowledged append unsigned.
    fn drop(&mut self) {
        self.writer.take();
        self.close.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What the node's thread runs once open has finished.
type Start = node::Start<writer::Writer>;

/// The node's thread and its single-threaded runtime, which drives the
/// KurrentDB client and the writer.
#[allow(clippy::type_complexity)]
fn start_runtime() -> Result<(Handle, oneshot::Sender<Start>, JoinHandle<()>), StoreError> {
    node::start_runtime("ledger-kurrentdb")
}

#[async_trait]
impl EventStore for KurrentDbStore {
    async fn append_all(
        &self,
        requests: Vec<AppendRequest>,
    ) -> Result<Vec<Vec<Appended>>, StoreError> {
        sequencer::submit(self.sender()?, requests).await
    }

    async fn size(&self) -> Result<u64, StoreError> {
        self.read(Replica::size).await
    }

    async fn read_range(&self, from: u64, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        self.read(|replica| {
            check_position("seq", from, replica.size())?;
            Ok(replica.read_range(from, limit))
        })
        .await?
    }

    async fn read_range_bytes(
        &self,
        from: u64,
        limit: usize,
        leaf_bytes_max: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.read(|replica| {
            check_position("seq", from, replica.size())?;
            Ok(replica.read_range_bytes(from, limit, leaf_bytes_max))
        })
        .await?
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.read(|replica| {
            check_position("version", from_version, replica.size())?;
            Ok(replica.read_stream(stream, from_version, limit))
        })
        .await?
    }

    async fn read_stream_bytes(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
        leaf_bytes_max: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.read(|replica| {
            check_position("version", from_version, replica.size())?;
            Ok(replica.read_stream_bytes(stream, from_version, limit, leaf_bytes_max))
        })
        .await?
    }

    async fn read_event(&self, id: Uuid) -> Result<Option<StoredEvent>, StoreError> {
        self.read(|replica| replica.read_event(&id)).await
    }

    async fn read_seqs(&self, seqs: Vec<u64>) -> Result<Vec<StoredEvent>, StoreError> {
        self.read(|replica| replica.read_seqs(&seqs)).await?
    }

    async fn latest_checkpoint(&self) -> Result<Option<SignedCheckpoint>, StoreError> {
        self.read(|replica| replica.latest_checkpoint().cloned())
            .await
    }

    async fn checkpoint(&self, size: u64) -> Result<Option<SignedCheckpoint>, StoreError> {
        self.read(|replica| replica.checkpoint(size).cloned()).await
    }

    async fn checkpoints(&self) -> Result<Vec<SignedCheckpoint>, StoreError> {
        self.read(Replica::checkpoints).await
    }

    async fn checkpoint_now(&self) -> Result<SignedCheckpoint, StoreError> {
        sequencer::checkpoint_now(self.sender()?).await
    }

    fn verifier(&self) -> &NoteVerifier {
        &self.verifier
    }

    fn verifier_key(&self) -> &str {
        &self.verifier_key
    }

    fn queue_depth(&self) -> usize {
        KurrentDbStore::queue_depth(self)
    }

    fn writer_fault(&self) -> Option<String> {
        let queue = self.writer.as_ref()?;
        self.writer_health.fault(queue)
    }

    async fn prove_inclusion(&self, index: u64, size: u64) -> Result<InclusionProof, StoreError> {
        self.read(|replica| {
            Self::check_size(replica, size)?;
            check_inclusion_request(index, size)?;
            let leaf_hash = replica.stored_hash_range(
                merkle::stored_hash_index(0, index),
                merkle::stored_hash_index(0, index) + 1,
            )[0]
            .1;
            Ok(InclusionProof {
                leaf_index: index,
                tree_size: size,
                leaf_hash,
                root_hash: replica.root_at(size)?,
                proof: merkle::prove_inclusion(index, size, replica.hashes())?,
            })
        })
        .await?
    }

    async fn prove_consistency(&self, from: u64, to: u64) -> Result<ConsistencyProof, StoreError> {
        self.read(|replica| {
            Self::check_size(replica, to)?;
            check_consistency_request(from, to)?;
            Ok(ConsistencyProof {
                from_size: from,
                to_size: to,
                from_root: replica.root_at(from)?,
                to_root: replica.root_at(to)?,
                proof: merkle::prove_consistency(from, to, replica.hashes())?,
            })
        })
        .await?
    }

    async fn read_stored_hashes(&self, indexes: Vec<u64>) -> Result<Vec<Hash>, StoreError> {
        use merkle::HashReader as _;
        self.read(|replica| Ok(replica.hashes().read_hashes(&indexes)?))
            .await?
    }

    async fn read_stored_hash_range(
        &self,
        start: u64,
        end: u64,
    ) -> Result<Vec<(u64, Hash)>, StoreError> {
        self.read(|replica| replica.stored_hash_range(start, end))
            .await
    }
}
