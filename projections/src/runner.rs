//! The projection runner: folds the log into the read model ([`crate::tables`])
//! in seq order, one transaction per batch with the new position, and
//! keeps the fold's in-memory state in step with the tables.
//!
//! [`Projections`] catches up from any position, or rebuilds from seq 0
//! through the pipeline in `rebuild.rs`. Its query methods live in
//! `queries.rs`; what the tables look like, and how rows are written, is
//! [`crate::tables`]'s.

use crate::fold::{Change, Fold};
use crate::fold_input::FoldInput;
use crate::rebuild;
use crate::tables::{self, load_state, open_connection, read_position, write_position, SqlBook};
use ledger::store::{EventStore, StoreError};
use ledger::Envelope;
use rusqlite::{Connection, TransactionBehavior};
use std::path::Path;

/// The read model's error, which every runner operation returns.
pub use crate::tables::ProjectionError;

/// Events read and folded per transaction while catching up.
pub const CATCH_UP_BATCH_EVENTS: usize = 10_000;
/// Events written per transaction by a rebuild from the store (its commits
/// are not synced: the read model can always be rebuilt). A rebuild keeps
/// each line in memory until its transaction commits, so this also bounds
/// that memory.
pub const REBUILD_TRANSACTION_EVENTS: u64 = 20_000;

/// How far a catch-up went.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CatchUp {
    pub from: u64,
    pub to: u64,
}

/// The royalty projection over one SQLite database file.
pub struct Projections {
    database: std::path::PathBuf,
    conn: Connection,
    fold: Fold,
    position: u64,
    /// The witness policy under which answers cite the latest witnessed
    /// checkpoint when it covers what they cite (`ledger::witnessed`).
    witness_policy: Option<std::sync::Arc<ledger::witness_policy::WitnessPolicy>>,
}

impl Projections {
    /// Opens the projection tables in `database` (the log's SQLite file, or
    /// any SQLite file in tests), creating them on first use.
    pub fn open(database: &Path) -> Result<Projections, ProjectionError> {
        let conn = open_connection(database)?;
        // Also makes again any index a rebuild cut short had dropped.
        tables::create_tables(&conn)?;
        let mut projections = Projections {
            database: database.to_path_buf(),
            conn,
            fold: Fold::default(),
            position: 0,
            witness_policy: None,
        };
        if tables::stored_layout(&projections.conn)? != Some(tables::TABLE_LAYOUT_VERSION) {
            // Tables of another layout (or none yet): start them afresh; the
            // next catch-up folds the log from seq 0.
            projections.reset()?;
        }
        projections.reload()?;
        Ok(projections)
    }

    /// Makes statements and lineage answers cite the latest checkpoint that
    /// `policy`'s quorum cosigned whenever it covers what they cite.
    pub fn cite_witnessed(
        &mut self,
        policy: std::sync::Arc<ledger::witness_policy::WitnessPolicy>,
    ) {
        self.witness_policy = Some(policy);
    }

    /// The witness policy answers cite under, if any.
    pub fn witness_policy(&self) -> Option<&ledger::witness_policy::WitnessPolicy> {
        self.witness_policy.as_deref()
    }

    /// The next seq to fold: every event below it is folded.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The in-memory fold state at the current position.
    pub fn fold(&self) -> &Fold {
        &self.fold
    }

    /// Rebuilds the in-memory fold state from the tables.
    fn reload(&mut self) -> Result<(), ProjectionError> {
        let (fold, position) = load_state(&self.conn)?;
        self.fold = fold;
        self.position = position;
        Ok(())
    }

    /// Folds `envelopes` (consecutive, in seq order) in one transaction with
    /// the new position. Events below the stored position are skipped, so two
    /// processes catching up the same database never fold an event twice.
    pub fn apply(&mut self, envelopes: &[Envelope]) -> Result<(), ProjectionError> {
        self.apply_inputs(
            envelopes.iter().map(FoldInput::from_envelope).collect(),
            &mut |_| {},
        )
    }

    /// [`Projections::apply`] for events decoded as the fold reads them;
    /// `on_change` sees each change as it is made (a batch that fails is
    /// rolled back after it saw some).
    fn apply_inputs(
        &mut self,
        inputs: Vec<FoldInput>,
        on_change: &mut (dyn FnMut(&Change) + Send),
    ) -> Result<(), ProjectionError> {
        let outcome = self.apply_in_transaction(inputs, on_change);
        if outcome.is_err() {
            // The batch rolled back; the in-memory state may hold part of it.
            self.reload()?;
        }
        outcome
    }

    fn apply_in_transaction(
        &mut self,
        inputs: Vec<FoldInput>,
        on_change: &mut (dyn FnMut(&Change) + Send),
    ) -> Result<(), ProjectionError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let stored_position = read_position(&tx)?;
        if stored_position != self.position {
            // Another process folded events since: start from its state.
            let (fold, position) = load_state(&tx)?;
            self.fold = fold;
            self.position = position;
        }
        let start = self.position;
        let mut position = start;
        let mut book = SqlBook::new(&tx);
        for input in inputs.into_iter().filter(|e| e.seq() >= start) {
            if input.seq() != position {
                return Err(ProjectionError::Gap {
                    expected: position,
                    got: input.seq(),
                });
            }
            if let Some(change) = input.fold_into(&mut self.fold, &mut book)? {
                on_change(&change);
            }
            position += 1;
        }
        write_position(&tx, position)?;
        tx.commit()?;
        self.position = position;
        Ok(())
    }

    /// Folds every event the store holds beyond the position.
    pub async fn catch_up(&mut self, store: &dyn EventStore) -> Result<CatchUp, ProjectionError> {
        let size = store.size().await?;
        self.catch_up_to(store, size).await
    }

    /// Folds events up to (not including) seq `size`.
    pub async fn catch_up_to(
        &mut self,
        store: &dyn EventStore,
        size: u64,
    ) -> Result<CatchUp, ProjectionError> {
        self.catch_up_reporting(store, size, &mut |_| {}).await
    }

    /// [`Projections::catch_up_to`], showing `on_change` every change the
    /// fold makes (what a monitor filters by party, see
    /// [`crate::party_scope`]).
    pub async fn catch_up_reporting(
        &mut self,
        store: &dyn EventStore,
        size: u64,
        on_change: &mut (dyn FnMut(&Change) + Send),
    ) -> Result<CatchUp, ProjectionError> {
        let from = self.position;
        while self.position < size {
            let inputs = read_inputs(store, self.position, size).await?;
            if inputs.is_empty() {
                break;
            }
            self.apply_inputs(inputs, on_change)?;
        }
        Ok(CatchUp {
            from,
            to: self.position,
        })
    }

    /// Empties the projection tables and position, in one transaction.
    pub fn reset(&mut self) -> Result<(), ProjectionError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tables::reset_tables(&tx)?;
        tx.commit()?;
        self.fold = Fold::default();
        self.position = 0;
        Ok(())
    }

    /// Folds the whole log again from seq 0, into fresh tables
    /// (`rebuild.rs` says how this is faster than a catch-up).
    pub async fn rebuild(&mut self, store: &dyn EventStore) -> Result<CatchUp, ProjectionError> {
        self.rebuild_reporting(store, &mut |_, _| {}).await
    }

    /// [`Projections::rebuild`], calling `progress(events read, log size)`
    /// after each batch it reads.
    pub async fn rebuild_reporting(
        &mut self,
        store: &dyn EventStore,
        progress: &mut (dyn FnMut(u64, u64) + Send),
    ) -> Result<CatchUp, ProjectionError> {
        let rebuild = self.start_rebuild(REBUILD_TRANSACTION_EVENTS)?;
        let size = store.size().await?;
        let read = async {
            let mut next = 0;
            while next < size {
                let inputs = read_inputs(store, next, size).await?;
                if inputs.is_empty() {
                    break;
                }
                next += inputs.len() as u64;
                if !rebuild.fold(inputs) {
                    break;
                }
                progress(next, size);
            }
            Ok::<(), ProjectionError>(())
        }
        .await;
        self.finish_rebuild(rebuild, read)?;
        let rest = self.catch_up(store).await?;
        Ok(CatchUp {
            from: 0,
            to: rest.to,
        })
    }

    /// [`Projections::rebuild`] from envelopes at hand (consecutive from
    /// seq 0, in batches) instead of a store, committing every
    /// `events_per_transaction` events or more (a rebuild from the store
    /// uses [`REBUILD_TRANSACTION_EVENTS`]).
    pub fn rebuild_from(
        &mut self,
        batches: impl IntoIterator<Item = Vec<Envelope>>,
        events_per_transaction: u64,
    ) -> Result<(), ProjectionError> {
        let rebuild = self.start_rebuild(events_per_transaction)?;
        for batch in batches {
            if !rebuild.fold(batch.iter().map(FoldInput::from_envelope).collect()) {
                break;
            }
        }
        self.finish_rebuild(rebuild, Ok(()))
    }

    /// Empties the tables, drops the usage-line indexes and starts the
    /// rebuild's threads.
    fn start_rebuild(
        &mut self,
        events_per_transaction: u64,
    ) -> Result<rebuild::Rebuild, ProjectionError> {
        self.reset()?;
        rebuild::drop_usage_line_indexes(&self.conn)?;
        rebuild::Rebuild::start(
            &self.database,
            std::mem::take(&mut self.fold),
            events_per_transaction,
        )
    }

    /// Waits for the rebuild's threads, makes the indexes again whatever
    /// happened, and takes the rebuild's fold state (or, when it was cut
    /// short, the tables'). `read` is how reading went.
    fn finish_rebuild(
        &mut self,
        rebuild: rebuild::Rebuild,
        read: Result<(), ProjectionError>,
    ) -> Result<(), ProjectionError> {
        let rebuilt = rebuild.finish(read.is_ok());
        let indexed = tables::create_tables(&self.conn).and_then(|()| {
            self.conn
                .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
        });
        match rebuilt {
            Ok(rebuild::Rebuilt::All { fold, position }) => {
                self.fold = *fold;
                self.position = position;
            }
            Ok(rebuild::Rebuilt::Cut) => self.reload()?,
            Err(error) => {
                self.reload()?;
                return Err(error);
            }
        }
        read?;
        indexed?;
        Ok(())
    }

    /// The connection to the tables, for the query methods.
    pub(crate) fn connection(&self) -> &Connection {
        &self.conn
    }
}

/// The next batch of events from seq `from` (at most
/// [`CATCH_UP_BATCH_EVENTS`], none at or beyond `size`), decoded for the
/// fold.
async fn read_inputs(
    store: &dyn EventStore,
    from: u64,
    size: u64,
) -> Result<Vec<FoldInput>, ProjectionError> {
    let limit = CATCH_UP_BATCH_EVENTS.min(size.saturating_sub(from) as usize);
    let leaves = store.read_leaves(from, limit).await?;
    let inputs = leaves
        .iter()
        .map(|leaf| FoldInput::from_leaf(leaf).map_err(StoreError::from))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(inputs)
}
