//! The projection runner: folds the log into `projection_*` tables of the
//! log's own SQLite file, one transaction per batch, position included, and
//! answers queries over those tables as of any log prefix.

use crate::allocation::{AllocationPlan, Allocations};
use crate::amount::{ExactSum, MantissaSums};
use crate::fold::{Change, DerivativeRecord, Fold, LineBook, LineRecord, LineStatus, KIND_PARTY};
use crate::fold_input::FoldInput;
use crate::rebuild;
use crate::statement::PeriodTotals;
use ledger::store::{EventStore, StoreError};
use ledger::Envelope;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use rust_decimal::Decimal;
use schemas::generation::DerivativePublished;
use schemas::usage::UsageLine;
use std::borrow::Borrow;
use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use std::str::FromStr;
use std::sync::{Arc, LazyLock};
use std::time::Duration;
use uuid::Uuid;

/// The name of the royalty projection in `projection_position`.
pub const ROYALTIES: &str = "royalties";
/// The `projection_position` row that records the tables' layout version.
const LAYOUT: &str = "table-layout";
/// Bumped whenever the projection tables change shape: tables of another
/// layout are dropped and folded again from the log on open.
pub const TABLE_LAYOUT_VERSION: u64 = 7;
/// Events read and folded per transaction while catching up.
pub const CATCH_UP_BATCH_EVENTS: usize = 10_000;
/// Events written per transaction by a rebuild from the store (its commits
/// are not synced: the read model can always be rebuilt). A rebuild keeps
/// each line in memory until its transaction commits, so this also bounds
/// that memory.
pub const REBUILD_TRANSACTION_EVENTS: u64 = 20_000;
/// The most of the database file SQLite reads through a memory map (address
/// space, not memory: pages are the kernel's page cache).
const MMAP_BYTES: u64 = 1 << 32;
/// How long a query waits for another process's projection transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    #[error("projection database failed: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("projection tables are inconsistent: {0}")]
    Corrupt(String),
    #[error("the events to fold start at seq {got}, but the projection is at seq {expected}")]
    Gap { expected: u64, got: u64 },
    #[error("--as-of {as_of} is beyond the log, which holds {size} events")]
    AsOfBeyondLog { as_of: u64, size: u64 },
}

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
}

impl Projections {
    /// Opens the projection tables in `database` (the log's SQLite file, or
    /// any SQLite file in tests), creating them on first use.
    pub fn open(database: &Path) -> Result<Projections, ProjectionError> {
        let conn = open_connection(database)?;
        // Also makes again any index a rebuild cut short had dropped.
        conn.execute_batch(schemas::PROJECTIONS_SQLITE_DDL)?;
        let mut projections = Projections {
            database: database.to_path_buf(),
            conn,
            fold: Fold::default(),
            position: 0,
        };
        if projections.stored_layout()? != Some(TABLE_LAYOUT_VERSION) {
            // Tables of another layout (or none yet): start them afresh; the
            // next catch-up folds the log from seq 0.
            projections.reset()?;
        }
        projections.reload()?;
        Ok(projections)
    }

    fn stored_layout(&self) -> Result<Option<u64>, ProjectionError> {
        let version: Option<i64> = self
            .conn
            .query_row(
                "SELECT next_seq FROM projection_position WHERE projection = ?1",
                params![LAYOUT],
                |row| row.get(0),
            )
            .optional()?;
        Ok(version.map(|v| v as u64))
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
        self.apply_inputs(envelopes.iter().map(FoldInput::from_envelope).collect())
    }

    /// [`Projections::apply`] for events decoded as the fold reads them.
    fn apply_inputs(&mut self, inputs: Vec<FoldInput>) -> Result<(), ProjectionError> {
        let outcome = self.apply_in_transaction(inputs);
        if outcome.is_err() {
            // The batch rolled back; the in-memory state may hold part of it.
            self.reload()?;
        }
        outcome
    }

    fn apply_in_transaction(&mut self, inputs: Vec<FoldInput>) -> Result<(), ProjectionError> {
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
            input.fold_into(&mut self.fold, &mut book)?;
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
        let from = self.position;
        while self.position < size {
            let inputs = read_inputs(store, self.position, size).await?;
            if inputs.is_empty() {
                break;
            }
            self.apply_inputs(inputs)?;
        }
        Ok(CatchUp {
            from,
            to: self.position,
        })
    }

    /// Empties the projection tables and position, in one transaction:
    /// the tables are dropped and created again, which is much faster than
    /// deleting their rows one index entry at a time.
    pub fn reset(&mut self) -> Result<(), ProjectionError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(
            "DROP TABLE IF EXISTS projection_usage_line; DROP TABLE IF EXISTS projection_derivative;
             DROP TABLE IF EXISTS projection_catalog_entry; DROP TABLE IF EXISTS projection_position;
             DROP TABLE IF EXISTS projection_fingerprint_key; DROP TABLE IF EXISTS projection_allocation_plan;
             DROP TABLE IF EXISTS projection_derivative_key; DROP TABLE IF EXISTS projection_payee_list;
             DROP TABLE IF EXISTS projection_open_job;",
        )?;
        tx.execute_batch(schemas::PROJECTIONS_SQLITE_DDL)?;
        tx.execute(
            "INSERT INTO projection_position (projection, next_seq) VALUES (?1, ?2)",
            params![LAYOUT, TABLE_LAYOUT_VERSION as i64],
        )?;
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
        let indexed = self
            .conn
            .execute_batch(schemas::PROJECTIONS_SQLITE_DDL)
            .and_then(|()| {
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

    /// A [`LineBook`] reading the committed usage lines.
    pub fn book(&self) -> impl LineBook<Error = rusqlite::Error> + '_ {
        SqlBook::new(&self.conn)
    }

    /// The booked lines of one period and currency with seq < `size`: each
    /// line's gross and exact allocations, in seq order.
    pub fn booked_lines(
        &self,
        period: &str,
        currency: &str,
        size: u64,
    ) -> Result<Vec<LineRecord>, ProjectionError> {
        let mut statement = self.conn.prepare_cached(&format!(
            "SELECT {LINE_COLUMNS}
             WHERE u.period = ?1 AND u.currency = ?2 AND u.seq < ?3 AND u.status = 'booked' ORDER BY u.seq"
        ))?;
        let reader = LineReader::new(&self.conn);
        let rows = statement.query_map(params![period, currency, size as i64], |row| {
            line_from_row(row, &reader)
        })?;
        rows.map(|row| row?.map_err(ProjectionError::Corrupt))
            .collect()
    }

    /// The statement inputs of one period and currency below seq `size`:
    /// the exact gross and each party's exact total of the booked lines,
    /// each line allocated by its plan and added by position (a period can
    /// hold millions of lines, so none is materialized).
    pub fn period_totals(
        &self,
        period: &str,
        currency: &str,
        size: u64,
    ) -> Result<PeriodTotals, ProjectionError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT seq, gross, plan FROM projection_usage_line
             WHERE period = ?1 AND currency = ?2 AND seq < ?3 AND status = 'booked'",
        )?;
        let mut rows = statement.query(params![period, currency, size as i64])?;
        let plans = PlanReader::new(&self.conn);
        let mut gross = MantissaSums::default();
        // Each party's sums, and where each plan's amounts go: a line adds
        // its amounts by position, without looking up a party name.
        let mut parties = PartySums::default();
        let mut slots_of_plan: HashMap<i64, (Arc<AllocationPlan>, Vec<usize>)> = HashMap::new();
        while let Some(row) = rows.next()? {
            let line = BookedRow::read(row)?;
            gross.add(line.gross);
            let (plan, slots) = match slots_of_plan.entry(line.plan) {
                Entry::Occupied(known) => known.into_mut(),
                Entry::Vacant(new) => {
                    let plan = plans.get(line.plan)?.map_err(|e| line.corrupt(e))?;
                    let slots = parties.slots_of(&plan);
                    new.insert((plan, slots))
                }
            };
            let allocations = plan
                .allocate(line.gross)
                .map_err(|e| line.corrupt(e.to_string()))?;
            for (&slot, &amount) in slots.iter().zip(allocations.amounts()) {
                parties.sums[slot].1.add(amount);
            }
        }
        Ok(PeriodTotals {
            gross: gross.total(),
            parties: parties
                .sums
                .into_iter()
                .map(|(party, sums)| (party, sums.total()))
                .collect(),
        })
    }

    /// Each of `parties`' exact total per derivative over the booked lines
    /// of one period and currency below seq `size`, keyed (party,
    /// derivative id): what a label's derivative detail rows reconcile with.
    pub fn derivative_totals(
        &self,
        period: &str,
        currency: &str,
        size: u64,
        parties: &BTreeSet<&str>,
    ) -> Result<BTreeMap<(String, String), ExactSum>, ProjectionError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT seq, gross, plan, derivative FROM projection_usage_line
             WHERE period = ?1 AND currency = ?2 AND seq < ?3 AND status = 'booked'",
        )?;
        let mut rows = statement.query(params![period, currency, size as i64])?;
        let reader = LineReader::new(&self.conn);
        let mut totals: BTreeMap<(String, String), ExactSum> = BTreeMap::new();
        while let Some(row) = rows.next()? {
            let line = BookedRow::read(row)?;
            let derivative = reader
                .derivatives
                .get(row.get(3)?)?
                .map_err(|e| line.corrupt(e))?
                .to_string();
            let plan = reader.plans.get(line.plan)?.map_err(|e| line.corrupt(e))?;
            let allocations = plan
                .allocate(line.gross)
                .map_err(|e| line.corrupt(e.to_string()))?;
            for allocation in allocations.iter() {
                if parties.contains(allocation.party) {
                    totals
                        .entry((allocation.party.to_string(), derivative.clone()))
                        .or_default()
                        .add(allocation.amount);
                }
            }
        }
        Ok(totals)
    }

    /// The currencies with booked lines in `period` below seq `size`.
    pub fn currencies(&self, period: &str, size: u64) -> Result<Vec<String>, ProjectionError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT DISTINCT currency FROM projection_usage_line
             WHERE period = ?1 AND seq < ?2 AND status = 'booked' ORDER BY currency",
        )?;
        let rows = statement.query_map(params![period, size as i64], |row| row.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    /// Every usage line of a derivative below seq `size`, booked or not.
    pub fn lines_of_derivative(
        &self,
        derivative: Uuid,
        size: u64,
    ) -> Result<Vec<LineRecord>, ProjectionError> {
        let key: Option<i64> = self
            .conn
            .prepare_cached("SELECT key FROM projection_derivative_key WHERE derivative = ?1")?
            .query_row(params![&derivative.as_bytes()[..]], |row| row.get(0))
            .optional()?;
        let Some(key) = key else {
            return Ok(Vec::new()); // No usage line names it.
        };
        let mut statement = self.conn.prepare_cached(&format!(
            "SELECT {LINE_COLUMNS} WHERE u.derivative = ?1 AND u.seq < ?2 ORDER BY u.seq"
        ))?;
        let reader = LineReader::new(&self.conn);
        let rows =
            statement.query_map(params![key, size as i64], |row| line_from_row(row, &reader))?;
        rows.map(|row| row?.map_err(ProjectionError::Corrupt))
            .collect()
    }

    /// Party names in force below seq `size`, by id.
    pub fn party_names(&self, size: u64) -> Result<BTreeMap<String, String>, ProjectionError> {
        let mut statement = self.conn.prepare_cached(
            "SELECT id, data FROM projection_catalog_entry WHERE kind = ?1 AND seq < ?2 ORDER BY seq",
        )?;
        let rows = statement.query_map(params![KIND_PARTY, size as i64], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?;
        let mut names = BTreeMap::new();
        for row in rows {
            let (id, data) = row?;
            let value: serde_json::Value =
                serde_json::from_str(&data).map_err(|e| ProjectionError::Corrupt(e.to_string()))?;
            if let Some(name) = value.get("name").and_then(|n| n.as_str()) {
                names.insert(id, name.to_string());
            }
        }
        Ok(names)
    }

    /// The version of a catalog entity in force below seq `size`: its seq and payload.
    pub fn catalog_entry(
        &self,
        kind: &str,
        id: &str,
        size: u64,
    ) -> Result<Option<(u64, serde_json::Value)>, ProjectionError> {
        let row: Option<(i64, String)> = self
            .conn
            .prepare_cached(
                "SELECT seq, data FROM projection_catalog_entry
                 WHERE kind = ?1 AND id = ?2 AND seq < ?3 ORDER BY seq DESC LIMIT 1",
            )?
            .query_row(params![kind, id, size as i64], |row| {
                Ok((row.get(0)?, row.get(1)?))
            })
            .optional()?;
        row.map(|(seq, data)| {
            serde_json::from_str(&data)
                .map(|value| (seq as u64, value))
                .map_err(|e| ProjectionError::Corrupt(e.to_string()))
        })
        .transpose()
    }

    /// A derivative published below seq `size`.
    pub fn derivative(
        &self,
        derivative: Uuid,
        size: u64,
    ) -> Result<Option<DerivativeRecord>, ProjectionError> {
        self.derivatives_where("derivative = ?1", &derivative.to_string(), size)
            .map(|mut found| found.pop())
    }

    /// Derivatives published below seq `size` whose file bytes hash to `hash`.
    pub fn derivatives_by_output(
        &self,
        hash: &str,
        size: u64,
    ) -> Result<Vec<DerivativeRecord>, ProjectionError> {
        self.derivatives_where("output_hash = ?1", hash, size)
    }

    /// Derivatives published below seq `size` whose decoded PCM hashes to `hash`.
    pub fn derivatives_by_pcm(
        &self,
        hash: &str,
        size: u64,
    ) -> Result<Vec<DerivativeRecord>, ProjectionError> {
        self.derivatives_where("pcm_hash = ?1", hash, size)
    }

    /// Derivatives published below seq `size` that share the most index
    /// keys with a query fingerprint (see [`crate::fingerprint`]), at most
    /// `candidates_max`, with their number of shared keys, most first. Keys
    /// listed for more than [`crate::fingerprint::KEY_POSTINGS_MAX`]
    /// derivatives do not vote.
    pub fn derivatives_by_fingerprint_keys(
        &self,
        keys: &[u32],
        size: u64,
        candidates_max: usize,
    ) -> Result<Vec<(DerivativeRecord, u32)>, ProjectionError> {
        let postings_max = crate::fingerprint::KEY_POSTINGS_MAX;
        let mut postings = self.conn.prepare_cached(
            "SELECT derivative_seq FROM projection_fingerprint_key
             WHERE key = ?1 AND derivative_seq < ?2 LIMIT ?3",
        )?;
        let mut votes: std::collections::HashMap<i64, u32> = Default::default();
        let mut listed = Vec::with_capacity(postings_max + 1);
        for key in keys {
            listed.clear();
            let rows = postings
                .query_map(params![key, size as i64, postings_max as i64 + 1], |row| {
                    row.get::<_, i64>(0)
                })?;
            for seq in rows {
                listed.push(seq?);
            }
            if listed.len() <= postings_max {
                for seq in &listed {
                    *votes.entry(*seq).or_default() += 1;
                }
            }
        }
        let mut ranked: Vec<(i64, u32)> = votes.into_iter().collect();
        ranked.sort_unstable_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        ranked.truncate(candidates_max);
        let mut by_seq = self
            .conn
            .prepare_cached("SELECT stream, data FROM projection_derivative WHERE seq = ?1")?;
        let mut found = Vec::with_capacity(ranked.len());
        for (seq, count) in ranked {
            let (stream, data) = by_seq.query_row(params![seq], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
            })?;
            let published: DerivativePublished =
                serde_json::from_str(&data).map_err(|e| ProjectionError::Corrupt(e.to_string()))?;
            found.push((
                DerivativeRecord {
                    seq: seq as u64,
                    stream,
                    published,
                },
                count,
            ));
        }
        Ok(found)
    }

    fn derivatives_where(
        &self,
        condition: &str,
        value: &str,
        size: u64,
    ) -> Result<Vec<DerivativeRecord>, ProjectionError> {
        let sql = format!(
            "SELECT seq, stream, data FROM projection_derivative WHERE {condition} AND seq < ?2 ORDER BY seq"
        );
        let mut statement = self.conn.prepare_cached(&sql)?;
        let rows = statement.query_map(params![value, size as i64], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
            ))
        })?;
        let mut found = Vec::new();
        for row in rows {
            let (seq, stream, data) = row?;
            let published: DerivativePublished =
                serde_json::from_str(&data).map_err(|e| ProjectionError::Corrupt(e.to_string()))?;
            found.push(DerivativeRecord {
                seq: seq as u64,
                stream,
                published,
            });
        }
        Ok(found)
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

/// A connection to the projection tables' database.
pub(crate) fn open_connection(database: &Path) -> Result<Connection, ProjectionError> {
    let conn = Connection::open(database)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // A larger page cache than SQLite's 2 MiB default keeps the usage
    // line indexes in memory while a catch-up inserts into them, and
    // reading through a memory map spares a statement one read() call
    // per row it visits (a period can span a quarter of a million
    // rows scattered over the table): it halved statement time.
    // The read model can always be rebuilt from the log, so its commits
    // need not wait for fsync (WAL with synchronous=NORMAL stays
    // consistent: position and rows commit together or not at all).
    conn.execute_batch(&format!(
        "PRAGMA cache_size = -65536; PRAGMA synchronous = NORMAL; PRAGMA mmap_size = {MMAP_BYTES};"
    ))?;
    Ok(conn)
}

pub(crate) fn write_position(conn: &Connection, position: u64) -> Result<(), ProjectionError> {
    conn.execute(
        "INSERT INTO projection_position (projection, next_seq) VALUES (?1, ?2)
         ON CONFLICT (projection) DO UPDATE SET next_seq = excluded.next_seq",
        params![ROYALTIES, position as i64],
    )?;
    Ok(())
}

pub(crate) fn read_position(conn: &Connection) -> Result<u64, ProjectionError> {
    let position: Option<i64> = conn
        .query_row(
            "SELECT next_seq FROM projection_position WHERE projection = ?1",
            params![ROYALTIES],
            |row| row.get(0),
        )
        .optional()?;
    Ok(position.unwrap_or(0) as u64)
}

/// The fold's in-memory state, from the tables: catalog versions replayed in
/// seq order, every published derivative, and the generation jobs still open.
fn load_state(conn: &Connection) -> Result<(Fold, u64), ProjectionError> {
    let position = read_position(conn)?;
    let mut fold = Fold::default();
    let mut statement =
        conn.prepare("SELECT kind, data FROM projection_catalog_entry ORDER BY seq")?;
    let rows = statement.query_map([], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
    })?;
    for row in rows {
        let (kind, data) = row?;
        let value: serde_json::Value =
            serde_json::from_str(&data).map_err(|e| ProjectionError::Corrupt(e.to_string()))?;
        if !fold.catalog.apply_entry(&kind, &value) {
            return Err(ProjectionError::Corrupt(format!(
                "catalog entry of kind {kind:?} does not parse"
            )));
        }
    }
    let mut statement =
        conn.prepare("SELECT seq, stream, data FROM projection_derivative ORDER BY seq")?;
    let rows = statement.query_map([], |row| {
        Ok((
            row.get::<_, i64>(0)?,
            row.get::<_, String>(1)?,
            row.get::<_, String>(2)?,
        ))
    })?;
    for row in rows {
        let (seq, stream, data) = row?;
        let mut published: DerivativePublished =
            serde_json::from_str(&data).map_err(|e| ProjectionError::Corrupt(e.to_string()))?;
        // As the fold keeps it: see `DerivativeRecord::without_fingerprint`.
        published.output_fingerprint = None;
        fold.derivatives.insert(
            published.derivative,
            DerivativeRecord {
                seq: seq as u64,
                stream,
                published,
            },
        );
    }
    let mut statement = conn.prepare("SELECT job, events FROM projection_open_job")?;
    let rows = statement.query_map([], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
    })?;
    for row in rows {
        let (job, events) = row?;
        let job = Uuid::parse_str(&job).map_err(|e| ProjectionError::Corrupt(e.to_string()))?;
        fold.jobs.insert(job, events as u64);
    }
    Ok((fold, position))
}

impl LineRecord {
    /// The allocations of a line read from the projection tables: the fold
    /// booked it only where its plan allocates its gross, so one that does
    /// not means the tables are inconsistent.
    pub fn stored_allocations(&self) -> Result<Allocations, ProjectionError> {
        self.allocations()
            .map_err(|e| ProjectionError::Corrupt(format!("usage line at seq {}: {e}", self.seq)))
    }
}

/// Exact sums per party, in the order the parties were first met.
#[derive(Default)]
struct PartySums {
    sums: Vec<(String, MantissaSums)>,
    slot_of_party: HashMap<String, usize>,
}

impl PartySums {
    /// The slot in `sums` of each payee of `plan`.
    fn slots_of(&mut self, plan: &AllocationPlan) -> Vec<usize> {
        plan.payees()
            .iter()
            .map(|payee| match self.slot_of_party.get(&*payee.party) {
                Some(&slot) => slot,
                None => {
                    self.sums
                        .push((payee.party.to_string(), MantissaSums::default()));
                    self.slot_of_party
                        .insert(payee.party.to_string(), self.sums.len() - 1);
                    self.sums.len() - 1
                }
            })
            .collect()
    }
}

/// The columns of a booked line that a statement reads: `seq, gross, plan`
/// first in a `SELECT`.
struct BookedRow {
    seq: i64,
    gross: Decimal,
    plan: i64,
}

impl BookedRow {
    fn read(row: &rusqlite::Row<'_>) -> Result<BookedRow, ProjectionError> {
        let seq: i64 = row.get(0)?;
        let corrupt = |e: String| ProjectionError::Corrupt(format!("usage line at seq {seq}: {e}"));
        let gross = row.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?;
        let gross =
            Decimal::from_str(gross).map_err(|e| corrupt(format!("gross {gross:?}: {e}")))?;
        let plan: Option<i64> = row.get(2)?;
        let plan = plan.ok_or_else(|| corrupt("a booked line has no allocation plan".into()))?;
        Ok(BookedRow { seq, gross, plan })
    }

    fn corrupt(&self, error: String) -> ProjectionError {
        ProjectionError::Corrupt(format!("usage line at seq {}: {error}", self.seq))
    }
}

/// Rows of a small table read by integer key, each decoded once: stored
/// allocation plans, derivative ids.
pub(crate) struct KeyedReader<'c, T> {
    conn: &'c Connection,
    /// A `SELECT` of one blob by key `?1`.
    sql: &'static str,
    /// What a row is, for messages.
    what: &'static str,
    decode: fn(&[u8]) -> Result<T, String>,
    decoded: std::cell::RefCell<HashMap<i64, T>>,
}

/// Stored allocation plans, by id.
pub(crate) type PlanReader<'c> = KeyedReader<'c, Arc<AllocationPlan>>;
/// Derivative ids, by the key usage lines store.
pub(crate) type DerivativeReader<'c> = KeyedReader<'c, Uuid>;

impl<'c> PlanReader<'c> {
    pub(crate) fn new(conn: &'c Connection) -> PlanReader<'c> {
        KeyedReader {
            conn,
            sql: "SELECT plan FROM projection_allocation_plan WHERE id = ?1",
            what: "allocation plan",
            decode: |bytes| AllocationPlan::decode(bytes).map(Arc::new),
            decoded: Default::default(),
        }
    }
}

impl<'c> DerivativeReader<'c> {
    pub(crate) fn new(conn: &'c Connection) -> DerivativeReader<'c> {
        KeyedReader {
            conn,
            sql: "SELECT derivative FROM projection_derivative_key WHERE key = ?1",
            what: "derivative key",
            decode: |bytes| Uuid::from_slice(bytes).map_err(|e| e.to_string()),
            decoded: Default::default(),
        }
    }
}

impl<T: Clone> KeyedReader<'_, T> {
    /// The row stored as `key`, or why it cannot be read.
    pub(crate) fn get(&self, key: i64) -> Result<Result<T, String>, rusqlite::Error> {
        if let Some(value) = self.decoded.borrow().get(&key) {
            return Ok(Ok(value.clone()));
        }
        let stored: Option<Vec<u8>> = self
            .conn
            .prepare_cached(self.sql)?
            .query_row(params![key], |row| row.get(0))
            .optional()?;
        let what = self.what;
        let Some(stored) = stored else {
            return Ok(Err(format!("{what} {key} is missing")));
        };
        Ok((self.decode)(&stored)
            .inspect(|value| {
                self.decoded.borrow_mut().insert(key, value.clone());
            })
            .map_err(|e| format!("{what} {key}: {e}")))
    }
}

/// How [`line_from_row`] reads the keys a usage line stores.
pub(crate) struct LineReader<'c> {
    plans: PlanReader<'c>,
    derivatives: DerivativeReader<'c>,
}

impl<'c> LineReader<'c> {
    pub(crate) fn new(conn: &'c Connection) -> LineReader<'c> {
        LineReader {
            plans: PlanReader::new(conn),
            derivatives: DerivativeReader::new(conn),
        }
    }
}

/// What [`line_from_row`] reads: a usage line (`u`).
const LINE_COLUMNS: &str = "u.seq, u.line_id, u.derivative, u.period, u.territory, u.currency, u.streams, u.gross, u.reverses, u.status, u.plan
     FROM projection_usage_line u";

/// Usage lines in the projection tables, seen through one connection (inside
/// the runner's transaction, so a batch sees its own earlier lines).
pub(crate) struct SqlBook<'c> {
    pub(crate) conn: &'c Connection,
    /// The keys of the plans and derivative ids this book has stored or
    /// found. Valid while the tables are not dropped: a book lives for one
    /// transaction, or for a rebuild that owns the tables.
    keys: StoredKeys,
    /// Reads the keys of the lines this book reads.
    reader: LineReader<'c>,
}

/// The keys of stored allocation plans, by the fold's shared plan (one hash
/// of a pointer per line) and by stored form for a plan the fold made again
/// (after a catalog change) or that another book stored; and the keys of
/// derivative ids.
#[derive(Default)]
pub(crate) struct StoredKeys {
    plans_by_pointer: HashMap<SharedPlan, i64>,
    plans_by_bytes: HashMap<Vec<u8>, i64>,
    derivatives: HashMap<Uuid, i64>,
}

/// Keys each map of [`StoredKeys`] holds before it forgets them all (a key
/// it forgot is found again in its table): a log that changes the catalog
/// between most lines makes a new plan per line, and each would otherwise
/// stay in memory; so would a log of lines that each name a new derivative.
const KEYS_REMEMBERED_MAX: usize = 65_536;

/// Inserts `value` into `map`, first forgetting everything once it holds
/// [`KEYS_REMEMBERED_MAX`].
fn remember<K: std::hash::Hash + Eq>(map: &mut HashMap<K, i64>, key: K, value: i64) {
    if map.len() >= KEYS_REMEMBERED_MAX {
        map.clear();
    }
    map.insert(key, value);
}

/// A plan compared by identity. It holds its plan, so the pointer cannot
/// be reused by another plan while it is a key.
struct SharedPlan(Arc<AllocationPlan>);

impl PartialEq for SharedPlan {
    fn eq(&self, other: &SharedPlan) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for SharedPlan {}

impl std::hash::Hash for SharedPlan {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        std::ptr::hash(Arc::as_ptr(&self.0), state);
    }
}

impl<'c> SqlBook<'c> {
    pub(crate) fn new(conn: &'c Connection) -> SqlBook<'c> {
        SqlBook::with_keys(conn, StoredKeys::default())
    }

    /// A book that already knows `keys`, which must be stored in `conn`'s
    /// tables.
    pub(crate) fn with_keys(conn: &'c Connection, keys: StoredKeys) -> SqlBook<'c> {
        SqlBook {
            conn,
            keys,
            reader: LineReader::new(conn),
        }
    }

    /// The keys this book knows, for the next book of the same tables.
    pub(crate) fn into_keys(self) -> StoredKeys {
        self.keys
    }

    /// The line recorded at `seq`, if that event was a usage line.
    pub(crate) fn line_at(&self, seq: u64) -> Result<Option<LineRecord>, rusqlite::Error> {
        let mut statement = self
            .conn
            .prepare_cached(&format!("SELECT {LINE_COLUMNS} WHERE u.seq = ?1"))?;
        let record = statement
            .query_row(params![seq as i64], |row| line_from_row(row, &self.reader))
            .optional()?;
        record
            .map(|r| r.map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into())))
            .transpose()
    }

    /// The key of the stored plan `plan`, stored now if it is new.
    fn plan_key(&mut self, plan: &Arc<AllocationPlan>) -> Result<i64, rusqlite::Error> {
        let shared = SharedPlan(Arc::clone(plan));
        if let Some(&key) = self.keys.plans_by_pointer.get(&shared) {
            return Ok(key);
        }
        let encoded = plan.encoded();
        let key = match self.keys.plans_by_bytes.get(encoded) {
            Some(&key) => key,
            None => {
                let key = self.stored_key(
                    "SELECT id FROM projection_allocation_plan WHERE plan = ?1",
                    "INSERT INTO projection_allocation_plan (plan) VALUES (?1)",
                    encoded,
                )?;
                remember(&mut self.keys.plans_by_bytes, encoded.to_vec(), key);
                key
            }
        };
        remember(&mut self.keys.plans_by_pointer, shared, key);
        Ok(key)
    }

    /// The key of derivative id `derivative`, stored now if it is new.
    fn derivative_key(&mut self, derivative: Uuid) -> Result<i64, rusqlite::Error> {
        if let Some(&key) = self.keys.derivatives.get(&derivative) {
            return Ok(key);
        }
        let key = self.stored_key(
            "SELECT key FROM projection_derivative_key WHERE derivative = ?1",
            "INSERT INTO projection_derivative_key (derivative) VALUES (?1)",
            derivative.as_bytes(),
        )?;
        remember(&mut self.keys.derivatives, derivative, key);
        Ok(key)
    }

    /// The key of the row that `select` finds for `value`, inserted with
    /// `insert` if there is none.
    fn stored_key(&self, select: &str, insert: &str, value: &[u8]) -> Result<i64, rusqlite::Error> {
        let found: Option<i64> = self
            .conn
            .prepare_cached(select)?
            .query_row(params![value], |row| row.get(0))
            .optional()?;
        match found {
            Some(key) => Ok(key),
            None => {
                self.conn.prepare_cached(insert)?.execute(params![value])?;
                Ok(self.conn.last_insert_rowid())
            }
        }
    }

    /// Inserts the row of one usage line.
    pub(crate) fn insert_line(&mut self, record: &LineRecord) -> Result<(), rusqlite::Error> {
        self.insert_lines(std::slice::from_ref(&record))
    }

    /// Inserts the rows of `records`, [`LINES_PER_INSERT`] to a statement
    /// where there are that many.
    pub(crate) fn insert_lines<R: Borrow<LineRecord>>(
        &mut self,
        records: &[R],
    ) -> Result<(), rusqlite::Error> {
        let mut chunks = records.chunks_exact(LINES_PER_INSERT);
        for chunk in &mut chunks {
            self.insert_rows(chunk, &MULTI_ROW_INSERT)?;
        }
        for record in chunks.remainder() {
            self.insert_rows(std::slice::from_ref(record), &SINGLE_ROW_INSERT)?;
        }
        Ok(())
    }

    /// Inserts `records` with `sql`, an INSERT of exactly that many rows.
    fn insert_rows<R: Borrow<LineRecord>>(
        &mut self,
        records: &[R],
        sql: &str,
    ) -> Result<(), rusqlite::Error> {
        let keys = records
            .iter()
            .map(|r| {
                let r = r.borrow();
                let plan = r.plan.as_ref().map(|p| self.plan_key(p)).transpose()?;
                Ok((self.derivative_key(r.line.derivative)?, plan))
            })
            .collect::<Result<Vec<_>, rusqlite::Error>>()?;
        let mut statement = self.conn.prepare_cached(sql)?;
        for (i, (record, (derivative, plan))) in records.iter().zip(keys).enumerate() {
            let (record, first) = (record.borrow(), i * LINE_ROW_VALUES + 1);
            let line = &record.line;
            statement.raw_bind_parameter(first, record.seq as i64)?;
            statement.raw_bind_parameter(first + 1, &line.line_id)?;
            statement.raw_bind_parameter(first + 2, derivative)?;
            statement.raw_bind_parameter(first + 3, &line.period)?;
            statement.raw_bind_parameter(first + 4, &line.territory)?;
            statement.raw_bind_parameter(first + 5, &line.currency)?;
            statement.raw_bind_parameter(first + 6, line.streams as i64)?;
            statement.raw_bind_parameter(first + 7, line.gross.to_string())?;
            statement.raw_bind_parameter(first + 8, &line.reverses)?;
            statement.raw_bind_parameter(first + 9, &*record.status.to_text())?;
            statement.raw_bind_parameter(first + 10, plan)?;
        }
        statement.raw_execute()?;
        Ok(())
    }
}

/// Usage lines inserted by one statement when there are many, so that each
/// statement's own work (its step, reset and bindings cleared) is shared
/// by several rows.
pub(crate) const LINES_PER_INSERT: usize = 16;
/// The values of one `projection_usage_line` row, in the order bound.
const LINE_ROW_VALUES: usize = 11;

/// An INSERT of `rows` usage lines.
fn insert_of(rows: usize) -> String {
    let row = format!("({})", ["?"; LINE_ROW_VALUES].join(", "));
    format!(
        "INSERT INTO projection_usage_line
         (seq, line_id, derivative, period, territory, currency, streams, gross, reverses, status, plan)
         VALUES {}",
        vec![row; rows].join(", ")
    )
}

impl SqlBook<'_> {
    /// Forgets an open generation job: it was published or abandoned.
    fn close_job(&self, job: Uuid) -> Result<(), rusqlite::Error> {
        self.conn
            .prepare_cached("DELETE FROM projection_open_job WHERE job = ?1")?
            .execute(params![job.to_string()])?;
        Ok(())
    }
}

static MULTI_ROW_INSERT: LazyLock<String> = LazyLock::new(|| insert_of(LINES_PER_INSERT));
static SINGLE_ROW_INSERT: LazyLock<String> = LazyLock::new(|| insert_of(1));

impl LineBook for SqlBook<'_> {
    type Error = rusqlite::Error;

    fn line(&self, line_id: &str) -> Result<Option<LineRecord>, rusqlite::Error> {
        let mut statement = self.conn.prepare_cached(&format!(
            "SELECT {LINE_COLUMNS} WHERE u.line_id = ?1 ORDER BY u.seq LIMIT 1"
        ))?;
        let record = statement
            .query_row(params![line_id], |row| line_from_row(row, &self.reader))
            .optional()?;
        record
            .map(|r| r.map_err(|e| rusqlite::Error::ToSqlConversionFailure(e.into())))
            .transpose()
    }

    fn reversal_of(&self, line_id: &str) -> Result<Option<u64>, rusqlite::Error> {
        let mut statement = self.conn.prepare_cached(
            "SELECT seq FROM projection_usage_line
             WHERE reverses = ?1 AND status = 'booked' ORDER BY seq LIMIT 1",
        )?;
        let seq: Option<i64> = statement
            .query_row(params![line_id], |row| row.get(0))
            .optional()?;
        Ok(seq.map(|s| s as u64))
    }

    fn record(&mut self, change: &Change) -> Result<(), rusqlite::Error> {
        match change {
            Change::CatalogEntry {
                kind,
                id,
                seq,
                data,
            } => {
                self.conn
                    .prepare_cached("INSERT INTO projection_catalog_entry (kind, id, seq, data) VALUES (?1, ?2, ?3, ?4)")?
                    .execute(params![kind, id, *seq as i64, data.to_string()])?;
            }
            Change::JobProgress { job, events } => {
                self.conn
                    .prepare_cached(
                        "INSERT INTO projection_open_job (job, events) VALUES (?1, ?2)
                         ON CONFLICT (job) DO UPDATE SET events = excluded.events",
                    )?
                    .execute(params![job.to_string(), *events as i64])?;
            }
            Change::JobAbandoned { job } => self.close_job(*job)?,
            Change::Derivative(record) => {
                self.close_job(record.published.job)?;
                let data =
                    serde_json::to_string(&record.published).expect("a derivative serializes");
                self.conn
                    .prepare_cached(
                        "INSERT INTO projection_derivative (derivative, seq, stream, output_hash, pcm_hash, data)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    )?
                    .execute(params![
                        record.published.derivative.to_string(),
                        record.seq as i64,
                        record.stream,
                        record.published.output.as_str(),
                        record.published.output_pcm.as_str(),
                        data
                    ])?;
                // A fingerprint of another algorithm, or one that does not
                // decode, is not indexed: the derivative is still traced by
                // its file and PCM hashes.
                let items = record
                    .published
                    .output_fingerprint
                    .as_ref()
                    .and_then(|f| crate::fingerprint::items_of(f).ok());
                if let Some(items) = items {
                    let mut insert = self.conn.prepare_cached(
                        "INSERT INTO projection_fingerprint_key (key, derivative_seq) VALUES (?1, ?2)",
                    )?;
                    for key in crate::fingerprint::index_keys(&items) {
                        insert.execute(params![key, record.seq as i64])?;
                    }
                }
            }
            Change::UsageLine(record) => self.insert_line(record)?,
        }
        Ok(())
    }
}

/// A usage line from a `SELECT` of [`LINE_COLUMNS`], its keys read through
/// `reader`.
fn line_from_row(
    row: &rusqlite::Row<'_>,
    reader: &LineReader<'_>,
) -> rusqlite::Result<Result<LineRecord, String>> {
    let seq: i64 = row.get(0)?;
    let corrupt = |e: String| format!("usage line at seq {seq}: {e}");
    let derivative = match reader.derivatives.get(row.get(2)?)? {
        Ok(derivative) => derivative,
        Err(e) => return Ok(Err(corrupt(e))),
    };
    let gross: String = row.get(7)?;
    let status: String = row.get(9)?;
    let plan = match row.get::<_, Option<i64>>(10)? {
        Some(id) => match reader.plans.get(id)? {
            Ok(plan) => Some(plan),
            Err(e) => return Ok(Err(corrupt(e))),
        },
        None => None,
    };
    let status = LineStatus::from_text(&status);
    if (status == LineStatus::Booked) != plan.is_some() {
        return Ok(Err(corrupt(
            "a booked line must have an allocation plan, and only a booked line".into(),
        )));
    }
    let line = UsageLine {
        line_id: row.get(1)?,
        derivative,
        period: row.get(3)?,
        territory: row.get(4)?,
        currency: row.get(5)?,
        streams: row.get::<_, i64>(6)? as u64,
        gross: match Decimal::from_str(&gross) {
            Ok(gross) => gross,
            Err(e) => return Ok(Err(corrupt(format!("gross {gross:?}: {e}")))),
        },
        reverses: row.get(8)?,
    };
    Ok(Ok(LineRecord {
        seq: seq as u64,
        line,
        status,
        plan,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fold::tests::{booked_line, plan_paying};

    fn line(seq: u64, plan: &Arc<AllocationPlan>) -> LineRecord {
        booked_line(
            seq,
            &format!("L{seq}"),
            None,
            Decimal::new(seq as i64 + 1, 2),
            Arc::clone(plan),
        )
    }

    /// Lines of the same plan share one stored plan, whether they hold the
    /// same shared plan, an equal one made again, or come in a later
    /// transaction; each line reads back its own gross and plan.
    #[test]
    fn equal_plans_are_stored_once() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_connection(&dir.path().join("p.db")).unwrap();
        conn.execute_batch(schemas::PROJECTIONS_SQLITE_DDL).unwrap();
        let (ab, ab_again, ba) = (
            plan_paying("c", &["a", "b"]),
            plan_paying("c", &["a", "b"]),
            plan_paying("c", &["b", "a"]),
        );
        let lines = [line(0, &ab), line(1, &ab), line(2, &ab_again), line(3, &ba)];
        let mut book = SqlBook::new(&conn);
        for record in &lines[..3] {
            book.insert_line(record).unwrap();
        }
        SqlBook::new(&conn).insert_line(&lines[3]).unwrap();
        let mut rejected = line(4, &ab);
        rejected.status = LineStatus::Rejected("a test".into());
        rejected.plan = None;
        SqlBook::new(&conn).insert_line(&rejected).unwrap();
        let plans: i64 = conn
            .query_row("SELECT count(*) FROM projection_allocation_plan", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(plans, 2, "a-b and b-a");
        let reader = SqlBook::new(&conn);
        for record in lines.iter().chain([&rejected]) {
            assert_eq!(&reader.line_at(record.seq).unwrap().unwrap(), record);
        }
        let plan_of = |seq: i64| -> Option<i64> {
            conn.query_row(
                "SELECT plan FROM projection_usage_line WHERE seq = ?1",
                [seq],
                |r| r.get(0),
            )
            .unwrap()
        };
        assert_eq!(plan_of(0), plan_of(2));
        assert_ne!(plan_of(0), plan_of(3));
        assert_eq!(plan_of(4), None);
    }

    /// Lines written many to a statement read back as each was, in order,
    /// the rows past the last full statement included.
    #[test]
    fn lines_inserted_many_to_a_statement_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let conn = open_connection(&dir.path().join("p.db")).unwrap();
        conn.execute_batch(schemas::PROJECTIONS_SQLITE_DDL).unwrap();
        let (ab, ba) = (plan_paying("c", &["a", "b"]), plan_paying("c", &["b", "a"]));
        let count = 2 * LINES_PER_INSERT as u64 + 5;
        let lines: Vec<LineRecord> = (0..count)
            .map(|seq| {
                let mut record = line(seq, if seq % 3 == 0 { &ab } else { &ba });
                record.line.reverses = (seq % 7 == 6).then(|| format!("L{}", seq - 1));
                record
            })
            .collect();
        SqlBook::new(&conn).insert_lines(&lines).unwrap();
        let reader = SqlBook::new(&conn);
        for record in &lines {
            assert_eq!(&reader.line_at(record.seq).unwrap().unwrap(), record);
        }
        let rows: i64 = conn
            .query_row("SELECT count(*) FROM projection_usage_line", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(rows as u64, count);
    }

    /// Each derivative id is stored once, under a key that its lines store;
    /// a derivative's lines are found by its id, and one no line names has
    /// none.
    #[test]
    fn derivative_ids_are_stored_once_and_lines_found_by_them() {
        let dir = tempfile::tempdir().unwrap();
        let projections = Projections::open(&dir.path().join("p.db")).unwrap();
        let plan = plan_paying("c", &["a"]);
        let lines: Vec<LineRecord> = (0..5)
            .map(|seq| {
                let mut record = line(seq, &plan);
                record.line.derivative = Uuid::from_u128(u128::from(seq % 2) + 1);
                record
            })
            .collect();
        SqlBook::new(&projections.conn)
            .insert_lines(&lines[..3])
            .unwrap();
        SqlBook::new(&projections.conn)
            .insert_lines(&lines[3..])
            .unwrap();
        let keys: i64 = projections
            .conn
            .query_row("SELECT count(*) FROM projection_derivative_key", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(keys, 2);
        let seqs = |derivative: u128, size: u64| -> Vec<u64> {
            projections
                .lines_of_derivative(Uuid::from_u128(derivative), size)
                .unwrap()
                .iter()
                .map(|r| r.seq)
                .collect()
        };
        assert_eq!(seqs(1, 5), [0, 2, 4]);
        assert_eq!(seqs(2, 5), [1, 3]);
        assert_eq!(seqs(1, 4), [0, 2]);
        assert!(seqs(3, 5).is_empty());
        let read = projections
            .lines_of_derivative(Uuid::from_u128(2), 5)
            .unwrap();
        assert_eq!(read, [lines[1].clone(), lines[3].clone()]);
    }

    /// A statement allocates each line by its stored plan: the totals are
    /// the sums of the lines' allocations.
    #[test]
    fn period_totals_sum_each_line_allocated_by_its_plan() {
        let dir = tempfile::tempdir().unwrap();
        let projections = Projections::open(&dir.path().join("p.db")).unwrap();
        let (ab, ba) = (plan_paying("c", &["a", "b"]), plan_paying("c", &["b", "a"]));
        let lines = [line(0, &ab), line(1, &ba), line(2, &ab)];
        SqlBook::new(&projections.conn)
            .insert_lines(&lines)
            .unwrap();
        let totals = projections.period_totals("2026-01", "USD", 3).unwrap();
        let mut expected: BTreeMap<String, ExactSum> = BTreeMap::new();
        for record in &lines {
            for a in record.allocations().unwrap().iter() {
                expected
                    .entry(a.party.to_string())
                    .or_default()
                    .add(a.amount);
            }
        }
        assert_eq!(totals.parties, expected);
        // Gross 0.01 + 0.02 + 0.03; the voice pool is 0.6 of it, paid 0.9
        // to "a" under a-b and 0.1 under b-a.
        assert_eq!(totals.gross, ExactSum::of(Decimal::new(6, 2)));
        let a = Decimal::new(6, 1)
            * (Decimal::new(9, 1) * Decimal::new(4, 2) + Decimal::new(1, 1) * Decimal::new(2, 2));
        assert_eq!(totals.parties["a"], ExactSum::of(a));
        assert_eq!(
            totals.parties["platform"],
            ExactSum::of(Decimal::new(18, 3))
        );
    }

    /// A line whose plan is missing or does not decode is reported, not
    /// read as something else.
    #[test]
    fn a_line_with_a_bad_plan_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let projections = Projections::open(&dir.path().join("p.db")).unwrap();
        let conn = &projections.conn;
        SqlBook::new(conn)
            .insert_line(&line(0, &plan_paying("c", &["a", "b"])))
            .unwrap();
        conn.execute(
            "UPDATE projection_allocation_plan SET plan = substr(plan, 1, 9)",
            [],
        )
        .unwrap();
        let error = projections.period_totals("2026-01", "USD", 1).unwrap_err();
        assert_eq!(
            error.to_string(),
            "projection tables are inconsistent: usage line at seq 0: allocation plan 1: a stored plan ends early"
        );
        let error = SqlBook::new(conn).line_at(0).unwrap_err().to_string();
        assert!(error.contains("a stored plan ends early"), "{error}");
        conn.execute_batch("PRAGMA foreign_keys = OFF; DELETE FROM projection_allocation_plan;")
            .unwrap();
        let error = projections.period_totals("2026-01", "USD", 1).unwrap_err();
        assert!(
            error.to_string().ends_with("allocation plan 1 is missing"),
            "{error}"
        );
    }
}
