//! Licensing: which inputs a request may use. The facts come from the
//! catalog ([`LicensedInputs`], built by the caller, for instance with
//! [`LicensedInputs::from_log`]); the decision to refuse is made here, once,
//! for every caller.

use super::request::ValidRequest;
use ledger::{EventStore, StoreError};
use schemas::catalog::{self, Recording, VoiceModel};
use schemas::generation::{
    voice_training_stream, RecipeKind, RejectionReason, VoiceModelTrained, VoiceModelUse,
    VOICE_MODEL_TRAINED,
};
use schemas::ContentHash;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

/// A recording in the catalog and its licensed stems (file hashes by name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicensedRecording {
    pub isrc: String,
    pub stems: BTreeMap<String, ContentHash>,
}

/// A voice model in the catalog, with its consent and trained artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicensedVoiceModel {
    pub id: String,
    pub artist: String,
    pub consent_granted: bool,
    pub consent_reference: Option<String>,
    /// The licensed training stems, catalog order.
    pub training_stems: Vec<ContentHash>,
    /// The model trained on exactly those stems, if any.
    pub artifact: Option<ContentHash>,
}

/// What the catalog knows about the inputs a request names; `None` where it
/// knows nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LicensedInputs {
    pub recording: Option<LicensedRecording>,
    pub voice_model: Option<LicensedVoiceModel>,
}

/// A request refused for licensing: recorded as `generation.rejected`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Refusal {
    pub reason: RejectionReason,
    pub message: String,
}

/// The inputs a licensed request may use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Licence {
    pub recording: LicensedRecording,
    pub voice_model: Option<VoiceModelUse>,
}

impl LicensedInputs {
    /// Decides whether `request` may run: its recording must be in the
    /// catalog, and a cover's voice model must be in the catalog, consented
    /// to by its artist, and trained on its licensed stems.
    pub fn license(&self, request: &ValidRequest) -> Result<Licence, Refusal> {
        let refuse = |reason, message: String| Refusal { reason, message };
        let recording = match &self.recording {
            Some(r) if r.isrc == request.recording => r.clone(),
            _ => {
                return Err(refuse(
                    RejectionReason::UnknownRecording,
                    format!(
                        "recording {} is not in the catalog: only licensed recordings can be used",
                        request.recording
                    ),
                ))
            }
        };
        let voice_model = match (&request.recipe.kind, &request.recipe.voice_model) {
            (RecipeKind::Cover, Some(id)) => {
                let model = match &self.voice_model {
                    Some(m) if &m.id == id => m,
                    _ => {
                        return Err(refuse(
                            RejectionReason::UnknownVoiceModel,
                            format!("voice model {id} is not in the catalog"),
                        ))
                    }
                };
                if !model.consent_granted {
                    return Err(refuse(
                        RejectionReason::ConsentNotGranted,
                        format!(
                            "voice model {id}: artist {} has not granted consent to its use",
                            model.artist
                        ),
                    ));
                }
                let Some(artifact) = &model.artifact else {
                    return Err(refuse(
                        RejectionReason::VoiceModelNotTrained,
                        format!("voice model {id} has not been trained on its licensed stems"),
                    ));
                };
                Some(VoiceModelUse {
                    id: id.clone(),
                    artifact: artifact.clone(),
                    consent_reference: model.consent_reference.clone(),
                })
            }
            _ => None,
        };
        Ok(Licence {
            recording,
            voice_model,
        })
    }

    /// Reads what the log's catalog says about the request's recording and
    /// voice model: the latest version of each entity, and the newest
    /// training run over the model's current licensed stems.
    pub async fn from_log(
        store: &dyn EventStore,
        request: &ValidRequest,
    ) -> Result<LicensedInputs, StoreError> {
        let recording = latest_entity::<Recording>(
            store,
            &catalog::recording_stream(&request.recording),
            &[catalog::RECORDING_REGISTERED, catalog::RECORDING_AMENDED],
        )
        .await?
        .map(|r| LicensedRecording {
            isrc: r.isrc,
            stems: r
                .stems
                .present()
                .into_iter()
                .map(|(name, hash)| (name.to_string(), hash.clone()))
                .collect(),
        });
        let voice_model = match &request.recipe.voice_model {
            Some(id) => voice_model_from_log(store, id).await?,
            None => None,
        };
        Ok(LicensedInputs {
            recording,
            voice_model,
        })
    }
}

/// The catalog's voice model `id` with its newest matching trained artifact.
pub async fn voice_model_from_log(
    store: &dyn EventStore,
    id: &str,
) -> Result<Option<LicensedVoiceModel>, StoreError> {
    let Some(model) = latest_entity::<VoiceModel>(
        store,
        &catalog::voice_model_stream(id),
        &[
            catalog::VOICE_MODEL_REGISTERED,
            catalog::VOICE_MODEL_AMENDED,
        ],
    )
    .await?
    else {
        return Ok(None);
    };
    let trainings = store
        .read_stream(
            &voice_training_stream(id),
            0,
            ledger::store::APPEND_EVENTS_MAX,
        )
        .await?;
    let mut artifact = None;
    for event in trainings.iter().rev() {
        if event.event_type != VOICE_MODEL_TRAINED {
            continue;
        }
        let envelope = event.envelope().map_err(StoreError::from)?;
        if let Ok(trained) = serde_json::from_value::<VoiceModelTrained>(envelope.data) {
            // A model trained on other stems than those licensed now (the
            // catalog was amended since) is not this licence's model.
            if trained.training_stems == model.training_stems {
                artifact = Some(trained.artifact);
                break;
            }
        }
    }
    Ok(Some(LicensedVoiceModel {
        id: model.id,
        artist: model.artist,
        consent_granted: model.consent.granted,
        consent_reference: model.consent.reference,
        training_stems: model.training_stems,
        artifact,
    }))
}

/// The payload of the newest event of `types` on `stream`: catalog streams
/// carry complete entity states, so the newest one is the entity in force.
async fn latest_entity<T: DeserializeOwned>(
    store: &dyn EventStore,
    stream: &str,
    types: &[&str],
) -> Result<Option<T>, StoreError> {
    let events = store
        .read_stream(stream, 0, ledger::store::APPEND_EVENTS_MAX)
        .await?;
    for event in events.iter().rev() {
        if types.contains(&event.event_type.as_str()) {
            let envelope = event.envelope().map_err(StoreError::from)?;
            return serde_json::from_value(envelope.data)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("{stream}: {e}")));
        }
    }
    Ok(None)
}
