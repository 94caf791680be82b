//! Trained networks the engine runs but did not train: each is an artifact
//! with its own provenance event, `model.registered` on its
//! `model-<id>` stream, appended once, before the first step that runs it.
//! Steps name the model file by hash among their inputs, so a derivative's
//! lineage reaches the event that says where the file came from and under
//! which licence.

use super::{content_hash, PipelineError};
use crate::artifacts::ArtifactStore;
use crate::transcribe::model::{
    MODEL_AUTHORS, MODEL_LICENCE, MODEL_SOURCE_PACKAGE, MODEL_SOURCE_PATH, MODEL_SOURCE_VERSION,
};
use crate::transcribe::{BasicPitch, MODEL_ID, MODEL_SHA256};
use ledger::{AppendRequest, EventStore, ExpectedVersion, NewEvent};
use schemas::generation::{
    model_stream, ModelRegistered, GENERATION_SCHEMA_VERSION, MODEL_REGISTERED,
};
use std::path::Path;

/// A registered network, ready to be a step's input.
#[derive(Debug, Clone)]
pub struct RegisteredModel {
    /// Its `model.registered` event, and that event's seq.
    pub registration: ModelRegistered,
    pub seq: u64,
    pub bytes: Vec<u8>,
}

/// The `model.registered` payload of Basic Pitch's file.
fn basic_pitch_registration() -> ModelRegistered {
    ModelRegistered {
        model: MODEL_ID.to_string(),
        description: "Basic Pitch: polyphonic note transcription with pitch bends".into(),
        artifact: content_hash(&format!("sha256:{MODEL_SHA256}")),
        licence: MODEL_LICENCE.into(),
        authors: MODEL_AUTHORS.into(),
        source_package: MODEL_SOURCE_PACKAGE.into(),
        source_version: MODEL_SOURCE_VERSION.into(),
        source_path: MODEL_SOURCE_PATH.into(),
    }
}

/// The registration on the model's stream, if it has one.
async fn registered(
    store: &dyn EventStore,
    model: &str,
) -> Result<Option<(u64, ModelRegistered)>, PipelineError> {
    let Some(event) = store
        .read_stream(&model_stream(model), 0, 1)
        .await?
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    let envelope = event.envelope().map_err(ledger::StoreError::from)?;
    let registration: ModelRegistered = serde_json::from_value(envelope.data).map_err(|e| {
        PipelineError::Tampered(format!(
            "the model.registered event at seq {} does not parse: {e}",
            event.seq
        ))
    })?;
    Ok(Some((event.seq, registration)))
}

/// Basic Pitch, registered: its event (appended now when the log has none)
/// and its file's bytes from the artifact store (stored there now from
/// `model_file` when missing). `model_file` must hold the published file:
/// anything else is refused by its hash before a byte of the log is
/// written.
pub async fn basic_pitch(
    store: &dyn EventStore,
    artifacts: &ArtifactStore,
    model_file: &Path,
) -> Result<RegisteredModel, PipelineError> {
    let expected = basic_pitch_registration();
    let bytes = match artifacts.load_bytes(expected.artifact.as_str()) {
        Ok(bytes) => bytes,
        Err(_) => {
            let bytes = std::fs::read(model_file).map_err(|e| {
                PipelineError::Step(format!(
                    "a cover transcribes its melody with Basic Pitch, whose model file {} cannot be read: {e} (scripts/fetch-basic-pitch-model restores it)",
                    model_file.display()
                ))
            })?;
            BasicPitch::from_bytes(&bytes)
                .map_err(|e| PipelineError::Step(format!("{}: {e}", model_file.display())))?;
            artifacts.put_bytes(&bytes)?;
            bytes
        }
    };
    let found = match registered(store, &expected.model).await? {
        Some(found) => Some(found),
        None => {
            let mut event = NewEvent::new(
                MODEL_REGISTERED,
                serde_json::to_value(&expected).expect("a registration serializes"),
            );
            event.schema = GENERATION_SCHEMA_VERSION;
            let appended = store
                .append(AppendRequest::new(
                    model_stream(&expected.model),
                    ExpectedVersion::Exact(0),
                    vec![event],
                ))
                .await;
            match appended {
                Ok(appended) => appended.first().map(|a| (a.seq, expected.clone())),
                // Another job registered it first: read theirs.
                Err(error) => match registered(store, &expected.model).await? {
                    Some(found) => Some(found),
                    None => return Err(error.into()),
                },
            }
        }
    };
    let (seq, registration) =
        found.ok_or_else(|| PipelineError::Step("the store appended nothing".into()))?;
    if registration.artifact != expected.artifact {
        return Err(PipelineError::Tampered(format!(
            "model {} is registered at seq {seq} with file {}, but its file is {}",
            expected.model,
            registration.artifact.as_str(),
            expected.artifact.as_str()
        )));
    }
    Ok(RegisteredModel {
        registration,
        seq,
        bytes,
    })
}
