-- The HTTP API's own records in the data directory's `api.db`, apart from
-- the log so that managing keys never touches the audited ledger. (With
-- --store postgres://... they live in the log's database instead:
-- postgres/0002_api.sql.)

-- API keys: only the SHA-256 of each token is stored.
CREATE TABLE IF NOT EXISTS api_keys (
    id            TEXT PRIMARY KEY,
    role          TEXT NOT NULL,
    party         TEXT,
    token_sha256  BLOB NOT NULL UNIQUE,
    created_unix  INTEGER NOT NULL,
    revoked_unix  INTEGER
) STRICT;

-- The first successful response of each idempotent write, per API key and
-- Idempotency-Key, with the SHA-256 of the request it answered. A row with
-- status 0 reserves its key for a request still running (its body is the
-- reservation's token). Rows expire after the TTL in src/api/idempotency.rs.
CREATE TABLE IF NOT EXISTS api_idempotency (
    api_key_id       TEXT NOT NULL,
    idempotency_key  TEXT NOT NULL,
    request_sha256   BLOB NOT NULL,
    status           INTEGER NOT NULL,
    body             TEXT NOT NULL,
    created_unix     INTEGER NOT NULL,
    PRIMARY KEY (api_key_id, idempotency_key)
) STRICT;
