//! `Idempotency-Key` for writes whose result the ledger cannot replay by
//! itself (catalog and usage imports, generation requests): the first
//! successful response is kept in the API's records ([`super::records`]),
//! and a retry with the same key and the same request gets it back without
//! running again, from whichever node of a shared log it reaches. (Appends need no record: their event
//! ids are derived from the key, so the ledger's own idempotency answers.)

use super::error::ApiError;
use super::records::Records;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rusqlite::{params, OptionalExtension};
use sha2::{Digest, Sha256};
use std::sync::Arc;
use time::OffsetDateTime;

/// The longest `Idempotency-Key` accepted.
const KEY_BYTES_MAX: usize = 200;

/// The `Idempotency-Key` header, if present: 1 to 200 visible ASCII characters.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= KEY_BYTES_MAX)
        .filter(|k| k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| {
            ApiError::BadRequest(format!(
                "Idempotency-Key must be 1 to {KEY_BYTES_MAX} visible ASCII characters"
            ))
        })?;
    Ok(Some(key.to_string()))
}

/// A response kept for replay.
pub struct KeptResponse {
    pub status: u16,
    pub body: String,
}

impl IntoResponse for KeptResponse {
    fn into_response(self) -> Response {
        let status = StatusCode::from_u16(self.status).unwrap_or(StatusCode::OK);
        (status, [(CONTENT_TYPE, "application/json")], self.body).into_response()
    }
}

/// Kept first responses, per API key and idempotency key, in the API's
/// records (shared by every node of a PostgreSQL log).
pub struct IdempotencyStore {
    records: Arc<Records>,
}

fn internal(error: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(format!("the idempotency store failed: {error}"))
}

/// What identifies "the same request": method, path and body.
pub fn request_hash(method: &str, path: &str, body: &[u8]) -> [u8; 32] {
    let mut hasher = Sha256::new();
    for part in [method.as_bytes(), b"\n", path.as_bytes(), b"\n", body] {
        hasher.update(part);
    }
    hasher.finalize().into()
}

impl IdempotencyStore {
    pub fn new(records: Arc<Records>) -> IdempotencyStore {
        IdempotencyStore { records }
    }

    /// The kept response for this key, if any; 409 if the key was first used
    /// for a different request.
    pub async fn find(
        &self,
        api_key_id: &str,
        key: &str,
        request: &[u8; 32],
    ) -> Result<Option<KeptResponse>, ApiError> {
        let row: Option<(Vec<u8>, i32, String)> = match self.records.as_ref() {
            Records::Sqlite(db) => {
                let (api_key_id, key) = (api_key_id.to_string(), key.to_string());
                db.run(move |conn| {
                    conn.query_row(
                        "SELECT request_sha256, status, body FROM api_idempotency
                         WHERE api_key_id = ?1 AND idempotency_key = ?2",
                        params![api_key_id, key],
                        |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
                    )
                    .optional()
                })
                .await
                .map_err(internal)?
            }
            Records::Postgres(db) => db
                .query(
                    "SELECT request_sha256, status, body FROM api_idempotency
                     WHERE api_key_id = $1 AND idempotency_key = $2",
                    &[&api_key_id, &key],
                )
                .await
                .map_err(internal)?
                .first()
                .map(|row| (row.get(0), row.get(1), row.get(2))),
        };
        match row {
            None => Ok(None),
            Some((hash, status, body)) if hash == request => Ok(Some(KeptResponse {
                status: u16::try_from(status).map_err(internal)?,
                body,
            })),
            Some(_) => Err(ApiError::Reused(format!(
                "Idempotency-Key {key:?} was first used for a different request; use a new key for a new request"
            ))),
        }
    }

    /// Keeps a first response; if a concurrent request with the same key
    /// kept one first (on any node), returns that one instead.
    pub async fn keep(
        &self,
        api_key_id: &str,
        key: &str,
        request: &[u8; 32],
        response: KeptResponse,
    ) -> Result<KeptResponse, ApiError> {
        let now = OffsetDateTime::now_utc().unix_timestamp();
        let status = i32::from(response.status);
        match self.records.as_ref() {
            Records::Sqlite(db) => {
                let (api_key_id, key, request, body) = (
                    api_key_id.to_string(),
                    key.to_string(),
                    request.to_vec(),
                    response.body.clone(),
                );
                db.run(move |conn| {
                    conn.execute(
                        "INSERT INTO api_idempotency
                           (api_key_id, idempotency_key, request_sha256, status, body, created_unix)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                         ON CONFLICT DO NOTHING",
                        params![api_key_id, key, request, status, body, now],
                    )
                })
                .await
                .map_err(internal)?;
            }
            Records::Postgres(db) => {
                db.execute(
                    "INSERT INTO api_idempotency
                       (api_key_id, idempotency_key, request_sha256, status, body, created_unix)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT DO NOTHING",
                    &[
                        &api_key_id,
                        &key,
                        &request.to_vec(),
                        &status,
                        &response.body,
                        &now,
                    ],
                )
                .await
                .map_err(internal)?;
            }
        }
        Ok(self
            .find(api_key_id, key, request)
            .await?
            .unwrap_or(response))
    }
}

/// Before running a write: the kept response of an earlier request with the
/// same key, if there is one.
async fn replay(
    store: &IdempotencyStore,
    api_key_id: &str,
    key: Option<&str>,
    request: [u8; 32],
) -> Result<Option<KeptResponse>, ApiError> {
    let Some(key) = key else { return Ok(None) };
    store.find(api_key_id, key, &request).await
}

/// After a successful write: keeps its response under the key (if any) and
/// answers with the response kept first.
async fn respond(
    store: &IdempotencyStore,
    api_key_id: &str,
    key: Option<&str>,
    request: [u8; 32],
    status: StatusCode,
    body: &impl serde::Serialize,
) -> Result<Response, ApiError> {
    let response = KeptResponse {
        status: status.as_u16(),
        body: serde_json::to_string(body).map_err(internal)?,
    };
    let Some(key) = key else {
        return Ok(response.into_response());
    };
    let kept = store.keep(api_key_id, key, &request, response).await?;
    Ok(kept.into_response())
}

/// Runs `work` once per `Idempotency-Key`: a retry with the same key and the
/// same request gets the first response back without running `work` again.
/// Without a key, `work` simply runs. A success answers `status` with the
/// body `work` made; an error is not kept, so a retry runs `work` again.
pub async fn once<T: serde::Serialize>(
    store: &IdempotencyStore,
    api_key_id: &str,
    key: Option<&str>,
    request: [u8; 32],
    status: StatusCode,
    work: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<Response, ApiError> {
    if let Some(kept) = replay(store, api_key_id, key, request).await? {
        return Ok(kept.into_response());
    }
    let body = work.await?;
    respond(store, api_key_id, key, request, status, &body).await
}
