//! The embedded store: one SQLite file (WAL, `synchronous=FULL`) in the data
//! directory, with one writer thread that drains every waiting append into
//! one durable transaction (group commit), and a small pool of read
//! connections that WAL lets run beside the writer.
//!
//! This file opens the store and serves the [`EventStore`] reads; `writer`
//! commits and signs on the writer thread; `rows` holds the queries and row
//! decoders they share; `read_pool` the read connections;
//! `wal_checkpointer` copies the WAL into the database file in the
//! background.

mod cosignatures;
pub mod mirror;
mod read_pool;
mod rows;
mod wal_checkpointer;
mod writer;

use crate::checkpoint::{NoteSigner, NoteVerifier};
use crate::merkle::{self, Frontier, Hash, HashReader};
use crate::store::proof_cache::ProofCache;
use crate::store::sequencer::{
    self, CheckpointCadence, Sequencer, WriterHealth, WriterMessage, WRITER_QUEUE_DEPTH,
};
use crate::store::{
    check_consistency_request, check_inclusion_request, AppendRequest, Appended, ConsistencyProof,
    EventStore, InclusionProof, SignedCheckpoint, StoreError, StoredCosignature, StoredEvent,
};
use async_trait::async_trait;
use read_pool::Readers;
use rows::{
    check_size, checkpoint_row, event_row, last_event_time, latest_checkpoint, page_of, position,
    root_at, stored_hash_range, tree_size, SqliteHashes, EVENT_COLUMNS,
};
use rusqlite::{params, Connection, OptionalExtension};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use time::OffsetDateTime;
use tokio::sync::mpsc;
use uuid::Uuid;
use writer::Writer;

/// The tables of the log, created on open (each statement is idempotent).
const SCHEMA: &str = include_str!("schema.sql");
/// The database file inside the data directory.
pub const DATABASE_FILE: &str = "ledger.db";
/// The checkpoint signing key inside the data directory (Go note private key format, mode 0600).
pub const KEY_FILE: &str = "checkpoint.key";
/// The on-disk format this code writes; opening a newer one is refused.
const FORMAT_VERSION: &str = "1";
/// Page cache per connection, in KiB: the id and stream indexes of a log
/// of millions of events stay in memory.
pub const CACHE_KIB: u32 = 65_536;
/// The most of the database file read through a memory map (address space,
/// not memory: the pages are the kernel's page cache).
const MMAP_BYTES: u64 = 1 << 32;
/// Idle read connections kept open.
const READERS_IDLE_MAX: usize = 16;
/// Stored hashes kept in memory for proofs (40 bytes each: about 10 MiB).
const PROOF_HASH_CACHE_ENTRIES: usize = 1 << 18;

/// How to open the embedded store.
#[derive(Debug, Clone)]
pub struct SqliteConfig {
    pub data_dir: PathBuf,
    /// Checkpoint origin, also the signing key's name.
    pub origin: String,
    /// An operator-supplied signing key (Go note private key text); when
    /// absent the key file in the data directory is used, created on first start.
    pub signing_key: Option<String>,
    /// At most one checkpoint per interval; a batch committed sooner is
    /// covered by the checkpoint signed when the interval ends.
    pub checkpoint_interval: Duration,
}

impl SqliteConfig {
    pub fn new(data_dir: impl Into<PathBuf>, origin: impl Into<String>) -> Self {
        SqliteConfig {
            data_dir: data_dir.into(),
            origin: origin.into(),
            signing_key: None,
            checkpoint_interval: Duration::from_secs(1),
        }
    }
}

/// The embedded SQLite event store.
pub struct SqliteStore {
    path: PathBuf,
    writer: Option<mpsc::Sender<WriterMessage>>,
    writer_thread: Option<JoinHandle<()>>,
    writer_health: WriterHealth,
    readers: Arc<Readers>,
    /// Stored hashes and roots that proofs read, kept in memory (they
    /// never change).
    proofs: Arc<ProofCache>,
    verifier: NoteVerifier,
    verifier_key: String,
    /// The connection that keeps witness cosignatures, opened on first use;
    /// `None` for a read-only store.
    cosignature_writer: Option<Arc<Mutex<Option<Connection>>>>,
}

fn backend(error: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(error.to_string())
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        backend(error)
    }
}

impl SqliteStore {
    /// Opens the store in `config.data_dir`, creating the directory, the
    /// database and the signing key on first use. Blocking.
    pub fn open(config: SqliteConfig) -> Result<SqliteStore, StoreError> {
        crate::private::create_private_dir(&config.data_dir).map_err(|e| {
            backend(format!(
                "cannot create data directory {}: {e}",
                config.data_dir.display()
            ))
        })?;
        let signer = sequencer::load_signer(
            config.signing_key.as_deref(),
            &config.data_dir.join(KEY_FILE),
            &config.origin,
        )?;
        let path = config.data_dir.join(DATABASE_FILE);
        crate::private::prepare_database(&path)
            .map_err(|e| backend(format!("cannot create {}: {e}", path.display())))?;
        let mut conn = open_connection(&path)?;
        conn.execute_batch(SCHEMA)?;
        check_meta(&conn, &config.origin)?;

        let size = tree_size(&conn)?;
        let frontier = Frontier::load(size, &SqliteHashes(&conn))?;
        let last_time = last_event_time(&conn)?.unwrap_or_else(OffsetDateTime::now_utc);
        let writer_health = WriterHealth::default();
        let mut writer = Writer {
            health: writer_health.clone(),
            sequencer: Sequencer::new(frontier, last_time),
            cadence: CheckpointCadence::new(
                signer,
                config.checkpoint_interval,
                latest_checkpoint(&conn)?,
            ),
        };
        // A log that was just created, or whose last batch committed before a
        // crash could sign it, gets its checkpoint now.
        if writer.cadence.pending(size) {
            writer.sign_checkpoint(&mut conn)?;
        }
        let verifier = writer.cadence.signer().verifier();
        let verifier_key = writer.cadence.signer().verifier_key();
        let (sender, receiver) = mpsc::channel(WRITER_QUEUE_DEPTH);
        let writer_thread = std::thread::Builder::new()
            .name("ledger-writer".into())
            .spawn(move || writer.run(conn, receiver))
            .map_err(backend)?;
        Ok(SqliteStore {
            readers: Arc::new(Readers {
                path: path.clone(),
                idle: Mutex::new(Vec::new()),
            }),
            path,
            writer: Some(sender),
            writer_thread: Some(writer_thread),
            writer_health,
            proofs: Arc::new(ProofCache::new(PROOF_HASH_CACHE_ENTRIES)),
            verifier,
            verifier_key,
            cosignature_writer: Some(Arc::new(Mutex::new(None))),
        })
    }

    /// Opens an existing log for reading only: no writer, no signing, no
    /// schema changes. The audit uses it, so that a damaged log can still be
    /// examined and is never touched; so do the read commands, which may run
    /// beside a server that owns the writer.
    pub fn open_read_only(config: SqliteConfig) -> Result<SqliteStore, StoreError> {
        let path = config.data_dir.join(DATABASE_FILE);
        if !path.exists() {
            return Err(StoreError::NoLog(config.data_dir.display().to_string()));
        }
        let key_path = config.data_dir.join(KEY_FILE);
        let mirror_key_path = config.data_dir.join(mirror::VERIFIER_KEY_FILE);
        let verifier = match &config.signing_key {
            Some(text) => NoteSigner::from_private_key(text)
                .map_err(backend)?
                .verifier(),
            None if key_path.exists() => NoteSigner::load_or_create(&key_path, &config.origin)
                .map_err(backend)?
                .verifier(),
            // A mirror keeps only the verifier key of the log it mirrors.
            None if mirror_key_path.exists() => {
                let text = std::fs::read_to_string(&mirror_key_path).map_err(|e| {
                    backend(format!("cannot read {}: {e}", mirror_key_path.display()))
                })?;
                NoteVerifier::from_verifier_key(text.trim()).map_err(backend)?
            }
            None => {
                return Err(backend(format!(
                    "the checkpoint key {} is missing",
                    key_path.display()
                )))
            }
        };
        let readers = Arc::new(Readers {
            path: path.clone(),
            idle: Mutex::new(Vec::new()),
        });
        readers.with(|conn| {
            let origin: Option<String> = conn
                .query_row(
                    "SELECT value FROM ledger_meta WHERE key = 'origin'",
                    [],
                    |row| row.get(0),
                )
                .optional()?;
            match origin {
                Some(origin) if origin == config.origin => Ok(()),
                Some(origin) => Err(StoreError::OriginMismatch {
                    stored: origin,
                    given: config.origin.clone(),
                }),
                None => Err(StoreError::NoLog(config.data_dir.display().to_string())),
            }
        })?;
        Ok(SqliteStore {
            readers,
            path,
            writer: None,
            writer_thread: None,
            writer_health: WriterHealth::default(),
            proofs: Arc::new(ProofCache::new(PROOF_HASH_CACHE_ENTRIES)),
            verifier_key: verifier.verifier_key(),
            verifier,
            cosignature_writer: None,
        })
    }

    /// The SQLite database file, for read models kept in the same database.
    pub fn database_path(&self) -> &Path {
        &self.path
    }

    /// The checkpoint verifier of this log's own key.
    pub fn verifier(&self) -> &NoteVerifier {
        &self.verifier
    }

    /// The verifier key in Go note format, `name+hex8+base64(0x01||key)`.
    pub fn verifier_key(&self) -> &str {
        &self.verifier_key
    }

    /// Appends waiting in the writer's queue (for metrics).
    pub fn queue_depth(&self) -> usize {
        self.writer
            .as_ref()
            .map_or(0, |w| WRITER_QUEUE_DEPTH - w.capacity())
    }

    fn sender(&self) -> Result<&mpsc::Sender<WriterMessage>, StoreError> {
        self.writer.as_ref().ok_or(StoreError::ReadOnly)
    }

    async fn read<R: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let readers = self.readers.clone();
        tokio::task::spawn_blocking(move || readers.with(f))
            .await
            .map_err(backend)?
    }
}

impl Drop for SqliteStore {
    /// Closing the queue lets the writer finish what it holds and sign a
    /// final checkpoint; waiting for it means no acknowledged append is left
    /// unsigned by a clean exit.
    fn drop(&mut self) {
        self.writer.take();
        if let Some(thread) = self.writer_thread.take() {
            let _ = thread.join();
        }
    }
}

fn open_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)
        .map_err(|e| backend(format!("cannot open {}: {e}", path.display())))?;
    conn.busy_timeout(Duration::from_secs(10))?;
    // WAL lets readers run beside the writer; FULL syncs the WAL on every
    // commit, so an acknowledged append survives power loss.
    let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(backend(format!(
            "{} refused WAL mode (got {mode})",
            path.display()
        )));
    }
    // Reads go through a memory map, sparing a read() call per page: proofs
    // and lineage answers touch pages scattered over the whole file.
    conn.execute_batch(&format!(
        "PRAGMA synchronous=FULL; PRAGMA foreign_keys=OFF; PRAGMA cache_size=-{CACHE_KIB}; PRAGMA mmap_size={MMAP_BYTES};"
    ))?;
    Ok(conn)
}

fn check_meta(conn: &Connection, origin: &str) -> Result<(), StoreError> {
    let get = |key: &str| -> Result<Option<String>, StoreError> {
        Ok(conn
            .query_row(
                "SELECT value FROM ledger_meta WHERE key = ?1",
                [key],
                |row| row.get(0),
            )
            .optional()?)
    };
    match get("format_version")? {
        None => {
            conn.execute(
                "INSERT INTO ledger_meta (key, value) VALUES ('format_version', ?1), ('origin', ?2)",
                params![FORMAT_VERSION, origin],
            )?;
        }
        Some(version) if version != FORMAT_VERSION => {
            return Err(backend(format!(
                "the log is in format {version}; this version reads format {FORMAT_VERSION}"
            )));
        }
        Some(_) => {
            let stored = get("origin")?.unwrap_or_default();
            if stored != origin {
                return Err(StoreError::OriginMismatch {
                    stored,
                    given: origin.to_string(),
                });
            }
            if let Some(key) = get(mirror::MIRROR_META_KEY)? {
                return Err(backend(format!(
                    "this data directory is a mirror of the log of key {key}, kept by its monitor: it can be read and audited, not appended to"
                )));
            }
        }
    }
    Ok(())
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn append_all(
        &self,
        requests: Vec<AppendRequest>,
    ) -> Result<Vec<Vec<Appended>>, StoreError> {
        sequencer::submit(self.sender()?, requests).await
    }

    async fn size(&self) -> Result<u64, StoreError> {
        // One indexed lookup of the last seq, a microsecond or two: run
        // inline, as handing it to a blocking thread costs ten times that,
        // and a server checks the size before every licensing decision.
        self.readers.with(tree_size)
    }

    async fn read_range(&self, from: u64, limit: usize) -> Result<Vec<StoredEvent>, StoreError> {
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE seq >= ?1 ORDER BY seq LIMIT ?2"
            ))?;
            let from = position(conn, from, "seq")?;
            let rows = statement.query_map(params![from, limit as i64], event_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn read_range_bytes(
        &self,
        from: u64,
        limit: usize,
        leaf_bytes_max: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE seq >= ?1 ORDER BY seq LIMIT ?2"
            ))?;
            let from = position(conn, from, "seq")?;
            let rows = statement.query(params![from, limit as i64])?;
            page_of(rows, leaf_bytes_max)
        })
        .await
    }

    async fn read_leaves(&self, from: u64, limit: usize) -> Result<Vec<Vec<u8>>, StoreError> {
        self.read(move |conn| {
            let mut statement = conn
                .prepare_cached("SELECT leaf FROM events WHERE seq >= ?1 ORDER BY seq LIMIT ?2")?;
            let from = position(conn, from, "seq")?;
            let rows = statement.query_map(params![from, limit as i64], |row| row.get(0))?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn read_seqs(&self, seqs: Vec<u64>) -> Result<Vec<StoredEvent>, StoreError> {
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE seq = ?1"
            ))?;
            let mut events = Vec::with_capacity(seqs.len());
            for seq in seqs {
                match statement
                    .query_row(params![seq as i64], event_row)
                    .optional()?
                {
                    Some(event) => events.push(event),
                    None => return Err(super::missing_seq(seq, tree_size(conn)?)),
                }
            }
            Ok(events)
        })
        .await
    }

    async fn read_stream(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let stream = stream.to_string();
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE stream = ?1 AND version >= ?2 ORDER BY version LIMIT ?3"
            ))?;
            let from = position(conn, from_version, "version")?;
            let rows = statement.query_map(params![stream, from, limit as i64], event_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn read_stream_bytes(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
        leaf_bytes_max: usize,
    ) -> Result<Vec<StoredEvent>, StoreError> {
        let stream = stream.to_string();
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM events WHERE stream = ?1 AND version >= ?2 ORDER BY version LIMIT ?3"
            ))?;
            let from = position(conn, from_version, "version")?;
            let rows = statement.query(params![stream, from, limit as i64])?;
            page_of(rows, leaf_bytes_max)
        })
        .await
    }

    async fn read_event(&self, id: Uuid) -> Result<Option<StoredEvent>, StoreError> {
        self.read(move |conn| {
            let mut statement =
                conn.prepare_cached(&format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = ?1"))?;
            Ok(statement
                .query_row([id.as_bytes().as_slice()], event_row)
                .optional()?)
        })
        .await
    }

    async fn latest_checkpoint(&self) -> Result<Option<SignedCheckpoint>, StoreError> {
        self.read(latest_checkpoint).await
    }

    async fn checkpoint(&self, size: u64) -> Result<Option<SignedCheckpoint>, StoreError> {
        self.read(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT size, root, note FROM checkpoints WHERE size = ?1",
                    [size as i64],
                    checkpoint_row,
                )
                .optional()?)
        })
        .await
    }

    async fn checkpoints(&self) -> Result<Vec<SignedCheckpoint>, StoreError> {
        self.read(|conn| {
            let mut statement =
                conn.prepare_cached("SELECT size, root, note FROM checkpoints ORDER BY size")?;
            let rows = statement.query_map([], checkpoint_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn newest_checkpoints(&self, limit: usize) -> Result<Vec<SignedCheckpoint>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.read(move |conn| {
            let mut statement = conn.prepare_cached(
                "SELECT size, root, note FROM checkpoints ORDER BY size DESC LIMIT ?1",
            )?;
            let rows = statement.query_map([limit], checkpoint_row)?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }

    async fn checkpoint_now(&self) -> Result<SignedCheckpoint, StoreError> {
        sequencer::checkpoint_now(self.sender()?).await
    }

    async fn add_cosignatures(&self, records: Vec<StoredCosignature>) -> Result<(), StoreError> {
        let writer = self
            .cosignature_writer
            .clone()
            .ok_or(StoreError::ReadOnly)?;
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || {
            let mut slot = writer.lock().expect("cosignature writer lock");
            let conn = match slot.as_mut() {
                Some(conn) => conn,
                None => slot.insert(cosignatures::open_writer(&path, open_connection)?),
            };
            cosignatures::add(conn, &records)
        })
        .await
        .map_err(backend)?
    }

    async fn cosignatures(&self, size: u64) -> Result<Vec<StoredCosignature>, StoreError> {
        self.read(move |conn| cosignatures::of_size(conn, size))
            .await
    }

    async fn latest_cosigned_size(
        &self,
        witnesses: Vec<(String, u32)>,
        quorum: usize,
    ) -> Result<Option<u64>, StoreError> {
        self.read(move |conn| cosignatures::latest_cosigned_size(conn, &witnesses, quorum))
            .await
    }

    fn verifier(&self) -> &NoteVerifier {
        SqliteStore::verifier(self)
    }

    fn verifier_key(&self) -> &str {
        SqliteStore::verifier_key(self)
    }

    fn queue_depth(&self) -> usize {
        SqliteStore::queue_depth(self)
    }

    fn writer_fault(&self) -> Option<String> {
        let queue = self.writer.as_ref()?;
        self.writer_health.fault(queue)
    }

    async fn prove_inclusion(&self, index: u64, size: u64) -> Result<InclusionProof, StoreError> {
        // A proof whose parts were all read before needs no connection,
        // and no blocking thread.
        if let Some(proof) = self.proofs.inclusion(index, size) {
            return Ok(proof);
        }
        let cache = self.proofs.clone();
        self.read(move |conn| {
            check_size(conn, "tree size", size)?;
            check_inclusion_request(index, size)?;
            // Proofs of the leaf's neighbours need the same lower hashes:
            // hold its whole block first, read in one range.
            if let Some(block) = cache.block_to_read(index, size) {
                cache.hold_block(index, &stored_hash_range(conn, block.start, block.end)?);
            }
            let stored = SqliteHashes(conn);
            let hashes = cache.inclusion_hashes(index, &stored);
            let leaf_hash = hashes.read_hashes(&[merkle::stored_hash_index(0, index)])?[0];
            let proof = InclusionProof {
                leaf_index: index,
                tree_size: size,
                leaf_hash,
                root_hash: root_at(conn, size, &hashes)?,
                proof: merkle::prove_inclusion(index, size, &hashes)?,
            };
            cache.remember(&proof);
            Ok(proof)
        })
        .await
    }

    async fn prove_consistency(&self, from: u64, to: u64) -> Result<ConsistencyProof, StoreError> {
        let cache = self.proofs.clone();
        self.read(move |conn| {
            check_size(conn, "tree size", to)?;
            check_consistency_request(from, to)?;
            let stored = SqliteHashes(conn);
            let hashes = cache.hashes().reader(&stored);
            Ok(ConsistencyProof {
                from_size: from,
                to_size: to,
                from_root: root_at(conn, from, &hashes)?,
                to_root: root_at(conn, to, &hashes)?,
                proof: merkle::prove_consistency(from, to, &hashes)?,
            })
        })
        .await
    }

    async fn read_stored_hashes(&self, indexes: Vec<u64>) -> Result<Vec<Hash>, StoreError> {
        // Through the proof cache: callers read these to build proofs (a
        // lineage answer proves a hundred events at once).
        let cache = self.proofs.clone();
        self.read(move |conn| {
            Ok(cache
                .hashes()
                .reader(&SqliteHashes(conn))
                .read_hashes(&indexes)?)
        })
        .await
    }

    async fn read_stored_hash_range(
        &self,
        start: u64,
        end: u64,
    ) -> Result<Vec<(u64, Hash)>, StoreError> {
        self.read(move |conn| stored_hash_range(conn, start, end))
            .await
    }
}
