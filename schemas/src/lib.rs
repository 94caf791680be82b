#![doc = include_str!("../README.md")]

pub mod catalog;
pub mod content_hash;
pub mod generation;
pub mod reserved;
pub mod usage;

pub use content_hash::ContentHash;

/// SQLite DDL of the projection tables (`projection_*`), kept in the same
/// database file as the log and applied by the projection runner (idempotent).
pub const PROJECTIONS_SQLITE_DDL: &str = include_str!("../sql/projections.sqlite.sql");
