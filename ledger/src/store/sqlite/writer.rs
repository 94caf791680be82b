//! The single writer on its own thread: group commits planned by the
//! shared sequencer inside one `BEGIN IMMEDIATE` transaction, and the
//! checkpoints it signs. Reads are the store's, on their own connections.

use super::rows::{event_row, last_event_time, tree_size, SqliteHashes, EVENT_COLUMNS};
use super::wal_checkpointer::WalCheckpointer;
use crate::merkle::{self, Frontier, Hash};
use crate::store::node::NodeWriter;
use crate::store::sequencer::{
    Batch, CheckpointCadence, ClientResult, PreparedRequest, Sequencer, SequencerView,
    WriterHealth, WriterMessage,
};
use crate::store::{SignedCheckpoint, StoreError, StoredEvent};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use time::OffsetDateTime;
use tokio::sync::mpsc;
use uuid::Uuid;

/// The sequencer's view of the write transaction.
pub(super) struct WriteView<'a>(&'a rusqlite::Transaction<'a>);

impl SequencerView for WriteView<'_> {
    fn event_by_id(&mut self, id: &Uuid) -> Result<Option<StoredEvent>, StoreError> {
        let mut statement = self
            .0
            .prepare_cached(&format!("SELECT {EVENT_COLUMNS} FROM events WHERE id = ?1"))?;
        Ok(statement
            .query_row([id.as_bytes().as_slice()], event_row)
            .optional()?)
    }

    fn stream_head(&mut self, stream: &str) -> Result<Option<(u64, Hash)>, StoreError> {
        let mut statement = self.0.prepare_cached(
            "SELECT version, leaf FROM events WHERE stream = ?1 ORDER BY version DESC LIMIT 1",
        )?;
        Ok(statement
            .query_row([stream], |row| {
                let version: i64 = row.get(0)?;
                let leaf: Vec<u8> = row.get(1)?;
                Ok((version as u64, merkle::leaf_hash(&leaf)))
            })
            .optional()?)
    }
}

/// The writer on its thread, with the write connection. The background WAL
/// checkpointer is declared first so that it stops, after a last pass,
/// before the write connection closes.
pub(super) struct WriterThread {
    pub(super) _checkpointer: WalCheckpointer,
    pub(super) conn: Connection,
    pub(super) writer: Writer,
}

impl NodeWriter for WriterThread {
    async fn commit_batch(&mut self, batch: Batch, _more: &mut mpsc::Receiver<WriterMessage>) {
        self.writer.commit_batch(&mut self.conn, batch);
    }
    async fn sign_checkpoint(&mut self) -> Result<(), StoreError> {
        self.writer.sign_checkpoint(&mut self.conn)
    }
    fn cadence(&mut self) -> &mut CheckpointCadence {
        &mut self.writer.cadence
    }
    fn health(&self) -> &WriterHealth {
        &self.writer.health
    }
    fn size(&self) -> u64 {
        self.writer.sequencer.frontier().size()
    }
}

/// The single writer: owns the sequencer and the signer.
pub(super) struct Writer {
    pub(super) sequencer: Sequencer,
    pub(super) cadence: CheckpointCadence,
    pub(super) health: WriterHealth,
}

impl Writer {
    /// Serves `receiver` on this thread until it closes, with the writer
    /// loop every backend shares (see [`NodeWriter::run`]), then signs a
    /// last checkpoint.
    pub(super) fn run(self, conn: Connection, receiver: mpsc::Receiver<WriterMessage>) {
        let checkpointer = WalCheckpointer::start(&conn);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a current-thread runtime starts");
        let thread = WriterThread {
            _checkpointer: checkpointer,
            conn,
            writer: self,
        };
        runtime.block_on(NodeWriter::run(thread, receiver));
    }

    pub(super) fn checkpoint_pending(&self) -> bool {
        self.cadence.pending(self.sequencer.frontier().size())
    }

    /// One group commit: every append in `batch`, one transaction, one fsync.
    pub(super) fn commit_batch(&mut self, conn: &mut Connection, mut batch: Batch) {
        let clients = std::mem::take(&mut batch.clients);
        let before = self.sequencer.clone();
        let outcome = self.write(conn, clients, batch.checkpoint_requested());
        if let Err(error) = &outcome {
            // Nothing was committed: forget what the sequencer planned.
            self.sequencer = before;
            tracing::error!("group commit failed: {error}");
        }
        self.health.record(&outcome);
        batch.answer(outcome, self.cadence.latest());
    }

    pub(super) fn write(
        &mut self,
        conn: &mut Connection,
        clients: Vec<Vec<PreparedRequest>>,
        checkpoint_now: bool,
    ) -> Result<Vec<ClientResult>, StoreError> {
        let transaction = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        self.catch_up(&transaction)?;
        let plan = self.sequencer.plan(
            &mut WriteView(&transaction),
            clients,
            OffsetDateTime::now_utc(),
        )?;
        {
            let mut insert_event = transaction.prepare_cached(
                "INSERT INTO events (seq, id, stream, version, type, leaf) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for event in &plan.events {
                insert_event.execute(params![
                    event.seq as i64,
                    event.id.as_bytes().as_slice(),
                    event.stream,
                    event.version as i64,
                    event.event_type,
                    event.leaf
                ])?;
            }
            let mut insert_hash = transaction
                .prepare_cached("INSERT INTO merkle_hashes (idx, hash) VALUES (?1, ?2)")?;
            for (index, hash) in &plan.hashes {
                insert_hash.execute(params![*index as i64, hash.as_slice()])?;
            }
        }
        let checkpoint = if (checkpoint_now || self.cadence.due()) && self.checkpoint_pending() {
            Some(self.insert_checkpoint(&transaction)?)
        } else {
            None
        };
        transaction.commit()?;
        if let Some(checkpoint) = checkpoint {
            self.cadence.record(checkpoint);
        }
        Ok(plan.results)
    }

    /// Another process (a CLI command beside a server) may have appended
    /// since this writer's last transaction: the write lock is held now, so
    /// reloading the frontier from the log makes this writer current again.
    pub(super) fn catch_up(
        &mut self,
        transaction: &rusqlite::Transaction<'_>,
    ) -> Result<(), StoreError> {
        let size = tree_size(transaction)?;
        if size != self.sequencer.frontier().size() {
            tracing::info!(
                size,
                "the log grew in another process; reloading the Merkle frontier"
            );
            let frontier = Frontier::load(size, &SqliteHashes(transaction))?;
            let last_time = last_event_time(transaction)?.unwrap_or_else(OffsetDateTime::now_utc);
            self.sequencer = Sequencer::new(frontier, last_time);
        }
        Ok(())
    }

    /// Signs and stores a checkpoint of the whole committed log, in its own transaction.
    pub(super) fn sign_checkpoint(&mut self, conn: &mut Connection) -> Result<(), StoreError> {
        let transaction = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        self.catch_up(&transaction)?;
        let checkpoint = self.insert_checkpoint(&transaction)?;
        transaction.commit()?;
        self.cadence.record(checkpoint);
        Ok(())
    }

    pub(super) fn insert_checkpoint(
        &self,
        transaction: &rusqlite::Transaction<'_>,
    ) -> Result<SignedCheckpoint, StoreError> {
        let checkpoint = self.cadence.sign(self.sequencer.frontier());
        // Ed25519 signatures are deterministic: another process that signed
        // this size produced the very same note, so keeping either is right.
        transaction.execute(
            "INSERT OR IGNORE INTO checkpoints (size, root, note) VALUES (?1, ?2, ?3)",
            params![
                checkpoint.size as i64,
                checkpoint.root.as_slice(),
                checkpoint.note
            ],
        )?;
        Ok(checkpoint)
    }
}
