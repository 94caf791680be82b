-- ledgerline embedded store (SQLite, WAL, synchronous=FULL).
-- Applied on every open; every statement is idempotent.

-- Facts about the log itself: its format version and checkpoint origin.
CREATE TABLE IF NOT EXISTS ledger_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- The log. seq is the global order and the Merkle leaf index; leaf holds the
-- exact RFC 8785 bytes that were hashed, never re-serialized.
CREATE TABLE IF NOT EXISTS events (
    seq     INTEGER PRIMARY KEY,
    id      BLOB    NOT NULL,   -- 16-byte UUID, unique: idempotent retries
    stream  TEXT    NOT NULL,
    version INTEGER NOT NULL,   -- position in the stream, from 0
    type    TEXT    NOT NULL,
    leaf    BLOB    NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS events_by_id ON events (id);
CREATE UNIQUE INDEX IF NOT EXISTS events_by_stream ON events (stream, version);

-- Every complete subtree hash of the RFC 6962 tree, stored once, addressed
-- as Go's sumdb/tlog StoredHashIndex (so rows are appended in key order).
CREATE TABLE IF NOT EXISTS merkle_hashes (
    idx  INTEGER PRIMARY KEY,
    hash BLOB NOT NULL
);

-- Every signed checkpoint (C2SP tlog-checkpoint, C2SP signed-note), verbatim.
CREATE TABLE IF NOT EXISTS checkpoints (
    size INTEGER PRIMARY KEY,
    root BLOB NOT NULL,
    note TEXT NOT NULL
);
