//! `POST /v1/catalog`: the catalog document `ledgerline catalog import`
//! reads. Over HTTP a stem is named by the content hash of its audio
//! (`sha256:<hex>`), since the server cannot read the caller's files.

use super::auth::{authorize, Action, Principal};
use super::body::JsonText;
use super::error::ApiError;
use super::idempotency::{idempotency_key, once, request_hash};
use super::AppState;
use axum::extract::{FromRequest, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use projections::catalog::{CatalogDocument, CatalogError};
use schemas::ContentHash;
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;

/// What an import did: the same object `ledgerline catalog import` prints.
#[derive(Serialize, ToSchema)]
pub struct CatalogImported {
    /// Entities new to the log.
    registered: usize,
    /// Entities whose content changed.
    amended: usize,
    /// Entities already in the log as given.
    unchanged: usize,
    /// Seqs of the appended events, in append order.
    seqs: Vec<u64>,
}

impl From<CatalogError> for ApiError {
    fn from(error: CatalogError) -> Self {
        match error {
            CatalogError::Syntax(_) => ApiError::BadRequest(error.to_string()),
            CatalogError::Invalid(_) => ApiError::Unprocessable(error.to_string()),
            CatalogError::Store(store) => store.into(),
            CatalogError::Corrupt { .. } => ApiError::Internal(error.to_string()),
        }
    }
}

/// Imports a catalog document (admin and ingest keys): parties, works,
/// recordings, voice models and the policy, all or nothing. Entities already
/// in the log unchanged are not appended again, so a retry appends nothing.
#[utoipa::path(
    post,
    path = "/v1/catalog",
    operation_id = "import_catalog",
    tag = "money",
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key and body returns the first response")),
    request_body(content = Object, content_type = "application/json", description = "The catalog document; stems as `sha256:<hex>` content hashes"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Imported", body = CatalogImported),
        (status = 400, description = "Not a catalog document", body = super::error::ErrorBody),
        (status = 401, description = "No valid API key", body = super::error::ErrorBody),
        (status = 403, description = "Role may not import the catalog", body = super::error::ErrorBody),
        (status = 409, description = "Idempotency-Key first used for a different request", body = super::error::ErrorBody),
        (status = 413, description = "Body over 8 MiB", body = super::error::ErrorBody),
        (status = 415, description = "Body is not application/json", body = super::error::ErrorBody),
        (status = 422, description = "Invalid fields (each named); nothing imported", body = super::error::ErrorBody),
    )
)]
pub async fn import(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    headers: HeaderMap,
    request: Request,
) -> Result<Response, ApiError> {
    // The role is checked before a byte of the body is read.
    authorize(&principal, Action::ImportCatalog, None)?;
    let key = idempotency_key(&headers)?;
    let JsonText(text) = JsonText::from_request(request, &()).await?;
    let fingerprint = request_hash("POST", "/v1/catalog", text.as_bytes());
    once(
        &state.idempotency,
        &principal.key_id,
        key.as_deref(),
        fingerprint,
        StatusCode::OK,
        async {
            let document = CatalogDocument::from_json(&text)?;
            let mut resolve = |stem: &str| {
                ContentHash::parse(stem)
                    .map_err(|e| format!("{e}; over HTTP a stem is the content hash of its audio"))
            };
            let catalog = document.validate(&mut resolve)?;
            let summary = catalog.import(state.store.as_ref()).await?;
            Ok(CatalogImported {
                registered: summary.registered,
                amended: summary.amended,
                unchanged: summary.unchanged,
                seqs: summary.seqs,
            })
        },
    )
    .await
}
