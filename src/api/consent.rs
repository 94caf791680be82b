//! Licence terms over HTTP: `POST /v1/voice-models/{id}/consent-withdrawals`
//! (admin keys) records an artist's withdrawal of consent, as `ledgerline
//! consent withdraw` does; `GET /v1/takedowns` lists the derivatives to take
//! down, as `ledgerline takedowns` does.

use super::auth::{authorize, Action, Principal};
use super::body::JsonText;
use super::error::ApiError;
use super::AppState;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::Json;
use inference::pipeline::licensing::today;
use projections::consent::{withdraw_consent, WithdrawalError, Withdrawn};
use projections::takedowns::TakedownList;
use schemas::licence::CalendarDate;
use serde::Deserialize;
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

impl From<WithdrawalError> for ApiError {
    fn from(error: WithdrawalError) -> Self {
        match error {
            WithdrawalError::UnknownVoiceModel(_) => ApiError::NotFound(error.to_string()),
            WithdrawalError::NeverGranted { .. } => ApiError::Unprocessable(error.to_string()),
            WithdrawalError::AlreadyWithdrawn { .. } => {
                ApiError::AlreadyRecorded(error.to_string())
            }
            // Retryable: nothing was written.
            WithdrawalError::Conflict => ApiError::TooManyRequests {
                message: error.to_string(),
                retry_after_s: 1,
            },
            WithdrawalError::Store(store) => store.into(),
        }
    }
}

/// A withdrawal, as `consent withdraw` takes it.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WithdrawalBody {
    /// The withdrawn consent's reference, as the catalog records it.
    reference: String,
    /// The first day the withdrawal applies (`YYYY-MM-DD`, UTC); today if absent.
    effective: Option<String>,
}

/// Records the withdrawal of an artist's consent to a voice model (admin
/// keys): `catalog.voice-consent-withdrawn`. From the effective day new
/// requests using the voice are refused with `consent_withdrawn`, and the
/// derivatives made with it are on `GET /v1/takedowns`.
#[utoipa::path(
    post,
    path = "/v1/voice-models/{id}/consent-withdrawals",
    operation_id = "withdraw_consent",
    tag = "money",
    params(("id" = String, Path, description = "The catalog's voice model id")),
    request_body(content = WithdrawalBody, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Recorded: {seq, voice_model, reference, effective}", body = Object),
        (status = 400, description = "Malformed body or a date that does not parse", body = super::error::ErrorBody),
        (status = 401, description = "No valid API key", body = super::error::ErrorBody),
        (status = 403, description = "Not an admin key", body = super::error::ErrorBody),
        (status = 404, description = "No such voice model", body = super::error::ErrorBody),
        (status = 409, description = "That consent was already withdrawn", body = super::error::ErrorBody),
        (status = 429, description = "Other withdrawals of this voice model kept landing; nothing was written, retry", body = super::error::ErrorBody),
        (status = 422, description = "No consent with that reference was ever granted", body = super::error::ErrorBody),
    )
)]
pub async fn withdraw(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    path: Result<Path<String>, PathRejection>,
    request: Request,
) -> Result<(StatusCode, Json<Withdrawn>), ApiError> {
    authorize(&principal, Action::WithdrawConsent, None)?;
    let Path(voice_model) = path?;
    let JsonText(text) = JsonText::from_request(request, &()).await?;
    let body: WithdrawalBody = serde_json::from_str(&text).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body is not a withdrawal {{\"reference\", \"effective\"}}: {e}"
        ))
    })?;
    let effective = match &body.effective {
        Some(text) => text
            .parse::<CalendarDate>()
            .map_err(|e| ApiError::BadRequest(format!("effective: {e}")))?,
        None => today(),
    };
    let withdrawn = withdraw_consent(
        state.store.as_ref(),
        &voice_model,
        &body.reference,
        effective,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(withdrawn)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub struct TakedownParams {
    /// Only entries whose cause or publication is at or after this seq,
    /// and those that took effect on a later day than their cause (ended
    /// windows, withdrawals dated ahead).
    since: Option<u64>,
}

/// The derivatives to take down today: consent withdrawn, recording
/// withdrawn by its label, or licence window ended; each with the event
/// that ended it and its inclusion proof against the cited checkpoint.
#[utoipa::path(
    get,
    path = "/v1/takedowns",
    operation_id = "takedowns",
    tag = "money",
    params(TakedownParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The list, with proofs", body = Object),
        (status = 400, description = "A malformed `since`", body = super::error::ErrorBody),
        (status = 401, description = "No valid API key", body = super::error::ErrorBody),
        (status = 403, description = "Role may not read takedowns", body = super::error::ErrorBody),
    )
)]
pub async fn list(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    query: Result<Query<TakedownParams>, QueryRejection>,
) -> Result<Json<TakedownList>, ApiError> {
    authorize(&principal, Action::ReadTakedowns, None)?;
    let Query(params) = query?;
    let policy = state.witnessing.as_ref().map(|w| w.policy.as_ref());
    let list = state
        .takedowns
        .list(
            state.store.as_ref(),
            params.since.unwrap_or(0),
            today(),
            policy,
        )
        .await?;
    Ok(Json(list))
}
