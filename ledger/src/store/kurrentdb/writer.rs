//! This node's single writer: group commits planned by the shared
//! sequencer and committed as ledger stream records with an expected
//! revision, planned again whenever another node commits first.

use super::record::{BatchRecord, Record};
use super::{copies, LedgerAppend, Shared};
use crate::store::node;
use crate::store::sequencer::{
    Batch, CheckpointCadence, ClientResult, Plan, PreparedRequest, Sequencer, WriterHealth,
    WriterMessage,
};
use crate::store::{SignedCheckpoint, StoreError, StoredEvent};
use std::sync::Arc;
use time::OffsetDateTime;
use tokio::sync::mpsc;

/// Group commits lost in a row to other nodes before an append fails:
/// each loss means another node committed, so the log is making progress.
const APPEND_ATTEMPTS_MAX: usize = 64;

/// Base64 of a leaf's stored hashes (about two per leaf, 32 bytes each).
const RECORD_HASH_BYTES_PER_EVENT: usize = 88;
/// The envelope around a payload in a leaf, at its longest.
const RECORD_ENVELOPE_BYTES_MAX: usize = 512;

/// Splits a group commit's clients into runs whose ledger records stay
/// under `bytes_max` (base64 makes a leaf 4/3 as long); a client is never
/// split, so its requests stay atomic.
pub(super) fn split_by_record_size(
    clients: Vec<Vec<PreparedRequest>>,
    bytes_max: usize,
) -> Vec<Vec<Vec<PreparedRequest>>> {
    let mut runs: Vec<Vec<Vec<PreparedRequest>>> = Vec::new();
    let mut run_bytes = 0usize;
    for client in clients {
        let bytes: usize = client
            .iter()
            .flat_map(|request| {
                request.events.iter().map(|event| {
                    (event.data.len() + RECORD_ENVELOPE_BYTES_MAX + request.stream.len()) * 4 / 3
                        + RECORD_HASH_BYTES_PER_EVENT
                })
            })
            .sum();
        match runs.last_mut() {
            Some(run) if run_bytes + bytes <= bytes_max => {
                run.push(client);
                run_bytes += bytes;
            }
            _ => {
                runs.push(vec![client]);
                run_bytes = bytes;
            }
        }
    }
    runs
}

/// This node's single writer: the sequencer and the signer.
pub(super) struct Writer {
    shared: Arc<Shared>,
    sequencer: Sequencer,
    cadence: CheckpointCadence,
    append_size_bytes_max: usize,
    health: WriterHealth,
}

impl node::NodeWriter for Writer {
    async fn commit_batch(&mut self, batch: Batch, _more: &mut mpsc::Receiver<WriterMessage>) {
        Writer::commit_batch(self, batch).await
    }
    async fn sign_checkpoint(&mut self) -> Result<(), StoreError> {
        Writer::sign_checkpoint(self).await
    }
    fn cadence(&mut self) -> &mut CheckpointCadence {
        &mut self.cadence
    }
    fn health(&self) -> &WriterHealth {
        &self.health
    }
    fn size(&self) -> u64 {
        self.sequencer.frontier().size()
    }
}

impl Writer {
    pub(super) fn new(
        shared: Arc<Shared>,
        sequencer: Sequencer,
        cadence: CheckpointCadence,
        append_size_bytes_max: usize,
        health: WriterHealth,
    ) -> Writer {
        Writer {
            shared,
            sequencer,
            cadence,
            append_size_bytes_max,
            health,
        }
    }

    /// One group commit: every append in `batch`, in as few ledger records
    /// as the append size limit allows. Clients are answered before their
    /// events are copied to their own streams.
    async fn commit_batch(&mut self, mut batch: Batch) {
        let clients = std::mem::take(&mut batch.clients);
        let checkpoint_requested = batch.checkpoint_requested();
        let mut runs = split_by_record_size(clients, self.append_size_bytes_max);
        if runs.is_empty() {
            runs.push(Vec::new());
        }
        let last = runs.len() - 1;
        let mut results: Vec<ClientResult> = Vec::new();
        let mut committed = Vec::new();
        let mut failure: Option<String> = None;
        let mut fault = None;
        for (i, run) in runs.into_iter().enumerate() {
            let clients = run.len();
            if let Some(message) = &failure {
                results.extend((0..clients).map(|_| Err(StoreError::Backend(message.clone()))));
                continue;
            }
            match self.write(run, checkpoint_requested && i == last).await {
                Ok((answers, events)) => {
                    results.extend(answers);
                    committed.extend(events);
                }
                Err(error) => {
                    tracing::error!("group commit failed: {error}");
                    let message = error.to_string();
                    results.extend((0..clients).map(|_| Err(StoreError::Backend(message.clone()))));
                    failure = Some(message);
                    fault = Some(error);
                }
            }
        }
        match &fault {
            Some(error) => self.health.failed(error),
            None => self.health.succeeded(),
        }
        batch.answer(Ok(results), self.cadence.latest());
        copies::copy_committed(&self.shared, committed).await;
    }

    /// Signs and commits a checkpoint of the whole log, if none of its size exists.
    pub(super) async fn sign_checkpoint(&mut self) -> Result<(), StoreError> {
        self.write(Vec::new(), true).await.map(|_| ())
    }

    /// Takes the log as the replica holds it, after a catch-up: another
    /// node's commits move the frontier and its checkpoints count as ours.
    fn adopt_replica(&mut self) {
        let replica = self.shared.replica();
        if self.sequencer.frontier().size() != replica.size() {
            tracing::debug!(
                size = replica.size(),
                "the log grew on another node; planning from the replayed frontier"
            );
            self.sequencer = Sequencer::new(replica.frontier().clone(), replica.last_time());
        }
        if let Some(latest) = replica.latest_checkpoint() {
            if self
                .cadence
                .latest()
                .is_none_or(|own| own.size < latest.size)
            {
                self.cadence.record(latest.clone());
            }
        }
    }

    /// Plans `clients` over the replica and builds the ledger records to
    /// append: the batch, and the checkpoint when one is requested or due.
    /// Returns them with the ledger stream length they must be appended at.
    fn plan_records(
        &mut self,
        clients: &[Vec<PreparedRequest>],
        checkpoint_now: bool,
    ) -> Result<(Plan, Option<SignedCheckpoint>, Vec<Record>, u64), StoreError> {
        let shared = self.shared.clone();
        let replica = shared.replica();
        let mut view = &*replica;
        let plan = self
            .sequencer
            .plan(&mut view, clients.to_vec(), OffsetDateTime::now_utc())?;
        let size = self.sequencer.frontier().size();
        let checkpoint = ((checkpoint_now || self.cadence.due()) && self.cadence.pending(size))
            .then(|| self.cadence.sign(self.sequencer.frontier()));
        let mut records = Vec::with_capacity(2);
        if !plan.events.is_empty() {
            records.push(Record::Batch(BatchRecord::new(&plan.events, &plan.hashes)?));
        }
        if let Some(checkpoint) = &checkpoint {
            records.push(Record::Checkpoint(checkpoint.clone()));
        }
        Ok((plan, checkpoint, records, replica.next_revision()))
    }

    /// Plans `clients` against the current log and commits them (and a
    /// checkpoint, when one is requested or due) as records on the ledger
    /// stream; when another node commits first, catches up and plans again.
    /// Returns each client's answer and the events committed.
    async fn write(
        &mut self,
        clients: Vec<Vec<PreparedRequest>>,
        checkpoint_now: bool,
    ) -> Result<(Vec<ClientResult>, Vec<StoredEvent>), StoreError> {
        let shared = self.shared.clone();
        let _sync = shared.sync.lock().await;
        for _ in 0..APPEND_ATTEMPTS_MAX {
            shared.catch_up_locked().await?;
            self.adopt_replica();
            let before = self.sequencer.clone();
            let (plan, checkpoint, records, expected_len) =
                match self.plan_records(&clients, checkpoint_now) {
                    Ok(planned) => planned,
                    Err(error) => {
                        self.sequencer = before;
                        return Err(error);
                    }
                };
            if records.is_empty() {
                return Ok((plan.results, Vec::new()));
            }
            match shared.streams.append_ledger(expected_len, &records).await {
                Ok(LedgerAppend::Committed) => {
                    let mut replica = shared.replica.write().unwrap_or_else(|e| e.into_inner());
                    let mut revision = expected_len;
                    if !plan.events.is_empty() {
                        replica.apply_own_batch(
                            revision,
                            &plan.events,
                            &plan.hashes,
                            self.sequencer.frontier(),
                        )?;
                        revision += 1;
                    }
                    if let Some(checkpoint) = checkpoint {
                        replica.apply_own_checkpoint(revision, checkpoint.clone())?;
                        self.cadence.record(checkpoint);
                    }
                    return Ok((plan.results, plan.events));
                }
                Ok(LedgerAppend::Conflict) => {
                    // Another node committed first; nothing of this plan was written.
                    self.sequencer = before;
                }
                Err(error) => {
                    // The append may or may not have landed (the reply was
                    // lost): forget the plan; the next catch-up reads it if it did.
                    self.sequencer = before;
                    return Err(error);
                }
            }
        }
        Err(StoreError::Backend(format!(
            "other nodes committed first {APPEND_ATTEMPTS_MAX} times in a row; retry the append with the same event ids"
        )))
    }
}
