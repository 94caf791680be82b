//! The voice model training job: learn a timbre from a consenting artist's
//! licensed vocal stems and record the model's provenance in the log.

use super::licensing::{today, voice_model_from_log, Refusal};
use super::{backend_of, content_hash, PipelineError};
use crate::artifacts::ArtifactStore;
use crate::gpu::Engine;
use crate::kernels::yin;
use crate::voice::{TrainingReport, VoiceModel};
use ledger::{AppendRequest, EventStore, ExpectedVersion, NewEvent};
use schemas::generation::{
    voice_training_stream, KernelRef, RejectionReason, VoiceModelTrained,
    GENERATION_SCHEMA_VERSION, VOICE_MODEL_TRAINED,
};
use schemas::ContentHash;
use std::time::Instant;

/// A trained voice model and where its training was recorded.
#[derive(Debug, Clone)]
pub struct Trained {
    pub voice_model: String,
    /// Content hash of the model artifact.
    pub artifact: ContentHash,
    pub report: TrainingReport,
    pub seq: u64,
    pub duration_ms: u64,
}

/// Trains the catalog's voice model `id` on its licensed training stems
/// (loaded from the artifact store by hash), stores the model as an
/// artifact and appends `voice.model-trained` to the model's training
/// stream. A model unknown to the catalog, or whose artist has not granted
/// consent (or withdrew it), is refused with nothing written.
pub async fn train_voice_model(
    engine: &Engine,
    artifacts: &ArtifactStore,
    store: &dyn EventStore,
    id: &str,
) -> Result<Trained, PipelineError> {
    let refuse = |reason, message: String| {
        PipelineError::NotLicensed(Refusal {
            reason,
            value: Some(id.to_string()),
            message,
        })
    };
    let Some(licensed) = voice_model_from_log(store, id).await? else {
        return Err(refuse(
            RejectionReason::UnknownVoiceModel,
            format!("voice model {id} is not in the catalog"),
        ));
    };
    if !licensed.consent_granted {
        return Err(refuse(
            RejectionReason::ConsentMissing,
            format!(
                "voice model {id}: artist {} has not granted consent, so it cannot be trained",
                licensed.artist
            ),
        ));
    }
    if let Some(withdrawal) = licensed.consent().withdrawal_on(today()) {
        return Err(refuse(
            RejectionReason::ConsentWithdrawn,
            format!(
                "voice model {id}: artist {} withdrew consent {} effective {}, so it cannot be trained",
                licensed.artist, withdrawal.reference, withdrawal.effective
            ),
        ));
    }
    let stems = licensed
        .training_stems
        .iter()
        .map(|hash| artifacts.load(hash.as_str()).map(|(_, audio)| audio))
        .collect::<Result<Vec<_>, _>>()?;
    let started = Instant::now();
    let (model, report) = VoiceModel::train(engine, &stems)
        .map_err(|e| PipelineError::Step(format!("training voice model {id}: {e}")))?;
    let duration_ms = started.elapsed().as_millis() as u64;
    let artifact = content_hash(&artifacts.put_bytes(&model.to_bytes())?);
    let (backend, adapter) = backend_of(engine);
    let trained = VoiceModelTrained {
        voice_model: id.to_string(),
        artist: licensed.artist.clone(),
        consent_reference: licensed.consent_reference.clone(),
        training_stems: licensed.training_stems.clone(),
        artifact: artifact.clone(),
        // The f0 track is the one WGSL kernel training dispatches; the
        // spectra are taken on the CPU.
        kernels: vec![KernelRef {
            name: yin::SOURCE.name.to_string(),
            source: content_hash(&yin::SOURCE.source_hash()),
        }],
        backend,
        adapter,
        frames_total: report.frames_total as u64,
        frames_voiced: report.frames_voiced as u64,
        cells_filled: report.cells_filled as u64,
        cells_total: report.cells_total as u64,
        duration_ms,
    };
    let mut event = NewEvent::new(
        VOICE_MODEL_TRAINED,
        serde_json::to_value(&trained).expect("training payloads serialize"),
    );
    event.schema = GENERATION_SCHEMA_VERSION;
    let appended = store
        .append(AppendRequest::new(
            voice_training_stream(id),
            ExpectedVersion::Any,
            vec![event],
        ))
        .await?;
    let seq = appended
        .first()
        .map(|a| a.seq)
        .ok_or_else(|| PipelineError::Step("the store appended nothing".into()))?;
    Ok(Trained {
        voice_model: id.to_string(),
        artifact,
        report,
        seq,
        duration_ms,
    })
}
