-- ledgerline scale-out store (PostgreSQL), fifth migration: witness
-- cosignatures (C2SP cosignature/v1) of stored checkpoints, at most one per
-- checkpoint and witness key, each its signature line verbatim. Any node
-- may record them; the primary key keeps the first.
CREATE TABLE cosignatures (
    size      bigint NOT NULL REFERENCES checkpoints (size),
    name      text   NOT NULL,                  -- the witness key's name
    key_id    bigint NOT NULL CHECK (key_id >= 0 AND key_id < 4294967296),
    timestamp bigint NOT NULL CHECK (timestamp >= 0),  -- POSIX seconds
    line      text   NOT NULL,                  -- '— <name> <base64>' and a newline
    PRIMARY KEY (size, name, key_id)
);

-- A restarted log asks each witness's latest cosigned size.
CREATE INDEX cosignatures_by_witness ON cosignatures (name, key_id, size);
