//! `POST /v1/usage`: a usage report (the CSV `ledgerline usage import`
//! reads), checked against the catalog and appended all lines or none.

use super::auth::{authorize, Action, Principal};
use super::body::CsvBody;
use super::error::ApiError;
use super::idempotency::{idempotency_key, once, request_hash};
use super::AppState;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use projections::usage::{parse_usage_csv, UsageError};
use projections::usage_import::{import_usage, UsageImportError};
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// What an import did: the same object `ledgerline usage import` prints.
#[derive(Serialize, ToSchema)]
pub struct UsageImported {
    /// Lines appended.
    imported: usize,
    /// Line ids already in the log with the same content, skipped.
    skipped: Vec<String>,
    /// The seq of each appended line, in file order.
    seqs: Vec<u64>,
}

impl From<UsageImportError> for ApiError {
    fn from(error: UsageImportError) -> Self {
        match error {
            UsageImportError::Usage(usage) => usage.into(),
            UsageImportError::Store(store) => store.into(),
            UsageImportError::Projection(projections::runner::ProjectionError::Store(store)) => {
                store.into()
            }
            UsageImportError::Projection(other) => ApiError::Internal(other.to_string()),
        }
    }
}

impl From<UsageError> for ApiError {
    fn from(error: UsageError) -> Self {
        match error {
            UsageError::Csv(_) | UsageError::Header { .. } | UsageError::TooManyLines { .. } => {
                ApiError::BadRequest(error.to_string())
            }
            UsageError::Invalid(_) => ApiError::Unprocessable(error.to_string()),
        }
    }
}

/// Imports a usage report (admin and ingest keys). Line ids make it
/// idempotent: lines already imported are skipped, never appended twice;
/// with an `Idempotency-Key` a retry also gets the first response back.
#[utoipa::path(
    post,
    path = "/v1/usage",
    operation_id = "import_usage",
    tag = "money",
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key and body returns the first response")),
    request_body(content = String, content_type = "text/csv", description = "line_id,period,derivative,territory,currency,streams,gross,reverses"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Imported (or skipped as already imported)", body = UsageImported),
        (status = 400, description = "Not CSV, wrong header, or too many lines", body = super::error::ErrorBody),
        (status = 401, description = "No valid API key", body = super::error::ErrorBody),
        (status = 403, description = "Role may not import usage", body = super::error::ErrorBody),
        (status = 409, description = "Idempotency-Key first used for a different request", body = super::error::ErrorBody),
        (status = 413, description = "Body over 8 MiB", body = super::error::ErrorBody),
        (status = 415, description = "Body is not text/csv", body = super::error::ErrorBody),
        (status = 422, description = "Lines that do not check against the catalog; nothing imported", body = super::error::ErrorBody),
    )
)]
pub async fn import(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    headers: HeaderMap,
    request: Request,
) -> Result<Response, ApiError> {
    // The role is checked before a byte of the body is read.
    authorize(&principal, Action::ImportUsage, None)?;
    let key = idempotency_key(&headers)?;
    let CsvBody(body) = CsvBody::from_request(request, &()).await?;
    let fingerprint = request_hash("POST", "/v1/usage", &body);
    once(
        &state.idempotency,
        &principal.key_id,
        key.as_deref(),
        fingerprint,
        StatusCode::OK,
        async {
            let lines = parse_usage_csv(&body)?;
            let summary = {
                let mut projections = state.projections.lock().await;
                import_usage(state.store.as_ref(), &mut projections, lines).await?
            };
            Ok(UsageImported {
                imported: summary.imported.len(),
                seqs: summary.imported.iter().map(|(_, seq)| *seq).collect(),
                skipped: summary.skipped,
            })
        },
    )
    .await
}
