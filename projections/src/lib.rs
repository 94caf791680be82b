//! Deterministic folds over the ledgerline log: royalty allocation,
//! statements, reconciliation, lineage and audit-as-of queries.
//!
//! Everything here is a pure function of the events `0..N` in seq order,
//! computed with exact decimals (`rust_decimal`) and no wall-clock reads, so
//! the same log prefix always yields byte-identical statements. The
//! [`runner`] keeps the folded read model in `projection_*` tables of the
//! log's own SQLite file, with its position, in one transaction per batch.

pub mod allocation;
pub mod amount;
pub mod catalog;
pub mod currency;
pub mod fingerprint;
pub mod fold;
pub mod fold_input;
pub mod identifiers;
pub mod lineage;
mod rebuild;
pub mod reconcile;
pub mod runner;
mod scaled;
pub mod statement;
pub mod usage;
