//! The fast path of `Projections::rebuild`: folding the whole log from seq 0
//! into empty tables.
//!
//! The incremental catch-up pays, per usage line, an index probe for its
//! line id and four random B-tree inserts into the usage-line indexes; over
//! a million lines those dominate. A rebuild knows the tables start empty,
//! so it:
//! - loads `projection_usage_line` in seq order (appends to its rowid
//!   B-tree) with three of its four secondary indexes dropped (see
//!   [`USAGE_LINE_INDEXES`]), and makes them again at the end: one sort
//!   each;
//! - answers the fold's duplicate and reversal checks from memory (64-bit
//!   hashes of line ids mapped to seqs, confirmed against the line itself,
//!   so a hash collision costs a table scan, never a wrong answer);
//! - runs as a pipeline over both cores: the caller reads the log and
//!   decodes it ([`FoldInput`]), a folding thread folds (a booked line
//!   takes its derivative's allocation plan, its amounts are not made),
//!   and a writer thread inserts the rows.
//!
//! The folding thread keeps every line it folded until the writer reports
//! it committed, so a check that lands on a line not yet written reads it
//! from memory, and one that lands on an older line reads the committed
//! row.
//!
//! Each transaction still commits the rows with the new position, and
//! checks first that no other process moved the position meanwhile: if one
//! did (a server catching up the same file), the writer stops and the
//! caller finishes with the ordinary catch-up, which reads its state from
//! the tables. A rebuild cut short leaves consistent tables at some
//! position; `Projections::open` makes the missing indexes again.

use crate::fold::{Change, Fold, LineBook, LineRecord, LineStatus};
use crate::fold_input::FoldInput;
use crate::tables::{self, ProjectionError, SqlBook};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Folded batches queued ahead of the writer.
const BATCHES_IN_FLIGHT: usize = 2;

/// The usage-line indexes dropped while the table loads;
/// [`tables::create_tables`] makes them again. The statement
/// index (period, currency, seq) stays: lines arrive in seq order, so its
/// inserts land at the end of a few (period, currency) runs, which costs
/// the writer less than making the index again at the end. A line id or
/// derivative insert lands anywhere in its index, so those are cheaper
/// made again in one sort (`docs/decisions.md`, "Royalties").
pub(crate) const USAGE_LINE_INDEXES: [&str; 3] = [
    "projection_usage_line_id",
    "projection_usage_line_reverses",
    "projection_usage_line_derivative",
];

/// How a rebuild ended.
pub(crate) enum Rebuilt {
    /// Every event read was folded and written; the fold state and
    /// position after them.
    All { fold: Box<Fold>, position: u64 },
    /// Reading stopped early, or another process moved the stored
    /// position: the tables are consistent at their own position, and the
    /// fold state must be read from them.
    Cut,
}

/// Rows for the writer to insert.
enum Write {
    Line(Arc<LineRecord>),
    /// A catalog entry or derivative: rare, so boxed to keep the common
    /// variant small.
    Other(Box<Change>),
}

/// Folded changes up to (not including) seq `end`.
struct Batch {
    writes: Vec<Write>,
    end: u64,
}

/// A rebuild in progress: the caller reads and decodes events and sends
/// them here; a folding thread folds them and a writer thread inserts the
/// rows.
pub(crate) struct Rebuild {
    sender: SyncSender<Vec<FoldInput>>,
    folder: JoinHandle<Result<Rebuilt, ProjectionError>>,
}

impl Rebuild {
    /// Starts a rebuild into the empty tables of `database` (without their
    /// usage-line indexes), from seq 0 and the state `fold`, committing
    /// every `events_per_transaction` events or more.
    pub(crate) fn start(
        database: &Path,
        fold: Fold,
        events_per_transaction: u64,
    ) -> Result<Rebuild, ProjectionError> {
        let reader = tables::open_connection(database)?;
        let (sender, inputs) = std::sync::mpsc::sync_channel(BATCHES_IN_FLIGHT);
        let database = database.to_path_buf();
        let folder = spawn("projections-fold", move || {
            let folder = Folder {
                fold,
                position: 0,
                lines: LineIndex::default(),
                recent: VecDeque::new(),
                reader,
            };
            folder.run(&database, inputs, events_per_transaction)
        })?;
        Ok(Rebuild { sender, folder })
    }

    /// Queues the next consecutive events, waiting while the threads are
    /// behind; false once they stopped (`finish` says why).
    pub(crate) fn fold(&self, inputs: Vec<FoldInput>) -> bool {
        self.sender.send(inputs).is_ok()
    }

    /// Lets the threads fold and write what is queued, and returns how the
    /// rebuild ended. `read_all` is false when the caller stopped reading
    /// early (an error): the tables then hold a consistent prefix.
    pub(crate) fn finish(self, read_all: bool) -> Result<Rebuilt, ProjectionError> {
        drop(self.sender);
        let rebuilt = join(self.folder)?;
        Ok(if read_all { rebuilt } else { Rebuilt::Cut })
    }
}

/// The folding thread's state.
struct Folder {
    fold: Fold,
    position: u64,
    lines: LineIndex,
    /// Every usage line folded and not yet known to be committed, in seq
    /// order.
    recent: VecDeque<Arc<LineRecord>>,
    /// Reads committed rows (the writer's own are invisible until their
    /// transaction commits).
    reader: Connection,
}

impl Folder {
    /// Folds each batch of `inputs` (consecutive, from seq 0) and has a
    /// writer thread insert the rows into `database`.
    fn run(
        mut self,
        database: &Path,
        inputs: Receiver<Vec<FoldInput>>,
        events_per_transaction: u64,
    ) -> Result<Rebuilt, ProjectionError> {
        let (sender, batches) = std::sync::mpsc::sync_channel(BATCHES_IN_FLIGHT);
        let committed = Arc::new(AtomicU64::new(0));
        let writer = {
            let database = database.to_path_buf();
            let committed = Arc::clone(&committed);
            spawn("projections-write", move || {
                write_batches(&database, batches, events_per_transaction, &committed)
            })?
        };
        let mut folded = Ok(());
        for batch in inputs {
            let writes = match self.fold_batch(batch) {
                Ok(writes) => writes,
                Err(error) => {
                    folded = Err(error);
                    break;
                }
            };
            let batch = Batch {
                writes,
                end: self.position,
            };
            if sender.send(batch).is_err() {
                break; // The writer stopped: it says why.
            }
            let committed = committed.load(Ordering::Acquire);
            while self.recent.front().is_some_and(|r| r.seq < committed) {
                self.recent.pop_front();
            }
        }
        drop(sender);
        let written = join(writer)?;
        folded?;
        match written {
            Written::All { position } if position == self.position => Ok(Rebuilt::All {
                fold: Box::new(self.fold),
                position,
            }),
            _ => Ok(Rebuilt::Cut),
        }
    }

    /// Folds the next consecutive events; returns their rows.
    fn fold_batch(&mut self, inputs: Vec<FoldInput>) -> Result<Vec<Write>, ProjectionError> {
        let mut writes = Vec::with_capacity(inputs.len());
        for input in inputs {
            if input.seq() != self.position {
                return Err(ProjectionError::Gap {
                    expected: self.position,
                    got: input.seq(),
                });
            }
            let mut book = RecentBook {
                lines: &mut self.lines,
                recent: &self.recent,
                reader: &self.reader,
            };
            match input.fold_into(&mut self.fold, &mut book)? {
                Some(Change::UsageLine(record)) => {
                    let record = Arc::new(record);
                    self.recent.push_back(Arc::clone(&record));
                    writes.push(Write::Line(record));
                }
                Some(change) => writes.push(Write::Other(Box::new(change))),
                None => {}
            }
            self.position += 1;
        }
        Ok(writes)
    }
}

/// Starts one of the rebuild's threads.
fn spawn<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> Result<T, ProjectionError> + Send + 'static,
) -> Result<JoinHandle<Result<T, ProjectionError>>, ProjectionError> {
    std::thread::Builder::new()
        .name(name.into())
        .spawn(work)
        .map_err(|e| {
            ProjectionError::Corrupt(format!("cannot start the rebuild thread {name}: {e}"))
        })
}

/// Waits for one of the rebuild's threads and returns what it returned.
fn join<T>(thread: JoinHandle<Result<T, ProjectionError>>) -> Result<T, ProjectionError> {
    thread
        .join()
        .map_err(|_| ProjectionError::Corrupt("a rebuild thread panicked".into()))?
}

/// How the writer thread ended.
enum Written {
    All {
        position: u64,
    },
    /// Another process moved the stored position.
    Interrupted,
}

/// Writes each batch of `batches` (consecutive, from seq 0) into the empty
/// projection tables of `database`, which have no usage-line indexes, in
/// transactions of `events_per_transaction` events or more, publishing in
/// `committed` the position of each commit.
fn write_batches(
    database: &Path,
    batches: Receiver<Batch>,
    events_per_transaction: u64,
    committed: &AtomicU64,
) -> Result<Written, ProjectionError> {
    let mut position = 0;
    let mut conn = tables::open_connection(database)?;
    // This connection only appends: a small page cache recycles its pages
    // instead of allocating new ones. The WAL is checkpointed as usual
    // (every 1000 pages), so it reuses the same few megabytes of file; a WAL
    // grown to the whole table and copied once at the end costs more, as
    // the kernel zeroes each new page of it (`docs/decisions.md`,
    // "Royalties").
    conn.execute_batch("PRAGMA cache_size = -8192;")?;
    let mut pending: Vec<Batch> = Vec::new();
    // The rebuild owns the tables from empty, so the keys it stored stay
    // valid from one transaction to the next.
    let mut keys = tables::StoredKeys::default();
    let mut closed = false;
    while !closed {
        let mut end = position;
        while end - position < events_per_transaction {
            match batches.recv() {
                Ok(batch) => {
                    end = batch.end;
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
        if tables::read_position(&tx)? != position {
            return Ok(Written::Interrupted);
        }
        let mut book = SqlBook::with_keys(&tx, std::mem::take(&mut keys));
        // Lines go in many rows to a statement, in seq order with the rest.
        let mut lines: Vec<&LineRecord> = Vec::new();
        for write in pending.iter().flat_map(|b| &b.writes) {
            match write {
                Write::Line(record) => lines.push(record),
                Write::Other(change) => {
                    book.insert_lines(&std::mem::take(&mut lines))?;
                    book.record(change)?;
                }
            }
        }
        book.insert_lines(&lines)?;
        keys = book.into_keys();
        tables::write_position(&tx, end)?;
        tx.commit()?;
        position = end;
        committed.store(position, Ordering::Release);
        pending.clear();
    }
    Ok(Written::All { position })
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
    first_line: HashMap<u64, u64, BuildHasherDefault<KeyHasher>>,
    /// Hash of a line id → seq of the first booked line reversing a line
    /// with that hash.
    first_reversal: HashMap<u64, u64, BuildHasherDefault<KeyHasher>>,
}

/// The hasher of [`LineIndex`]'s maps: their keys are already SipHash
/// values, so hashing them again would only cost time.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys reach this hasher; fold any other input anyway.
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn write_u64(&mut self, key: u64) {
        self.0 = key;
    }
}

fn line_key(line_id: &str) -> u64 {
    // SipHash with fixed keys: well spread, and the same in every run.
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    line_id.hash(&mut hasher);
    hasher.finish()
}

/// The fold's [`LineBook`] during a rebuild: finds lines through a
/// [`LineIndex`], and confirms each candidate against the line itself, in
/// `recent` when not yet committed, else in its row.
struct RecentBook<'a> {
    lines: &'a mut LineIndex,
    recent: &'a VecDeque<Arc<LineRecord>>,
    reader: &'a Connection,
}

impl RecentBook<'_> {
    /// The line folded at `seq`, if it is not known to be committed.
    fn recent_at(&self, seq: u64) -> Option<&LineRecord> {
        let i = self.recent.binary_search_by_key(&seq, |r| r.seq).ok()?;
        Some(&self.recent[i])
    }

    /// The line at `seq`: in `recent`, else committed (a line leaves
    /// `recent` only once the writer committed it).
    fn line_at(&self, seq: u64) -> Result<Option<LineRecord>, rusqlite::Error> {
        match self.recent_at(seq) {
            Some(record) => Ok(Some(record.clone())),
            None => SqlBook::new(self.reader).line_at(seq),
        }
    }

    /// What the line at `seq` reverses.
    fn reverses_at(&self, seq: u64) -> Result<Option<String>, rusqlite::Error> {
        match self.recent_at(seq) {
            Some(record) => Ok(record.line.reverses.clone()),
            None => Ok(self
                .reader
                .prepare_cached("SELECT reverses FROM projection_usage_line WHERE seq = ?1")?
                .query_row(params![seq as i64], |row| row.get(0))
                .optional()?
                .flatten()),
        }
    }
}

impl LineBook for RecentBook<'_> {
    type Error = rusqlite::Error;

    fn line(&self, line_id: &str) -> Result<Option<LineRecord>, rusqlite::Error> {
        let Some(&seq) = self.lines.first_line.get(&line_key(line_id)) else {
            return Ok(None);
        };
        match self.line_at(seq)? {
            Some(record) if record.line.line_id == line_id => Ok(Some(record)),
            // Another line id with the same hash: search the committed rows
            // (all older than the recent lines), then the recent lines.
            _ => match SqlBook::new(self.reader).line(line_id)? {
                Some(record) => Ok(Some(record)),
                None => Ok(self
                    .recent
                    .iter()
                    .find(|r| r.line.line_id == line_id)
                    .map(|r| LineRecord::clone(r))),
            },
        }
    }

    fn reversal_of(&self, line_id: &str) -> Result<Option<u64>, rusqlite::Error> {
        let Some(&seq) = self.lines.first_reversal.get(&line_key(line_id)) else {
            return Ok(None);
        };
        if self.reverses_at(seq)?.as_deref() == Some(line_id) {
            return Ok(Some(seq));
        }
        match SqlBook::new(self.reader).reversal_of(line_id)? {
            Some(seq) => Ok(Some(seq)),
            None => Ok(self
                .recent
                .iter()
                .find(|r| {
                    r.status == LineStatus::Booked && r.line.reverses.as_deref() == Some(line_id)
                })
                .map(|r| r.seq)),
        }
    }

    fn record(&mut self, change: &Change) -> Result<(), rusqlite::Error> {
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

    fn record(seq: u64, line_id: &str, reverses: Option<&str>) -> LineRecord {
        let plan = crate::fold::tests::plan_paying("creator", &["a"]);
        crate::fold::tests::booked_line(seq, line_id, reverses, Decimal::ONE, plan)
    }

    /// A hash collision must cost a scan, never a wrong answer, whether the
    /// candidate line is committed or still in memory: plant collisions by
    /// pointing other line ids' keys at existing lines.
    #[test]
    fn a_colliding_key_is_confirmed_against_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let conn = tables::open_connection(&dir.path().join("p.db")).unwrap();
        tables::create_tables(&conn).unwrap();
        drop_usage_line_indexes(&conn).unwrap();
        // L1 and its reversal L2 are committed; L3 and its reversal L4 are
        // only in memory.
        let committed = [record(0, "L1", None), record(1, "L2", Some("L1"))];
        for line in &committed {
            SqlBook::new(&conn).insert_line(line).unwrap();
        }
        let recent: VecDeque<Arc<LineRecord>> =
            [record(2, "L3", None), record(3, "L4", Some("L3"))]
                .into_iter()
                .map(Arc::new)
                .collect();
        let mut lines = LineIndex::default();
        let mut book = RecentBook {
            lines: &mut lines,
            recent: &recent,
            reader: &conn,
        };
        for line in committed.iter().chain(recent.iter().map(|r| &**r)) {
            book.record(&Change::UsageLine(line.clone())).unwrap();
        }
        for (line_id, seq) in [("L1", 0), ("L2", 1), ("L3", 2), ("L4", 3)] {
            assert_eq!(book.line(line_id).unwrap().unwrap().seq, seq);
        }
        assert!(book.line("L5").unwrap().is_none());
        assert_eq!(book.reversal_of("L1").unwrap(), Some(1));
        assert_eq!(book.reversal_of("L3").unwrap(), Some(3));
        assert_eq!(book.reversal_of("L2").unwrap(), None);

        for (collides_with, seq) in [("L1", 0), ("L3", 2)] {
            book.lines.first_line.insert(line_key("L9"), seq);
            book.lines.first_reversal.insert(line_key("L9"), seq + 1);
            assert!(
                book.line("L9").unwrap().is_none(),
                "L9 collides with {collides_with}"
            );
            assert_eq!(book.reversal_of("L9").unwrap(), None);
        }
        // A colliding key must still find the true line, committed or not.
        book.lines.first_line.insert(line_key("L3"), 0);
        book.lines.first_reversal.insert(line_key("L3"), 1);
        assert_eq!(book.line("L3").unwrap().unwrap().seq, 2);
        assert_eq!(book.reversal_of("L3").unwrap(), Some(3));
        book.lines.first_line.insert(line_key("L1"), 2);
        book.lines.first_reversal.insert(line_key("L1"), 3);
        assert_eq!(book.line("L1").unwrap().unwrap().seq, 0);
        assert_eq!(book.reversal_of("L1").unwrap(), Some(1));
    }
}
