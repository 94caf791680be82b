//! Licensing: which inputs a request may use. The facts come from the
//! catalog ([`LicensedInputs`], built by the caller, for instance with
//! [`LicensedInputs::from_log`]); the decision to refuse is made here, once,
//! for every caller.

use super::request::ValidRequest;
pub use super::terms::Refusal;
use super::terms::{self, Asked, ConsentState};
use ledger::store::payloads::read_payloads;
use ledger::{EventStore, StoreError};
use schemas::catalog::{self, ConsentWithdrawn, Recording, VoiceModel};
use schemas::generation::{
    voice_training_stream, RecipeKind, RejectionReason, VoiceModelTrained, VoiceModelUse,
    VOICE_MODEL_TRAINED,
};
use schemas::licence::{CalendarDate, ConsentScope, LicenceTerms};
use schemas::ContentHash;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;

/// A recording in the catalog, its licensed stems (file hashes by name)
/// and its licence terms.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicensedRecording {
    pub isrc: String,
    pub stems: BTreeMap<String, ContentHash>,
    /// `None`: the recording is not participating.
    pub terms: Option<LicenceTerms>,
    /// Seq of the catalog event that stated these terms.
    pub terms_seq: u64,
}

/// A voice model in the catalog, with its consent and trained artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LicensedVoiceModel {
    pub id: String,
    pub artist: String,
    pub consent_granted: bool,
    pub consent_reference: Option<String>,
    pub consent_scope: Option<ConsentScope>,
    /// Seq of the catalog event that stated this consent.
    pub consent_seq: u64,
    /// Every consent withdrawal logged for this voice model, oldest first.
    pub withdrawals: Vec<ConsentWithdrawn>,
    /// The licensed training stems, catalog order.
    pub training_stems: Vec<ContentHash>,
    /// The model trained on exactly those stems, if any.
    pub artifact: Option<ContentHash>,
}

impl LicensedRecording {
    /// The catalog's recording as stated by the event at `seq`.
    pub fn from_catalog(recording: Recording, seq: u64) -> LicensedRecording {
        LicensedRecording {
            stems: recording
                .stems
                .present()
                .into_iter()
                .map(|(name, hash)| (name.to_string(), hash.clone()))
                .collect(),
            isrc: recording.isrc,
            terms: recording.licence,
            terms_seq: seq,
        }
    }
}

impl LicensedVoiceModel {
    /// The catalog's voice model as stated by the event at `seq`, with the
    /// withdrawals logged for it and the newest artifact trained on its
    /// licensed stems.
    pub fn from_catalog(
        model: VoiceModel,
        seq: u64,
        withdrawals: Vec<ConsentWithdrawn>,
        artifact: Option<ContentHash>,
    ) -> LicensedVoiceModel {
        LicensedVoiceModel {
            id: model.id,
            artist: model.artist,
            consent_granted: model.consent.granted,
            consent_reference: model.consent.reference,
            consent_scope: model.consent.scope,
            consent_seq: seq,
            withdrawals,
            training_stems: model.training_stems,
            artifact,
        }
    }

    /// The consent as the licence rules read it.
    pub fn consent(&self) -> ConsentState<'_> {
        ConsentState {
            voice_model: &self.id,
            granted: self.consent_granted,
            reference: self.consent_reference.as_deref(),
            scope: self.consent_scope.as_ref(),
            withdrawals: &self.withdrawals,
        }
    }
}

/// What the catalog knows about the inputs a request names; `None` where it
/// knows nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LicensedInputs {
    pub recording: Option<LicensedRecording>,
    pub voice_model: Option<LicensedVoiceModel>,
}

/// The inputs a licensed request may use, and the catalog events that
/// allowed them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Licence {
    pub recording: LicensedRecording,
    pub voice_model: Option<VoiceModelUse>,
    /// Seq of the catalog event whose consent allowed the voice.
    pub consent_seq: Option<u64>,
}

/// The UTC day it is now: the day requests are decided on.
pub fn today() -> CalendarDate {
    CalendarDate(time::OffsetDateTime::now_utc().date())
}

impl LicensedInputs {
    /// Decides whether `request` may run on `day`: its recording must be in
    /// the catalog and its licence terms must allow the request
    /// ([`terms::check_recording_terms`]); a cover's voice model must be in
    /// the catalog, consented to for this use ([`terms::check_consent`]),
    /// and trained on its licensed stems.
    pub fn license(&self, request: &ValidRequest, day: CalendarDate) -> Result<Licence, Refusal> {
        let refuse = |reason, value: &str, message: String| Refusal {
            reason,
            value: Some(value.to_string()),
            message,
        };
        let recording = match &self.recording {
            Some(r) if r.isrc == request.recording => r,
            _ => {
                return Err(refuse(
                    RejectionReason::UnknownRecording,
                    &request.recording,
                    format!(
                        "recording {} is not in the catalog: only licensed recordings can be used",
                        request.recording
                    ),
                ))
            }
        };
        let asked = Asked {
            recording: &request.recording,
            recipe: &request.recipe,
            territory: &request.territory,
            day,
        };
        let stem_names: Vec<&str> = recording.stems.keys().map(String::as_str).collect();
        terms::check_recording_terms(recording.terms.as_ref(), &stem_names, &asked)?;
        let (voice_model, consent_seq) = match (&request.recipe.kind, &request.recipe.voice_model) {
            (RecipeKind::Cover, Some(id)) => {
                let model = match &self.voice_model {
                    Some(m) if &m.id == id => m,
                    _ => {
                        return Err(refuse(
                            RejectionReason::UnknownVoiceModel,
                            id,
                            format!("voice model {id} is not in the catalog"),
                        ))
                    }
                };
                terms::check_consent(&model.consent(), &asked)?;
                let Some(artifact) = &model.artifact else {
                    return Err(refuse(
                        RejectionReason::VoiceModelNotTrained,
                        id,
                        format!("voice model {id} has not been trained on its licensed stems"),
                    ));
                };
                let used = VoiceModelUse {
                    id: id.clone(),
                    artifact: artifact.clone(),
                    consent_reference: model.consent_reference.clone(),
                };
                (Some(used), Some(model.consent_seq))
            }
            _ => (None, None),
        };
        Ok(Licence {
            recording: recording.clone(),
            voice_model,
            consent_seq,
        })
    }

    /// Reads what the log's catalog says about the request's recording and
    /// voice model: the latest version of each entity, and the newest
    /// training run over the model's current licensed stems.
    pub async fn from_log(
        store: &dyn EventStore,
        request: &ValidRequest,
    ) -> Result<LicensedInputs, StoreError> {
        Self::from_log_before(store, request, u64::MAX).await
    }

    /// As [`LicensedInputs::from_log`], from the events before seq `before`
    /// only: what the catalog said when the event at `before` was appended,
    /// so a logged decision can be made again.
    pub async fn from_log_before(
        store: &dyn EventStore,
        request: &ValidRequest,
        before: u64,
    ) -> Result<LicensedInputs, StoreError> {
        let recording = latest_entity::<Recording>(
            store,
            &catalog::recording_stream(&request.recording),
            &[catalog::RECORDING_REGISTERED, catalog::RECORDING_AMENDED],
            before,
        )
        .await?
        .map(|(recording, seq)| LicensedRecording::from_catalog(recording, seq));
        let voice_model = match &request.recipe.voice_model {
            Some(id) => voice_model_before(store, id, before).await?,
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
    voice_model_before(store, id, u64::MAX).await
}

async fn voice_model_before(
    store: &dyn EventStore,
    id: &str,
    before: u64,
) -> Result<Option<LicensedVoiceModel>, StoreError> {
    let Some((model, consent_seq)) = latest_entity::<VoiceModel>(
        store,
        &catalog::voice_model_stream(id),
        &[
            catalog::VOICE_MODEL_REGISTERED,
            catalog::VOICE_MODEL_AMENDED,
        ],
        before,
    )
    .await?
    else {
        return Ok(None);
    };
    let withdrawals = consent_withdrawals(store, id, before).await?;
    let trainings = store
        .read_stream(
            &voice_training_stream(id),
            0,
            ledger::store::APPEND_EVENTS_MAX,
        )
        .await?;
    let mut artifact = None;
    for event in trainings.iter().rev() {
        if event.event_type != VOICE_MODEL_TRAINED || event.seq >= before {
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
    Ok(Some(LicensedVoiceModel::from_catalog(
        model,
        consent_seq,
        withdrawals,
        artifact,
    )))
}

/// The consent withdrawals logged for voice model `id` before seq `before`.
pub async fn consent_withdrawals(
    store: &dyn EventStore,
    id: &str,
    before: u64,
) -> Result<Vec<ConsentWithdrawn>, StoreError> {
    let stream = catalog::voice_consent_stream(id);
    let withdrawals =
        read_payloads(store, &stream, &[catalog::VOICE_CONSENT_WITHDRAWN], before).await?;
    Ok(withdrawals.into_iter().map(|p| p.data).collect())
}

/// The payload of the newest event of `types` on `stream` before seq
/// `before`, and its seq: catalog streams carry complete entity states, so
/// the newest one is the entity in force.
async fn latest_entity<T: DeserializeOwned>(
    store: &dyn EventStore,
    stream: &str,
    types: &[&str],
    before: u64,
) -> Result<Option<(T, u64)>, StoreError> {
    let versions = read_payloads(store, stream, types, before).await?;
    Ok(versions.into_iter().last().map(|p| (p.data, p.seq)))
}
