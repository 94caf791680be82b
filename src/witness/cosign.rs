//! The witness's decision on one `add-checkpoint` request, in the order
//! C2SP tlog-witness gives its checks: a well-formed body (else 400), a
//! known origin (404), a valid signature by a trusted key of that origin
//! (403), an old size not above the checkpoint's (400), the old size equal
//! to the witness's latest for that origin (409, with that size), the same
//! root when the sizes are equal (409), and a consistency proof that
//! verifies (422). Only then is the checkpoint recorded, durably, and
//! cosigned. Every refusal leaves the state as it was.

use super::protocol::parse_request;
use super::state::{Latest, WitnessState};
use ledger::cosignature::Cosigner;
use ledger::{Checkpoint, NoteVerifier};
use std::collections::HashMap;
use std::sync::Mutex;

/// The answer to an `add-checkpoint` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// 200: the cosignature lines.
    Cosigned(String),
    /// 409: the witness's latest cosigned size for the origin.
    Conflict { latest_size: u64, reason: String },
    /// Any other refusal: its status and why.
    Refused { status: u16, reason: String },
}

fn refused(status: u16, reason: impl Into<String>) -> Decision {
    Decision::Refused {
        status,
        reason: reason.into(),
    }
}

/// A witness: its key, the logs it follows, and what it has cosigned.
pub struct Witness {
    cosigner: Cosigner,
    /// Trusted log keys by origin (a log's key name is its origin).
    logs: HashMap<String, Vec<NoteVerifier>>,
    /// Held from the check of the old size until the new checkpoint is
    /// durable, so two requests can never both pass the check against the
    /// same latest checkpoint (the rollback race the spec describes).
    state: Mutex<WitnessState>,
}

impl Witness {
    pub fn new(cosigner: Cosigner, log_keys: Vec<NoteVerifier>, state: WitnessState) -> Witness {
        let mut logs: HashMap<String, Vec<NoteVerifier>> = HashMap::new();
        for key in log_keys {
            logs.entry(key.name().to_owned()).or_default().push(key);
        }
        Witness {
            cosigner,
            logs,
            state: Mutex::new(state),
        }
    }

    pub fn cosigner(&self) -> &Cosigner {
        &self.cosigner
    }

    /// Decides on one request body. Blocking (it syncs the state to disk).
    pub fn add_checkpoint(&self, body: &[u8]) -> anyhow::Result<Decision> {
        let request = match parse_request(body) {
            Ok(request) => request,
            Err(reason) => return Ok(refused(400, reason)),
        };
        let (text, _) = match ledger::cosignature::note_signatures(request.note) {
            Ok(parts) => parts,
            Err(error) => return Ok(refused(400, error.to_string())),
        };
        let checkpoint = match Checkpoint::parse_body(text) {
            Ok(checkpoint) => checkpoint,
            Err(error) => return Ok(refused(400, error.to_string())),
        };
        let Some(keys) = self.logs.get(&checkpoint.origin) else {
            return Ok(refused(
                404,
                format!(
                    "this witness follows no log of origin {:?}",
                    checkpoint.origin
                ),
            ));
        };
        if !keys
            .iter()
            .any(|key| key.verify_checkpoint(request.note).is_ok())
        {
            return Ok(refused(
                403,
                format!(
                    "no signature on the checkpoint verifies with a key this witness trusts for {:?}",
                    checkpoint.origin
                ),
            ));
        }
        if request.old_size > checkpoint.size {
            return Ok(refused(
                400,
                format!(
                    "the old size {} is above the checkpoint's size {}",
                    request.old_size, checkpoint.size
                ),
            ));
        }

        let mut state = self.state.lock().expect("witness state lock");
        let latest = state.latest(&checkpoint.origin)?;
        let latest_size = latest.as_ref().map_or(0, |l| l.size);
        if request.old_size != latest_size {
            return Ok(Decision::Conflict {
                latest_size,
                reason: format!(
                    "the old size {} is not the latest size this witness cosigned for {:?}, {latest_size}",
                    request.old_size, checkpoint.origin
                ),
            });
        }
        match &latest {
            Some(latest) if latest.size == checkpoint.size && latest.root != checkpoint.root => {
                return Ok(Decision::Conflict {
                    latest_size,
                    reason: format!(
                        "this witness cosigned another root for size {} of {:?}",
                        checkpoint.size, checkpoint.origin
                    ),
                });
            }
            // The same checkpoint again: cosigned again.
            Some(latest) if latest.size == checkpoint.size => {}
            // Every tree extends the empty one; the proof from 0 is empty.
            Some(latest) if latest.size == 0 => {}
            Some(latest) => {
                if let Err(error) = ledger::merkle::verify_consistency(
                    latest.size,
                    checkpoint.size,
                    &request.proof,
                    &latest.root,
                    &checkpoint.root,
                ) {
                    tracing::warn!(
                        origin = %checkpoint.origin,
                        cosigned = %latest.note,
                        submitted = %request.note,
                        "refused a checkpoint inconsistent with the one cosigned before: evidence of a split view or a rewritten log"
                    );
                    return Ok(refused(
                        422,
                        format!(
                            "the consistency proof from size {} to {} does not verify: {error}",
                            latest.size, checkpoint.size
                        ),
                    ));
                }
            }
            // The first checkpoint of a log is trusted on first use.
            None => {}
        }
        state.record(
            &checkpoint.origin,
            &Latest {
                size: checkpoint.size,
                root: checkpoint.root,
                note: request.note.to_owned(),
            },
        )?;
        drop(state);
        Ok(Decision::Cosigned(self.cosigner.sign(text).line()))
    }
}
