-- Projection tables of ledgerline, kept in the same SQLite file as the log.
-- Every row is derived from the log by a pure fold in seq order; the fold's
-- position is updated in the same transaction as the rows, and
-- `ledgerline projections rebuild` drops and refills all of them.

-- How far the fold has read: every event with seq < next_seq is folded.
-- The row 'table-layout' holds the layout version of these tables instead.
CREATE TABLE IF NOT EXISTS projection_position (
    projection TEXT PRIMARY KEY,
    next_seq INTEGER NOT NULL
) STRICT;

-- Every version of every catalog entity, in force from its seq on.
-- kind: party | work | recording | voice-model | policy.
CREATE TABLE IF NOT EXISTS projection_catalog_entry (
    kind TEXT NOT NULL,
    id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data TEXT NOT NULL,
    PRIMARY KEY (kind, id, seq)
) STRICT;
CREATE INDEX IF NOT EXISTS projection_catalog_entry_seq ON projection_catalog_entry (kind, seq);

-- Published derivatives, looked up by id or by content hash (lineage).
CREATE TABLE IF NOT EXISTS projection_derivative (
    derivative TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    stream TEXT NOT NULL,
    output_hash TEXT NOT NULL,
    pcm_hash TEXT NOT NULL,
    data TEXT NOT NULL
) STRICT;
CREATE INDEX IF NOT EXISTS projection_derivative_output ON projection_derivative (output_hash);
CREATE INDEX IF NOT EXISTS projection_derivative_pcm ON projection_derivative (pcm_hash);

-- Published outputs as distributed, with their Content Credentials
-- embedded (generation.credentials-issued): lineage finds a derivative by
-- the hash of the credentialed file too.
CREATE TABLE IF NOT EXISTS projection_credentialed_file (
    file_hash TEXT NOT NULL,
    derivative TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (file_hash, seq)
) STRICT;

-- Generation jobs requested and not yet published or abandoned: the first
-- `events` events of the job's stream are its request and its steps, in
-- order. The fold accepts a derivative only as the next event of such a job
-- with at least one step (see projections/src/fold.rs).
CREATE TABLE IF NOT EXISTS projection_open_job (
    job TEXT PRIMARY KEY,
    events INTEGER NOT NULL
) STRICT;

-- How policy v1 allocates the lines of one derivative under the split
-- sheets in force: the policy shares, the creator, and each attribution
-- component with its weight and split sheets, in the binary form documented
-- in projections/src/plan_codec.rs. Every line of one derivative under the
-- same catalog has the same plan, so it is stored once.
CREATE TABLE IF NOT EXISTS projection_allocation_plan (
    id INTEGER PRIMARY KEY,
    plan BLOB NOT NULL UNIQUE
) STRICT;

-- A key for every derivative id a usage line names, published or not:
-- usage lines store and index the key. Their derivative index is made again
-- at the end of every rebuild, and at a million lines an index of integers
-- took about half the time of one of the ids' 16 bytes (0.35 against
-- 0.65 s; on their 36-character text it was slower still).
CREATE TABLE IF NOT EXISTS projection_derivative_key (
    key INTEGER PRIMARY KEY,
    derivative BLOB NOT NULL UNIQUE
) STRICT;

-- Every usage line event, in seq order. derivative is its derivative id's
-- key in projection_derivative_key. status is 'booked' or
-- 'rejected: <why>' (a duplicate line id, an unknown derivative, ...). A
-- booked line's exact allocations are its gross allocated by its plan (for
-- a reversal, the original line's plan: its negated gross books the
-- original's allocations negated); they are made when read, not stored. A
-- line that was not booked has no plan.
CREATE TABLE IF NOT EXISTS projection_usage_line (
    seq INTEGER PRIMARY KEY,
    line_id TEXT NOT NULL,
    derivative INTEGER NOT NULL REFERENCES projection_derivative_key (key),
    period TEXT NOT NULL,
    territory TEXT NOT NULL,
    currency TEXT NOT NULL,
    streams INTEGER NOT NULL,
    gross TEXT NOT NULL,
    reverses TEXT,
    status TEXT NOT NULL,
    plan INTEGER REFERENCES projection_allocation_plan (id)
) STRICT;
-- Every index ends with the row's seq (its rowid) implicitly: queries by
-- derivative or by period and currency read in seq order and cut at seq.
CREATE INDEX IF NOT EXISTS projection_usage_line_id ON projection_usage_line (line_id);
CREATE INDEX IF NOT EXISTS projection_usage_line_reverses ON projection_usage_line (reverses) WHERE reverses IS NOT NULL;
CREATE INDEX IF NOT EXISTS projection_usage_line_statement ON projection_usage_line (period, currency);
CREATE INDEX IF NOT EXISTS projection_usage_line_derivative ON projection_usage_line (derivative);

-- Acoustic-fingerprint index for lineage (projections/src/fingerprint.rs):
-- each published derivative with a Chromaprint fingerprint is listed once
-- under each distinct sampled key (an item's top 20 bits, one key value in
-- four: fingerprint::KEY_SAMPLING) of it, so a query votes
-- over its own keys instead of being compared with every derivative.
CREATE TABLE IF NOT EXISTS projection_fingerprint_key (
    key INTEGER NOT NULL,
    derivative_seq INTEGER NOT NULL,
    PRIMARY KEY (key, derivative_seq)
) STRICT, WITHOUT ROWID;
-- The candidates' events are read by seq.
CREATE INDEX IF NOT EXISTS projection_derivative_seq ON projection_derivative (seq);
