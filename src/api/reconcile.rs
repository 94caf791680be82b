//! `POST /v1/reconciliations`: a label's statement CSV compared, party by
//! party (and derivative by derivative for detail rows), with ours for one
//! period (the `projections` crate's reconciliation). A label key may send
//! only its own party's rows and sees only its own party in the report.

use super::auth::{authorize, Action, Principal, Scope};
use super::body::CsvBody;
use super::error::ApiError;
use super::AppState;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, Query, Request, State};
use axum::Json;
use projections::reconcile::{parse_label_statement, reconcile_with_log, Reconciliation};
use serde::Deserialize;
use std::sync::Arc;
use utoipa::IntoParams;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReconcileParams {
    /// The statement's period, YYYY-MM.
    period: String,
    /// Compare only this ISO 4217 currency (the label's rows in others are ignored).
    currency: Option<String>,
    /// Compare with our statement from the log prefix of the first `as_of` events.
    as_of: Option<u64>,
}

/// Compares a label's statement with ours (admin, auditor and label keys).
/// The report lists every party (and detail row) as matched, mismatched,
/// missing-here or missing-there, with per-currency totals, and cites the
/// checkpoint our side was computed from. A mismatch is a 200 with
/// `all_match: false`: the comparison itself succeeded.
#[utoipa::path(
    post,
    path = "/v1/reconciliations",
    tag = "money",
    params(ReconcileParams),
    request_body(content = String, content_type = "text/csv", description = "party,currency,amount[,derivative]: party totals, or detail rows for one derivative"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The reconciliation report", body = Object),
        (status = 400, description = "Bad period, currency, as_of or CSV (naming the line and field)", body = super::error::ErrorBody),
        (status = 401, description = "No valid API key", body = super::error::ErrorBody),
        (status = 403, description = "Role may not reconcile, or a label sent another party's rows", body = super::error::ErrorBody),
        (status = 413, description = "Body over 8 MiB", body = super::error::ErrorBody),
        (status = 415, description = "Body is not text/csv", body = super::error::ErrorBody),
    )
)]
pub async fn reconcile(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    query: Result<Query<ReconcileParams>, QueryRejection>,
    request: Request,
) -> Result<Json<Reconciliation>, ApiError> {
    // The role is checked before a byte of the body is read.
    let scope = authorize(&principal, Action::Reconcile, None)?;
    let Query(query) = query?;
    let CsvBody(body) = CsvBody::from_request(request, &()).await?;
    let theirs =
        parse_label_statement(&body).map_err(|e| ApiError::classified(e.is_client_error(), e))?;
    let party = match &scope {
        Scope::All => None,
        Scope::Party(own) => {
            if let Some(row) = theirs.iter().find(|row| &row.party != own) {
                return Err(ApiError::Forbidden(format!(
                    "this key belongs to party {own:?} and may not reconcile party {:?}'s rows",
                    row.party
                )));
            }
            Some(own.as_str())
        }
    };
    let report = {
        let mut projections = state.projections.lock().await;
        reconcile_with_log(
            state.store.as_ref(),
            &mut projections,
            &query.period,
            query.currency.as_deref(),
            party,
            query.as_of,
            theirs,
        )
        .await?
    };
    Ok(Json(report))
}
