//! `GET /healthz`: whether the server can read its log.

use super::error::ApiError;
use super::AppState;
use axum::extract::State;
use axum::Json;
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// A healthy server's answer.
#[derive(Serialize, ToSchema)]
pub struct Health {
    /// Always `ok`; an unhealthy server answers 503 with an error body.
    status: &'static str,
    /// Events in the log.
    events: u64,
}

/// Liveness and readiness: 200 when the log answers a read, 503 otherwise.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses(
        (status = 200, description = "The server and its log answer", body = Health),
        (status = 503, description = "The log does not answer", body = super::error::ErrorBody),
    )
)]
pub async fn healthz(State(state): State<Arc<AppState>>) -> Result<Json<Health>, ApiError> {
    let events = state
        .store
        .size()
        .await
        .map_err(|e| ApiError::Unavailable(format!("the log does not answer: {e}")))?;
    Ok(Json(Health {
        status: "ok",
        events,
    }))
}
