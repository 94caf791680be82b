//! Withdrawing an artist's consent to a voice model
//! (`ledgerline consent withdraw`, `POST /v1/voice-models/{id}/consent-withdrawals`):
//! checks that the consent exists and was granted, then appends one
//! `catalog.voice-consent-withdrawn` event on the model's consent stream.
//! From its effective day, requests using the voice are refused and every
//! derivative made with that consent is on the takedown list
//! ([`crate::takedowns`]).

use ledger::store::payloads::read_payloads;
use ledger::store::{AppendRequest, EventStore, ExpectedVersion, StoreError};
use ledger::NewEvent;
use schemas::catalog::{self, ConsentWithdrawn, VoiceModel, CATALOG_SCHEMA_VERSION};
use schemas::licence::CalendarDate;

/// Read-check-append rounds before a withdrawal gives up on a busy stream.
const APPEND_ATTEMPTS: usize = 3;

/// Why a withdrawal was not recorded; nothing was written for any of these.
#[derive(Debug, thiserror::Error)]
pub enum WithdrawalError {
    #[error("voice model {0:?} is not in the catalog")]
    UnknownVoiceModel(String),
    #[error("voice model {voice_model}: no consent with reference {reference:?} was ever granted (its consent references: {known})")]
    NeverGranted {
        voice_model: String,
        reference: String,
        known: String,
    },
    #[error("voice model {voice_model}: consent {reference:?} was already withdrawn at seq {seq}, effective {effective}")]
    AlreadyWithdrawn {
        voice_model: String,
        reference: String,
        seq: u64,
        effective: CalendarDate,
    },
    #[error("other withdrawals of this voice model kept landing while this one was being recorded; nothing was written, try again")]
    Conflict,
    #[error(transparent)]
    Store(StoreError),
}

impl WithdrawalError {
    /// True when the request is at fault (exit status 2, HTTP 4xx); a
    /// busy stream ([`WithdrawalError::Conflict`]) is worth a retry instead.
    pub fn is_client_error(&self) -> bool {
        !matches!(self, WithdrawalError::Store(_) | WithdrawalError::Conflict)
    }
}

impl From<StoreError> for WithdrawalError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::VersionConflict { .. } => WithdrawalError::Conflict,
            other => WithdrawalError::Store(other),
        }
    }
}

/// A recorded withdrawal.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Withdrawn {
    pub seq: u64,
    #[serde(flatten)]
    pub withdrawal: ConsentWithdrawn,
}

/// Records the withdrawal of consent `reference` to `voice_model`,
/// effective from `effective` (included). The consent must have been
/// granted under that reference by some version of the voice model, and
/// not withdrawn already.
pub async fn withdraw_consent(
    store: &dyn EventStore,
    voice_model: &str,
    reference: &str,
    effective: CalendarDate,
) -> Result<Withdrawn, WithdrawalError> {
    let model_stream = catalog::voice_model_stream(voice_model);
    let types = [
        catalog::VOICE_MODEL_REGISTERED,
        catalog::VOICE_MODEL_AMENDED,
    ];
    let versions = read_payloads::<VoiceModel>(store, &model_stream, &types, u64::MAX).await?;
    let mut references = Vec::new();
    let mut granted = false;
    for model in versions.iter().map(|p| &p.data) {
        if let Some(known) = &model.consent.reference {
            granted |= model.consent.granted && known == reference;
            if !references.contains(known) {
                references.push(known.clone());
            }
        }
    }
    if versions.is_empty() {
        return Err(WithdrawalError::UnknownVoiceModel(voice_model.to_string()));
    }
    if !granted {
        return Err(WithdrawalError::NeverGranted {
            voice_model: voice_model.to_string(),
            reference: reference.to_string(),
            known: if references.is_empty() {
                "none".to_string()
            } else {
                references.join(", ")
            },
        });
    }
    let consent_stream = catalog::voice_consent_stream(voice_model);
    let withdrawal = ConsentWithdrawn {
        voice_model: voice_model.to_string(),
        reference: reference.to_string(),
        effective,
    };
    // Withdrawals of other consents of the same voice may land between the
    // read and the append: read again and retry, a few times.
    for _ in 0..APPEND_ATTEMPTS {
        // The stream holds withdrawals only, so their count is its version.
        let earlier = read_payloads::<ConsentWithdrawn>(
            store,
            &consent_stream,
            &[catalog::VOICE_CONSENT_WITHDRAWN],
            u64::MAX,
        )
        .await?;
        if let Some(earlier) = earlier.iter().find(|p| p.data.reference == reference) {
            return Err(WithdrawalError::AlreadyWithdrawn {
                voice_model: voice_model.to_string(),
                reference: reference.to_string(),
                seq: earlier.seq,
                effective: earlier.data.effective,
            });
        }
        let data = serde_json::to_value(&withdrawal).expect("a withdrawal serializes");
        // The stream must still hold what was read, so two withdrawals of
        // one consent racing each other record one.
        let appended = store
            .append(AppendRequest::new(
                &consent_stream,
                ExpectedVersion::Exact(earlier.len() as u64),
                vec![NewEvent {
                    schema: CATALOG_SCHEMA_VERSION,
                    ..NewEvent::new(catalog::VOICE_CONSENT_WITHDRAWN, data)
                }],
            ))
            .await;
        match appended {
            Ok(appended) => {
                let seq = appended
                    .first()
                    .map(|a| a.seq)
                    .ok_or_else(|| StoreError::Corrupt("the store appended no event".into()))?;
                return Ok(Withdrawn { seq, withdrawal });
            }
            Err(StoreError::VersionConflict { .. }) => continue,
            Err(other) => return Err(other.into()),
        }
    }
    Err(WithdrawalError::Conflict)
}
