#![doc = include_str!("../README.md")]

pub mod catalog;
pub mod content_hash;
pub mod generation;
pub mod reserved;
pub mod usage;

pub use content_hash::ContentHash;

/// SQLite DDL of the embedded store, applied on open (idempotent).
pub const SQLITE_DDL: &str = include_str!("../sql/sqlite.sql");

/// PostgreSQL migrations of the scale-out store as (version, name, DDL), in
/// order; each is applied once and recorded in `schema_migrations`.
pub const POSTGRES_MIGRATIONS: &[(i32, &str, &str)] = &[
    (
        1,
        "0001_init",
        include_str!("../sql/postgres/0001_init.sql"),
    ),
    (2, "0002_api", include_str!("../sql/postgres/0002_api.sql")),
    (
        3,
        "0003_durable_size",
        include_str!("../sql/postgres/0003_durable_size.sql"),
    ),
    (
        4,
        "0004_event_hashes",
        include_str!("../sql/postgres/0004_event_hashes.sql"),
    ),
];

/// SQLite DDL of the HTTP API's own records (keys, idempotency) in the data
/// directory's `api.db`, applied on open (idempotent).
pub const API_SQLITE_DDL: &str = include_str!("../sql/api.sqlite.sql");
