//! Events cited with proofs: the checkpoint an answer cites, and RFC 6962
//! inclusion proofs of the events it names, for every answer that proves
//! what it says (lineage, the takedown list).

use ledger::merkle::{self, Hash, HashReader, MerkleError};
use ledger::store::{EventStore, InclusionProof, StoreError, StoredEvent};
use serde::Serialize;
use std::cell::RefCell;
use std::collections::HashMap;

/// The checkpoint every proof in an answer verifies against, with its note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CitedCheckpoint {
    pub size: u64,
    pub root_hash: String,
    /// The C2SP signed note, verifiable with the log's public key.
    pub note: String,
}

/// The checkpoint to cite for `size` events, with its cosignatures: the
/// latest witnessed one under a witness policy when it covers them, else
/// the latest, signed now if it does not cover them.
pub async fn checkpoint_covering(
    store: &dyn EventStore,
    size: u64,
    policy: Option<&ledger::witness_policy::WitnessPolicy>,
) -> Result<(CitedCheckpoint, Hash), StoreError> {
    let checkpoint = match ledger::witnessed::covering(store, size, policy).await? {
        Some(covering) => covering,
        None => store.checkpoint_now().await?,
    };
    let cited = CitedCheckpoint {
        size: checkpoint.size,
        root_hash: hex::encode(checkpoint.root),
        note: checkpoint.note,
    };
    Ok((cited, checkpoint.root))
}

/// Records which stored hashes the proof functions ask for.
struct IndexRecorder(RefCell<Vec<u64>>);

impl HashReader for IndexRecorder {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, MerkleError> {
        self.0.borrow_mut().extend_from_slice(indexes);
        Ok(vec![[0; 32]; indexes.len()])
    }
}

/// Stored hashes fetched ahead.
struct Prefetched(HashMap<u64, Hash>);

impl HashReader for Prefetched {
    fn read_hashes(&self, indexes: &[u64]) -> Result<Vec<Hash>, MerkleError> {
        indexes
            .iter()
            .map(|i| self.0.get(i).copied().ok_or(MerkleError::MissingHash(*i)))
            .collect()
    }
}

/// RFC 9162 inclusion proofs of `events` in the tree of `size` leaves with
/// root `root`, computed by the shared proof code ([`ledger::merkle`]) from
/// one batched read of the stored hashes they need, rather than one store
/// round trip per proof.
pub async fn prove_all(
    store: &dyn EventStore,
    events: &[StoredEvent],
    size: u64,
    root: Hash,
) -> Result<Vec<InclusionProof>, StoreError> {
    let recorder = IndexRecorder(RefCell::new(Vec::new()));
    for event in events {
        merkle::prove_inclusion(event.seq, size, &recorder)?;
    }
    let mut indexes = recorder.0.into_inner();
    indexes.sort_unstable();
    indexes.dedup();
    let hashes = store.read_stored_hashes(indexes.clone()).await?;
    let prefetched = Prefetched(indexes.into_iter().zip(hashes).collect());
    events
        .iter()
        .map(|event| {
            let proof = merkle::prove_inclusion(event.seq, size, &prefetched)?;
            debug_assert!(merkle::verify_inclusion(
                event.seq,
                size,
                &event.leaf_hash,
                &proof,
                &root
            )
            .is_ok());
            Ok(InclusionProof {
                leaf_index: event.seq,
                tree_size: size,
                leaf_hash: event.leaf_hash,
                root_hash: root,
                proof,
            })
        })
        .collect()
}
