//! `GET /v1/lineage/{derivative}` and `POST /v1/lineage` (an audio file):
//! where a derivative came from and who it paid, every event cited with its
//! inclusion proof (the `projections` crate's lineage answer). A label key
//! gets [`lineage_for_party`]'s answer: only derivatives that paid its party
//! exist for it (any other is 404, worded as for one never published), and
//! of those it sees the provenance and its own share, no other party's.
//! Uploads are streamed to a 0600 file in the data directory's private
//! `uploads/` folder, never held whole in memory, and decoded once, as a
//! stream, within the library's decoded-sample budget, a few at a time,
//! while their Content Credentials are checked. They are matched by valid
//! credentials, by file hash, by the hash of the decoded PCM (a re-wrapped
//! copy) or, only when these miss, by acoustic fingerprint (a re-encoded,
//! resampled or trimmed copy). The answer's `Server-Timing` header says how
//! long each phase took.

use super::auth::{authorize, Action, Principal, Scope};
use super::body::media_type;
use super::error::ApiError;
use super::server_timing::ServerTiming;
use super::AppState;
use crate::lineage_credentials;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::header::CONTENT_LENGTH;
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::StreamExt;
use inference::artifacts::ArtifactError;
use projections::lineage::{
    lineage, lineage_for_party, lineage_of_audio, AudioIdentity, LineageAnswer, LineageError,
    LineageQuery,
};
use projections::runner::ProjectionError;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;
use tokio::io::AsyncWriteExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
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
            // The store's errors have statuses of their own.
            LineageError::Projection(ProjectionError::Store(store))
            | LineageError::Store(store) => store.into(),
            other => ApiError::classified(other.is_client_error(), other),
        }
    }
}

/// The lineage of a derivative (admin, auditor and label keys): its
/// generation steps, the catalog versions it used, its usage and revenue
/// (a label key: its own share only), and the checkpoint every cited
/// event's inclusion proof verifies against.
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
        (status = 403, description = "Role may not read lineage", body = super::error::ErrorBody),
        (status = 404, description = "No such derivative (for a label key: none that paid its party)", body = super::error::ErrorBody),
    )
)]
pub async fn derivative(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    path: Result<UrlPath<String>, PathRejection>,
    query: Result<Query<LineageParams>, QueryRejection>,
) -> Result<Json<LineageAnswer>, ApiError> {
    let scope = authorize(&principal, Action::ReadLineage, None)?;
    let UrlPath(derivative) = path?;
    let Query(query) = query?;
    let id = Uuid::parse_str(&derivative).map_err(|e| {
        ApiError::BadRequest(format!("derivative {derivative:?} is not a UUID: {e}"))
    })?;
    answer(&state, &scope, &LineageQuery::Derivative(id), query.as_of).await
}

/// Answers `query` as `scope` may see it: 404 for no lineage, and for a
/// label key 404 alike for a derivative that never paid its party.
async fn answer(
    state: &AppState,
    scope: &Scope,
    query: &LineageQuery,
    as_of: Option<u64>,
) -> Result<Json<LineageAnswer>, ApiError> {
    found_or_404(look_up(state, scope, query, as_of).await?)
}

fn found_or_404(answer: LineageAnswer) -> Result<Json<LineageAnswer>, ApiError> {
    match answer {
        LineageAnswer::NotFound { message, .. } => Err(ApiError::NotFound(message)),
        found => Ok(Json(found)),
    }
}

async fn look_up(
    state: &AppState,
    scope: &Scope,
    query: &LineageQuery,
    as_of: Option<u64>,
) -> Result<LineageAnswer, ApiError> {
    let store = state.store.as_ref();
    let mut projections = state.projections.lock().await;
    let answer = match scope {
        Scope::All => lineage(store, &mut projections, query, as_of).await?,
        Scope::Party(party) => {
            lineage_for_party(store, &mut projections, query, as_of, party).await?
        }
    };
    Ok(answer)
}

/// The largest upload `POST /v1/lineage` takes: room for a 20-minute MP3
/// or Ogg Vorbis file at 320 kbit/s (48 MB), a CD-quality FLAC of about 15
/// minutes, or 12 minutes of the platform's own 32-bit float stereo WAV at
/// 44.1 kHz. Uploads are staged on disk, never held in memory.
pub const UPLOAD_BYTES_MAX: u64 = 128 << 20;

/// Uploads decoded at a time. A decode keeps a core busy for up to seconds
/// (it stops at [`inference::artifacts::DECODED_SAMPLES_MAX`]); an upload
/// that finds every slot taken is answered 429 and its file removed.
pub const DECODES_CONCURRENT_MAX: usize = 2;

/// The data directory's folder for uploads being matched.
const UPLOAD_DIR: &str = "uploads";

/// Where uploads are staged, and the decode slots they share.
pub struct Uploads {
    dir: PathBuf,
    decodes: Arc<Semaphore>,
}

impl Uploads {
    /// Opens `<data dir>/uploads`, readable by the server's user only
    /// (0700), removing the files an earlier run was killed before removing.
    pub fn open(data_dir: &Path) -> std::io::Result<Uploads> {
        let dir = data_dir.join(UPLOAD_DIR);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            if entry.file_type()?.is_file() {
                std::fs::remove_file(entry.path())?;
            }
        }
        Ok(Uploads {
            dir,
            decodes: Arc::new(Semaphore::new(DECODES_CONCURRENT_MAX)),
        })
    }

    /// Streams `body` to a new 0600 file, at most [`UPLOAD_BYTES_MAX`]
    /// bytes; returns the file and the `sha256:` of its bytes.
    async fn stage(&self, body: Body) -> Result<(UploadFile, String), ApiError> {
        let file = UploadFile(self.dir.join(format!("{}.part", Uuid::new_v4())));
        let staging =
            |e: std::io::Error| ApiError::Internal(format!("cannot stage the upload: {e}"));
        let mut writer = tokio::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&file.0)
            .await
            .map_err(staging)?;
        let mut hasher = Sha256::new();
        let mut size_bytes = 0u64;
        let mut body = body.into_data_stream();
        while let Some(chunk) = body.next().await {
            let chunk =
                chunk.map_err(|e| ApiError::BadRequest(format!("the upload broke off: {e}")))?;
            size_bytes += chunk.len() as u64;
            if size_bytes > UPLOAD_BYTES_MAX {
                return Err(upload_too_large());
            }
            hasher.update(&chunk);
            writer.write_all(&chunk).await.map_err(staging)?;
        }
        writer.flush().await.map_err(staging)?;
        if size_bytes == 0 {
            return Err(ApiError::BadRequest(
                "the upload is empty: send the audio file as the body".into(),
            ));
        }
        Ok((file, format!("sha256:{}", hex::encode(hasher.finalize()))))
    }

    /// A decode slot, or 429 when all are taken.
    fn decode_slot(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        self.decodes
            .clone()
            .try_acquire_owned()
            .map_err(|_| ApiError::TooManyRequests {
                message: format!(
                    "{DECODES_CONCURRENT_MAX} uploads are being decoded; retry in a moment"
                ),
                retry_after_s: 1,
            })
    }
}

fn upload_too_large() -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "an audio upload may be at most {UPLOAD_BYTES_MAX} bytes (128 MiB); trace a larger file with `ledgerline lineage FILE`"
    ))
}

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

/// An upload's staged file, removed when the request ends however it ends
/// (answered, refused, failed or abandoned by the client).
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
        (status = 403, description = "Role may not read lineage", body = super::error::ErrorBody),
        (status = 404, description = "No derivative has this audio (for a label key: none that paid its party)", body = super::error::ErrorBody),
        (status = 413, description = "Upload over 128 MiB, or audio that decodes to more samples than the decoding budget", body = super::error::ErrorBody),
        (status = 415, description = "Not sent as an audio media type", body = super::error::ErrorBody),
        (status = 429, description = "Every decode slot is taken; retry after Retry-After seconds", body = super::error::ErrorBody),
    )
)]
pub async fn upload(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    query: Result<Query<LineageParams>, QueryRejection>,
    request: Request,
) -> Response {
    let mut timing = ServerTiming::default();
    let mut response = trace_upload(&state, principal, query, request, &mut timing)
        .await
        .into_response();
    timing.attach(&mut response);
    response
}

/// [`upload`]'s work, recording how long each phase took in `timing`:
/// `upload` (the body received, hashed and staged), `credentials`,
/// `decode` (PCM hash and fingerprint, when the answer waited for them)
/// and `lookup`.
async fn trace_upload(
    state: &Arc<AppState>,
    principal: Principal,
    query: Result<Query<LineageParams>, QueryRejection>,
    request: Request,
    timing: &mut ServerTiming,
) -> Result<Json<serde_json::Value>, ApiError> {
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
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if declared.is_some_and(|length| length > UPLOAD_BYTES_MAX) {
        return Err(upload_too_large());
    }
    let started = Instant::now();
    let (file, file_hash) = state.uploads.stage(request.into_body()).await?;
    timing.since("upload", started);
    let file = Arc::new(file);

    // One decode yields both the PCM hash and the fingerprint, on one core
    // while the credentials are checked on the other. The decode task owns
    // its slot and a handle on the staged file, so both stay taken until
    // it ends, even when the credentials answer first or the client goes.
    let slot = state.uploads.decode_slot()?;
    let decoding = {
        let file = Arc::clone(&file);
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let decoded = inference::fingerprint::pcm_hash_and_fingerprint_of_file(&file.0);
            drop(slot);
            (decoded, started.elapsed())
        })
    };
    // Credentials first: valid ones answer by the derivative they name;
    // failing ones are reported and the file is traced as if it had none.
    let started = Instant::now();
    let finding = {
        let (file, data_dir, verifier) = (
            Arc::clone(&file),
            state.data_dir.clone(),
            state.store.verifier().clone(),
        );
        tokio::task::spawn_blocking(move || {
            lineage_credentials::check_file(&file.0, &data_dir, &verifier)
        })
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?
    };
    timing.since("credentials", started);
    let as_of = query.as_of;
    let scope = &scope;
    let look_up = |audio: LineageQuery| async move { look_up(state, scope, &audio, as_of).await };
    if let Some(derivative) = finding.derivative() {
        let started = Instant::now();
        let mut answer = look_up(LineageQuery::Derivative(derivative)).await?;
        timing.since("lookup", started);
        if lineage_credentials::mark_found_by_credentials(&mut answer) {
            let Json(found) = found_or_404(answer)?;
            return Ok(Json(lineage_credentials::annotate(&found, &finding)));
        }
    }

    let (decoded, decode_took) = decoding
        .await
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    timing.record("decode", decode_took);
    let (pcm_hash, fingerprint) = match decoded {
        Ok(decoded) => (
            Some(decoded.pcm_hash),
            decoded
                .fingerprint
                .map_err(|e| ApiError::BadRequest(e.to_string())),
        ),
        Err(error @ ArtifactError::TooManySamples { .. }) => {
            return Err(ApiError::PayloadTooLarge(error.to_string()))
        }
        // A file that does not decode is matched by its bytes alone (and
        // has no fingerprint to be asked for).
        Err(error) => (None, Err(ApiError::BadRequest(error.to_string()))),
    };
    let identity = AudioIdentity {
        file_hash,
        pcm_hash,
        fingerprint: None,
    };
    let started = Instant::now();
    let found = lineage_of_audio(identity, async { fingerprint }, look_up).await?;
    timing.since("lookup", started);
    drop(file);
    let Json(found) = found_or_404(found)?;
    Ok(Json(lineage_credentials::annotate(&found, &finding)))
}
