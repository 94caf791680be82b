//! The log asks its witnesses: one background task per witness of the
//! policy submits each new checkpoint with C2SP tlog-witness
//! `add-checkpoint`, with a consistency proof from the size that witness
//! last cosigned, and keeps the cosignature it answers with once it has
//! verified it against the policy's key.
//!
//! Appends never wait for any of this: a task reads the latest checkpoint
//! from the store, and a witness that is down, slow or refusing only makes
//! the witnessed checkpoint lag. Requests have a deadline and failures are
//! retried with exponential backoff. The size a witness last cosigned is
//! the largest the store holds its cosignature for, so a restarted log
//! resumes where it was; a 409 answer tells the size the witness has, and
//! the task resyncs to it. Refusals (a witness that has seen another
//! history answers 409 or 422) are logged with both sides and counted.

pub mod client;
pub mod status;

use crate::witness::protocol::{format_request, parse_size_body, TLOG_SIZE_CONTENT_TYPE};
use ledger::cosignature::Cosignature;
use ledger::witness_policy::{PolicyWitness, WitnessPolicy};
use ledger::{EventStore, SignedCheckpoint, StoredCosignature};
use status::{WitnessStatus, WitnessingStatus};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;

/// How long one request to a witness may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a task looks for a new checkpoint.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// The first wait after a failure; it doubles up to [`BACKOFF_MAX`].
const BACKOFF_MIN: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Resyncs on 409 in a row before the task backs off (a witness whose
/// answers keep moving would otherwise be asked in a tight loop).
const RESYNCS_MAX: u32 = 3;

/// The witnessing of one log: its policy, and the state of every witness.
pub struct Witnessing {
    pub policy: Arc<WitnessPolicy>,
    pub status: Arc<WitnessingStatus>,
    stop: watch::Sender<bool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Witnessing {
    /// Starts one task per witness of `policy` over `store`.
    pub fn start(store: Arc<dyn EventStore>, policy: WitnessPolicy) -> Witnessing {
        let policy = Arc::new(policy);
        let status = Arc::new(WitnessingStatus::new(&policy));
        let (stop, stopped) = watch::channel(false);
        let tasks = policy
            .witnesses()
            .iter()
            .zip(status.witnesses.iter())
            .map(|(witness, witness_status)| {
                tokio::spawn(follow(
                    store.clone(),
                    policy.clone(),
                    witness.clone(),
                    witness_status.clone(),
                    status.clone(),
                    stopped.clone(),
                ))
            })
            .collect();
        Witnessing {
            policy,
            status,
            stop,
            tasks,
        }
    }

    /// Stops every task (a request in flight is abandoned; what a witness
    /// cosigned meanwhile is learnt again from its 409 on the next start).
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }
}

/// One round, for a command that made a checkpoint: asks every witness of
/// `policy` that does not hold it yet to cosign the latest checkpoint
/// (resyncing on 409), keeps the valid cosignatures, and returns the
/// checkpoint as served and how its cosignatures stand against the policy.
pub async fn witness_latest(
    store: &dyn EventStore,
    policy: &WitnessPolicy,
) -> anyhow::Result<(SignedCheckpoint, ledger::witness_policy::QuorumReport)> {
    let latest = store
        .latest_checkpoint()
        .await?
        .ok_or_else(|| anyhow::anyhow!("the log has no checkpoint yet"))?;
    for witness in policy.witnesses() {
        let key = (
            witness.verifier.name().to_owned(),
            witness.verifier.key_id(),
        );
        let stored = store.latest_cosigned_size(vec![key], 1).await?;
        if stored == Some(latest.size) {
            continue;
        }
        let status = WitnessStatus::new(&witness.name);
        let mut old = stored.unwrap_or(0);
        for _ in 0..=RESYNCS_MAX {
            match submit(store, witness, &status, old, &latest).await {
                Outcome::Resync(size) if size <= latest.size => old = size,
                _ => break,
            }
        }
    }
    let served = ledger::witnessed::with_cosignatures(store, latest).await?;
    let report = policy.check(&served.note)?;
    Ok((served, report))
}

/// What one submission came to.
enum Outcome {
    /// The witness cosigned `size`.
    Cosigned,
    /// The witness said it holds `size`; ask again from there.
    Resync(u64),
    /// The witness refused, or could not be asked: wait and retry.
    Failed,
}

/// Sleeps `duration`, or less if the task is told to stop; true if it is.
async fn pause(stopped: &mut watch::Receiver<bool>, duration: Duration) -> bool {
    tokio::select! {
        _ = tokio::time::sleep(duration) => *stopped.borrow(),
        _ = stopped.changed() => true,
    }
}

async fn follow(
    store: Arc<dyn EventStore>,
    policy: Arc<WitnessPolicy>,
    witness: PolicyWitness,
    status: Arc<WitnessStatus>,
    all: Arc<WitnessingStatus>,
    mut stopped: watch::Receiver<bool>,
) {
    let key = (
        witness.verifier.name().to_owned(),
        witness.verifier.key_id(),
    );
    let mut backoff = BACKOFF_MIN;
    // Resume from what the store holds; without a record, ask from 0 and
    // let a 409 say where the witness is.
    // `stored`: the largest size whose cosignature by this witness the store
    // holds; `cosigned`: the size the witness holds, as far as the log knows.
    let mut stored = loop {
        match store.latest_cosigned_size(vec![key.clone()], 1).await {
            Ok(size) => break size.unwrap_or(0),
            Err(error) => {
                tracing::warn!(witness = %witness.name, "cannot read the witness's last cosigned size: {error}");
                if pause(&mut stopped, backoff).await {
                    return;
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    };
    let mut cosigned = stored;
    status.set_cosigned(stored);
    let mut resyncs = 0;
    loop {
        if *stopped.borrow() {
            return;
        }
        let latest = match store.latest_checkpoint().await {
            Ok(Some(latest)) => latest,
            Ok(None) => {
                if pause(&mut stopped, POLL_INTERVAL).await {
                    return;
                }
                continue;
            }
            Err(error) => {
                tracing::warn!(witness = %witness.name, "cannot read the latest checkpoint: {error}");
                if pause(&mut stopped, backoff).await {
                    return;
                }
                continue;
            }
        };
        status.set_latest(latest.size);
        // Nothing new, or the witness is ahead (a 409 told so) and the log
        // must grow first. A witness that holds the latest size without the
        // log holding its cosignature (the log stopped before keeping it)
        // is asked again from that size: it cosigns the same root again.
        if latest.size == 0 || latest.size == stored || latest.size < cosigned {
            if pause(&mut stopped, POLL_INTERVAL).await {
                return;
            }
            continue;
        }
        let outcome = tokio::select! {
            outcome = submit(store.as_ref(), &witness, &status, cosigned, &latest) => outcome,
            _ = stopped.changed() => return,
        };
        match outcome {
            Outcome::Cosigned => {
                cosigned = latest.size;
                stored = latest.size;
                status.set_cosigned(stored);
                backoff = BACKOFF_MIN;
                resyncs = 0;
                all.refresh_witnessed(store.as_ref(), &policy).await;
            }
            Outcome::Resync(size) if resyncs < RESYNCS_MAX => {
                tracing::info!(witness = %witness.name, from = cosigned, to = size, "resyncing with the witness's latest cosigned size");
                cosigned = size;
                resyncs += 1;
            }
            Outcome::Resync(size) => {
                cosigned = size;
                if pause(&mut stopped, backoff).await {
                    return;
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            Outcome::Failed => {
                if pause(&mut stopped, backoff).await {
                    return;
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// Submits `latest` to `witness` with a proof from `old`, and keeps the
/// cosignature if the witness gives a valid one.
async fn submit(
    store: &dyn EventStore,
    witness: &PolicyWitness,
    status: &WitnessStatus,
    old: u64,
    latest: &SignedCheckpoint,
) -> Outcome {
    let proof = if old == 0 || old == latest.size {
        Vec::new()
    } else {
        match store.prove_consistency(old, latest.size).await {
            Ok(proof) => proof.proof,
            Err(error) => {
                tracing::warn!(witness = %witness.name, old, size = latest.size, "cannot prove consistency for the witness: {error}");
                status.record_error();
                return Outcome::Failed;
            }
        }
    };
    let body = format_request(old, &proof, &latest.note);
    let reply = match client::post(witness.add_checkpoint_url(), body, REQUEST_TIMEOUT).await {
        Ok(reply) => reply,
        Err(error) => {
            tracing::warn!(witness = %witness.name, url = %witness.url, "the witness could not be asked: {error:#}");
            status.record_error();
            return Outcome::Failed;
        }
    };
    match reply.status {
        200 => keep_cosignature(store, witness, status, latest, &reply.body).await,
        409 => match parse_size_body(&reply.body) {
            Some(size) if reply.content_type.starts_with(TLOG_SIZE_CONTENT_TYPE) && size != old => {
                if size > latest.size {
                    status.record_refusal(409);
                    tracing::error!(
                        witness = %witness.name,
                        witness_size = size,
                        log_size = latest.size,
                        checkpoint = %latest.note,
                        "the witness has cosigned a larger tree of this origin than this log holds: another log with this origin and key exists (a split view), or this log lost entries"
                    );
                    return Outcome::Failed;
                }
                Outcome::Resync(size)
            }
            _ => {
                status.record_refusal(409);
                tracing::error!(
                    witness = %witness.name,
                    size = latest.size,
                    checkpoint = %latest.note,
                    answer = %reply.body.trim_end(),
                    "the witness refused the checkpoint (409): it has cosigned another checkpoint of this size, a split view"
                );
                Outcome::Failed
            }
        },
        code => {
            status.record_refusal(code);
            if code == 422 {
                tracing::error!(
                    witness = %witness.name,
                    old,
                    size = latest.size,
                    checkpoint = %latest.note,
                    answer = %reply.body.trim_end(),
                    "the witness refused the consistency proof (422): it has cosigned another history of this log, a split view"
                );
            } else {
                tracing::warn!(
                    witness = %witness.name,
                    status = code,
                    answer = %reply.body.trim_end(),
                    "the witness refused the checkpoint"
                );
            }
            Outcome::Failed
        }
    }
}

/// Verifies the witness's answer against its policy key and keeps the
/// cosignature.
async fn keep_cosignature(
    store: &dyn EventStore,
    witness: &PolicyWitness,
    status: &WitnessStatus,
    latest: &SignedCheckpoint,
    answer: &str,
) -> Outcome {
    let body = match latest.note.split_once("\n\n") {
        Some((text, _)) => format!("{text}\n"),
        None => return Outcome::Failed,
    };
    let mine: Vec<Cosignature> = answer
        .lines()
        .filter_map(|line| Cosignature::parse_line(line).ok())
        .filter(|c| witness.verifier.is_signer_of(&c.name, c.key_id))
        .collect();
    let valid = mine
        .iter()
        .find(|c| witness.verifier.verify(&body, c).is_ok());
    let Some(cosignature) = valid else {
        status.record_error();
        tracing::warn!(
            witness = %witness.name,
            answer = %answer.trim_end(),
            "the witness answered 200 without a valid cosignature by its policy key"
        );
        return Outcome::Failed;
    };
    match store
        .add_cosignatures(vec![StoredCosignature::new(latest.size, cosignature)])
        .await
    {
        Ok(()) => {
            tracing::info!(witness = %witness.name, size = latest.size, "cosigned");
            Outcome::Cosigned
        }
        Err(error) => {
            status.record_error();
            tracing::warn!(witness = %witness.name, "cannot keep the witness's cosignature: {error}");
            Outcome::Failed
        }
    }
}
