//! `GET /v1/lineage/{derivative}`: where a derivative came from and who it
//! paid, every event cited with its inclusion proof (the `projections`
//! crate's lineage answer). A label key sees only derivatives that paid its
//! party, and of their revenue only its own share.

use super::auth::{authorize, Action, Principal, Scope};
use super::error::ApiError;
use super::AppState;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::Json;
use projections::lineage::{lineage, LineageAnswer, LineageError, LineageQuery};
use projections::runner::ProjectionError;
use serde::Deserialize;
use std::sync::Arc;
use utoipa::IntoParams;
use uuid::Uuid;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LineageParams {
    /// Answer from the log prefix of the first `as_of` events only.
    as_of: Option<u64>,
}

impl From<LineageError> for ApiError {
    fn from(error: LineageError) -> Self {
        match error {
            LineageError::Projection(ProjectionError::AsOfBeyondLog { .. }) => {
                ApiError::BadRequest(error.to_string())
            }
            LineageError::Projection(ProjectionError::Store(store))
            | LineageError::Store(store) => store.into(),
            LineageError::Projection(other) => ApiError::Internal(other.to_string()),
        }
    }
}

/// The lineage of a derivative (admin, auditor and label keys): its
/// generation steps, the catalog versions it used, its usage and revenue,
/// and the checkpoint every cited event's inclusion proof verifies against.
#[utoipa::path(
    get,
    path = "/v1/lineage/{derivative}",
    tag = "money",
    params(("derivative" = Uuid, Path, description = "Derivative id"), LineageParams),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The lineage, with proofs", body = Object),
        (status = 400, description = "Not a UUID, or as_of beyond the log", body = super::error::ErrorBody),
        (status = 401, description = "No valid API key", body = super::error::ErrorBody),
        (status = 403, description = "Role may not read lineage, or the derivative did not pay this label", body = super::error::ErrorBody),
        (status = 404, description = "No such derivative", body = super::error::ErrorBody),
    )
)]
pub async fn derivative(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<LineageParams>, QueryRejection>,
) -> Result<Json<LineageAnswer>, ApiError> {
    let scope = authorize(&principal, Action::ReadLineage, None)?;
    let Path(derivative) = path?;
    let Query(query) = query?;
    let id = Uuid::parse_str(&derivative).map_err(|e| {
        ApiError::BadRequest(format!("derivative {derivative:?} is not a UUID: {e}"))
    })?;
    let answer = {
        let mut projections = state.projections.lock().await;
        lineage(
            state.store.as_ref(),
            &mut projections,
            &LineageQuery::Derivative(id),
            query.as_of,
        )
        .await?
    };
    let mut found = match answer {
        LineageAnswer::Found(found) => found,
        LineageAnswer::NotFound { message, .. } => return Err(ApiError::NotFound(message)),
    };
    if let Scope::Party(party) = &scope {
        for revenue in &mut found.revenue {
            revenue.parties.retain(|p| &p.party == party);
        }
        found.revenue.retain(|revenue| !revenue.parties.is_empty());
        if found.revenue.is_empty() {
            return Err(ApiError::Forbidden(format!(
                "derivative {id} has paid nothing to party {party:?}; a label key reads only the lineage of derivatives that paid it"
            )));
        }
    }
    Ok(Json(LineageAnswer::Found(found)))
}
