//! What a witness remembers: per log origin, the latest checkpoint it
//! verified and cosigned, in an SQLite file in its data directory
//! (`witness.db`, WAL, `synchronous=FULL`). A checkpoint is recorded in one
//! durable transaction before the witness answers, so a crash at any point
//! leaves either the old or the new record, and the witness never forgets
//! a checkpoint it cosigned.

use ledger::Hash;
use rusqlite::{params, Connection, OptionalExtension};
use std::path::Path;
use std::time::Duration;

/// The database inside the witness's data directory.
pub const DATABASE_FILE: &str = "witness.db";

const SCHEMA: &str = "
-- The latest checkpoint this witness verified and cosigned, per log origin
-- (C2SP tlog-witness): sizes only ever grow.
CREATE TABLE IF NOT EXISTS latest_checkpoints (
    origin TEXT    PRIMARY KEY,
    size   INTEGER NOT NULL,
    root   BLOB    NOT NULL,
    note   TEXT    NOT NULL     -- the log-signed note, as submitted
) WITHOUT ROWID;
";

/// The latest cosigned checkpoint of one origin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latest {
    pub size: u64,
    pub root: Hash,
    pub note: String,
}

/// The witness's durable state.
pub struct WitnessState {
    conn: Connection,
}

impl WitnessState {
    /// Opens (creating on first use, mode 0600) the state in `dir`.
    pub fn open(dir: &Path) -> anyhow::Result<WitnessState> {
        let path = dir.join(DATABASE_FILE);
        ledger::private::prepare_database(&path)
            .map_err(|e| anyhow::anyhow!("cannot create {}: {e}", path.display()))?;
        let conn = Connection::open(&path)
            .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(10))?;
        let mode: String = conn.query_row("PRAGMA journal_mode=WAL", [], |row| row.get(0))?;
        anyhow::ensure!(
            mode.eq_ignore_ascii_case("wal"),
            "{} refused WAL mode (got {mode})",
            path.display()
        );
        conn.execute_batch("PRAGMA synchronous=FULL;")?;
        conn.execute_batch(SCHEMA)?;
        Ok(WitnessState { conn })
    }

    /// The latest cosigned checkpoint of `origin`, if any.
    pub fn latest(&self, origin: &str) -> anyhow::Result<Option<Latest>> {
        let row = self
            .conn
            .query_row(
                "SELECT size, root, note FROM latest_checkpoints WHERE origin = ?1",
                [origin],
                |row| {
                    Ok((
                        row.get::<_, i64>(0)?,
                        row.get::<_, Vec<u8>>(1)?,
                        row.get::<_, String>(2)?,
                    ))
                },
            )
            .optional()?;
        row.map(|(size, root, note)| {
            let root = Hash::try_from(root.as_slice())
                .map_err(|_| anyhow::anyhow!("the stored root of {origin:?} is not 32 bytes"))?;
            Ok(Latest {
                size: size as u64,
                root,
                note,
            })
        })
        .transpose()
    }

    /// Records `latest` as the latest cosigned checkpoint of `origin`,
    /// durably (one transaction, synced before it returns).
    pub fn record(&mut self, origin: &str, latest: &Latest) -> anyhow::Result<()> {
        let size = i64::try_from(latest.size)?;
        let transaction = self.conn.transaction()?;
        transaction.execute(
            "INSERT INTO latest_checkpoints (origin, size, root, note) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (origin) DO UPDATE SET size = excluded.size, root = excluded.root, note = excluded.note",
            params![origin, size, latest.root.as_slice(), latest.note],
        )?;
        transaction.commit()?;
        Ok(())
    }
}
