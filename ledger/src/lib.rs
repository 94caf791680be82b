//! ledgerline's append-only event log.
//!
//! Every event is stored as the exact bytes of its canonical envelope
//! ([`envelope`], RFC 8785 JSON). Those bytes are a leaf of one global
//! RFC 6962 Merkle tree ([`merkle`]) whose index is the event's `seq`, and
//! each event names the leaf hash of its predecessor in the same stream, so
//! every stream is also a hash chain. Signed checkpoints ([`checkpoint`], C2SP
//! `tlog-checkpoint` in C2SP `signed-note` form) let anyone outside check,
//! with inclusion and consistency proofs, that the log was only ever appended
//! to. [`store`] holds the `EventStore` trait and its backends; [`verify`] is
//! the full audit.

pub mod checkpoint;
pub mod envelope;
pub mod merkle;
pub mod private;
pub mod store;
pub mod verify;

pub use checkpoint::{Checkpoint, NoteSigner, NoteVerifier};
pub use envelope::{Envelope, NewEvent};
pub use merkle::Hash;
pub use store::{
    AppendRequest, Appended, ConsistencyProof, EventStore, ExpectedVersion, InclusionProof,
    SignedCheckpoint, StoreError, StoredEvent,
};
