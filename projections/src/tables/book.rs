//! [`SqlBook`]: the fold's [`LineBook`] over the projection tables, which
//! records each [`Change`] as rows and stores each allocation plan and
//! derivative id once, under an integer key its usage lines refer to.

use super::readers::{line_from_row, LineReader, LINE_COLUMNS};
use crate::allocation::AllocationPlan;
use crate::fold::{Change, LineBook, LineRecord};
use rusqlite::{params, Connection, OptionalExtension};
use std::borrow::Borrow;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock};
use uuid::Uuid;

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
            Change::Credentialed {
                derivative,
                file,
                seq,
            } => {
                self.conn
                    .prepare_cached(
                        "INSERT INTO projection_credentialed_file (file_hash, derivative, seq) VALUES (?1, ?2, ?3)",
                    )?
                    .execute(params![file, derivative.to_string(), *seq as i64])?;
            }
            Change::UsageLine(record) => self.insert_line(record)?,
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fold::tests::{booked_line, plan_paying};
    use crate::fold::LineStatus;
    use crate::tables::{create_tables, open_connection};
    use rust_decimal::Decimal;

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
        create_tables(&conn).unwrap();
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
        create_tables(&conn).unwrap();
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
}
