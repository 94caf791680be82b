//! A mirror: an embedded-store data directory that holds another log's
//! events, stored hashes and signed checkpoints exactly as that log has
//! them, written only by a monitor after it verified them (see
//! `crate::monitor`). It has the embedded store's tables, so every reader
//! of a log (the audit, events, proofs, projections) reads a mirror as it
//! reads the log itself; it has no signing key, only the log's verifier
//! key, and the embedded store refuses to append to it.
//!
//! A mirror grows in rounds: the events of a new checkpoint are added in
//! chunks, and the round ends with the checkpoint, stored once the events
//! rebuild its root. Events past the newest checkpoint are an unfinished
//! round's, and the next round starts by removing them.

use super::rows::{latest_checkpoint, tree_size, SqliteHashes};
use super::{open_connection, DATABASE_FILE, SCHEMA};
use crate::merkle::{self, Frontier, Hash, HashReader};
use crate::store::{SignedCheckpoint, StoreError, StoredEvent};
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::path::{Path, PathBuf};

/// The log's verifier key in a mirror's data directory (Go note format),
/// where a log keeps its signing key.
pub const VERIFIER_KEY_FILE: &str = "verifier.key";
/// `ledger_meta` key marking a mirror: the verifier key of the log it mirrors.
pub(super) const MIRROR_META_KEY: &str = "mirror_of";

/// Why a mirror refused events.
#[derive(Debug, thiserror::Error)]
pub enum MirrorError {
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The log's leaf is not an event envelope, or not the one its place
    /// in the log calls for.
    #[error("leaf {seq} is not a valid event of this log: {problem}")]
    BadLeaf { seq: u64, problem: String },
    /// The events and the checkpoint disagree.
    #[error("the events up to {size} hash to {computed}, not to the checkpoint's root {signed}")]
    RootMismatch {
        size: u64,
        computed: String,
        signed: String,
    },
}

/// A mirror's data directory, open for its monitor.
pub struct SqliteMirror {
    data_dir: PathBuf,
    conn: Connection,
    /// The tree of the events held (a checkpoint's, between rounds).
    frontier: Frontier,
}

impl SqliteMirror {
    /// Opens (creating on first use) the mirror in `data_dir` of the log
    /// with origin `origin` and verifier key `verifier_key`. A data
    /// directory that holds another log, or mirrors another key, is
    /// refused. An unfinished round's events are removed.
    pub fn open(
        data_dir: &Path,
        origin: &str,
        verifier_key: &str,
    ) -> Result<SqliteMirror, StoreError> {
        let backend = |e: String| StoreError::Backend(e);
        crate::private::create_private_dir(data_dir).map_err(|e| {
            backend(format!(
                "cannot create data directory {}: {e}",
                data_dir.display()
            ))
        })?;
        if data_dir.join(super::KEY_FILE).exists() {
            return Err(backend(format!(
                "{} holds a log's signing key: a mirror needs a data directory of its own",
                data_dir.display()
            )));
        }
        let path = data_dir.join(DATABASE_FILE);
        crate::private::prepare_database(&path)
            .map_err(|e| backend(format!("cannot create {}: {e}", path.display())))?;
        let conn = open_connection(&path)?;
        // A mirror is re-derived from the log: a power cut may take back
        // its last rounds (never corrupt it, in WAL mode), and the next
        // round fetches them again, so commits need not wait for fsync.
        conn.execute_batch("PRAGMA synchronous=NORMAL;")?;
        conn.execute_batch(SCHEMA)?;
        let meta = |key: &str| -> Result<Option<String>, StoreError> {
            Ok(conn
                .query_row(
                    "SELECT value FROM ledger_meta WHERE key = ?1",
                    [key],
                    |row| row.get(0),
                )
                .optional()?)
        };
        match (meta("origin")?, meta(MIRROR_META_KEY)?) {
            (None, _) => {
                conn.execute(
                    "INSERT INTO ledger_meta (key, value) VALUES ('format_version', ?1), ('origin', ?2), (?3, ?4)",
                    params![super::FORMAT_VERSION, origin, MIRROR_META_KEY, verifier_key],
                )?;
            }
            (Some(stored), _) if stored != origin => {
                return Err(StoreError::OriginMismatch {
                    stored,
                    given: origin.to_string(),
                })
            }
            (Some(_), Some(mirrored)) if mirrored == verifier_key => {}
            (Some(_), Some(mirrored)) => {
                return Err(backend(format!(
                    "{} mirrors the log of key {mirrored}, not {verifier_key}",
                    data_dir.display()
                )))
            }
            (Some(_), None) => {
                return Err(backend(format!(
                    "{} holds a log of its own, not a mirror",
                    data_dir.display()
                )))
            }
        }
        let key_file = data_dir.join(VERIFIER_KEY_FILE);
        std::fs::write(&key_file, format!("{verifier_key}\n"))
            .map_err(|e| backend(format!("cannot write {}: {e}", key_file.display())))?;
        let mut mirror = SqliteMirror {
            data_dir: data_dir.to_path_buf(),
            conn,
            frontier: Frontier::new(),
        };
        mirror.drop_unfinished_round()?;
        Ok(mirror)
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// Events held: the size of the tree verified so far.
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    /// The newest checkpoint verified, as the log signed it.
    pub fn latest_checkpoint(&self) -> Result<Option<SignedCheckpoint>, StoreError> {
        latest_checkpoint(&self.conn)
    }

    /// The stored hashes held, read on a connection of their own, so that
    /// they can be compared with what a log serves while the round adds
    /// events (the hashes of the tree verified never change).
    pub fn hash_reader(&self) -> Result<HeldHashes, StoreError> {
        let conn = Connection::open_with_flags(
            self.data_dir.join(DATABASE_FILE),
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        Ok(HeldHashes(conn))
    }

    /// The root of the tree of the first `size` events held.
    pub fn root_at(&self, size: u64) -> Result<Hash, StoreError> {
        Ok(merkle::tree_hash(size, &SqliteHashes(&self.conn))?)
    }

    /// Adds verified events that follow the events held, in one
    /// transaction. Each must be the decoded envelope of its leaf with the
    /// leaf's hash, as the monitor checked them against the log's tiles;
    /// the stream and id indexes refuse a second event at one stream
    /// version or with one id.
    pub fn add_events(&mut self, events: &[StoredEvent]) -> Result<(), MirrorError> {
        let before = self.frontier.clone();
        let outcome = self.insert_events(events);
        if outcome.is_err() {
            self.frontier = before;
        }
        outcome
    }

    fn insert_events(&mut self, events: &[StoredEvent]) -> Result<(), MirrorError> {
        let mut hashes = Vec::with_capacity(events.len() * 2 + 64);
        for event in events {
            let seq = self.frontier.size();
            if event.seq != seq {
                return Err(MirrorError::BadLeaf {
                    seq,
                    problem: format!("it says seq {}", event.seq),
                });
            }
            self.frontier.append(event.leaf_hash, &mut hashes);
        }
        let transaction = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::from)?;
        // Many rows per statement: a mirror catching up stores millions,
        // and a statement's fixed cost is most of a small row's.
        for rows in events.chunks(EVENT_ROWS_PER_STATEMENT) {
            let outcome = insert_rows(
                &transaction,
                "events (seq, id, stream, version, type, leaf)",
                6,
                rows.len(),
                |statement| {
                    for (i, event) in rows.iter().enumerate() {
                        let at = i * 6;
                        statement.raw_bind_parameter(at + 1, event.seq as i64)?;
                        statement.raw_bind_parameter(at + 2, event.id.as_bytes().as_slice())?;
                        statement.raw_bind_parameter(at + 3, event.stream.as_str())?;
                        statement.raw_bind_parameter(at + 4, event.version as i64)?;
                        statement.raw_bind_parameter(at + 5, event.event_type.as_str())?;
                        statement.raw_bind_parameter(at + 6, event.leaf.as_slice())?;
                    }
                    Ok(())
                },
            );
            match outcome {
                Err(rusqlite::Error::SqliteFailure(failure, _))
                    if failure.code == rusqlite::ErrorCode::ConstraintViolation =>
                {
                    return Err(first_conflict(&transaction, rows));
                }
                other => other.map_err(StoreError::from)?,
            }
        }
        for rows in hashes.chunks(HASH_ROWS_PER_STATEMENT) {
            insert_rows(
                &transaction,
                "merkle_hashes (idx, hash)",
                2,
                rows.len(),
                |statement| {
                    for (i, (index, hash)) in rows.iter().enumerate() {
                        statement.raw_bind_parameter(i * 2 + 1, *index as i64)?;
                        statement.raw_bind_parameter(i * 2 + 2, hash.as_slice())?;
                    }
                    Ok(())
                },
            )
            .map_err(StoreError::from)?;
        }
        transaction.commit().map_err(StoreError::from)?;
        Ok(())
    }

    /// Ends a round: stores `checkpoint` (verified by the caller) once the
    /// events held rebuild its root. On a mismatch the round's events are
    /// removed and nothing is stored.
    pub fn finish_round(&mut self, checkpoint: &SignedCheckpoint) -> Result<(), MirrorError> {
        let root = self.frontier.root();
        if self.frontier.size() != checkpoint.size || root != checkpoint.root {
            let computed = hex::encode(root);
            self.drop_unfinished_round()?;
            return Err(MirrorError::RootMismatch {
                size: checkpoint.size,
                computed,
                signed: hex::encode(checkpoint.root),
            });
        }
        self.conn
            .execute(
                "INSERT OR IGNORE INTO checkpoints (size, root, note) VALUES (?1, ?2, ?3)",
                params![
                    checkpoint.size as i64,
                    checkpoint.root.as_slice(),
                    checkpoint.note
                ],
            )
            .map_err(StoreError::from)?;
        Ok(())
    }

    /// Removes the events (and their hashes) past the newest checkpoint:
    /// an unfinished or refused round's.
    pub fn drop_unfinished_round(&mut self) -> Result<(), StoreError> {
        let verified = latest_checkpoint(&self.conn)?.map_or(0, |c| c.size);
        let transaction = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        transaction.execute("DELETE FROM events WHERE seq >= ?1", [verified as i64])?;
        transaction.execute(
            "DELETE FROM merkle_hashes WHERE idx >= ?1",
            [merkle::stored_hash_count(verified) as i64],
        )?;
        let size = tree_size(&transaction)?;
        transaction.commit()?;
        self.frontier = Frontier::load(size, &SqliteHashes(&self.conn))?;
        Ok(())
    }
}

/// Events inserted by one statement (6 parameters each).
const EVENT_ROWS_PER_STATEMENT: usize = 128;
/// Stored hashes inserted by one statement (2 parameters each).
const HASH_ROWS_PER_STATEMENT: usize = 512;

/// Runs `INSERT INTO {table} VALUES (?, ...), ...` for `rows` rows of
/// `columns` parameters each, bound by `bind`.
fn insert_rows(
    transaction: &rusqlite::Transaction<'_>,
    table: &str,
    columns: usize,
    rows: usize,
    bind: impl FnOnce(&mut rusqlite::CachedStatement<'_>) -> rusqlite::Result<()>,
) -> rusqlite::Result<()> {
    let row = format!("({})", vec!["?"; columns].join(","));
    let sql = format!("INSERT INTO {table} VALUES {}", vec![row; rows].join(","));
    let mut statement = transaction.prepare_cached(&sql)?;
    bind(&mut statement)?;
    statement.raw_execute()?;
    Ok(())
}

/// The refusal of the first of `rows` whose id or stream version another
/// event holds (the statement that inserted them all was refused whole).
fn first_conflict(transaction: &rusqlite::Transaction<'_>, rows: &[StoredEvent]) -> MirrorError {
    let mut held = match transaction
        .prepare("SELECT seq FROM events WHERE id = ?1 OR (stream = ?2 AND version = ?3)")
    {
        Ok(statement) => statement,
        Err(error) => return StoreError::from(error).into(),
    };
    for (i, event) in rows.iter().enumerate() {
        let earlier = rows[..i]
            .iter()
            .any(|e| e.id == event.id || (e.stream == event.stream && e.version == event.version));
        let stored = held
            .exists(params![
                event.id.as_bytes().as_slice(),
                event.stream,
                event.version as i64
            ])
            .unwrap_or(false);
        if earlier || stored {
            return MirrorError::BadLeaf {
                seq: event.seq,
                problem: format!(
                    "another event of the log has its id {} or its version {} of stream {:?}",
                    event.id, event.version, event.stream
                ),
            };
        }
    }
    MirrorError::BadLeaf {
        seq: rows.first().map_or(0, |e| e.seq),
        problem: "the chunk repeats an event id or stream version".into(),
    }
}

/// A mirror's stored hashes on a read connection of their own.
pub struct HeldHashes(Connection);

impl HashReader for HeldHashes {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, merkle::MerkleError> {
        SqliteHashes(&self.0).read_hashes(indexes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::leaf_hash;
    use uuid::Uuid;

    fn event(seq: u64, stream: &str, version: u64) -> StoredEvent {
        let leaf = format!("leaf {seq}").into_bytes();
        StoredEvent {
            seq,
            stream: stream.into(),
            version,
            id: Uuid::now_v7(),
            event_type: "t".into(),
            leaf_hash: leaf_hash(&leaf),
            leaf,
        }
    }

    #[test]
    fn a_second_event_at_one_stream_version_is_named_and_nothing_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let key = crate::NoteSigner::generate("mirror.test/log").unwrap();
        let mut mirror =
            SqliteMirror::open(dir.path(), "mirror.test/log", &key.verifier_key()).unwrap();
        mirror
            .add_events(&[event(0, "a", 0), event(1, "a", 1)])
            .unwrap();
        let refused = mirror
            .add_events(&[event(2, "b", 0), event(3, "a", 1)])
            .unwrap_err();
        assert!(
            matches!(refused, MirrorError::BadLeaf { seq: 3, .. }),
            "{refused}"
        );
        assert_eq!(mirror.size(), 2);
        let refused = mirror.add_events(&[event(5, "c", 0)]).unwrap_err();
        assert!(
            matches!(refused, MirrorError::BadLeaf { seq: 2, .. }),
            "{refused}"
        );
    }
}
