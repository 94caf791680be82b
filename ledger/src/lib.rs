#![doc = include_str!("../README.md")]
//!
//! ## Modules
//!
//! - [`envelope`]: the event envelope and its canonical leaf bytes.
//! - [`merkle`]: RFC 6962 hashing, stored-hash addressing, proofs and their
//!   verifiers, as pure functions over a small storage trait.
//! - [`checkpoint`]: C2SP checkpoints and signed notes, Ed25519 keys in Go's
//!   note formats.
//! - [`tile`]: C2SP tlog-tiles: tile and entry-bundle paths and bytes, and
//!   a client's checks of tiles against a checkpoint.
//! - [`tlog_proof`]: C2SP `tlog-proof@v1`, an entry's offline proof.
//! - [`cosignature`]: C2SP `cosignature/v1` witness cosignatures.
//! - [`witness_policy`]: which witnesses a log asks, and the quorum.
//! - [`witnessed`]: the checkpoint note as served, with its cosignatures.
//! - [`store`]: the `EventStore` trait and its backends.
//! - [`verify`]: the full audit of a log.
//! - [`monitor`]: a verified mirror of a tlog-tiles log, grown checkpoint by
//!   checkpoint from its tiles.

pub mod checkpoint;
pub mod cosignature;
pub mod envelope;
pub mod merkle;
pub mod monitor;
pub mod private;
pub mod store;
pub mod tile;
pub mod tlog_proof;
pub mod verify;
pub mod witness_policy;
pub mod witnessed;

pub use checkpoint::{Checkpoint, NoteSigner, NoteVerifier};
pub use envelope::{Envelope, NewEvent};
pub use merkle::Hash;
pub use store::{
    AppendRequest, Appended, ConsistencyProof, EventStore, ExpectedVersion, InclusionProof,
    SignedCheckpoint, StoreError, StoredCosignature, StoredEvent,
};
