//! What the shared-log backends (PostgreSQL, KurrentDB) have in common as
//! nodes: each runs its client connections and its one writer on a private
//! single-threaded runtime, on a thread of its own, so the store works from
//! any caller's runtime and its `Drop` can wait for the final checkpoint;
//! the writer's loop of group commits and checkpoint ticks (which the
//! embedded SQLite store's writer runs too); and the check that a node
//! signs with the log's key.

use crate::checkpoint::NoteVerifier;
use crate::store::sequencer::{self, CheckpointCadence, Wake, WriterHealth, WriterMessage};
use crate::store::{SignedCheckpoint, StoreError};
use std::future::Future;
use std::thread::JoinHandle;
use tokio::runtime::Handle;
use tokio::sync::{mpsc, oneshot};

/// A node's writer: commits one group of appends at a time and signs
/// checkpoints on the cadence's ticks.
pub(crate) trait NodeWriter: Send + 'static {
    /// Commits `batch`, answers each of its clients and records the outcome
    /// in [`NodeWriter::health`]. A writer may add appends that reach `more`
    /// meanwhile (see [`sequencer::Batch::top_up`]).
    fn commit_batch(
        &mut self,
        batch: sequencer::Batch,
        more: &mut mpsc::Receiver<WriterMessage>,
    ) -> impl Future<Output = ()>;
    /// Signs a checkpoint of everything committed.
    fn sign_checkpoint(&mut self) -> impl Future<Output = Result<(), StoreError>>;
    fn cadence(&mut self) -> &mut CheckpointCadence;
    /// Where this writer records whether its writes succeed.
    fn health(&self) -> &WriterHealth;
    /// The tree size this writer has committed.
    fn size(&self) -> u64;

    /// Serves `receiver` until it closes, then signs a last checkpoint if
    /// events were committed since the latest one.
    fn run(mut self, mut receiver: mpsc::Receiver<WriterMessage>) -> impl Future<Output = ()>
    where
        Self: Sized,
    {
        async move {
            loop {
                let size = self.size();
                let deadline = self.cadence().deadline(size);
                match sequencer::next_batch(&mut receiver, deadline).await {
                    Wake::Batch(batch) => self.commit_batch(batch, &mut receiver).await,
                    Wake::CheckpointDue => {
                        let signed = self.sign_checkpoint().await;
                        if let Err(e) = &signed {
                            tracing::error!("checkpoint signing failed: {e}");
                            self.cadence().postpone();
                        }
                        self.health().record(&signed);
                    }
                    Wake::Closed => break,
                }
            }
            let size = self.size();
            if self.cadence().pending(size) {
                if let Err(e) = self.sign_checkpoint().await {
                    tracing::error!("final checkpoint signing failed: {e}");
                }
            }
        }
    }
}

/// What the node's thread runs once the store has opened.
pub(crate) enum Start<W> {
    Writer(Box<W>, mpsc::Receiver<WriterMessage>),
    /// A read-only node: the thread keeps the runtime (and its connections)
    /// alive until the sender is dropped.
    ReadOnly(oneshot::Receiver<()>),
}

/// Starts the node's thread, named `name`, and its runtime: the handle
/// spawns the store's connection tasks there, and `Start` says what the
/// thread runs once opening has finished (nothing, if the sender is dropped).
#[allow(clippy::type_complexity)]
pub(crate) fn start_runtime<W: NodeWriter>(
    name: &str,
) -> Result<(Handle, oneshot::Sender<Start<W>>, JoinHandle<()>), StoreError> {
    let failed = |e: std::io::Error| StoreError::Backend(e.to_string());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(failed)?;
    let handle = runtime.handle().clone();
    let (start, started) = oneshot::channel::<Start<W>>();
    let thread = std::thread::Builder::new()
        .name(name.into())
        .spawn(move || {
            runtime.block_on(async move {
                match started.await {
                    Ok(Start::Writer(writer, receiver)) => (*writer).run(receiver).await,
                    Ok(Start::ReadOnly(closed)) => {
                        let _ = closed.await;
                    }
                    // Opening failed: nothing to run.
                    Err(_) => {}
                }
            });
        })
        .map_err(failed)?;
    Ok((handle, start, thread))
}

/// Refuses a node whose key did not sign the log's checkpoints: its own
/// checkpoints would not verify beside the others'.
pub(crate) fn check_key(
    verifier: &NoteVerifier,
    latest: Option<&SignedCheckpoint>,
) -> Result<(), StoreError> {
    let Some(latest) = latest else { return Ok(()) };
    verifier
        .verify_checkpoint(&latest.note)
        .map_err(|e| StoreError::ForeignKey {
            key: verifier.verifier_key(),
            reason: e.to_string(),
        })?;
    Ok(())
}
