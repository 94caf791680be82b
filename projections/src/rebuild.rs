//! The fast path of `Projections::rebuild`: folding the whole log from seq 0
//! into empty tables.
//!
//! The incremental catch-up pays, per usage line, an index probe for its
//! line id and four random B-tree inserts into the usage-line indexes; over
//! a million lines those dominate. A rebuild knows the tables start empty,
//! so it:
//! - loads `projection_usage_line` in seq order (appends to its rowid
//!   B-tree) with its secondary indexes dropped, and makes them again at
//!   the end: one sort each;
//! - answers the fold's duplicate and reversal checks from memory (64-bit
//!   hashes of line ids mapped to seqs, confirmed against the row, so a
//!   hash collision costs a table scan, never a wrong answer);
//! - reads and decodes the log on the caller's task while a thread folds
//!   and writes, so the two halves use both cores.
//!
//! Each transaction still commits the rows with the new position, and
//! checks first that no other process moved the position meanwhile: if one
//! did (a server catching up the same file), this thread stops and the
//! caller finishes with the ordinary catch-up, which reads its state from
//! the tables. A rebuild cut short leaves consistent tables at some
//! position; `Projections::open` makes the missing indexes again.

use crate::fold::{Change, Fold, LineBook, LineRecord, LineStatus};
use crate::runner::{self, ProjectionError, SqlBook};
use ledger::Envelope;
use rusqlite::{params, Connection, TransactionBehavior};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, SyncSender};
use std::thread::JoinHandle;

/// Events folded per transaction (the commits are not synced: the read
/// model can always be rebuilt).
const EVENTS_PER_TRANSACTION: usize = 50_000;
/// Decoded batches read ahead of the folding thread.
const BATCHES_IN_FLIGHT: usize = 4;

/// The usage-line indexes dropped while the table loads; the DDL in
/// `schemas/sql/projections.sqlite.sql` makes them again.
pub(crate) const USAGE_LINE_INDEXES: [&str; 4] = [
    "projection_usage_line_id",
    "projection_usage_line_reverses",
    "projection_usage_line_statement",
    "projection_usage_line_derivative",
];

/// How the folding thread ended.
pub(crate) enum Folded {
    /// Every batch sent was folded; the fold state and position after them.
    All { fold: Box<Fold>, position: u64 },
    /// Another process moved the stored position: the tables are
    /// consistent at their own position, and the fold state must be read
    /// from them.
    Interrupted,
}

/// The folding thread of one rebuild, and the queue that feeds it.
pub(crate) struct Folder {
    sender: SyncSender<Vec<Envelope>>,
    thread: JoinHandle<Result<Folded, ProjectionError>>,
}

impl Folder {
    /// Starts folding into the empty tables of `database` (without their
    /// usage-line indexes), from seq 0 and the state `fold`.
    pub(crate) fn start(database: PathBuf, fold: Fold) -> Result<Folder, ProjectionError> {
        let (sender, batches) = std::sync::mpsc::sync_channel(BATCHES_IN_FLIGHT);
        let thread = std::thread::Builder::new()
            .name("projections-rebuild".into())
            .spawn(move || fold_batches(database, fold, batches))
            .map_err(|e| {
                ProjectionError::Corrupt(format!("cannot start the rebuild thread: {e}"))
            })?;
        Ok(Folder { sender, thread })
    }

    /// Queues the next consecutive events, waiting while the thread is
    /// behind; false once it stopped (`finish` says why).
    pub(crate) fn send(&self, batch: Vec<Envelope>) -> bool {
        self.sender.send(batch).is_ok()
    }

    /// Lets the thread fold what is queued, and returns how it ended.
    pub(crate) fn finish(self) -> Result<Folded, ProjectionError> {
        drop(self.sender);
        self.thread
            .join()
            .map_err(|_| ProjectionError::Corrupt("the rebuild thread panicked".into()))?
    }
}

/// Folds each batch of `batches` (consecutive envelopes from seq 0) into
/// the empty projection tables of `database`, which have no usage-line
/// indexes; `fold` is the empty state, with the catalog's defaults.
fn fold_batches(
    database: PathBuf,
    mut fold: Fold,
    batches: Receiver<Vec<Envelope>>,
) -> Result<Folded, ProjectionError> {
    let mut position = 0;
    let mut conn = runner::open_connection(&database)?;
    // This connection only appends: a small page cache recycles its pages
    // instead of allocating new ones (page allocation was nearly a quarter of the
    // thread's time), and the WAL is copied into the database once, at the
    // end, rather than after every commit.
    conn.execute_batch("PRAGMA cache_size = -8192; PRAGMA wal_autocheckpoint = 0;")?;
    let mut lines = LineIndex::default();
    let mut pending: Vec<Vec<Envelope>> = Vec::new();
    let mut closed = false;
    while !closed {
        let mut events = 0;
        while events < EVENTS_PER_TRANSACTION {
            match batches.recv() {
                Ok(batch) => {
                    events += batch.len();
                    pending.push(batch);
                }
                Err(_) => {
                    closed = true;
                    break;
                }
            }
        }
        if pending.is_empty() {
            break;
        }
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        if runner::read_position(&tx)? != position {
            return Ok(Folded::Interrupted);
        }
        let mut book = BulkBook {
            sql: SqlBook { conn: &tx },
            lines: &mut lines,
        };
        for envelope in pending.drain(..).flatten() {
            if envelope.seq != position {
                return Err(ProjectionError::Gap {
                    expected: position,
                    got: envelope.seq,
                });
            }
            fold.apply(&envelope, &mut book)?;
            position += 1;
        }
        runner::write_position(&tx, position)?;
        tx.commit()?;
    }
    Ok(Folded::All {
        fold: Box::new(fold),
        position,
    })
}

/// Drops the usage-line indexes (the table is empty: instant).
pub(crate) fn drop_usage_line_indexes(conn: &Connection) -> Result<(), ProjectionError> {
    for index in USAGE_LINE_INDEXES {
        conn.execute_batch(&format!("DROP INDEX IF EXISTS {index}"))?;
    }
    Ok(())
}

/// Where the lines folded so far are, by line id, without an index.
#[derive(Default)]
struct LineIndex {
    /// Hash of a line id → seq of the first line recorded with that hash.
    first_line: HashMap<u64, u64>,
    /// Hash of a line id → seq of the first booked line reversing a line
    /// with that hash.
    first_reversal: HashMap<u64, u64>,
}

fn line_key(line_id: &str) -> u64 {
    // SipHash with fixed keys: well spread, and the same in every run.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    line_id.hash(&mut hasher);
    hasher.finish()
}

/// The fold's [`LineBook`] during a rebuild: writes through [`SqlBook`],
/// looks lines up in a [`LineIndex`], and reads a candidate row by seq (its
/// primary key) to confirm it.
struct BulkBook<'c, 'i> {
    sql: SqlBook<'c>,
    lines: &'i mut LineIndex,
}

impl LineBook for BulkBook<'_, '_> {
    type Error = rusqlite::Error;

    fn line(&self, line_id: &str) -> Result<Option<LineRecord>, rusqlite::Error> {
        let Some(&seq) = self.lines.first_line.get(&line_key(line_id)) else {
            return Ok(None);
        };
        match self.sql.line_at(seq)? {
            Some(record) if record.line.line_id == line_id => Ok(Some(record)),
            // Another line id with the same hash: ask the table itself.
            _ => self.sql.line(line_id),
        }
    }

    fn reversal_of(&self, line_id: &str) -> Result<Option<u64>, rusqlite::Error> {
        let Some(&seq) = self.lines.first_reversal.get(&line_key(line_id)) else {
            return Ok(None);
        };
        let reverses: Option<String> = self
            .sql
            .conn
            .prepare_cached("SELECT reverses FROM projection_usage_line WHERE seq = ?1")?
            .query_row(params![seq as i64], |row| row.get(0))?;
        if reverses.as_deref() == Some(line_id) {
            Ok(Some(seq))
        } else {
            self.sql.reversal_of(line_id)
        }
    }

    fn record(&mut self, change: &Change) -> Result<(), rusqlite::Error> {
        self.sql.record(change)?;
        if let Change::UsageLine(record) = change {
            self.lines
                .first_line
                .entry(line_key(&record.line.line_id))
                .or_insert(record.seq);
            if let (LineStatus::Booked, Some(original)) = (&record.status, &record.line.reverses) {
                self.lines
                    .first_reversal
                    .entry(line_key(original))
                    .or_insert(record.seq);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal::Decimal;
    use schemas::usage::UsageLine;
    use uuid::Uuid;

    fn record(seq: u64, line_id: &str, reverses: Option<&str>) -> Change {
        Change::UsageLine(LineRecord {
            seq,
            line: UsageLine {
                line_id: line_id.into(),
                period: "2026-01".into(),
                derivative: Uuid::from_u128(1),
                territory: "US".into(),
                currency: "USD".into(),
                streams: 1,
                gross: Decimal::ONE,
                reverses: reverses.map(str::to_string),
            },
            status: LineStatus::Booked,
            allocations: Vec::new(),
        })
    }

    /// A hash collision must cost a scan, never a wrong answer: plant one
    /// by pointing another line id's key at an existing row.
    #[test]
    fn a_colliding_key_is_confirmed_against_the_row() {
        let dir = tempfile::tempdir().unwrap();
        let conn = runner::open_connection(&dir.path().join("p.db")).unwrap();
        conn.execute_batch(schemas::PROJECTIONS_SQLITE_DDL).unwrap();
        drop_usage_line_indexes(&conn).unwrap();
        let mut lines = LineIndex::default();
        let mut book = BulkBook {
            sql: SqlBook { conn: &conn },
            lines: &mut lines,
        };
        book.record(&record(0, "L1", None)).unwrap();
        book.record(&record(1, "L2", Some("L1"))).unwrap();
        assert_eq!(book.line("L1").unwrap().unwrap().seq, 0);
        assert_eq!(book.line("L2").unwrap().unwrap().seq, 1);
        assert!(book.line("L3").unwrap().is_none());
        assert_eq!(book.reversal_of("L1").unwrap(), Some(1));
        assert_eq!(book.reversal_of("L2").unwrap(), None);

        book.lines.first_line.insert(line_key("L9"), 0);
        book.lines.first_reversal.insert(line_key("L9"), 1);
        assert!(book.line("L9").unwrap().is_none(), "L9 collides with L1");
        assert_eq!(book.reversal_of("L9").unwrap(), None);
    }
}
