//! The scale-out store: several ledgerline nodes appending to one PostgreSQL
//! database, and still one gap-free, verifiable Merkle log.
//!
//! The sequencer is a row lock. Every append transaction locks the single
//! `log_head` row (`SELECT ... FOR UPDATE`), reads the log's size, assigns
//! seqs from it, writes the events (each row with the Merkle hashes its
//! append stores) and the new size, and commits. Whichever node holds the
//! lock is the only writer, so seqs are gap-free across nodes, and since the
//! next writer can only read the head after this commit, commit order is seq
//! order: a reader never sees seq N before every smaller seq. Inside one
//! node, one writer task drains every waiting append into one transaction
//! (group commit), exactly as the embedded store does; the planning
//! (expected versions, idempotent retries, leaf splicing, the Merkle
//! frontier) is the shared [`sequencer`].
//!
//! The append transaction commits without waiting for its WAL flush, so the
//! lock passes to the next node at once; right behind it the node publishes
//! the log's size in a durable transaction (`log_durable`), whose flush
//! covers the append, and only then answers its clients. Readers stop at the
//! largest published size, so none sees an event a crash could take back
//! (`migrations/0003_durable_size.sql`).
//!
//! A node's in-memory frontier is stale once another node appended; the
//! writer notices under the lock (the head's size moved) and takes the
//! frontier from the head row before planning. Its remembered stream heads
//! (`HeadCache`) are brought up to date, under the lock, from the events
//! committed since, so a commit holds the lock for one trip to the node and
//! back and the writes (see `Writer::write`).
//!
//! Checkpoints are signed under the same lock, and `checkpoints.size` is the
//! primary key, so no two different checkpoints of one size can exist; every
//! node must sign with the same key, which [`PostgresStore::open`] checks
//! against the stored notes.
//!
//! Connections: one for the writer, a small pool for reads. Both are driven
//! by a private runtime on the store's own thread, so the store works from
//! any caller's runtime and its `Drop` can wait for the final checkpoint.
//! A connection lost to a server restart fails the calls in flight (the
//! callers see an error, and a retry with the same event ids is idempotent)
//! and is replaced on the next call.
//!
//! The files, one job each: this one opens the store and serves the
//! [`EventStore`] reads; `connection` opens connections and words their
//! errors; `migrations` owns the tables; `rows` maps rows to the store's
//! types; `writer` is the node's group commit and signer; `read_pool` lends
//! read connections; `hashes` feeds stored hashes to the Merkle functions;
//! `edge` is the frontier the head row stores; `copy` copies another
//! store's log into this one.

mod connection;
mod copy;
mod cosignatures;
mod edge;
mod hashes;
mod migrations;
mod read_pool;
mod rows;
mod writer;

pub use copy::CopyReport;
pub use migrations::migrate_database;
pub use read_pool::{READERS_IDLE_MAX, READERS_MAX};

use connection::{backend, pg_error, redacted_url, Connector};
use edge::Edge;
use hashes::DynReader;
use migrations::migrate;
use read_pool::ReadPool;
use rows::{checkpoint_row, durable_size, event_row, hash_from, latest_checkpoint, to_i64};
use writer::{Writer, WriterConnection};

use crate::checkpoint::{NoteSigner, NoteVerifier};
use crate::merkle::{self, Frontier, Hash};
use crate::store::head_cache::HeadCache;
use crate::store::node;
use crate::store::sequencer::{
    self, CheckpointCadence, Sequencer, WriterHealth, WriterMessage, WRITER_QUEUE_DEPTH,
};
use crate::store::{
    check_consistency_request, check_inclusion_request, AppendRequest, Appended, ConsistencyProof,
    EventStore, InclusionProof, SignedCheckpoint, StoreError, StoredCosignature, StoredEvent,
};
use async_trait::async_trait;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::types::ToSql;
use uuid::Uuid;

/// How to open the PostgreSQL store.
#[derive(Debug, Clone)]
pub struct PostgresConfig {
    /// A libpq-style URL, `postgres://user@host:port/database`.
    pub url: String,
    /// The checkpoint signer; its name is the log's origin. Every node of
    /// one log must hold the same key.
    pub signer: NoteSigner,
    /// At most one checkpoint per interval per node.
    pub checkpoint_interval: Duration,
}

impl PostgresConfig {
    pub fn new(url: impl Into<String>, signer: NoteSigner) -> Self {
        PostgresConfig {
            url: url.into(),
            signer,
            checkpoint_interval: Duration::from_secs(1),
        }
    }
}

/// True for URLs this backend opens (`postgres://` or `postgresql://`).
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// The PostgreSQL event store of one node.
pub struct PostgresStore {
    writer: Option<mpsc::Sender<WriterMessage>>,
    writer_health: WriterHealth,
    /// Dropped to stop a read-only store's thread (a writable one stops when
    /// its writer's queue closes).
    close: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    readers: Arc<ReadPool>,
    verifier: NoteVerifier,
    verifier_key: String,
}

impl PostgresStore {
    /// Connects, applies pending migrations, checks the log's format, origin
    /// and signing key, signs a checkpoint if the log has none of its size,
    /// and starts this node's writer.
    pub async fn open(config: PostgresConfig) -> Result<PostgresStore, StoreError> {
        let (runtime, start, thread) = node::start_runtime::<Writer>("ledger-postgres")?;
        let connector = Connector::new(&config.url, runtime.clone())?;
        let writer_health = WriterHealth::default();
        let setup = {
            let connector = connector.clone();
            let health = writer_health.clone();
            let config = config.clone();
            runtime.spawn(async move {
                let mut client = connector.connect().await?;
                migrate(&mut client, config.signer.name()).await?;
                let latest = latest_checkpoint(&client).await?;
                node::check_key(&config.signer.verifier(), latest.as_ref())?;
                let mut writer = Writer {
                    connector,
                    conn: Some(WriterConnection::new(client).await?),
                    sequencer: Sequencer::new(Frontier::new(), OffsetDateTime::UNIX_EPOCH),
                    edge: Edge::default(),
                    cadence: CheckpointCadence::new(
                        config.signer.clone(),
                        config.checkpoint_interval,
                        latest,
                    ),
                    heads: HeadCache::empty(0),
                    node: Uuid::new_v4(),
                    health,
                };
                // Only the largest durable size counts: drop the rows of
                // nodes that opened before (this node's first publish is in
                // its first checkpoint transaction, just below).
                writer
                    .conn
                    .as_ref()
                    .expect("just opened")
                    .client
                    .execute(
                        "DELETE FROM log_durable WHERE size < (SELECT max(size) FROM log_durable)",
                        &[],
                    )
                    .await?;
                // A log that was just created, or whose last batch committed
                // before a crash could sign it, gets its checkpoint now.
                writer.sign_checkpoint().await?;
                Ok::<_, StoreError>(writer)
            })
        };
        let writer = setup.await.map_err(backend)??;
        let (sender, receiver) = mpsc::channel(WRITER_QUEUE_DEPTH);
        start
            .send(node::Start::Writer(Box::new(writer), receiver))
            .map_err(|_| StoreError::Closed)?;
        Ok(PostgresStore {
            writer: Some(sender),
            writer_health,
            close: None,
            thread: Some(thread),
            readers: ReadPool::new(connector),
            verifier: config.signer.verifier(),
            verifier_key: config.signer.verifier_key(),
        })
    }

    /// Opens an existing log for reading only: no writer, no signing, no
    /// migrations. The audit and the read commands use it.
    pub async fn open_read_only(config: PostgresConfig) -> Result<PostgresStore, StoreError> {
        let (runtime, start, thread) = node::start_runtime::<Writer>("ledger-postgres")?;
        let connector = Connector::new(&config.url, runtime)?;
        let (close, closed) = oneshot::channel();
        start
            .send(node::Start::ReadOnly(closed))
            .map_err(|_| StoreError::Closed)?;
        let store = PostgresStore {
            writer: None,
            writer_health: WriterHealth::default(),
            close: Some(close),
            thread: Some(thread),
            readers: ReadPool::new(connector),
            verifier: config.signer.verifier(),
            verifier_key: config.signer.verifier_key(),
        };
        let conn = store.readers.get().await?;
        let origin = conn
            .client
            .query_opt("SELECT value FROM ledger_meta WHERE key = 'origin'", &[])
            .await
            .map_err(|e| match e.as_db_error() {
                // 42P01: undefined_table, the database was never migrated.
                Some(db) if db.code().code() == "42P01" => {
                    StoreError::NoLog(redacted_url(&config.url))
                }
                _ => pg_error(e),
            })?
            .map(|row| row.get::<_, String>(0));
        match origin {
            Some(origin) if origin == config.signer.name() => {}
            Some(origin) => {
                return Err(StoreError::OriginMismatch {
                    stored: origin,
                    given: config.signer.name().to_string(),
                })
            }
            None => return Err(StoreError::NoLog(redacted_url(&config.url))),
        }
        // Reads rely on every migration (the durable size is the third):
        // this node does not migrate, so it refuses an older schema.
        let applied: Option<i32> = conn
            .client
            .query_one("SELECT max(version) FROM schema_migrations", &[])
            .await?
            .get(0);
        let needed = migrations::latest();
        if applied.unwrap_or(0) < needed {
            return Err(StoreError::SchemaBehind {
                applied: applied.unwrap_or(0),
                needed,
            });
        }
        drop(conn);
        Ok(store)
    }

    /// The checkpoint verifier of this log's key.
    pub fn verifier(&self) -> &NoteVerifier {
        &self.verifier
    }

    /// The verifier key in Go note format.
    pub fn verifier_key(&self) -> &str {
        &self.verifier_key
    }

    /// Appends waiting in this node's writer queue (for metrics).
    pub fn queue_depth(&self) -> usize {
        self.writer
            .as_ref()
            .map_or(0, |w| WRITER_QUEUE_DEPTH - w.capacity())
    }

    /// Whether this store was opened read-only (it has no writer).
    fn is_read_only(&self) -> bool {
        self.writer.is_none()
    }

    fn sender(&self) -> Result<&mpsc::Sender<WriterMessage>, StoreError> {
        self.writer.as_ref().ok_or(StoreError::ReadOnly)
    }
}

impl Drop for PostgresStore {
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

#[async_trait]
impl EventStore for PostgresStore {
    async fn append_all(
        &self,
        requests: Vec<AppendRequest>,
    ) -> Result<Vec<Vec<Appended>>, StoreError> {
        sequencer::submit(self.sender()?, requests).await
    }

    async fn size(&self) -> Result<u64, StoreError> {
        self.read_size().await
    }

    async fn read_range(&self, from: u64, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        let from = to_i64(from, "seq")?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read_rows(
            concat!(
                "SELECT seq, id, stream, version, type, leaf FROM events
                 WHERE seq >= $1 AND seq < ",
                durable_size!(),
                " ORDER BY seq LIMIT $2"
            ),
            &[&from, &limit],
        )
        .await?
        .iter()
        .map(event_row)
        .collect()
    }

    async fn read_range_bytes(
        &self,
        from: u64,
        limit: usize,
        leaf_bytes_max: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let from = to_i64(from, "seq")?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let leaf_bytes_max = i64::try_from(leaf_bytes_max.max(1)).unwrap_or(i64::MAX);
        // `before`, the leaf bytes of the page's earlier events, is summed
        // from lengths alone (a TOASTed leaf is not fetched to be measured),
        // so leaves past the budget never leave the server.
        self.read_rows(
            concat!(
                "SELECT seq, id, stream, version, type, leaf FROM (
                     SELECT seq, id, stream, version, type, leaf,
                            sum(octet_length(leaf)) OVER (ORDER BY seq) - octet_length(leaf) AS before
                     FROM events
                     WHERE seq >= $1 AND seq < ",
                durable_size!(),
                " ORDER BY seq LIMIT $2
                 ) page
                 WHERE before < $3 ORDER BY seq"
            ),
            &[&from, &limit, &leaf_bytes_max],
        )
        .await?
        .iter()
        .map(event_row)
        .collect()
    }

    async fn read_seqs(&self, seqs: Vec<u64>) -> Result<Vec<StoredEvent>, StoreError> {
        let wanted = seqs
            .iter()
            .map(|&seq| to_i64(seq, "seq"))
            .collect::<Result<Vec<i64>, _>>()?;
        let events = self
            .read_rows(
                concat!(
                    "SELECT seq, id, stream, version, type, leaf FROM events
                     WHERE seq = ANY($1) AND seq < ",
                    durable_size!(),
                    " ORDER BY seq"
                ),
                &[&wanted],
            )
            .await?
            .iter()
            .map(event_row)
            .collect::<Result<Vec<_>, _>>()?;
        // Rows come back in seq order, so the first mismatch is the first missing seq.
        if let Some(seq) = seqs
            .iter()
            .zip(
                events
                    .iter()
                    .map(|e| Some(e.seq))
                    .chain(std::iter::repeat(None)),
            )
            .find(|(wanted, got)| Some(**wanted) != *got)
            .map(|(wanted, _)| *wanted)
        {
            return Err(super::missing_seq(seq, self.size().await?));
        }
        Ok(events)
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let from = to_i64(from_version, "version")?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read_rows(
            concat!(
                "SELECT seq, id, stream, version, type, leaf FROM events
                 WHERE stream = $1 AND version >= $2 AND seq < ",
                durable_size!(),
                " ORDER BY version LIMIT $3"
            ),
            &[&stream, &from, &limit],
        )
        .await?
        .iter()
        .map(event_row)
        .collect()
    }

    async fn read_stream_bytes(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
        leaf_bytes_max: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let from = to_i64(from_version, "version")?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let leaf_bytes_max = i64::try_from(leaf_bytes_max.max(1)).unwrap_or(i64::MAX);
        // As in `read_range_bytes`: lengths alone are summed.
        self.read_rows(
            concat!(
                "SELECT seq, id, stream, version, type, leaf FROM (
                     SELECT seq, id, stream, version, type, leaf,
                            sum(octet_length(leaf)) OVER (ORDER BY version) - octet_length(leaf) AS before
                     FROM events
                     WHERE stream = $1 AND version >= $2 AND seq < ",
                durable_size!(),
                " ORDER BY version LIMIT $3
                 ) page
                 WHERE before < $4 ORDER BY version"
            ),
            &[&stream, &from, &limit, &leaf_bytes_max],
        )
        .await?
        .iter()
        .map(event_row)
        .collect()
    }

    async fn read_event(&self, id: Uuid) -> Result<Option<StoredEvent>, StoreError> {
        self.read_rows(
            concat!(
                "SELECT seq, id, stream, version, type, leaf FROM events
                 WHERE id = $1 AND seq < ",
                durable_size!()
            ),
            &[&id],
        )
        .await?
        .first()
        .map(event_row)
        .transpose()
    }

    async fn latest_checkpoint(&self) -> Result<Option<SignedCheckpoint>, StoreError> {
        self.read_rows(
            "SELECT size, root, note FROM checkpoints ORDER BY size DESC LIMIT 1",
            &[],
        )
        .await?
        .first()
        .map(checkpoint_row)
        .transpose()
    }

    async fn checkpoint(&self, size: u64) -> Result<Option<SignedCheckpoint>, StoreError> {
        let size = to_i64(size, "tree size")?;
        self.read_rows(
            "SELECT size, root, note FROM checkpoints WHERE size = $1",
            &[&size],
        )
        .await?
        .first()
        .map(checkpoint_row)
        .transpose()
    }

    async fn checkpoints(&self) -> Result<Vec<SignedCheckpoint>, StoreError> {
        self.read_rows(
            "SELECT size, root, note FROM checkpoints ORDER BY size",
            &[],
        )
        .await?
        .iter()
        .map(checkpoint_row)
        .collect()
    }

    async fn newest_checkpoints(&self, limit: usize) -> Result<Vec<SignedCheckpoint>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read_rows(
            "SELECT size, root, note FROM checkpoints ORDER BY size DESC LIMIT $1",
            &[&limit],
        )
        .await?
        .iter()
        .map(checkpoint_row)
        .collect()
    }

    async fn checkpoint_now(&self) -> Result<SignedCheckpoint, StoreError> {
        sequencer::checkpoint_now(self.sender()?).await
    }

    async fn add_cosignatures(
        &self,
        cosignatures: Vec<StoredCosignature>,
    ) -> Result<(), StoreError> {
        self.insert_cosignatures(cosignatures).await
    }

    async fn cosignatures(&self, size: u64) -> Result<Vec<StoredCosignature>, StoreError> {
        self.cosignatures_of(size).await
    }

    async fn latest_cosigned_size(
        &self,
        witnesses: Vec<(String, u32)>,
        quorum: usize,
    ) -> Result<Option<u64>, StoreError> {
        self.latest_size_cosigned_by(witnesses, quorum).await
    }

    fn verifier(&self) -> &NoteVerifier {
        PostgresStore::verifier(self)
    }

    fn verifier_key(&self) -> &str {
        PostgresStore::verifier_key(self)
    }

    fn queue_depth(&self) -> usize {
        PostgresStore::queue_depth(self)
    }

    fn writer_fault(&self) -> Option<String> {
        let queue = self.writer.as_ref()?;
        self.writer_health.fault(queue)
    }

    async fn prove_inclusion(&self, index: u64, size: u64) -> Result<InclusionProof, StoreError> {
        self.check_size("tree size", size).await?;
        check_inclusion_request(index, size)?;
        let leaf_hash = self
            .read_stored_hashes(vec![merkle::stored_hash_index(0, index)])
            .await?[0];
        let proof = self
            .with_reader(|r| merkle::prove_inclusion(index, size, &DynReader(r)))
            .await?;
        Ok(InclusionProof {
            leaf_index: index,
            tree_size: size,
            leaf_hash,
            root_hash: self.root_at(size).await?,
            proof,
        })
    }

    async fn prove_consistency(&self, from: u64, to: u64) -> Result<ConsistencyProof, StoreError> {
        self.check_size("tree size", to).await?;
        check_consistency_request(from, to)?;
        let proof = self
            .with_reader(|r| merkle::prove_consistency(from, to, &DynReader(r)))
            .await?;
        Ok(ConsistencyProof {
            from_size: from,
            to_size: to,
            from_root: self.root_at(from).await?,
            to_root: self.root_at(to).await?,
            proof,
        })
    }

    async fn read_stored_hashes(&self, indexes: Vec<u64>) -> Result<Vec<Hash>, StoreError> {
        self.with_reader(move |r| r.read_hashes(&indexes)).await
    }

    async fn read_stored_hash_range(
        &self,
        start: u64,
        end: u64,
    ) -> Result<Vec<(u64, Hash)>, StoreError> {
        if start >= end {
            return Ok(Vec::new());
        }
        // The events whose appends stored these hashes, and, for events
        // appended before migration 0004_event_hashes, merkle_hashes.
        let (first, _) = merkle::stored_hash_leaf(start);
        let (last, _) = merkle::stored_hash_leaf(end - 1);
        let leaves = [to_i64(first, "seq")?, to_i64(last, "seq")?];
        let indexes = [
            to_i64(start, "stored hash index")?,
            to_i64(end, "stored hash index")?,
        ];
        let leaf_params: [&(dyn ToSql + Sync); 2] = [&leaves[0], &leaves[1]];
        let index_params: [&(dyn ToSql + Sync); 2] = [&indexes[0], &indexes[1]];
        let (inline, legacy) = tokio::try_join!(
            self.read_rows(
                "SELECT seq, hashes FROM events
                 WHERE seq >= $1 AND seq <= $2 AND hashes IS NOT NULL ORDER BY seq",
                &leaf_params,
            ),
            self.read_rows(
                "SELECT idx, hash FROM merkle_hashes WHERE idx >= $1 AND idx < $2 ORDER BY idx",
                &index_params,
            ),
        )?;
        let mut hashes = Vec::with_capacity((end - start) as usize);
        for row in &inline {
            let seq = row.try_get::<_, i64>(0)? as u64;
            let stored: Vec<u8> = row.try_get(1)?;
            let first = merkle::stored_hash_count(seq);
            for (level, hash) in stored.chunks(32).enumerate() {
                let index = first + level as u64;
                if (start..end).contains(&index) {
                    hashes.push((index, hash_from(hash.to_vec(), "a stored Merkle hash")?));
                }
            }
        }
        for row in &legacy {
            let index: i64 = row.try_get(0)?;
            hashes.push((
                index as u64,
                hash_from(row.try_get(1)?, "a stored Merkle hash")?,
            ));
        }
        hashes.sort_unstable_by_key(|(index, _)| *index);
        Ok(hashes)
    }
}
