-- The HTTP API's own records, kept beside the log so that every node
-- serving one PostgreSQL log accepts the same API keys and answers a
-- retried Idempotency-Key the same way, whichever node the retry reaches.
-- They are not part of the audited log: managing keys never appends.

-- API keys: only the SHA-256 of each token is stored.
CREATE TABLE api_keys (
    id            text PRIMARY KEY,
    role          text NOT NULL,
    party         text,
    token_sha256  bytea NOT NULL UNIQUE,
    created_unix  bigint NOT NULL,
    revoked_unix  bigint
);

-- The first successful response of each idempotent write, per API key and
-- Idempotency-Key, with the SHA-256 of the request it answered.
CREATE TABLE api_idempotency (
    api_key_id       text NOT NULL,
    idempotency_key  text NOT NULL,
    request_sha256   bytea NOT NULL,
    status           integer NOT NULL,
    body             text NOT NULL,
    created_unix     bigint NOT NULL,
    PRIMARY KEY (api_key_id, idempotency_key)
);
