//! `GET /v1/statements/{period}`: royalty statements from the `projections`
//! crate, as JSON or CSV. A label key sees only its own party's line, and
//! not the period's gross (which would reveal what other parties earned).

use super::auth::{authorize, Action, Principal, Role, Scope};
use super::error::ApiError;
use super::AppState;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use projections::runner::ProjectionError;
use projections::statement::{render_csv, statements, Statement, StatementError};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use utoipa::{IntoParams, ToSchema};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatementQuery {
    /// ISO 4217 currency (default: every currency with usage in the period).
    currency: Option<String>,
    /// Only this party's line (a label key: its own party only, the default).
    party: Option<String>,
    /// Answer from the log prefix of the first `as_of` events only.
    as_of: Option<u64>,
}

/// The log prefix a statement was computed from.
#[derive(Serialize, ToSchema)]
pub struct CheckpointView {
    size: u64,
    /// Hex RFC 6962 root hash of the first `size` events.
    root_hash: String,
}

/// One party's payout.
#[derive(Serialize, ToSchema)]
pub struct StatementLineView {
    party: String,
    name: String,
    /// Rounded to the currency's minor unit.
    amount: String,
    /// The exact sum of the party's allocations.
    exact: String,
}

/// A statement for one period and currency.
#[derive(Serialize, ToSchema)]
pub struct StatementView {
    period: String,
    currency: String,
    checkpoint: CheckpointView,
    /// The period's gross, rounded; absent for label keys.
    #[serde(skip_serializing_if = "Option::is_none")]
    total: Option<String>,
    lines: Vec<StatementLineView>,
}

/// The statements of a period, one per currency.
#[derive(Serialize, ToSchema)]
pub struct Statements {
    statements: Vec<StatementView>,
}

impl From<StatementError> for ApiError {
    fn from(error: StatementError) -> Self {
        match error {
            // The store's and the checkpoint's errors have statuses of their own.
            StatementError::Projection(ProjectionError::Store(store)) => store.into(),
            StatementError::NoCheckpoint => ApiError::NotFound(error.to_string()),
            other => ApiError::classified(other.is_client_error(), other),
        }
    }
}

fn view(statement: Statement, with_total: bool) -> StatementView {
    StatementView {
        period: statement.period,
        currency: statement.currency,
        checkpoint: CheckpointView {
            size: statement.checkpoint.size,
            root_hash: statement.checkpoint.root_hash,
        },
        total: with_total.then_some(statement.total),
        lines: statement
            .lines
            .into_iter()
            .map(|line| StatementLineView {
                party: line.party,
                name: line.name,
                amount: line.amount,
                exact: line.exact,
            })
            .collect(),
    }
}

/// Royalty statements of a period (admin, auditor and label keys), citing
/// the checkpoint they were computed from. `Accept: text/csv` for CSV.
#[utoipa::path(
    get,
    path = "/v1/statements/{period}",
    tag = "money",
    params(("period" = String, Path, description = "Period, YYYY-MM"), StatementQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The statements", body = Statements),
        (status = 200, description = "The statements as CSV (Accept: text/csv)", body = String, content_type = "text/csv"),
        (status = 400, description = "Bad period, currency or as_of", body = super::error::ErrorBody),
        (status = 401, description = "No valid API key", body = super::error::ErrorBody),
        (status = 403, description = "Role may not read statements, or a label asked for another party", body = super::error::ErrorBody),
    )
)]
pub async fn statement(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<StatementQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let scope = authorize(&principal, Action::ReadStatement, query.party.as_deref())?;
    let Path(period) = path?;
    let mut found = {
        let mut projections = state.projections.lock().await;
        statements(
            state.store.as_ref(),
            &mut projections,
            &period,
            query.currency.as_deref(),
            query.as_of,
        )
        .await?
    };
    if let Scope::Party(party) = &scope {
        for statement in &mut found {
            statement.lines.retain(|line| &line.party == party);
        }
    }
    let with_total = principal.role != Role::Label;
    let wants_csv = headers
        .get(ACCEPT)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|accept| accept.contains("text/csv"));
    if wants_csv {
        if !with_total {
            for statement in &mut found {
                statement.total.clear();
            }
        }
        return Ok((
            [(CONTENT_TYPE, "text/csv; charset=utf-8")],
            render_csv(&found),
        )
            .into_response());
    }
    let statements = found
        .into_iter()
        .map(|statement| view(statement, with_total))
        .collect();
    Ok(Json(Statements { statements }).into_response())
}
