#![doc = include_str!("../README.md")]
//!
//! ## Modules
//!
//! - [`allocation`]: royalty policy v1, one usage line's gross to parties.
//! - [`catalog`], [`usage`]: catalog documents and usage reports, checked
//!   and appended as events.
//! - [`amount`], [`currency`]: exact sums, and rounding to a currency's
//!   minor unit.
//! - [`fold`], [`fold_input`]: the fold itself, and its input decoded from
//!   leaf bytes.
//! - [`statement`]: statements per period and currency, rounded by largest
//!   remainder.
//! - [`reconcile`]: a label's statement compared with ours, line by line.
//! - [`lineage`], [`fingerprint`]: where an audio file came from, and who
//!   was paid for it.
//! - [`runner`]: the read model kept in the log's SQLite file.

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
