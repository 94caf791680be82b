//! What the ledger stream holds: one KurrentDB event per committed group of
//! appends, plus the log's header and its signed checkpoints.
//!
//! The ledger stream is the only commit point (KurrentDB has no transaction
//! across streams), so a record carries everything a node needs to rebuild
//! the log: the exact leaf bytes (base64, since the canonical bytes are what
//! is hashed and a JSON re-encoding could change them) and the new stored
//! Merkle hashes, which replay recomputes and compares, so a record that does
//! not match its leaves is caught rather than served.

use crate::merkle::{self, Hash};
use crate::store::{SignedCheckpoint, StoreError, StoredEvent};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// KurrentDB event type of the header, the ledger stream's first event.
pub const CREATED_TYPE: &str = "ledgerline.log-created";
/// KurrentDB event type of one committed group of appends.
pub const BATCH_TYPE: &str = "ledgerline.batch";
/// KurrentDB event type of one signed checkpoint.
pub const CHECKPOINT_TYPE: &str = "ledgerline.checkpoint";

/// One event of the ledger stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// Revision 0: the log's format and origin, checked by every node that opens it.
    Created {
        format: String,
        origin: String,
    },
    Batch(BatchRecord),
    /// A checkpoint of the log exactly as the records before it describe it.
    Checkpoint(SignedCheckpoint),
}

/// One committed group of appends: leaves `first_seq..first_seq + leaves.len()`
/// and the stored hashes they complete, which are the consecutive indexes
/// from `stored_hash_count(first_seq)` on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRecord {
    pub first_seq: u64,
    pub leaves: Vec<Vec<u8>>,
    pub hashes: Vec<Hash>,
}

impl BatchRecord {
    /// The record of a planned group commit: its events (consecutive seqs)
    /// and the stored hashes the plan computed, ascending by index.
    pub fn new(events: &[StoredEvent], hashes: &[(u64, Hash)]) -> Result<BatchRecord, StoreError> {
        let first_seq = events
            .first()
            .map(|event| event.seq)
            .ok_or_else(|| StoreError::Corrupt("a batch record needs at least one event".into()))?;
        let first_index = merkle::stored_hash_count(first_seq);
        let consecutive_seqs = events
            .iter()
            .enumerate()
            .all(|(i, event)| event.seq == first_seq + i as u64);
        let consecutive_hashes = hashes
            .iter()
            .enumerate()
            .all(|(i, (index, _))| *index == first_index + i as u64);
        if !consecutive_seqs || !consecutive_hashes {
            return Err(StoreError::Corrupt(
                "a planned batch has gaps in its seqs or stored hashes".into(),
            ));
        }
        Ok(BatchRecord {
            first_seq,
            leaves: events.iter().map(|event| event.leaf.clone()).collect(),
            hashes: hashes.iter().map(|(_, hash)| *hash).collect(),
        })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreatedJson {
    format: String,
    origin: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BatchJson {
    first_seq: u64,
    /// Each leaf, base64 (RFC 4648 section 4, padded).
    leaves: Vec<String>,
    /// The new stored hashes, 32 bytes each, concatenated, base64.
    hashes: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct CheckpointJson {
    size: u64,
    #[serde(with = "crate::merkle::hex_hash")]
    root: Hash,
    note: String,
}

impl Record {
    /// The KurrentDB event type the record is stored under.
    pub fn event_type(&self) -> &'static str {
        match self {
            Record::Created { .. } => CREATED_TYPE,
            Record::Batch(_) => BATCH_TYPE,
            Record::Checkpoint(_) => CHECKPOINT_TYPE,
        }
    }

    /// The record's JSON body, as stored in the KurrentDB event's data.
    pub fn to_json(&self) -> serde_json::Value {
        let value = match self {
            Record::Created { format, origin } => serde_json::to_value(CreatedJson {
                format: format.clone(),
                origin: origin.clone(),
            }),
            Record::Batch(batch) => serde_json::to_value(BatchJson {
                first_seq: batch.first_seq,
                leaves: batch
                    .leaves
                    .iter()
                    .map(|leaf| BASE64.encode(leaf))
                    .collect(),
                hashes: BASE64.encode(batch.hashes.concat()),
            }),
            Record::Checkpoint(checkpoint) => serde_json::to_value(CheckpointJson {
                size: checkpoint.size,
                root: checkpoint.root,
                note: checkpoint.note.clone(),
            }),
        };
        value.expect("records are plain JSON objects")
    }

    /// Decodes a ledger stream event; anything else found there is corruption.
    pub fn decode(revision: u64, event_type: &str, data: &[u8]) -> Result<Record, StoreError> {
        let corrupt = |what: String| {
            StoreError::Corrupt(format!(
                "ledger stream event {revision} ({event_type:?}) {what}"
            ))
        };
        let bad_json = |e: serde_json::Error| corrupt(format!("is not a valid record: {e}"));
        match event_type {
            CREATED_TYPE => {
                let json: CreatedJson = serde_json::from_slice(data).map_err(bad_json)?;
                Ok(Record::Created {
                    format: json.format,
                    origin: json.origin,
                })
            }
            BATCH_TYPE => {
                let json: BatchJson = serde_json::from_slice(data).map_err(bad_json)?;
                let leaves = json
                    .leaves
                    .iter()
                    .map(|leaf| BASE64.decode(leaf))
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| corrupt(format!("has a leaf that is not base64: {e}")))?;
                let bytes = BASE64
                    .decode(&json.hashes)
                    .map_err(|e| corrupt(format!("has hashes that are not base64: {e}")))?;
                if bytes.len() % 32 != 0 {
                    return Err(corrupt(format!(
                        "has {} bytes of hashes, not a multiple of 32",
                        bytes.len()
                    )));
                }
                let hashes = bytes
                    .chunks_exact(32)
                    .map(|chunk| chunk.try_into().expect("32-byte chunks"))
                    .collect();
                Ok(Record::Batch(BatchRecord {
                    first_seq: json.first_seq,
                    leaves,
                    hashes,
                }))
            }
            CHECKPOINT_TYPE => {
                let json: CheckpointJson = serde_json::from_slice(data).map_err(bad_json)?;
                Ok(Record::Checkpoint(SignedCheckpoint {
                    size: json.size,
                    root: json.root,
                    note: json.note,
                }))
            }
            other => Err(corrupt(format!(
                "has an unknown type; a ledger stream holds only {CREATED_TYPE}, {BATCH_TYPE} and {CHECKPOINT_TYPE} (was {other:?} written by another program?)"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(record: &Record) -> Record {
        let bytes = serde_json::to_vec(&record.to_json()).unwrap();
        Record::decode(7, record.event_type(), &bytes).unwrap()
    }

    #[test]
    fn records_round_trip_exactly() {
        // Leaves are arbitrary bytes as far as the record is concerned:
        // non-ASCII, escapes, and a byte that is not UTF-8 all survive.
        let batch = Record::Batch(BatchRecord {
            first_seq: 41,
            leaves: vec![
                br#"{"data":{"a":"\u0001\"x"},"id":"i"}"#.to_vec(),
                "{\"data\":{\"note\":\"ünïcode ✓\"}}".as_bytes().to_vec(),
                vec![0xff, 0x00, b'{'],
            ],
            hashes: vec![[1; 32], [2; 32], [0xfe; 32]],
        });
        assert_eq!(round_trip(&batch), batch);
        let checkpoint = Record::Checkpoint(SignedCheckpoint {
            size: 3,
            root: [9; 32],
            note: "origin\n3\nroot=\n\n— origin sig\n".into(),
        });
        assert_eq!(round_trip(&checkpoint), checkpoint);
        let created = Record::Created {
            format: "1".into(),
            origin: "example.com/log".into(),
        };
        assert_eq!(round_trip(&created), created);
    }

    #[test]
    fn foreign_or_damaged_events_are_corruption() {
        let damaged = [
            ("someone.elses-event", r#"{}"#),
            (BATCH_TYPE, r#"{"first_seq":0,"leaves":["!!"],"hashes":""}"#),
            (BATCH_TYPE, r#"{"first_seq":0,"leaves":[],"hashes":"AAAA"}"#),
            (
                BATCH_TYPE,
                r#"{"first_seq":0,"leaves":[],"hashes":"","extra":1}"#,
            ),
            (CHECKPOINT_TYPE, r#"{"size":1,"root":"00","note":""}"#),
            (CREATED_TYPE, r#"[]"#),
        ];
        for (event_type, data) in damaged {
            let error = Record::decode(3, event_type, data.as_bytes()).unwrap_err();
            assert!(
                matches!(error, StoreError::Corrupt(_)),
                "{event_type} {data}: {error}"
            );
        }
    }

    #[test]
    fn a_batch_with_gaps_is_refused() {
        let event = |seq| StoredEvent {
            seq,
            stream: "s".into(),
            version: seq,
            id: uuid::Uuid::new_v4(),
            event_type: "t".into(),
            leaf: vec![b'{', b'}'],
            leaf_hash: [0; 32],
        };
        let hashes = [(merkle::stored_hash_count(4), [0; 32])];
        assert!(BatchRecord::new(&[event(4)], &hashes).is_ok());
        assert!(BatchRecord::new(&[event(4), event(6)], &hashes).is_err());
        assert!(BatchRecord::new(&[event(4)], &[(0, [0; 32])]).is_err());
        assert!(BatchRecord::new(&[], &[]).is_err());
    }
}
