//! Witness cosignatures of the log's checkpoints in the SQLite file (the
//! `cosignatures` table of `schema.sql`).
//!
//! They are written on a connection of their own, not by the writer
//! thread: they are not part of the log, so appends never queue behind
//! them, and SQLite's write lock (with the busy timeout every connection
//! sets) orders the two, as it orders two processes appending to one file.

use crate::store::{StoreError, StoredCosignature};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};

/// The connection that writes cosignatures: the store's settings, but
/// commits that do not wait for an fsync (`synchronous=NORMAL`, in WAL
/// mode), and no automatic WAL checkpoint (`wal_checkpointer` copies the
/// WAL, as it does for the writer; a commit here would otherwise copy the
/// whole WAL and sync the database file whenever the WAL is long, which it
/// is under load). A cosignature lost to a power cut is no loss: the
/// witness keeps the checkpoint, answers the log's next request with 409
/// and its size, and cosigns it again. So witnessing adds no fsync beside
/// the appends'.
pub(super) fn open_writer(
    path: &std::path::Path,
    open: impl Fn(&std::path::Path) -> Result<Connection, StoreError>,
) -> Result<Connection, StoreError> {
    let conn = open(path)?;
    conn.execute_batch("PRAGMA synchronous=NORMAL; PRAGMA wal_autocheckpoint=0;")?;
    Ok(conn)
}

/// Keeps `cosignatures`, all or none; one per checkpoint and key, the
/// first kept.
pub(super) fn add(
    conn: &mut Connection,
    cosignatures: &[StoredCosignature],
) -> Result<(), StoreError> {
    let transaction = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut checkpoint =
            transaction.prepare_cached("SELECT 1 FROM checkpoints WHERE size = ?1")?;
        let mut insert = transaction.prepare_cached(
            "INSERT OR IGNORE INTO cosignatures (size, name, key_id, timestamp, line)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for cosignature in cosignatures {
            let size = to_i64(cosignature.size)?;
            if checkpoint
                .query_row([size], |_| Ok(()))
                .optional()?
                .is_none()
            {
                return Err(StoreError::NoCheckpoint(cosignature.size));
            }
            insert.execute(params![
                size,
                cosignature.name,
                cosignature.key_id,
                to_i64(cosignature.timestamp)?,
                cosignature.line
            ])?;
        }
    }
    transaction.commit()?;
    Ok(())
}

/// The cosignatures of the checkpoint of `size`.
pub(super) fn of_size(conn: &Connection, size: u64) -> Result<Vec<StoredCosignature>, StoreError> {
    if !table_exists(conn)? {
        return Ok(Vec::new());
    }
    let mut statement = conn.prepare_cached(
        "SELECT size, name, key_id, timestamp, line FROM cosignatures WHERE size = ?1 ORDER BY name, key_id",
    )?;
    let rows = statement.query_map([to_i64(size)?], |row| {
        Ok(StoredCosignature {
            size: row.get::<_, i64>(0)? as u64,
            name: row.get(1)?,
            key_id: row.get(2)?,
            timestamp: row.get::<_, i64>(3)? as u64,
            line: row.get(4)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// The largest size cosigned by at least `quorum` of `witnesses`.
pub(super) fn latest_cosigned_size(
    conn: &Connection,
    witnesses: &[(String, u32)],
    quorum: usize,
) -> Result<Option<u64>, StoreError> {
    if witnesses.is_empty() || quorum == 0 || !table_exists(conn)? {
        return Ok(None);
    }
    // One (name, key_id) pair of placeholders a witness; a policy names at
    // most 99, well within SQLite's parameter limit.
    let pairs = vec!["(?, ?)"; witnesses.len()].join(", ");
    let sql = format!(
        "SELECT size FROM cosignatures WHERE (name, key_id) IN (VALUES {pairs})
         GROUP BY size HAVING COUNT(*) >= ? ORDER BY size DESC LIMIT 1"
    );
    let mut values: Vec<rusqlite::types::Value> = Vec::with_capacity(witnesses.len() * 2 + 1);
    for (name, key_id) in witnesses {
        values.push(name.clone().into());
        values.push(i64::from(*key_id).into());
    }
    values.push((quorum as i64).into());
    let size: Option<i64> = conn
        .prepare_cached(&sql)?
        .query_row(rusqlite::params_from_iter(values), |row| row.get(0))
        .optional()?;
    Ok(size.map(|size| size as u64))
}

/// A read-only store may open a log written before cosignatures were kept.
fn table_exists(conn: &Connection) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'cosignatures'",
        )?
        .query_row([], |_| Ok(()))
        .optional()?
        .is_some())
}

fn to_i64(value: u64) -> Result<i64, StoreError> {
    i64::try_from(value)
        .map_err(|_| StoreError::Backend(format!("{value} does not fit in SQLite's integers")))
}
