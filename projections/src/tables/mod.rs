//! The read model: the `projection_*` tables that the fold writes into the
//! log's own SQLite file, and the code that reads and writes their rows.
//!
//! This module owns the tables' DDL (`tables/schema.sql`, applied on every
//! open), their layout version, the connection settings, the fold position
//! stored with the rows, the fold state read back from them, and `SqlBook`,
//! the [`LineBook`](crate::fold::LineBook) over the usage line table. It
//! does not decide what to fold or when (the runner and the rebuild do),
//! nor answer queries for statements and lineage (the query methods of
//! [`Projections`](crate::runner::Projections) do).

mod book;
mod readers;

pub(crate) use book::{SqlBook, StoredKeys};
pub(crate) use readers::{line_from_row, LineReader, PlanReader, LINE_COLUMNS};

use crate::allocation::Allocations;
use crate::fold::{DerivativeRecord, Fold, LineRecord};
use ledger::store::StoreError;
use rusqlite::{params, Connection, OptionalExtension, Transaction};
use schemas::generation::DerivativePublished;
use std::path::Path;
use std::time::Duration;
use uuid::Uuid;

/// The DDL of every projection table and index; `CREATE ... IF NOT EXISTS`
/// throughout, so applying it again only makes what is missing.
const DDL: &str = include_str!("schema.sql");
/// The name of the royalty projection in `projection_position`.
pub const ROYALTIES: &str = "royalties";
/// The `projection_position` row that records the tables' layout version.
const LAYOUT: &str = "table-layout";
/// Bumped whenever the projection tables change shape: tables of another
/// layout are dropped and folded again from the log on open.
pub const TABLE_LAYOUT_VERSION: u64 = 8;
/// The most of the database file SQLite reads through a memory map (address
/// space, not memory: pages are the kernel's page cache).
const MMAP_BYTES: u64 = 1 << 32;
/// How long a query waits for another process's projection transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// What went wrong reading, writing or folding into the read model.
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
    #[error("the log prefix of {as_of} events is beyond the log, which holds {size} events")]
    AsOfBeyondLog { as_of: u64, size: u64 },
}

/// Makes every table and index that is missing (a rebuild cut short may
/// have dropped some indexes).
pub(crate) fn create_tables(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(DDL)
}

/// The layout version the tables were made with, if they record one.
pub(crate) fn stored_layout(conn: &Connection) -> Result<Option<u64>, ProjectionError> {
    let version: Option<i64> = conn
        .query_row(
            "SELECT next_seq FROM projection_position WHERE projection = ?1",
            params![LAYOUT],
            |row| row.get(0),
        )
        .optional()?;
    Ok(version.map(|v| v as u64))
}

/// Drops every projection table and makes them again empty, at
/// [`TABLE_LAYOUT_VERSION`] and position 0, within `tx`: dropping is much
/// faster than deleting rows one index entry at a time.
pub(crate) fn reset_tables(tx: &Transaction<'_>) -> Result<(), ProjectionError> {
    tx.execute_batch(
        "DROP TABLE IF EXISTS projection_usage_line; DROP TABLE IF EXISTS projection_derivative;
         DROP TABLE IF EXISTS projection_catalog_entry; DROP TABLE IF EXISTS projection_position;
         DROP TABLE IF EXISTS projection_fingerprint_key; DROP TABLE IF EXISTS projection_allocation_plan;
         DROP TABLE IF EXISTS projection_derivative_key; DROP TABLE IF EXISTS projection_payee_list;
         DROP TABLE IF EXISTS projection_open_job; DROP TABLE IF EXISTS projection_credentialed_file;",
    )?;
    create_tables(tx)?;
    tx.execute(
        "INSERT INTO projection_position (projection, next_seq) VALUES (?1, ?2)",
        params![LAYOUT, TABLE_LAYOUT_VERSION as i64],
    )?;
    Ok(())
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

/// Records that every event below `position` is folded; written in the
/// transaction of the rows it covers.
pub(crate) fn write_position(conn: &Connection, position: u64) -> Result<(), ProjectionError> {
    conn.execute(
        "INSERT INTO projection_position (projection, next_seq) VALUES (?1, ?2)
         ON CONFLICT (projection) DO UPDATE SET next_seq = excluded.next_seq",
        params![ROYALTIES, position as i64],
    )?;
    Ok(())
}

/// The next seq to fold, as the tables record it (0 for new tables).
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
pub(crate) fn load_state(conn: &Connection) -> Result<(Fold, u64), ProjectionError> {
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

// Defined with the tables rather than next to `allocations`: a stored line
// that does not allocate is an inconsistency of the tables, reported as
// their error, and the fold does not depend on this module.
impl LineRecord {
    /// The allocations of a line read from the projection tables: the fold
    /// booked it only where its plan allocates its gross, so one that does
    /// not means the tables are inconsistent.
    pub fn stored_allocations(&self) -> Result<Allocations, ProjectionError> {
        self.allocations()
            .map_err(|e| ProjectionError::Corrupt(format!("usage line at seq {}: {e}", self.seq)))
    }
}
