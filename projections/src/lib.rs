#![doc = include_str!("../README.md")]
//!
//! ## Modules
//!
//! - [`allocation`]: royalty policy v1, one usage line's gross to parties.
//! - [`catalog`]: catalog documents, checked and appended as events.
//! - [`consent`]: an artist's consent withdrawn, checked and appended.
//! - [`takedowns`]: the published derivatives whose licence or consent has
//!   ended, each with the event that ended it and its inclusion proof.
//! - [`terms_history`]: a recording's licence terms as of a seq, with the
//!   events that set them.
//! - [`usage`], [`usage_import`]: usage reports parsed and checked line by
//!   line (pure), then checked against the log and appended.
//! - [`amount`], [`currency`]: exact sums, and rounding to a currency's
//!   minor unit.
//! - [`fold`], [`fold_input`]: the fold itself, and its input decoded from
//!   leaf bytes.
//! - [`statement`]: statements per period and currency, rounded by largest
//!   remainder.
//! - [`reconcile`]: a label's statement compared with ours, line by line.
//! - [`cited`]: the checkpoint an answer cites and the inclusion proofs of
//!   the events it names.
//! - [`lineage`], [`fingerprint`]: where an audio file came from, and who
//!   was paid for it.
//! - [`party_scope`]: which changes concern one party (a label's monitor).
//! - [`tables`]: the read model, `projection_*` tables in the log's SQLite
//!   file: their DDL, layout and rows.
//! - [`runner`]: [`runner::Projections`], which folds the log into the
//!   tables (catch-up and rebuild) and answers queries over them.
//!
//! Layers depend one way: allocation, the fold and usage checks (pure) →
//! tables → rebuild, runner and queries → statements, usage import,
//! reconciliation and lineage.

pub mod allocation;
pub mod amount;
pub mod catalog;
pub mod cited;
pub mod consent;
pub mod currency;
pub mod fingerprint;
pub mod fold;
pub mod fold_input;
pub mod identifiers;
pub mod lineage;
pub mod party_scope;
mod queries;
mod rebuild;
pub mod reconcile;
pub mod runner;
mod scaled;
pub mod statement;
pub mod tables;
pub mod takedowns;
pub mod terms_history;
pub mod usage;
pub mod usage_import;
