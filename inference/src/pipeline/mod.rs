//! The generation pipeline: a licensed request in, a derivative out, and
//! every step of the way recorded in the log.
//!
//! A job ([`job::Generator::generate`]) appends to `generation-<job id>`:
//! `generation.requested`, then one `generation.step` per op (`load-stems`,
//! `mix`, `time-stretch`, `pitch-shift`, `transcribe`, `voice-transfer`), each naming its
//! inputs and outputs by content hash, its parameters in integer units, the
//! kernels' source hashes, the backend and adapter and its duration; last,
//! `generation.derivative-published` with the attribution measured on the
//! audio; then the output's Content Credentials are signed (with the log
//! proof of that event) and `generation.credentials-issued` names the file
//! as distributed. Every intermediate output is stored as an artifact, so
//! [`replay::replay`] can rerun any step on the CPU twin and compare.
//!
//! - [`request`]: the request document and its validation.
//! - [`licensing`]: which inputs a request may use; refusals.
//! - [`terms`]: the licence rules a request is decided by.
//! - [`licensing_index`]: the catalog's licensing facts in memory, for a
//!   server deciding many requests.
//! - [`steps`]: the ops, shared by the job and the replay.
//! - [`training`]: the voice model training job.
//! - [`model_registry`]: trained networks the engine runs, registered in
//!   the log with their provenance.
//!
//! Jobs run their kernels on the calling task: the work is compute-bound
//! and a job is one unit, so a server should run it on a blocking thread.

pub mod job;
pub mod licensing;
pub mod licensing_index;
pub mod model_registry;
pub mod replay;
pub mod request;
pub mod steps;
pub mod terms;
pub mod training;
mod voice_transfer;

#[cfg(test)]
mod tests;

pub use job::{Credentialed, Generated, Generator};
pub use licensing::{LicensedInputs, LicensedRecording, LicensedVoiceModel, Refusal};
pub use licensing_index::LicensingIndex;
pub use replay::{replay, ReplayReport};
pub use request::{GenerationRequest, RequestError, ValidRequest};
pub use training::{train_voice_model, Trained};

use crate::artifacts::ArtifactError;
use crate::kernels::KernelError;
use ledger::StoreError;
use schemas::ContentHash;

/// Why a job, a training run or a replay did not complete.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// The request is malformed or does not fit the recording; nothing was written.
    #[error("invalid request: {0}")]
    Request(#[from] RequestError),
    /// Refused for licensing; the `generation.rejected` event is at `seq`.
    #[error("refused: {refusal} (recorded as generation.rejected at seq {seq})")]
    Refused { refusal: Refusal, seq: u64 },
    /// Refused for licensing before any job existed (training); nothing was written.
    #[error("refused: {0}")]
    NotLicensed(Refusal),
    #[error("artifact: {0}")]
    Artifact(#[from] ArtifactError),
    #[error("kernel: {0}")]
    Kernel(#[from] KernelError),
    #[error("the event log: {0}")]
    Store(#[from] StoreError),
    /// Content Credentials could not be made for the published output.
    #[error("content credentials: {0}")]
    Credentials(#[from] crate::credentials::CredentialsError),
    /// An op's inputs or parameters do not fit it.
    #[error("{0}")]
    Step(String),
    /// `replay` was pointed at something it cannot replay.
    #[error("cannot replay: {0}")]
    Replay(String),
    /// A recorded artifact no longer holds what its step recorded: the
    /// record cannot be reproduced, which is a failed check, not bad input.
    #[error("the record does not hold: {0}")]
    Tampered(String),
}

impl PipelineError {
    /// True when the caller's input is at fault (a malformed, unlicensed or
    /// unreplayable request): the CLI exits 2 for these.
    pub fn is_client_error(&self) -> bool {
        matches!(
            self,
            PipelineError::Request(_)
                | PipelineError::Refused { .. }
                | PipelineError::NotLicensed(_)
                | PipelineError::Replay(_)
        )
    }
}

/// The step record of the engine that ran it.
pub(crate) fn backend_of(
    engine: &crate::gpu::Engine,
) -> (
    schemas::generation::ComputeBackend,
    Option<schemas::generation::AdapterRecord>,
) {
    use schemas::generation::{AdapterRecord, ComputeBackend};
    match engine {
        crate::gpu::Engine::Gpu(gpu) => {
            let a = gpu.adapter();
            (
                ComputeBackend::Gpu,
                Some(AdapterRecord {
                    name: a.name.clone(),
                    backend: a.backend.clone(),
                    device_type: a.device_type.clone(),
                    driver: a.driver.clone(),
                    driver_info: a.driver_info.clone(),
                }),
            )
        }
        crate::gpu::Engine::Cpu => (ComputeBackend::Cpu, None),
    }
}

/// `sha256:<hex>` text from the artifact store as a typed content hash.
pub(crate) fn content_hash(text: &str) -> ContentHash {
    ContentHash::parse(text).expect("the artifact store names content by sha256")
}
