//! `GET /healthz`: whether the server can read its log and append to it.

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

/// Liveness and readiness: 200 when the log answers a read and its writer
/// can write, 503 with the reason otherwise.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses(
        (status = 200, description = "The server and its log answer, and appends can be written", body = Health),
        (status = 503, description = "The log does not answer, or its writer cannot write (the message says why)", body = super::error::ErrorBody),
    )
)]
pub async fn healthz(State(state): State<Arc<AppState>>) -> Result<Json<Health>, ApiError> {
    let events = state
        .store
        .size()
        .await
        .map_err(|e| ApiError::Unavailable(format!("the log does not answer: {e}")))?;
    if state.store.writer_fault().is_some() {
        // A writer's fault stands until one of its writes succeeds; one
        // that has recovered (a lock released, space freed) proves it here
        // by signing whatever is committed.
        let _ = state.store.checkpoint_now().await;
        if let Some(fault) = state.store.writer_fault() {
            return Err(ApiError::Unavailable(format!(
                "the log cannot be appended to: {fault}"
            )));
        }
    }
    Ok(Json(Health {
        status: "ok",
        events,
    }))
}
