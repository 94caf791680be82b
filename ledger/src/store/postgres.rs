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
//! (schemas/sql/postgres/0003_durable_size.sql).
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

use crate::checkpoint::{NoteSigner, NoteVerifier};
use crate::merkle::{self, Frontier, Hash, HashReader, MerkleError};
use crate::store::head_cache::HeadCache;
use crate::store::node;
use crate::store::sequencer::{
    self, Batch, CheckpointCadence, ClientResult, PrefetchedView, PreparedRequest, Sequencer,
    WriterHealth, WriterMessage, WRITER_QUEUE_DEPTH,
};
use crate::store::{
    check_consistency_request, check_inclusion_request, AppendRequest, Appended, ConsistencyProof,
    EventStore, InclusionProof, SignedCheckpoint, StoreError, StoredEvent,
};
use async_trait::async_trait;
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, GenericClient, NoTls, Row, Statement};
use uuid::Uuid;

/// The on-disk format this code writes (the same envelope and tree as the
/// embedded store's format 1); opening another is refused.
const FORMAT_VERSION: &str = "1";
/// Session advisory lock held while migrations run, so that nodes starting
/// at once apply each migration exactly once (the bytes spell "ledgerln").
const MIGRATION_LOCK_KEY: i64 = 0x6c65_6467_6572_6c6e;
/// Read connections open at once per node; further reads wait their turn.
pub const READERS_MAX: usize = 16;
/// Idle read connections kept open.
pub const READERS_IDLE_MAX: usize = 8;
/// How long a connection attempt may take before the call fails.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an append waits for another node's head lock before failing
/// (a node stuck mid-transaction must not stall the others forever).
const LOCK_TIMEOUT: &str = "30s";
/// The server ends a writer session that sits inside a transaction this
/// long, releasing the head lock of a node that froze or lost its network.
const IDLE_IN_TRANSACTION_TIMEOUT: &str = "60s";
/// Passes over a Merkle function while fetching the hashes it asks for
/// (each function reads in one batch, so two passes suffice; see
/// [`with_stored_hashes`]).
const HASH_FETCH_PASSES_MAX: usize = 4;

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

fn backend(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(error.to_string())
}

/// PostgreSQL's own message where there is one (tokio-postgres' `Display`
/// says only "db error"), and a plain word when the server went away.
fn pg_error(error: tokio_postgres::Error) -> StoreError {
    if let Some(db) = error.as_db_error() {
        return StoreError::Backend(format!(
            "PostgreSQL refused: {} (SQLSTATE {})",
            db.message(),
            db.code().code()
        ));
    }
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    if error.is_closed() {
        message.push_str(" (the PostgreSQL connection was lost; it is reopened on the next call)");
    }
    StoreError::Backend(format!("PostgreSQL: {message}"))
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(error: tokio_postgres::Error) -> Self {
        pg_error(error)
    }
}

/// Opens connections, driven by the store's own runtime.
#[derive(Clone)]
struct Connector {
    config: tokio_postgres::Config,
    runtime: Handle,
}

impl Connector {
    fn new(url: &str, runtime: Handle) -> Result<Connector, StoreError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            backend(format!(
                "{url:?} is not a PostgreSQL URL ({e}); expected postgres://USER@HOST:PORT/DATABASE"
            ))
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        // Notice a dead server or network on an idle connection in seconds,
        // not after the kernel's two-hour default.
        config.keepalives(true);
        config.keepalives_idle(Duration::from_secs(10));
        config.application_name("ledgerline");
        Ok(Connector { config, runtime })
    }

    async fn connect(&self) -> Result<Client, StoreError> {
        let config = self.config.clone();
        self.runtime
            .spawn(async move {
                let (client, connection) = config.connect(NoTls).await?;
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::warn!("PostgreSQL connection ended: {e}");
                    }
                });
                Ok::<_, tokio_postgres::Error>(client)
            })
            .await
            .map_err(|_| StoreError::Closed)?
            .map_err(pg_error)
    }
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
                return Err(backend(format!(
                    "this log's origin is {origin:?}, not {:?}; pass --origin {origin:?}",
                    config.signer.name()
                )))
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
        let needed = schemas::POSTGRES_MIGRATIONS
            .last()
            .map_or(0, |(version, _, _)| *version);
        if applied.unwrap_or(0) < needed {
            return Err(backend(format!(
                "this log's schema is at migration {}, and reading it needs migration {needed}; open it once with a writing node (`ledgerline serve`, or any append) to migrate it",
                applied.unwrap_or(0)
            )));
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

/// The URL without its password, for messages.
fn redacted_url(url: &str) -> String {
    match url.parse::<tokio_postgres::Config>() {
        Ok(config) => {
            let hosts: Vec<String> = config
                .get_hosts()
                .iter()
                .map(|host| match host {
                    tokio_postgres::config::Host::Tcp(name) => name.clone(),
                    tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
                })
                .collect();
            format!(
                "PostgreSQL database {:?} on {}",
                config.get_dbname().unwrap_or("(default)"),
                hosts.join(",")
            )
        }
        Err(_) => "the PostgreSQL database".to_string(),
    }
}

/// Connects and applies pending migrations, as [`PostgresStore::open`]
/// does, without starting a node: for commands that need the database's
/// other tables (the HTTP API's keys) before any node has run.
pub async fn migrate_database(url: &str, origin: &str) -> Result<(), StoreError> {
    let connector = Connector::new(url, Handle::current())?;
    let mut client = connector.connect().await?;
    migrate(&mut client, origin).await
}

/// Applies every migration not yet recorded in `schema_migrations`, under a
/// session advisory lock so that nodes starting at once take turns (the
/// second finds the work done), then checks the log's format and origin.
async fn migrate(client: &mut Client, origin: &str) -> Result<(), StoreError> {
    client
        .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK_KEY])
        .await?;
    let outcome = apply_migrations(client, origin).await;
    let unlocked = client
        .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK_KEY])
        .await;
    outcome?;
    unlocked?;
    Ok(())
}

async fn apply_migrations(client: &mut Client, origin: &str) -> Result<(), StoreError> {
    client
        .batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                version    integer PRIMARY KEY,
                name       text NOT NULL,
                applied_at timestamptz NOT NULL DEFAULT now()
            )",
        )
        .await?;
    let applied: HashSet<i32> = client
        .query("SELECT version FROM schema_migrations", &[])
        .await?
        .iter()
        .map(|row| row.get(0))
        .collect();
    let known: HashSet<i32> = schemas::POSTGRES_MIGRATIONS
        .iter()
        .map(|(version, _, _)| *version)
        .collect();
    if let Some(newer) = applied.difference(&known).max() {
        return Err(backend(format!(
            "the database has schema migration {newer}, which this ledgerline does not know; run a newer ledgerline"
        )));
    }
    for (version, name, ddl) in schemas::POSTGRES_MIGRATIONS {
        if applied.contains(version) {
            continue;
        }
        tracing::info!(version, name, "applying PostgreSQL migration");
        let transaction = client.transaction().await?;
        transaction.batch_execute(ddl).await?;
        transaction
            .execute(
                "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)",
                &[version, name],
            )
            .await?;
        transaction.commit().await?;
    }
    client
        .execute(
            "INSERT INTO ledger_meta (key, value) VALUES ('format_version', $1), ('origin', $2)
             ON CONFLICT (key) DO NOTHING",
            &[&FORMAT_VERSION, &origin],
        )
        .await?;
    let meta: HashMap<String, String> = client
        .query("SELECT key, value FROM ledger_meta", &[])
        .await?
        .iter()
        .map(|row| (row.get(0), row.get(1)))
        .collect();
    let format = meta.get("format_version").map_or("", String::as_str);
    if format != FORMAT_VERSION {
        return Err(backend(format!(
            "the log is in format {format:?}; this ledgerline reads format {FORMAT_VERSION}"
        )));
    }
    let stored = meta.get("origin").map_or("", String::as_str);
    if stored != origin {
        return Err(backend(format!(
            "this log's origin is {stored:?}, not {origin:?}; pass --origin {stored:?} or use another database"
        )));
    }
    Ok(())
}

fn hash_from(bytes: Vec<u8>, what: &str) -> Result<Hash, StoreError> {
    bytes.try_into().map_err(|bytes: Vec<u8>| {
        StoreError::Corrupt(format!("{what} is {} bytes, not 32", bytes.len()))
    })
}

fn to_i64(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::OutOfRange {
        what: format!("{what} {value}"),
        size: i64::MAX as u64,
    })
}

const EVENT_COLUMNS: &str = "seq, id, stream, version, type, leaf";

/// The log's durable size, as a subquery: no read of events goes past it
/// (schemas/sql/postgres/0003_durable_size.sql).
macro_rules! durable_size {
    () => {
        "(SELECT coalesce(max(size), 0) FROM log_durable)"
    };
}

/// Publishes the log's size as this node sees it, as the node's row of
/// `log_durable`. Run in a durable transaction only: its commit flushes the
/// WAL up to its own commit record, so every event the statement could see
/// is durable once it commits, and only then does the row become visible.
const PUBLISH_DURABLE_SIZE: &str =
    "INSERT INTO log_durable (node, size) SELECT $1, size FROM log_head
     ON CONFLICT (node) DO UPDATE SET size = greatest(log_durable.size, excluded.size)";

fn event_row(row: &Row) -> Result<StoredEvent, StoreError> {
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

fn checkpoint_row(row: &Row) -> Result<SignedCheckpoint, StoreError> {
    let size: i64 = row.try_get(0)?;
    Ok(SignedCheckpoint {
        size: size as u64,
        root: hash_from(row.try_get(1)?, "a checkpoint root")?,
        note: row.try_get(2)?,
    })
}

async fn latest_checkpoint(
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

/// Stored hashes fetched so far for one Merkle computation.
#[derive(Default)]
struct FetchedHashes {
    known: HashMap<u64, Hash>,
    /// Indexes asked for and not stored.
    absent: HashSet<u64>,
}

/// A [`HashReader`] over [`FetchedHashes`] that notes which indexes it lacks.
struct RecordingReader<'a> {
    fetched: &'a FetchedHashes,
    wanted: RefCell<Vec<u64>>,
}

impl HashReader for RecordingReader<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, MerkleError> {
        let mut hashes = Vec::with_capacity(indexes.len());
        let mut first_missing = None;
        for &index in indexes {
            match self.fetched.known.get(&index) {
                Some(hash) => hashes.push(*hash),
                None if self.fetched.absent.contains(&index) => {
                    return Err(MerkleError::MissingHash(index))
                }
                None => {
                    self.wanted.borrow_mut().push(index);
                    first_missing.get_or_insert(index);
                }
            }
        }
        match first_missing {
            Some(index) => Err(MerkleError::MissingHash(index)),
            None => Ok(hashes),
        }
    }
}

/// Runs a pure Merkle function (which reads through the synchronous
/// [`HashReader`]) over hashes read asynchronously. Every function in
/// [`merkle`] asks for all its hashes in one call, so the first pass learns
/// the indexes, one query fetches them, and the second pass succeeds.
async fn with_stored_hashes<R>(
    client: &impl GenericClient,
    f: impl Fn(&dyn HashReader) -> Result<R, MerkleError>,
) -> Result<R, StoreError> {
    let mut fetched = FetchedHashes::default();
    for _ in 0..HASH_FETCH_PASSES_MAX {
        let wanted = {
            let reader = RecordingReader {
                fetched: &fetched,
                wanted: RefCell::new(Vec::new()),
            };
            match f(&reader) {
                Ok(result) => return Ok(result),
                Err(error) => {
                    let wanted = reader.wanted.into_inner();
                    if wanted.is_empty() {
                        return Err(error.into());
                    }
                    wanted
                }
            }
        };
        for (index, hash) in read_stored_hashes(client, &wanted).await? {
            fetched.known.insert(index, hash);
        }
        for index in wanted {
            if !fetched.known.contains_key(&index) {
                fetched.absent.insert(index);
            }
        }
    }
    Err(StoreError::Corrupt(format!(
        "a Merkle computation still lacked hashes after {HASH_FETCH_PASSES_MAX} reads"
    )))
}

/// The stored hashes at `indexes` that exist, from the rows of the events
/// whose appends stored them, or from `merkle_hashes` for events appended
/// before migration `0004_event_hashes`.
async fn read_stored_hashes(
    client: &impl GenericClient,
    indexes: &[u64],
) -> Result<Vec<(u64, Hash)>, StoreError> {
    let mut wanted = Vec::with_capacity(indexes.len());
    let mut seqs = Vec::with_capacity(indexes.len());
    let mut levels = Vec::with_capacity(indexes.len());
    for &index in indexes {
        let (leaf, level) = merkle::stored_hash_leaf(index);
        wanted.push(to_i64(index, "stored hash index")?);
        seqs.push(to_i64(leaf, "seq")?);
        levels.push(i32::from(level));
    }
    let rows = client
        .query(
            "SELECT w.idx, coalesce(substring(e.hashes FROM w.level * 32 + 1 FOR 32), m.hash)
             FROM unnest($1::bigint[], $2::bigint[], $3::integer[]) AS w(idx, seq, level)
             LEFT JOIN events e ON e.seq = w.seq
             LEFT JOIN merkle_hashes m ON e.hashes IS NULL AND m.idx = w.idx",
            &[&wanted, &seqs, &levels],
        )
        .await?;
    let mut found = Vec::with_capacity(rows.len());
    for row in rows {
        let index: i64 = row.try_get(0)?;
        if let Some(hash) = row.try_get::<_, Option<Vec<u8>>>(1)? {
            found.push((index as u64, hash_from(hash, "a stored Merkle hash")?));
        }
    }
    Ok(found)
}

/// Adapts `&dyn HashReader` to the `&impl HashReader` the Merkle functions take.
struct DynReader<'a>(&'a dyn HashReader);

impl HashReader for DynReader<'_> {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, MerkleError> {
        self.0.read_hashes(indexes)
    }
}

/// The stored-hash indexes of the complete subtrees that make up the
/// frontier of the tree of `size` leaves, in the order [`Frontier::load`]
/// reads them (largest subtree first).
fn frontier_indexes(size: u64) -> Vec<u64> {
    let nothing = FetchedHashes::default();
    let reader = RecordingReader {
        fetched: &nothing,
        wanted: RefCell::new(Vec::new()),
    };
    // It fails for want of the hashes; what it asked for is the answer.
    let _ = Frontier::load(size, &DynReader(&reader));
    reader.wanted.into_inner()
}

/// A frontier as the head row stores it: (stored hash index, hash) of each
/// complete subtree, largest first.
#[derive(Debug, Clone, Default)]
struct Edge(Vec<(u64, Hash)>);

impl Edge {
    fn from_bytes(size: u64, bytes: Vec<u8>) -> Result<Edge, StoreError> {
        let indexes = frontier_indexes(size);
        if bytes.len() != indexes.len() * 32 {
            return Err(StoreError::Corrupt(format!(
                "log_head.frontier holds {} bytes; a tree of {size} leaves needs {}",
                bytes.len(),
                indexes.len() * 32
            )));
        }
        let hashes = bytes
            .chunks_exact(32)
            .map(|chunk| hash_from(chunk.to_vec(), "a frontier hash"));
        Ok(Edge(
            indexes
                .into_iter()
                .zip(hashes)
                .map(|(index, hash)| hash.map(|hash| (index, hash)))
                .collect::<Result<_, _>>()?,
        ))
    }

    fn to_bytes(&self) -> Vec<u8> {
        self.0.iter().flat_map(|(_, hash)| *hash).collect()
    }

    fn frontier(&self, size: u64) -> Result<Frontier, StoreError> {
        let fetched = FetchedHashes {
            known: self.0.iter().copied().collect(),
            absent: HashSet::new(),
        };
        let reader = RecordingReader {
            fetched: &fetched,
            wanted: RefCell::new(Vec::new()),
        };
        Ok(Frontier::load(size, &DynReader(&reader))?)
    }

    /// The edge of the tree grown to `size` by appending leaves whose new
    /// stored hashes (ascending by index) are `added`. A complete subtree of
    /// the new frontier is either new or was already one of the old
    /// frontier's (a subtree that is maximal in the larger tree was maximal
    /// in the smaller one too).
    fn advance(&self, size: u64, added: &[(u64, Hash)]) -> Result<Edge, StoreError> {
        frontier_indexes(size)
            .into_iter()
            .map(|index| {
                let hash = match added.binary_search_by_key(&index, |(i, _)| *i) {
                    Ok(position) => added[position].1,
                    Err(_) => self
                        .0
                        .iter()
                        .find(|(i, _)| *i == index)
                        .map(|(_, hash)| *hash)
                        .ok_or_else(|| {
                            StoreError::Corrupt(format!(
                                "frontier hash {index} of the tree of {size} leaves is unknown"
                            ))
                        })?,
                };
                Ok((index, hash))
            })
            .collect::<Result<_, _>>()
            .map(Edge)
    }
}

/// A group of events as the column arrays of one multi-row insert, each
/// with the Merkle hashes its append stored (`events.hashes`, migration
/// `0004_event_hashes`).
struct EventRows<'a> {
    seqs: Vec<i64>,
    ids: Vec<Uuid>,
    streams: Vec<&'a str>,
    versions: Vec<i64>,
    types: Vec<&'a str>,
    leaves: Vec<&'a [u8]>,
    hashes: Vec<Vec<u8>>,
}

/// The hashes the append of leaf `seq` stored (`1 + trailing_ones(seq)`,
/// from `stored_hash_count(seq)` on), concatenated, taken from the front of
/// `stored`; `None` if `stored` does not hold exactly those next.
fn stored_by<'a>(seq: u64, stored: &mut impl Iterator<Item = &'a (u64, Hash)>) -> Option<Vec<u8>> {
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
const INSERT_EVENTS: &str = "INSERT INTO events (seq, id, stream, version, type, leaf, hashes)
     SELECT * FROM unnest($1::bigint[], $2::uuid[], $3::text[], $4::bigint[], $5::text[], $6::bytea[], $7::bytea[])";

impl<'a> EventRows<'a> {
    /// `events` (consecutive seqs) and `stored`, the hashes their appends
    /// stored, in order (what [`Frontier::append`] produced for them).
    fn new(events: &'a [StoredEvent], stored: &[(u64, Hash)]) -> Result<EventRows<'a>, StoreError> {
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
    fn params(&self) -> [&(dyn ToSql + Sync); 7] {
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

/// The writer's statements, prepared once per connection.
struct WriteStatements {
    lock_head: Statement,
    events_by_id: Statement,
    stream_heads: Statement,
    events_since: Statement,
    write_rows: Statement,
    insert_checkpoint: Statement,
    checkpoint_by_size: Statement,
    publish_durable_size: Statement,
}

/// The writer's connection: durable commits, bounded lock waits.
struct WriterConnection {
    client: Client,
    statements: WriteStatements,
}

impl WriterConnection {
    async fn new(client: Client) -> Result<WriterConnection, StoreError> {
        // An acknowledged append must survive a server crash, whatever the
        // server's default (the append transaction alone opts out, and the
        // durable publish that follows it is what makes it safe); and no
        // node may hold the head lock forever.
        client
            .batch_execute(&format!(
                "SET synchronous_commit = on;
                 SET lock_timeout = '{LOCK_TIMEOUT}';
                 SET idle_in_transaction_session_timeout = '{IDLE_IN_TRANSACTION_TIMEOUT}';"
            ))
            .await?;
        let statements = WriteStatements {
            lock_head: client
                .prepare(
                    "SELECT size, frontier, last_time FROM log_head WHERE singleton FOR UPDATE",
                )
                .await?,
            events_by_id: client
                .prepare(&format!(
                    "SELECT {EVENT_COLUMNS} FROM events WHERE id = ANY($1)"
                ))
                .await?,
            // One index probe per stream, for the stream's last event.
            stream_heads: client
                .prepare(
                    "SELECT s.stream, e.version, e.leaf
                     FROM unnest($1::text[]) AS s(stream)
                     CROSS JOIN LATERAL (
                         SELECT version, leaf FROM events
                         WHERE events.stream = s.stream
                         ORDER BY version DESC LIMIT 1
                     ) AS e",
                )
                .await?,
            // What was committed from seq $1 on (at most $2 events): read
            // under the head lock, it brings this node's stream heads, and
            // lookups made before the lock, up to date.
            events_since: client
                .prepare(&format!(
                    "SELECT {EVENT_COLUMNS} FROM events
                     WHERE seq >= $1 AND seq < $1 + $2 ORDER BY seq"
                ))
                .await?,
            // The whole group commit in one statement, run while the head
            // lock is held: the events (arrays, one row each, with their
            // stored hashes) and the new head.
            write_rows: client
                .prepare(&format!(
                    "WITH new_events AS ({INSERT_EVENTS})
                     UPDATE log_head SET size = $8, frontier = $9, last_time = $10 WHERE singleton"
                ))
                .await?,
            insert_checkpoint: client
                .prepare(
                    "INSERT INTO checkpoints (size, root, note) VALUES ($1, $2, $3)
                     ON CONFLICT (size) DO NOTHING",
                )
                .await?,
            checkpoint_by_size: client
                .prepare("SELECT size, root, note FROM checkpoints WHERE size = $1")
                .await?,
            publish_durable_size: client.prepare(PUBLISH_DURABLE_SIZE).await?,
        };
        Ok(WriterConnection { client, statements })
    }
}

/// How many seqs `events_since` reads under the head lock. A node whose
/// stream heads are older than that (it was idle while others appended)
/// forgets them and looks up what its commit needs, under the lock.
const CATCH_UP_EVENTS_MAX: i64 = 1024;

/// What a group commit must look up: the events of client-given ids (for
/// idempotent retries) and the heads of streams this node does not
/// remember.
#[derive(Default)]
struct Unknown {
    ids: Vec<Uuid>,
    streams: Vec<String>,
}

impl Unknown {
    /// What `clients` need that `heads` does not hold and `asked` did not
    /// already look up.
    fn of(clients: &[Vec<PreparedRequest>], heads: &HeadCache, asked: &Unknown) -> Unknown {
        let (ids, streams) = sequencer::lookups(clients);
        let asked_ids: HashSet<&Uuid> = asked.ids.iter().collect();
        let asked_streams: HashSet<&str> = asked.streams.iter().map(String::as_str).collect();
        Unknown {
            ids: ids
                .into_iter()
                .filter(|id| !asked_ids.contains(id))
                .collect(),
            streams: streams
                .into_iter()
                .filter(|s| heads.get(s).is_none() && !asked_streams.contains(s.as_str()))
                .collect(),
        }
    }

    fn is_empty(&self) -> bool {
        self.ids.is_empty() && self.streams.is_empty()
    }
}

/// The events with the given ids and the last event of each given stream.
async fn lookup(
    conn: &WriterConnection,
    unknown: &Unknown,
) -> Result<(Vec<Row>, Vec<Row>), tokio_postgres::Error> {
    let (client, statements) = (&conn.client, &conn.statements);
    let id_params: [&(dyn ToSql + Sync); 1] = [&unknown.ids];
    let stream_params: [&(dyn ToSql + Sync); 1] = [&unknown.streams];
    tokio::try_join!(
        async {
            if unknown.ids.is_empty() {
                return Ok(Vec::new());
            }
            client.query(&statements.events_by_id, &id_params).await
        },
        async {
            if unknown.streams.is_empty() {
                return Ok(Vec::new());
            }
            client.query(&statements.stream_heads, &stream_params).await
        },
    )
}

/// This node's single writer: the sequencer, the signer and the write
/// connection (reopened after it is lost).
struct Writer {
    connector: Connector,
    conn: Option<WriterConnection>,
    sequencer: Sequencer,
    /// The sequencer's frontier as stored hashes, kept beside it for the head row.
    edge: Edge,
    cadence: CheckpointCadence,
    /// Stream heads this node has seen, exact as of their own tree size.
    heads: HeadCache,
    /// This node's row of `log_durable`.
    node: Uuid,
    health: WriterHealth,
}

impl node::NodeWriter for Writer {
    async fn commit_batch(&mut self, batch: Batch, more: &mut mpsc::Receiver<WriterMessage>) {
        Writer::commit_batch(self, batch, more).await
    }
    async fn sign_checkpoint(&mut self) -> Result<(), StoreError> {
        Writer::sign_checkpoint(self).await
    }
    fn cadence(&mut self) -> &mut CheckpointCadence {
        &mut self.cadence
    }
    fn health(&self) -> &WriterHealth {
        &self.health
    }
    fn size(&self) -> u64 {
        self.sequencer.frontier().size()
    }
}

impl Writer {
    /// The write connection, opened again if it was lost.
    async fn take_connection(&mut self) -> Result<WriterConnection, StoreError> {
        match self.conn.take() {
            Some(conn) if !conn.client.is_closed() => Ok(conn),
            _ => WriterConnection::new(self.connector.connect().await?).await,
        }
    }

    /// Keeps what [`lookup`] found for `asked`: the events by id in
    /// `found`, the stream heads (and the streams that do not exist) in
    /// this node's memory.
    fn remember(
        &mut self,
        asked: &Unknown,
        (by_id, heads): &(Vec<Row>, Vec<Row>),
        found: &mut HashMap<Uuid, StoredEvent>,
    ) -> Result<(), StoreError> {
        for row in by_id {
            let event = event_row(row)?;
            found.insert(event.id, event);
        }
        for stream in &asked.streams {
            self.heads.remember(stream.clone(), None);
        }
        for row in heads {
            let stream: String = row.try_get(0)?;
            let version: i64 = row.try_get(1)?;
            let leaf: Vec<u8> = row.try_get(2)?;
            self.heads
                .remember(stream, Some((version as u64, merkle::leaf_hash(&leaf))));
        }
        Ok(())
    }

    /// One group commit: every append in `batch`, and those that reach
    /// `more` while this node waits for the head lock, one transaction.
    async fn commit_batch(&mut self, mut batch: Batch, more: &mut mpsc::Receiver<WriterMessage>) {
        let before = (self.sequencer.clone(), self.edge.clone());
        let outcome = match self.take_connection().await {
            Ok(mut conn) => {
                let outcome = self.write(&mut conn, &mut batch, more).await;
                // After a failure the transaction's state is unknown: start
                // the next one on a fresh connection.
                if outcome.is_ok() {
                    self.conn = Some(conn);
                }
                outcome
            }
            Err(error) => Err(error),
        };
        if let Err(error) = &outcome {
            // Nothing this node planned is known to be committed: forget it.
            // If the commit did land (the reply was lost), the head has moved
            // and the next transaction reloads the frontier from the log.
            (self.sequencer, self.edge) = before;
            self.heads.forget(self.sequencer.frontier().size());
            tracing::error!("group commit failed: {error}");
        }
        self.health.record(&outcome);
        batch.answer(outcome, self.cadence.latest());
    }

    /// One group commit in two round trips, the head lock held from the end
    /// of the first to the `COMMIT` in the second (and a third, under the
    /// lock, when appends need heads or ids this node has not seen):
    ///
    /// 1. Before the lock, the ids and stream heads this node does not
    ///    remember are looked up; then the lock, and behind it the events
    ///    other nodes committed since this node's stream heads were exact
    ///    (each statement of a READ COMMITTED transaction reads a snapshot
    ///    taken when it starts, so that read, queued behind the lock, sees
    ///    every earlier commit). The lookups thus run while another node
    ///    may still hold the lock, not inside this node's turn.
    /// 2. Once the lock is held, appends that arrived meanwhile join the
    ///    batch; then the rows, the head, the COMMIT (which does not wait
    ///    for its WAL flush, so the lock is free at once) and the durable
    ///    publish of the log's size go out together. The clients are
    ///    answered once the publish, and so the flush, is done.
    async fn write(
        &mut self,
        conn: &mut WriterConnection,
        batch: &mut Batch,
        more: &mut mpsc::Receiver<WriterMessage>,
    ) -> Result<Vec<ClientResult>, StoreError> {
        let (client, statements) = (&conn.client, &conn.statements);
        let node = self.node;
        let publish: [&(dyn ToSql + Sync); 1] = [&node];
        let known = self.heads.size();
        let asked = Unknown::of(&batch.clients, &self.heads, &Unknown::default());
        let since_params: [&(dyn ToSql + Sync); 2] =
            [&to_i64(known, "tree size")?, &CATCH_UP_EVENTS_MAX];
        let (_, looked_up, head, since) = tokio::try_join!(
            // The commit releases the head lock without waiting for its WAL
            // flush; the durable publish after it waits (see below).
            client.batch_execute("BEGIN; SET LOCAL synchronous_commit = off"),
            lookup(conn, &asked),
            client.query_one(&statements.lock_head, &[]),
            client.query(&statements.events_since, &since_params),
        )?;
        batch.top_up(more);
        let clients = std::mem::take(&mut batch.clients);
        self.catch_up(&head)?;
        let head_size = head.try_get::<_, i64>(0)? as u64;
        let mut found = HashMap::new();
        let behind = head_size.checked_sub(known);
        let late = if behind.is_some_and(|n| n <= CATCH_UP_EVENTS_MAX as u64) {
            self.remember(&asked, &looked_up, &mut found)?;
            if Some(since.len() as u64) != behind {
                return Err(StoreError::Corrupt(format!(
                    "the log holds {} events from seq {known} to its size {head_size}: a gap",
                    since.len()
                )));
            }
            let asked_ids: HashSet<Uuid> = asked.ids.iter().copied().collect();
            let mut events = Vec::with_capacity(since.len());
            for row in &since {
                let version: i64 = row.try_get(3)?;
                events.push((row.try_get(2)?, version as u64, row.try_get(5)?));
                // A retry of an append that another node committed since
                // the lookup.
                if asked_ids.contains(&row.try_get(1)?) {
                    let event = event_row(row)?;
                    found.insert(event.id, event);
                }
            }
            self.heads.catch_up(head_size, events);
            // What the appends that joined after the lock still need.
            Unknown::of(&clients, &self.heads, &asked)
        } else {
            // This node was further behind than `events_since` reads: what
            // it looked up may be stale, so look everything up again.
            self.heads.forget(head_size);
            Unknown::of(&clients, &self.heads, &Unknown::default())
        };
        if !late.is_empty() {
            let looked_up = lookup(conn, &late).await?;
            self.remember(&late, &looked_up, &mut found)?;
        }
        let mut view = PrefetchedView {
            events_by_id: found,
            stream_heads: HashMap::new(),
        };
        for request in clients.iter().flatten() {
            if let Some(Some(head)) = self.heads.get(&request.stream) {
                view.stream_heads.insert(request.stream.clone(), head);
            }
        }
        let checkpoint_now = batch.checkpoint_requested();
        let plan = self
            .sequencer
            .plan(&mut view, clients, OffsetDateTime::now_utc())?;
        let size = self.sequencer.frontier().size();
        let checkpoint_due = (checkpoint_now || self.cadence.due()) && self.cadence.pending(size);
        if plan.events.is_empty() && !checkpoint_due {
            // Retries and refusals only, answered from what this
            // transaction read, which may not be durable yet: publish too.
            tokio::try_join!(
                client.batch_execute("COMMIT"),
                client.execute(&statements.publish_durable_size, &publish),
            )?;
            return Ok(plan.results);
        }
        let rows = EventRows::new(&plan.events, &plan.hashes)?;
        self.edge = self.edge.advance(size, &plan.hashes)?;
        let frontier_bytes = self.edge.to_bytes();
        let last_time = match plan.events.last() {
            Some(event) => Some(event.header()?.time.into_owned()),
            None => head.try_get::<_, Option<String>>(2)?,
        };
        let new_size = to_i64(size, "tree size")?;
        let [seqs, ids, streams, versions, types, leaves, hashes] = rows.params();
        let params: [&(dyn ToSql + Sync); 10] = [
            seqs,
            ids,
            streams,
            versions,
            types,
            leaves,
            hashes,
            &new_size,
            &frontier_bytes,
            &last_time,
        ];
        let has_events = !plan.events.is_empty();
        let write_rows = async {
            if has_events {
                client.execute(&statements.write_rows, &params).await?;
            }
            Ok::<_, tokio_postgres::Error>(())
        };
        if checkpoint_due {
            // Rare (once per interval): store and check the checkpoint
            // before committing, so a conflict commits nothing. A
            // checkpoint is only ever committed durably, with the size it
            // covers published in the same transaction.
            write_rows.await?;
            let checkpoint = self.insert_checkpoint(client, statements).await?;
            tokio::try_join!(
                client.batch_execute("SET LOCAL synchronous_commit = on"),
                client.execute(&statements.publish_durable_size, &publish),
                client.batch_execute("COMMIT"),
            )?;
            self.cadence.record(checkpoint);
        } else {
            // The rows, the COMMIT (which releases the lock at once) and
            // the durable publish go out together; the answer waits for the
            // publish, that is for the WAL flush that covers this commit.
            // If a statement fails the transaction is aborted, COMMIT only
            // rolls it back, and the failure is what the caller sees; the
            // publish then states only what was committed anyway.
            tokio::try_join!(
                write_rows,
                client.batch_execute("COMMIT"),
                client.execute(&statements.publish_durable_size, &publish),
            )?;
        }
        self.heads.committed(size, &plan.events);
        Ok(plan.results)
    }

    /// Another node appended since this writer's last transaction: the head
    /// lock is held now, and the locked row carries the frontier and the
    /// log's clock, so this writer becomes current without another read.
    fn catch_up(&mut self, head: &Row) -> Result<(), StoreError> {
        let size = head.try_get::<_, i64>(0)? as u64;
        if size == self.sequencer.frontier().size() {
            return Ok(());
        }
        tracing::debug!(
            size,
            "the log grew on another node; taking its frontier from the head row"
        );
        let edge = Edge::from_bytes(size, head.try_get(1)?)?;
        let last_time = match head.try_get::<_, Option<String>>(2)? {
            Some(text) => {
                OffsetDateTime::parse(&text, &time::format_description::well_known::Rfc3339)
                    .map_err(|e| StoreError::Corrupt(format!("log_head.last_time {text:?}: {e}")))?
            }
            None => OffsetDateTime::now_utc(),
        };
        self.sequencer = Sequencer::new(edge.frontier(size)?, last_time);
        self.edge = edge;
        Ok(())
    }

    /// Signs and stores a checkpoint of the whole committed log, under the
    /// head lock, if none of its size exists yet.
    async fn sign_checkpoint(&mut self) -> Result<(), StoreError> {
        let conn = self.take_connection().await?;
        let node = self.node;
        let outcome = async {
            let (client, statements) = (&conn.client, &conn.statements);
            let publish: [&(dyn ToSql + Sync); 1] = [&node];
            let (_, head) = tokio::try_join!(
                client.batch_execute("BEGIN"),
                client.query_one(&statements.lock_head, &[]),
            )?;
            self.catch_up(&head)?;
            let checkpoint = if self.cadence.pending(self.sequencer.frontier().size()) {
                Some(self.insert_checkpoint(client, statements).await?)
            } else {
                None
            };
            // A durable transaction (the connection's default): the
            // checkpoint and the size it covers become visible together.
            tokio::try_join!(
                client.execute(&statements.publish_durable_size, &publish),
                client.batch_execute("COMMIT"),
            )?;
            if let Some(checkpoint) = checkpoint {
                self.cadence.record(checkpoint);
            }
            Ok::<_, StoreError>(())
        }
        .await;
        if outcome.is_ok() {
            self.conn = Some(conn);
        }
        outcome
    }

    /// Stores this node's signature of the current tree, or, when another
    /// node signed this size first, returns that one after checking it is
    /// the same note (Ed25519 signatures are deterministic, so a node with
    /// the same key signs the very same bytes).
    async fn insert_checkpoint(
        &self,
        transaction: &Client,
        statements: &WriteStatements,
    ) -> Result<SignedCheckpoint, StoreError> {
        let checkpoint = self.cadence.sign(self.sequencer.frontier());
        let size = to_i64(checkpoint.size, "tree size")?;
        let inserted = transaction
            .execute(
                &statements.insert_checkpoint,
                &[&size, &checkpoint.root.as_slice(), &checkpoint.note],
            )
            .await?;
        if inserted == 0 {
            let row = transaction
                .query_one(&statements.checkpoint_by_size, &[&size])
                .await?;
            let stored = checkpoint_row(&row)?;
            if stored != checkpoint {
                return Err(StoreError::Corrupt(format!(
                    "a different checkpoint of size {} is stored (root {}, ours {}); nodes of one log must share one key and one log",
                    checkpoint.size,
                    hex::encode(stored.root),
                    hex::encode(checkpoint.root)
                )));
            }
        }
        Ok(checkpoint)
    }
}

/// A read connection with its prepared statements.
struct ReadConnection {
    client: Client,
    statements: HashMap<&'static str, Statement>,
}

impl ReadConnection {
    async fn query(
        &mut self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let statement = match self.statements.get(sql) {
            Some(statement) => statement.clone(),
            None => {
                let statement = self.client.prepare(sql).await?;
                self.statements.insert(sql, statement.clone());
                statement
            }
        };
        Ok(self.client.query(&statement, params).await?)
    }
}

/// Read connections, opened on demand and kept idle for reuse; one lost to
/// a server restart is dropped, and the next read opens a new one.
struct ReadPool {
    connector: Connector,
    idle: Mutex<Vec<ReadConnection>>,
    /// One permit per open read connection, [`READERS_MAX`] in all.
    permits: Arc<tokio::sync::Semaphore>,
}

impl ReadPool {
    fn new(connector: Connector) -> Arc<ReadPool> {
        Arc::new(ReadPool {
            connector,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(tokio::sync::Semaphore::new(READERS_MAX)),
        })
    }
}

/// A read connection on loan; it goes back to the pool when dropped.
struct PooledRead {
    pool: Arc<ReadPool>,
    conn: Option<ReadConnection>,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

impl std::ops::Deref for PooledRead {
    type Target = ReadConnection;
    fn deref(&self) -> &ReadConnection {
        self.conn.as_ref().expect("a loaned connection")
    }
}

impl std::ops::DerefMut for PooledRead {
    fn deref_mut(&mut self) -> &mut ReadConnection {
        self.conn.as_mut().expect("a loaned connection")
    }
}

impl Drop for PooledRead {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            if conn.client.is_closed() {
                return;
            }
            let mut idle = self.pool.idle.lock().expect("reader pool lock");
            if idle.len() < READERS_IDLE_MAX {
                idle.push(conn);
            }
        }
    }
}

impl ReadPool {
    /// Lends an idle connection, or opens a new one.
    async fn get(self: &Arc<Self>) -> Result<PooledRead, StoreError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let pooled = loop {
            let candidate = self.idle.lock().expect("reader pool lock").pop();
            match candidate {
                Some(conn) if conn.client.is_closed() => continue,
                other => break other,
            }
        };
        let conn = match pooled {
            Some(conn) => conn,
            None => ReadConnection {
                client: self.connector.connect().await?,
                statements: HashMap::new(),
            },
        };
        Ok(PooledRead {
            pool: self.clone(),
            conn: Some(conn),
            _permit: permit,
        })
    }
}

impl PostgresStore {
    /// Runs one read. A read that failed because its pooled connection had
    /// been lost (the server restarted since it was last used) is retried
    /// once on a new connection: reads change nothing, so that is safe.
    async fn read_rows(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let mut conn = self.readers.get().await?;
        match conn.query(sql, params).await {
            Err(_) if conn.client.is_closed() => {
                drop(conn);
                self.readers.get().await?.query(sql, params).await
            }
            result => result,
        }
    }

    async fn with_reader<R>(
        &self,
        f: impl Fn(&dyn HashReader) -> Result<R, MerkleError>,
    ) -> Result<R, StoreError> {
        let conn = self.readers.get().await?;
        with_stored_hashes(&conn.client, f).await
    }

    async fn read_size(&self) -> Result<u64, StoreError> {
        let rows = self
            .read_rows(concat!("SELECT ", durable_size!()), &[])
            .await?;
        let row = rows
            .first()
            .ok_or_else(|| StoreError::Corrupt("no durable size".into()))?;
        let size: i64 = row.try_get(0)?;
        Ok(size as u64)
    }

    async fn check_size(&self, what: &str, size: u64) -> Result<(), StoreError> {
        let tree_size = self.read_size().await?;
        if size > tree_size {
            return Err(StoreError::OutOfRange {
                what: format!("{what} {size}"),
                size: tree_size,
            });
        }
        Ok(())
    }

    /// The root of the tree of `size` leaves: a signed checkpoint's root when
    /// one of that size is stored (one row), else computed from stored hashes.
    async fn root_at(&self, size: u64) -> Result<Hash, StoreError> {
        let key = to_i64(size, "tree size")?;
        let rows = self
            .read_rows("SELECT root FROM checkpoints WHERE size = $1", &[&key])
            .await?;
        match rows.first() {
            Some(row) => hash_from(row.try_get(0)?, "a checkpoint root"),
            None => {
                self.with_reader(|r| merkle::tree_hash(size, &DynReader(r)))
                    .await
            }
        }
    }
}

/// Events copied per transaction by [`PostgresStore::copy_log`].
const COPY_CHUNK_EVENTS: usize = 4096;

/// What [`PostgresStore::copy_log`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// Events the target held before (a resumed copy starts after them).
    pub skipped: u64,
    pub copied: u64,
    /// Source checkpoints whose roots matched and which are now stored.
    pub checkpoints: usize,
    pub root: Hash,
}

impl PostgresStore {
    /// Copies another store's log into this one, event by event with its
    /// exact leaf bytes, and its signed checkpoints verbatim. The tree is
    /// rebuilt as the leaves arrive, and at every source checkpoint its root
    /// must equal the signed one (and the signature must verify with this
    /// store's key, which is why the target signs with the source's key).
    /// Each chunk commits under the head lock, ending at a checkpoint; a copy
    /// that stopped part way resumes after checking that what the target
    /// holds is a prefix of the source. `progress(done, total)` follows it.
    pub async fn copy_log(
        &self,
        source: &dyn EventStore,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<CopyReport, StoreError> {
        let total = source.size().await?;
        let checkpoints = source.checkpoints().await?;
        let mut client = self.readers.connector.connect().await?;
        client
            .batch_execute(&format!(
                "SET synchronous_commit = on; SET lock_timeout = '{LOCK_TIMEOUT}';"
            ))
            .await?;
        let head = client
            .query_one("SELECT size, frontier FROM log_head", &[])
            .await?;
        let start = head.try_get::<_, i64>(0)? as u64;
        let mut edge = Edge::from_bytes(start, head.try_get(1)?)?;
        if start > total {
            return Err(backend(format!(
                "the target log holds {start} events, more than the source's {total}; copy into an empty database"
            )));
        }
        let mut frontier = edge.frontier(start)?;
        if start > 0 {
            let source_root = source.prove_consistency(start, total).await?.from_root;
            if source_root != frontier.root() {
                return Err(backend(format!(
                    "the target's first {start} events are not the source's (roots {} and {}); copy into an empty database",
                    hex::encode(frontier.root()),
                    hex::encode(source_root)
                )));
            }
        }
        let mut report = CopyReport {
            skipped: start,
            copied: 0,
            checkpoints: 0,
            root: frontier.root(),
        };
        let mut next_checkpoint = checkpoints.partition_point(|c| c.size < start);
        let copier = Uuid::new_v4();
        loop {
            let from = frontier.size();
            // A chunk ends at the next checkpoint, so each signed root is
            // compared with the tree of exactly its size.
            let limit = checkpoints
                .get(next_checkpoint)
                .map_or(u64::MAX, |c| c.size - from)
                .min(total - from)
                .min(COPY_CHUNK_EVENTS as u64) as usize;
            let events = if limit == 0 {
                Vec::new()
            } else {
                source.read_range(from, limit).await?
            };
            let mut hashes = Vec::with_capacity(events.len() * 2);
            for (offset, event) in events.iter().enumerate() {
                let seq = from + offset as u64;
                let envelope = event.header()?;
                if event.seq != seq
                    || envelope.seq != seq
                    || envelope.stream != event.stream
                    || envelope.version != event.version
                    || envelope.id != event.id
                    || envelope.event_type != event.event_type
                {
                    return Err(StoreError::Corrupt(format!(
                        "source event {seq}: its columns and its leaf disagree; run `ledgerline verify` on the source"
                    )));
                }
                frontier.append(merkle::leaf_hash(&event.leaf), &mut hashes);
            }
            let mut signed = Vec::new();
            while let Some(checkpoint) = checkpoints
                .get(next_checkpoint)
                .filter(|c| c.size == frontier.size())
            {
                let note = self.verifier.verify_checkpoint(&checkpoint.note).map_err(|e| {
                    backend(format!(
                        "the source checkpoint of size {} does not verify with this log's key ({e}); copy with the source's signing key",
                        checkpoint.size
                    ))
                })?;
                if note.size != checkpoint.size || note.root != frontier.root() {
                    return Err(StoreError::Corrupt(format!(
                        "the source checkpoint of size {} signs root {}, but its events hash to {}",
                        checkpoint.size,
                        hex::encode(note.root),
                        hex::encode(frontier.root())
                    )));
                }
                signed.push(checkpoint.clone());
                next_checkpoint += 1;
            }
            if events.is_empty() && signed.is_empty() {
                break;
            }
            edge = edge.advance(frontier.size(), &hashes)?;
            let last_time = match events.last() {
                Some(event) => Some(event.header()?.time.into_owned()),
                None => None,
            };
            let head = HeadUpdate {
                frontier: edge.to_bytes(),
                last_time,
            };
            copy_chunk(&mut client, from, &events, &hashes, &head, &signed, copier).await?;
            report.copied += events.len() as u64;
            report.checkpoints += signed.len();
            report.root = frontier.root();
            progress(frontier.size(), total);
        }
        if frontier.size() != total {
            return Err(backend(format!(
                "the source shrank from {total} to {} events during the copy",
                frontier.size()
            )));
        }
        Ok(report)
    }
}

/// One transaction of a copy: the head must still be where the copy left
/// it (no node appended meanwhile), then events, hashes, head and
/// checkpoints are written together.
/// The head row's frontier and clock after a copied chunk.
struct HeadUpdate {
    frontier: Vec<u8>,
    last_time: Option<String>,
}

async fn copy_chunk(
    client: &mut Client,
    from: u64,
    events: &[StoredEvent],
    hashes: &[(u64, Hash)],
    head_update: &HeadUpdate,
    checkpoints: &[SignedCheckpoint],
    copier: Uuid,
) -> Result<(), StoreError> {
    let transaction = client.transaction().await?;
    let head: i64 = transaction
        .query_one("SELECT size FROM log_head WHERE singleton FOR UPDATE", &[])
        .await?
        .try_get(0)?;
    if head as u64 != from {
        return Err(backend(format!(
            "the target log changed during the copy (it holds {head} events, the copy expected {from}); stop the nodes appending to it"
        )));
    }
    if !events.is_empty() {
        let rows = EventRows::new(events, hashes)?;
        transaction.execute(INSERT_EVENTS, &rows.params()).await?;
        let size = to_i64(from + events.len() as u64, "tree size")?;
        transaction
            .execute(
                "UPDATE log_head SET size = $1, frontier = $2, last_time = $3 WHERE singleton",
                &[&size, &head_update.frontier, &head_update.last_time],
            )
            .await?;
    }
    // The copy's transactions are durable: publish what each one holds.
    transaction
        .execute(PUBLISH_DURABLE_SIZE, &[&copier])
        .await?;
    for checkpoint in checkpoints {
        let size = to_i64(checkpoint.size, "tree size")?;
        transaction
            .execute(
                "INSERT INTO checkpoints (size, root, note) VALUES ($1, $2, $3) ON CONFLICT (size) DO NOTHING",
                &[&size, &checkpoint.root.as_slice(), &checkpoint.note],
            )
            .await?;
        let stored = checkpoint_row(
            &transaction
                .query_one(
                    "SELECT size, root, note FROM checkpoints WHERE size = $1",
                    &[&size],
                )
                .await?,
        )?;
        if &stored != checkpoint {
            return Err(StoreError::Corrupt(format!(
                "the target already holds a different checkpoint of size {}",
                checkpoint.size
            )));
        }
    }
    transaction.commit().await?;
    Ok(())
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

    async fn checkpoint_now(&self) -> Result<SignedCheckpoint, StoreError> {
        sequencer::checkpoint_now(self.sender()?).await
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::MemoryHashes;

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

    /// The head row's frontier, advanced batch by batch, always describes
    /// the same tree as the in-memory frontier and as the stored hashes.
    #[test]
    fn edge_advances_with_the_frontier() {
        let mut frontier = Frontier::new();
        let mut edge = Edge::default();
        let mut stored = Vec::new();
        let mut leaf = 0u64;
        for batch in [1usize, 1, 2, 3, 5, 8, 13, 1, 64, 7, 100, 1, 255] {
            let mut added = Vec::new();
            for _ in 0..batch {
                frontier.append(merkle::leaf_hash(&leaf.to_be_bytes()), &mut added);
                leaf += 1;
            }
            stored.extend(added.iter().map(|(_, hash)| *hash));
            edge = edge.advance(frontier.size(), &added).unwrap();
            let size = frontier.size();
            let from_row = Edge::from_bytes(size, edge.to_bytes()).unwrap();
            assert_eq!(from_row.frontier(size).unwrap(), frontier, "size {size}");
            let loaded = Frontier::load(size, &MemoryHashes(stored.clone())).unwrap();
            assert_eq!(loaded.root(), frontier.root());
        }
        assert!(
            Edge::from_bytes(5, vec![0; 32]).is_err(),
            "5 leaves need two hashes"
        );
    }

    #[test]
    fn urls_are_recognized_and_redacted() {
        assert!(is_postgres_url("postgres://u@h/db"));
        assert!(is_postgres_url("postgresql://u@h/db"));
        assert!(!is_postgres_url("sqlite:./data"));
        let shown = redacted_url("postgres://user:secret@db.example:5432/ledger");
        assert!(!shown.contains("secret"), "{shown}");
        assert!(
            shown.contains("ledger") && shown.contains("db.example"),
            "{shown}"
        );
    }
}
