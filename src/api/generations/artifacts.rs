//! `GET /v1/artifacts/{hash}`: the audio a job stored, by content hash.

use crate::api::auth::{authorize, Action, Principal};
use crate::api::error::ApiError;
use crate::api::AppState;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use inference::artifacts::ArtifactError;
use std::sync::Arc;

/// `sha256:<hex>` from `sha256:<hex>` or bare hex, 64 hex digits either case.
fn artifact_hash(text: &str) -> Result<String, ApiError> {
    let hex = text.strip_prefix("sha256:").unwrap_or(text);
    if hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(format!("sha256:{}", hex.to_ascii_lowercase()))
    } else {
        Err(ApiError::BadRequest(format!(
            "artifact {text:?} is not a content hash: expected sha256:<64 hex digits> or the 64 hex digits alone"
        )))
    }
}

/// A RIFF file of form type `WAVE` (the RIFF header, as Microsoft's
/// Multimedia Programming Interface and Data Specifications 1.0 define it).
fn is_wav(bytes: &[u8]) -> bool {
    bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WAVE"
}

/// An artifact's bytes by content hash (admin, generator and auditor keys):
/// stems, step outputs and derivatives. A published output's hash, or the
/// distributed file's, serves the file as distributed, with its Content
/// Credentials (C2PA) embedded.
/// The bytes are checked against their hash before they are sent.
#[utoipa::path(
    get,
    path = "/v1/artifacts/{hash}",
    tag = "generation",
    params(("hash" = String, Path, description = "`sha256:<hex>` or the hex alone")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The artifact", content(
            (Vec<u8> = "audio/wav"),
            (Vec<u8> = "application/octet-stream"),
        )),
        (status = 400, description = "Not a content hash", body = crate::api::error::ErrorBody),
        (status = 401, description = "No valid API key", body = crate::api::error::ErrorBody),
        (status = 403, description = "Role may not read artifacts", body = crate::api::error::ErrorBody),
        (status = 404, description = "No such artifact", body = crate::api::error::ErrorBody),
    )
)]
pub async fn artifact(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    authorize(&principal, Action::ReadGeneration, None)?;
    let Path(text) = path?;
    let hash = artifact_hash(&text)?;
    let artifacts = state.artifacts.clone();
    // A published output is served as distributed: with its Content
    // Credentials embedded, when they were issued.
    let loaded = tokio::task::spawn_blocking(move || match artifacts.load_distributed(&hash) {
        Ok(Some(distributed)) => Ok(distributed),
        Ok(None) => artifacts.load_bytes(&hash),
        Err(error) => Err(error),
    })
    .await
    .map_err(|e| ApiError::Internal(format!("artifact read failed: {e}")))?;
    let bytes = loaded.map_err(|error| match error {
        ArtifactError::NotFound(hash) => ApiError::NotFound(format!(
            "no artifact {hash}; hashes come from a job's steps and result"
        )),
        other => ApiError::Internal(other.to_string()),
    })?;
    let media_type = if is_wav(&bytes) {
        "audio/wav"
    } else {
        "application/octet-stream"
    };
    Ok(([(CONTENT_TYPE, media_type)], bytes).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_hashes_are_accepted_with_or_without_the_prefix() {
        let hex = "AB".repeat(32);
        let want = format!("sha256:{}", "ab".repeat(32));
        assert_eq!(artifact_hash(&hex).unwrap(), want);
        assert_eq!(artifact_hash(&format!("sha256:{hex}")).unwrap(), want);
        for bad in ["", "sha256:", "md5:00", &"g".repeat(64), &"a".repeat(63)] {
            assert!(
                matches!(artifact_hash(bad), Err(ApiError::BadRequest(_))),
                "{bad:?}"
            );
        }
    }
}
