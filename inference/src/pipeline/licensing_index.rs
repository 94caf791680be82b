//! The catalog's licensing facts in memory, for a server that decides many
//! requests: folded from the log once, then caught up with what was
//! appended since before each decision, so a decision costs one read of
//! the log's size instead of a read of every stream it needs.
//!
//! It answers exactly what [`LicensedInputs::from_log`] reads from the
//! streams (a property test holds them equal): the latest version of the
//! recording and of the voice model, the model's newest training run over
//! its current licensed stems, and its consent withdrawals.

use super::licensing::{LicensedInputs, LicensedRecording, LicensedVoiceModel};
use super::request::ValidRequest;
use ledger::store::{EventStore, StoreError, StoredEvent};
use schemas::catalog::{self, ConsentWithdrawn, Recording, VoiceModel};
use schemas::generation::{VoiceModelTrained, VOICE_MODEL_TRAINED};
use schemas::ContentHash;
use std::collections::HashMap;
use std::sync::RwLock;

/// Events read per store round trip while catching up.
const CATCH_UP_BATCH: usize = 4_096;
/// The streams' name prefixes, as `schemas` names the streams.
const RECORDING_STREAM: &str = "recording-";
const VOICE_MODEL_STREAM: &str = "voice-model-";
const TRAINING_STREAM: &str = "voice-training-";
const CONSENT_STREAM: &str = "voice-consent-";

/// A voice model's catalog state and what was logged about it.
#[derive(Default)]
struct VoiceFacts {
    model: Option<(VoiceModel, u64)>,
    /// Training runs, oldest first: (training stems, artifact).
    trainings: Vec<(Vec<ContentHash>, ContentHash)>,
    withdrawals: Vec<ConsentWithdrawn>,
}

#[derive(Default)]
struct Folded {
    /// The log prefix folded: events `0..position`.
    position: u64,
    recordings: HashMap<String, LicensedRecording>,
    voices: HashMap<String, VoiceFacts>,
}

/// The licensing facts of the log prefix it has caught up to.
#[derive(Default)]
pub struct LicensingIndex {
    folded: RwLock<Folded>,
}

fn decode<T: serde::de::DeserializeOwned>(event: &StoredEvent) -> Result<T, StoreError> {
    let envelope = event.envelope().map_err(StoreError::from)?;
    serde_json::from_value(envelope.data).map_err(|e| {
        StoreError::Corrupt(format!(
            "event seq {} ({}) does not hold its schema: {e}",
            event.seq, event.event_type
        ))
    })
}

impl Folded {
    /// Applies one event. Entities are keyed by the stream they are on, as
    /// [`LicensedInputs::from_log`] reads them by stream name.
    fn apply(&mut self, event: &StoredEvent) -> Result<(), StoreError> {
        let stream = event.stream.as_str();
        match event.event_type.as_str() {
            catalog::RECORDING_REGISTERED | catalog::RECORDING_AMENDED => {
                let Some(isrc) = stream.strip_prefix(RECORDING_STREAM) else {
                    return Ok(());
                };
                let recording: Recording = decode(event)?;
                self.recordings.insert(
                    isrc.to_string(),
                    LicensedRecording::from_catalog(recording, event.seq),
                );
            }
            catalog::VOICE_MODEL_REGISTERED | catalog::VOICE_MODEL_AMENDED => {
                let Some(id) = stream.strip_prefix(VOICE_MODEL_STREAM) else {
                    return Ok(());
                };
                let model: VoiceModel = decode(event)?;
                self.voices.entry(id.to_string()).or_default().model = Some((model, event.seq));
            }
            VOICE_MODEL_TRAINED => {
                let Some(id) = stream.strip_prefix(TRAINING_STREAM) else {
                    return Ok(());
                };
                // A payload that is not a training run is skipped, as
                // `from_log` skips it.
                if let Ok(trained) = decode::<VoiceModelTrained>(event) {
                    self.voices
                        .entry(id.to_string())
                        .or_default()
                        .trainings
                        .push((trained.training_stems, trained.artifact));
                }
            }
            catalog::VOICE_CONSENT_WITHDRAWN => {
                let Some(id) = stream.strip_prefix(CONSENT_STREAM) else {
                    return Ok(());
                };
                let withdrawn: ConsentWithdrawn = decode(event)?;
                self.voices
                    .entry(id.to_string())
                    .or_default()
                    .withdrawals
                    .push(withdrawn);
            }
            _ => {}
        }
        Ok(())
    }

    fn voice_model(&self, id: &str) -> Option<LicensedVoiceModel> {
        let facts = self.voices.get(id)?;
        let (model, seq) = facts.model.as_ref()?;
        // The newest run over the stems licensed now.
        let artifact = facts
            .trainings
            .iter()
            .rev()
            .find(|(stems, _)| *stems == model.training_stems)
            .map(|(_, artifact)| artifact.clone());
        Some(LicensedVoiceModel::from_catalog(
            model.clone(),
            *seq,
            facts.withdrawals.clone(),
            artifact,
        ))
    }
}

impl LicensingIndex {
    /// An index of nothing yet; the first [`LicensingIndex::catch_up`] folds
    /// the whole log.
    pub fn new() -> LicensingIndex {
        LicensingIndex::default()
    }

    /// The log prefix folded so far.
    pub fn position(&self) -> u64 {
        self.folded.read().expect("licensing index lock").position
    }

    /// Folds whatever was appended to `store` since the last catch-up.
    /// Callers may catch up at once: each event is applied once, in seq
    /// order, by whichever holds the lock when it is next.
    pub async fn catch_up(&self, store: &dyn EventStore) -> Result<(), StoreError> {
        let size = store.size().await?;
        let mut next = self.position();
        while next < size {
            let limit = CATCH_UP_BATCH.min((size - next) as usize);
            let events = store.read_range(next, limit).await?;
            if events.is_empty() {
                break;
            }
            let mut folded = self.folded.write().expect("licensing index lock");
            for event in &events {
                if event.seq == folded.position {
                    folded.apply(event)?;
                    folded.position = event.seq + 1;
                }
            }
            next = folded.position;
        }
        Ok(())
    }

    /// What the catalog, as of the last catch-up, says about the request's
    /// recording and voice model.
    pub fn inputs(&self, request: &ValidRequest) -> LicensedInputs {
        let folded = self.folded.read().expect("licensing index lock");
        LicensedInputs {
            recording: folded.recordings.get(&request.recording).cloned(),
            voice_model: request
                .recipe
                .voice_model
                .as_deref()
                .and_then(|id| folded.voice_model(id)),
        }
    }

    /// Catches up with `store`, then reads the request's inputs.
    pub async fn inputs_now(
        &self,
        store: &dyn EventStore,
        request: &ValidRequest,
    ) -> Result<LicensedInputs, StoreError> {
        self.catch_up(store).await?;
        Ok(self.inputs(request))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stream_prefixes_are_those_the_schemas_name() {
        assert_eq!(
            catalog::recording_stream("X"),
            format!("{RECORDING_STREAM}X")
        );
        assert_eq!(
            catalog::voice_model_stream("X"),
            format!("{VOICE_MODEL_STREAM}X")
        );
        assert_eq!(
            schemas::generation::voice_training_stream("X"),
            format!("{TRAINING_STREAM}X")
        );
        assert_eq!(
            catalog::voice_consent_stream("X"),
            format!("{CONSENT_STREAM}X")
        );
    }
}
