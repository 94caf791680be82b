//! The checkpoint as the log serves it: its own signed note with the
//! witness cosignatures the store keeps for it appended as further
//! signature lines (c2sp.org/tlog-cosignature), and, under a witness
//! policy, the latest checkpoint enough witnesses cosigned.
//!
//! Every place that hands out a checkpoint note (the HTTP API, the CLI,
//! the answers that cite a checkpoint) builds it with [`with_cosignatures`],
//! so all of them serve the same bytes. Not here: asking witnesses for
//! cosignatures (the `ledgerline` binary does), and checking them (the
//! caller verifies each one before the store keeps it).

use crate::checkpoint::{NOTE_BYTES_MAX, NOTE_SIGNATURES_MAX};
use crate::store::{EventStore, SignedCheckpoint, StoreError};
use crate::witness_policy::WitnessPolicy;

/// `checkpoint` with every cosignature kept for it appended to its note, as
/// far as a note's limits allow ([`NOTE_SIGNATURES_MAX`] lines,
/// [`NOTE_BYTES_MAX`] bytes).
pub async fn with_cosignatures(
    store: &dyn EventStore,
    checkpoint: SignedCheckpoint,
) -> Result<SignedCheckpoint, StoreError> {
    let cosignatures = store.cosignatures(checkpoint.size).await?;
    let mut note = checkpoint.note;
    let signed_lines = note
        .rsplit_once("\n\n")
        .map_or(0, |(_, signatures)| signatures.lines().count());
    for (count, cosignature) in (signed_lines..).zip(cosignatures) {
        if count >= NOTE_SIGNATURES_MAX || note.len() + cosignature.line.len() > NOTE_BYTES_MAX {
            tracing::warn!(
                size = checkpoint.size,
                "more cosignatures are kept than one note may carry; the rest are not served"
            );
            break;
        }
        note.push_str(&cosignature.line);
    }
    Ok(SignedCheckpoint { note, ..checkpoint })
}

/// The stored checkpoint of `size`, or the latest, with its cosignatures.
pub async fn served(
    store: &dyn EventStore,
    size: Option<u64>,
) -> Result<Option<SignedCheckpoint>, StoreError> {
    let checkpoint = match size {
        Some(size) => store.checkpoint(size).await?,
        None => store.latest_checkpoint().await?,
    };
    match checkpoint {
        Some(checkpoint) => Ok(Some(with_cosignatures(store, checkpoint).await?)),
        None => Ok(None),
    }
}

/// The witness keys of `policy`, as the store names them (key name, key id).
pub fn policy_keys(policy: &WitnessPolicy) -> Vec<(String, u32)> {
    policy
        .witnesses()
        .iter()
        .map(|w| (w.verifier.name().to_owned(), w.verifier.key_id()))
        .collect()
}

/// The latest checkpoint cosigned by at least the policy's quorum of its
/// witnesses, with its cosignatures; `None` while no checkpoint is.
pub async fn latest_witnessed(
    store: &dyn EventStore,
    policy: &WitnessPolicy,
) -> Result<Option<SignedCheckpoint>, StoreError> {
    let size = store
        .latest_cosigned_size(policy_keys(policy), policy.quorum())
        .await?;
    match size {
        Some(size) => served(store, Some(size)).await,
        None => Ok(None),
    }
}

/// The checkpoint an answer about the first `size` events should cite:
/// the latest witnessed one when there is a policy and it covers them,
/// else the latest checkpoint if it covers them, else `None` (the caller
/// signs a new one). Either way with its cosignatures.
pub async fn covering(
    store: &dyn EventStore,
    size: u64,
    policy: Option<&WitnessPolicy>,
) -> Result<Option<SignedCheckpoint>, StoreError> {
    if let Some(policy) = policy {
        if let Some(witnessed) = latest_witnessed(store, policy).await? {
            if witnessed.size >= size {
                return Ok(Some(witnessed));
            }
        }
    }
    match store.latest_checkpoint().await? {
        Some(latest) if latest.size >= size => Ok(Some(with_cosignatures(store, latest).await?)),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cosignature::Cosigner;
    use crate::store::sqlite::{SqliteConfig, SqliteStore};
    use crate::store::StoredCosignature;
    use crate::{AppendRequest, ExpectedVersion, NewEvent};

    async fn append(store: &SqliteStore, n: u64) -> SignedCheckpoint {
        let event = NewEvent::new("test.appended", serde_json::json!({ "n": n }));
        store
            .append(AppendRequest::new("s", ExpectedVersion::Any, vec![event]))
            .await
            .unwrap();
        store.checkpoint_now().await.unwrap()
    }

    #[tokio::test]
    async fn answers_cite_the_witnessed_checkpoint_when_it_covers_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(SqliteConfig::new(dir.path(), "example.com/log")).unwrap();
        let first = append(&store, 0).await;
        let second = append(&store, 1).await;
        let witness = Cosigner::generate("w.example").unwrap();
        let policy = WitnessPolicy::parse(&format!(
            "witness w {} http://127.0.0.1:1\nquorum 1\n",
            witness.verifier_key()
        ))
        .unwrap();
        // Nothing witnessed yet: the latest checkpoint, as without a policy.
        let cited = covering(&store, 1, Some(&policy)).await.unwrap().unwrap();
        assert_eq!(cited.size, second.size);

        let body = format!("{}\n", first.note.split_once("\n\n").unwrap().0);
        let cosignature = witness.sign(&body);
        store
            .add_cosignatures(vec![StoredCosignature::new(first.size, &cosignature)])
            .await
            .unwrap();
        // The witnessed checkpoint covers one event: cited, with its cosignature.
        let cited = covering(&store, 1, Some(&policy)).await.unwrap().unwrap();
        assert_eq!(cited.size, first.size);
        assert_eq!(cited.note, format!("{}{}", first.note, cosignature.line()));
        // Two events: only the latest covers them.
        let cited = covering(&store, 2, Some(&policy)).await.unwrap().unwrap();
        assert_eq!(cited.size, second.size);
        // Three: none does.
        assert!(covering(&store, 3, Some(&policy)).await.unwrap().is_none());
        // Without a policy, the latest.
        assert_eq!(
            covering(&store, 1, None).await.unwrap().unwrap().size,
            second.size
        );
        assert_eq!(
            latest_witnessed(&store, &policy)
                .await
                .unwrap()
                .unwrap()
                .size,
            first.size
        );
    }
}
