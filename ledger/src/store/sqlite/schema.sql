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

-- Witness cosignatures (C2SP cosignature/v1) of stored checkpoints: at most
-- one per checkpoint and witness key, its signature line verbatim.
CREATE TABLE IF NOT EXISTS cosignatures (
    size      INTEGER NOT NULL,   -- the cosigned checkpoint's size
    name      TEXT    NOT NULL,   -- the witness key's name
    key_id    INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,   -- when the witness cosigned (POSIX seconds)
    line      TEXT    NOT NULL,   -- "— <name> <base64>\n"
    PRIMARY KEY (size, name, key_id)
) WITHOUT ROWID;
-- A restarted log asks each witness's latest cosigned size.
CREATE INDEX IF NOT EXISTS cosignatures_by_witness ON cosignatures (name, key_id, size);
