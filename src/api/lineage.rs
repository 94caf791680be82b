//! `GET /v1/lineage/{derivative}` and `POST /v1/lineage` (an audio file):
//! where a derivative came from and who it paid, every event cited with its
//! inclusion proof (the `projections` crate's lineage answer). A label key
//! sees only derivatives that paid its party, and of their revenue only its
//! own share. Uploads are streamed to a temporary file, never held whole in
//! memory, and matched by file hash, by the hash of the decoded PCM (a
//! re-wrapped copy) or, only when both miss, by acoustic fingerprint (a
//! re-encoded, resampled or trimmed copy).

use super::auth::{authorize, Action, Principal, Scope};
use super::body::media_type;
use super::error::ApiError;
use super::AppState;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::Json;
use futures::StreamExt;
use projections::lineage::{lineage, AudioIdentity, LineageAnswer, LineageError, LineageQuery};
use projections::runner::ProjectionError;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::path::PathBuf;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
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
    answer(&state, &scope, &LineageQuery::Derivative(id), query.as_of).await
}

/// Answers `query`, keeping for a label key only its own share of a
/// derivative that paid it (403 for one that did not).
async fn answer(
    state: &AppState,
    scope: &Scope,
    query: &LineageQuery,
    as_of: Option<u64>,
) -> Result<Json<LineageAnswer>, ApiError> {
    let answer = look_up(state, query, as_of).await?;
    scoped(scope, answer)
}

async fn look_up(
    state: &AppState,
    query: &LineageQuery,
    as_of: Option<u64>,
) -> Result<LineageAnswer, ApiError> {
    let mut projections = state.projections.lock().await;
    Ok(lineage(state.store.as_ref(), &mut projections, query, as_of).await?)
}

/// The answer a key may see: 404 for no lineage, and for a label key only
/// its own share of a derivative that paid it (403 for one that did not).
fn scoped(scope: &Scope, answer: LineageAnswer) -> Result<Json<LineageAnswer>, ApiError> {
    let mut found = match answer {
        LineageAnswer::Found(found) => found,
        LineageAnswer::NotFound { message, .. } => return Err(ApiError::NotFound(message)),
    };
    if let Scope::Party(party) = scope {
        for revenue in &mut found.revenue {
            revenue.parties.retain(|p| &p.party == party);
        }
        found.revenue.retain(|revenue| !revenue.parties.is_empty());
        if found.revenue.is_empty() {
            return Err(ApiError::Forbidden(format!(
                "derivative {} has paid nothing to party {party:?}; a label key reads only the lineage of derivatives that paid it",
                found.derivative.derivative
            )));
        }
    }
    Ok(Json(LineageAnswer::Found(found)))
}

/// The largest upload `POST /v1/lineage` takes: a 20-minute track (the
/// longest input generation accepts) as 32-bit float stereo WAV at 192 kHz.
pub const UPLOAD_BYTES_MAX: u64 = 20 * 60 * 192_000 * 2 * 4 + (1 << 20);

/// Media types an audio upload may be sent as.
const UPLOAD_MEDIA_TYPES: &[&str] = &[
    "audio/wav",
    "audio/x-wav",
    "audio/wave",
    "audio/vnd.wave",
    "audio/flac",
    "audio/x-flac",
    "audio/mpeg",
    "audio/ogg",
    "application/octet-stream",
];

/// An upload's temporary file, removed when the request ends however it ends.
struct UploadFile(PathBuf);

impl Drop for UploadFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// The lineage of an audio file (admin, auditor and label keys), sent as the
/// request body: matched by the SHA-256 of its bytes, by the hash of its
/// decoded PCM when it is a re-wrapped copy of a derivative, or by its
/// acoustic fingerprint when it was re-encoded, resampled or trimmed.
#[utoipa::path(
    post,
    path = "/v1/lineage",
    tag = "money",
    params(LineageParams),
    request_body(content = Vec<u8>, content_type = "application/octet-stream", description = "The audio file's bytes (WAV, FLAC, MP3 or Ogg Vorbis); also accepted as audio/wav, audio/x-wav, audio/wave, audio/vnd.wave, audio/flac, audio/x-flac, audio/mpeg or audio/ogg"),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The lineage, with proofs", body = Object),
        (status = 400, description = "An empty or broken-off upload, or as_of beyond the log", body = super::error::ErrorBody),
        (status = 401, description = "No valid API key", body = super::error::ErrorBody),
        (status = 403, description = "Role may not read lineage, or the derivative did not pay this label", body = super::error::ErrorBody),
        (status = 404, description = "No derivative has this audio", body = super::error::ErrorBody),
        (status = 413, description = "Upload over the size limit", body = super::error::ErrorBody),
        (status = 415, description = "Not sent as an audio media type", body = super::error::ErrorBody),
    )
)]
pub async fn upload(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    query: Result<Query<LineageParams>, QueryRejection>,
    request: Request,
) -> Result<Json<LineageAnswer>, ApiError> {
    // The role, the media type and the declared size are checked before a
    // byte of the body is read.
    let scope = authorize(&principal, Action::ReadLineage, None)?;
    let Query(query) = query?;
    let media_type = media_type(request.headers());
    if !media_type
        .as_deref()
        .is_some_and(|t| UPLOAD_MEDIA_TYPES.contains(&t))
    {
        return Err(ApiError::UnsupportedMediaType(format!(
            "send the audio file as one of {}, not {}",
            UPLOAD_MEDIA_TYPES.join(", "),
            media_type.map_or("a body without Content-Type".to_string(), |t| format!(
                "{t:?}"
            ))
        )));
    }
    let too_large = || {
        ApiError::PayloadTooLarge(format!(
            "an audio upload may be at most {UPLOAD_BYTES_MAX} bytes (20 minutes of audio)"
        ))
    };
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > UPLOAD_BYTES_MAX) {
        return Err(too_large());
    }

    let file =
        UploadFile(std::env::temp_dir().join(format!("ledgerline-upload-{}.part", Uuid::new_v4())));
    let mut writer = tokio::fs::File::create(&file.0)
        .await
        .map_err(|e| ApiError::Internal(format!("cannot stage the upload: {e}")))?;
    let mut hasher = Sha256::new();
    let mut size_bytes = 0u64;
    let mut body = request.into_body().into_data_stream();
    while let Some(chunk) = body.next().await {
        let chunk =
            chunk.map_err(|e| ApiError::BadRequest(format!("the upload broke off: {e}")))?;
        size_bytes += chunk.len() as u64;
        if size_bytes > UPLOAD_BYTES_MAX {
            return Err(too_large());
        }
        hasher.update(&chunk);
        writer
            .write_all(&chunk)
            .await
            .map_err(|e| ApiError::Internal(format!("cannot stage the upload: {e}")))?;
    }
    writer
        .flush()
        .await
        .map_err(|e| ApiError::Internal(format!("cannot stage the upload: {e}")))?;
    drop(writer);
    if size_bytes == 0 {
        return Err(ApiError::BadRequest(
            "the upload is empty: send the audio file as the body".into(),
        ));
    }
    let file_hash = format!("sha256:{}", hex::encode(hasher.finalize()));
    // A file that does not decode is matched by its bytes alone.
    let path = file.0.clone();
    let decoded = tokio::task::spawn_blocking(move || {
        let audio = inference::artifacts::decode_file(&path).ok()?;
        let pcm_hash = inference::artifacts::pcm_hash(&audio);
        Some((audio, pcm_hash))
    })
    .await
    .map_err(|e| ApiError::Internal(e.to_string()))?;
    let (audio, pcm_hash) = decoded.unzip();
    let mut identity = AudioIdentity {
        file_hash,
        pcm_hash,
        fingerprint: None,
    };
    let mut found = look_up(&state, &LineageQuery::Audio(identity.clone()), query.as_of).await?;
    if let (LineageAnswer::NotFound { .. }, Some(audio)) = (&found, audio) {
        // Neither hash matched: fingerprint the audio (about 0.15 s of CPU
        // per 3 minutes, so off the async workers and without holding the
        // projections) and look for a re-encoded, resampled or trimmed copy.
        let items =
            tokio::task::spawn_blocking(move || inference::fingerprint::fingerprint(&audio))
                .await
                .map_err(|e| ApiError::Internal(e.to_string()))?
                .map_err(|e| ApiError::BadRequest(e.to_string()))?;
        identity.fingerprint = Some(items);
        found = look_up(&state, &LineageQuery::Audio(identity), query.as_of).await?;
    }
    scoped(&scope, found)
}
