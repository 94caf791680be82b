-- ledgerline scale-out store (PostgreSQL), first migration.
-- Applied once, in a transaction, by the migration step on open (recorded in
-- schema_migrations under an advisory lock). The model is store/sqlite/schema.sql;
-- what differs is the log head row, which serializes appends across nodes.

-- Facts about the log itself: its format version and checkpoint origin.
CREATE TABLE ledger_meta (
    key   text PRIMARY KEY,
    value text NOT NULL
);

-- The sequencer of every node: one row, locked (SELECT ... FOR UPDATE) by
-- each append transaction from the read of `size` until commit. Seqs are
-- assigned under that lock, so they are gap-free across nodes and commit
-- order equals seq order: no reader ever sees seq N before every smaller seq.
--
-- The row also carries what a writer needs to continue the log, so that a
-- node whose in-memory state is stale (another node appended) catches up
-- from the row it has just locked, in the same round trip: the Merkle
-- frontier (the hashes of the complete subtrees of the tree of `size`
-- leaves, largest first, 32 bytes each; each is also in merkle_hashes) and
-- the time of the last event (RFC 3339), so times never go backwards
-- across nodes.
CREATE TABLE log_head (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    size      bigint  NOT NULL CHECK (size >= 0),
    frontier  bytea   NOT NULL DEFAULT ''::bytea CHECK (length(frontier) % 32 = 0),
    last_time text
);
INSERT INTO log_head (singleton, size) VALUES (true, 0);

-- The log. seq is the global order and the Merkle leaf index; leaf holds the
-- exact RFC 8785 bytes that were hashed, never re-serialized.
CREATE TABLE events (
    seq     bigint PRIMARY KEY CHECK (seq >= 0),
    id      uuid   NOT NULL UNIQUE,  -- idempotent retries
    stream  text   NOT NULL,
    version bigint NOT NULL CHECK (version >= 0),  -- position in the stream, from 0
    type    text   NOT NULL,
    leaf    bytea  NOT NULL,
    UNIQUE (stream, version)
);

-- Every complete subtree hash of the RFC 6962 tree, stored once, addressed
-- as Go's sumdb/tlog StoredHashIndex.
CREATE TABLE merkle_hashes (
    idx  bigint PRIMARY KEY CHECK (idx >= 0),
    hash bytea  NOT NULL CHECK (length(hash) = 32)
);

-- Every signed checkpoint (C2SP tlog-checkpoint, C2SP signed-note), verbatim.
-- The primary key on size means no two different checkpoints of one size
-- can ever exist, whichever node signed.
CREATE TABLE checkpoints (
    size bigint PRIMARY KEY CHECK (size >= 0),
    root bytea  NOT NULL CHECK (length(root) = 32),
    note text   NOT NULL
);
