//! Generation over HTTP: `POST /v1/generations` queues a request,
//! `GET /v1/generations/{id}` reports on it, `GET /v1/generations/{id}/events`
//! follows its log stream as Server-Sent Events, and `GET /v1/artifacts/{hash}`
//! serves the audio it made.
//!
//! Jobs run one at a time on a dedicated worker thread with its own
//! current-thread tokio runtime: the pipeline computes on the task that calls
//! it (see `inference::pipeline`), so running it on the server's runtime would
//! stall requests for the length of a job. Jobs wait on a bounded queue; a
//! full queue answers 429. What the log cannot say yet (a job is queued or
//! running) or will never say (a job failed before writing its last event) is
//! kept in a bounded in-memory job table; everything else is read from the
//! job's stream `generation-<job id>`.
//!
//! On shutdown, queued jobs are abandoned at once and a running job gets
//! `queue::RUNNING_JOB_WAIT` (30 s) to finish; either way an abandoned job's stream ends
//! with `generation.abandoned`.
//!
//! Here: submitting and reporting on jobs; the queue and its worker are in
//! `queue`, the event stream in [`sse`], the audio in [`artifacts`].

pub mod artifacts;
mod queue;
pub mod sse;

pub use queue::{Generations, QUEUE_JOBS_DEFAULT, QUEUE_JOBS_MAX};

use super::auth::{authorize, Action, Principal};
use super::body::JsonText;
use super::error::ApiError;
use super::idempotency::{idempotency_key, once, request_hash};
use super::AppState;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::Json;
use inference::pipeline::{GenerationRequest, RequestError};
use ledger::StoredEvent;
use queue::JobState;
use schemas::generation::{
    generation_stream, AttributionComponent, CredentialsIssued, DerivativePublished,
    GenerationAbandoned, GenerationRejected, GenerationStep, CREDENTIALS_ISSUED,
    DERIVATIVE_PUBLISHED, GENERATION_ABANDONED, GENERATION_REJECTED, GENERATION_STEP,
};
use serde::Serialize;
use std::sync::Arc;
use utoipa::ToSchema;
use uuid::Uuid;

/// Events of one job read for its status: the pipeline writes at most a
/// requested event, a handful of steps and a last event.
const JOB_EVENTS_MAX: usize = projections::lineage::GENERATION_STEPS_MAX;

/// Where to follow a queued job.
#[derive(Serialize, ToSchema)]
pub struct GenerationAccepted {
    job: Uuid,
    /// Path of the job's status.
    status: String,
    /// Path of the job's Server-Sent Events.
    events: String,
}

impl From<RequestError> for ApiError {
    fn from(error: RequestError) -> Self {
        match error.code() {
            Some(code) => ApiError::BadRequestCoded {
                code,
                message: error.to_string(),
            },
            None => ApiError::BadRequest(error.to_string()),
        }
    }
}

/// Queues a generation request (admin and generator keys): the document
/// `ledgerline generate --request` reads, validated before it is queued.
/// Licensing is checked when the job runs: a refused job ends `rejected`.
#[utoipa::path(
    post,
    path = "/v1/generations",
    tag = "generation",
    params(("Idempotency-Key" = Option<String>, Header, description = "A retry with the same key and body returns the first response and queues nothing")),
    request_body(content = Object, content_type = "application/json", description = "The generation request (schemas/json/generation-request.schema.json)"),
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Queued", body = GenerationAccepted),
        (status = 400, description = "Not a valid request; the message names the field", body = super::error::ErrorBody),
        (status = 401, description = "No valid API key", body = super::error::ErrorBody),
        (status = 403, description = "Role may not generate", body = super::error::ErrorBody),
        (status = 409, description = "Idempotency-Key first used for a different request", body = super::error::ErrorBody),
        (status = 413, description = "Body over 8 MiB", body = super::error::ErrorBody),
        (status = 415, description = "Body is not application/json", body = super::error::ErrorBody),
        (status = 429, description = "The queue is full; see Retry-After", body = super::error::ErrorBody),
        (status = 503, description = "The server is shutting down", body = super::error::ErrorBody),
    )
)]
pub async fn submit(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    headers: HeaderMap,
    request: Request,
) -> Result<Response, ApiError> {
    authorize(&principal, Action::Generate, None)?;
    let key = idempotency_key(&headers)?;
    let JsonText(text) = JsonText::from_request(request, &()).await?;
    let fingerprint = request_hash("POST", "/v1/generations", text.as_bytes());
    once(
        &state.idempotency,
        &principal.key_id,
        key.as_deref(),
        fingerprint,
        StatusCode::ACCEPTED,
        async {
            let request = GenerationRequest::from_json(&text).and_then(|r| r.validate())?;
            let job = state.generations.submit(request)?;
            Ok(GenerationAccepted {
                job,
                status: format!("/v1/generations/{job}"),
                events: format!("/v1/generations/{job}/events"),
            })
        },
    )
    .await
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum GenerationState {
    /// Waiting for the worker.
    Queued,
    /// Running; `steps` grows as it goes.
    Running,
    /// Done: `result` names the derivative.
    Published,
    /// Refused for licensing (`generation.rejected`); `error` says why.
    Rejected,
    /// Stopped by an error without a last event; `error` says what.
    Failed,
    /// Stopped by a shutdown (`generation.abandoned`); `error` says why.
    Abandoned,
}

/// One recorded step.
#[derive(Serialize, ToSchema)]
pub struct StepSummary {
    /// The step event's seq in the log.
    seq: u64,
    /// `load-stems`, `mix`, `time-stretch`, `pitch-shift`, `transcribe` or
    /// `voice-transfer`.
    op: String,
    duration_ms: u64,
    /// `gpu` or `cpu`.
    backend: String,
}

/// The published derivative.
#[derive(Serialize, ToSchema)]
pub struct GenerationResult {
    derivative: Uuid,
    /// `sha256:<hex>` of the output file: `GET /v1/artifacts/{hash}` serves
    /// it as distributed, with its Content Credentials.
    output: String,
    /// `sha256:<hex>` of the output as distributed, with its C2PA manifest
    /// embedded (`generation.credentials-issued`); absent until issued.
    file: Option<String>,
    /// Components with weights in basis points summing to 10000.
    #[schema(value_type = Vec<Object>)]
    attribution: Vec<AttributionComponent>,
}

/// A job's status, from its log stream and the job table.
#[derive(Serialize, ToSchema)]
pub struct GenerationStatus {
    job: Uuid,
    state: GenerationState,
    steps: Vec<StepSummary>,
    result: Option<GenerationResult>,
    /// Why a job was rejected, failed or abandoned.
    error: Option<String>,
    /// For a rejected job: the stable code of the licence term or consent
    /// broken (`tempo_out_of_bounds`, `consent_withdrawn`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
    /// For a rejected job: the requested value that broke the term.
    #[serde(skip_serializing_if = "Option::is_none")]
    value: Option<String>,
}

pub(super) fn job_id(path: Result<Path<String>, PathRejection>) -> Result<Uuid, ApiError> {
    let Path(text) = path?;
    Uuid::parse_str(&text).map_err(|_| {
        ApiError::BadRequest(format!(
            "job id {text:?} is not a UUID; use the `job` that POST /v1/generations returned"
        ))
    })
}

fn payload<T: serde::de::DeserializeOwned>(event: &StoredEvent) -> Result<T, ApiError> {
    let envelope = event
        .envelope()
        .map_err(|e| ApiError::Internal(format!("event seq {}: {e}", event.seq)))?;
    serde_json::from_value(envelope.data).map_err(|e| {
        ApiError::Internal(format!(
            "event seq {} ({}) does not hold its schema: {e}",
            event.seq, event.event_type
        ))
    })
}

/// The job's status. The table is read before the log: a job the table saw
/// finish has all its events in the log by then.
async fn status_of(state: &AppState, job: Uuid) -> Result<Option<GenerationStatus>, ApiError> {
    let remembered = state.generations.state(job);
    let events = state
        .store
        .read_stream(&generation_stream(job), 0, JOB_EVENTS_MAX)
        .await?;
    if remembered.is_none() && events.is_empty() {
        return Ok(None);
    }
    let mut steps = Vec::new();
    let mut last: Option<(GenerationState, Option<String>)> = None;
    let mut refusal: Option<(String, Option<String>)> = None;
    let mut result = None;
    for event in &events {
        match event.event_type.as_str() {
            GENERATION_STEP => {
                let step: GenerationStep = payload(event)?;
                steps.push(StepSummary {
                    seq: event.seq,
                    op: step.op.as_str().to_string(),
                    duration_ms: step.duration_ms,
                    backend: match step.backend {
                        schemas::generation::ComputeBackend::Gpu => "gpu",
                        schemas::generation::ComputeBackend::Cpu => "cpu",
                    }
                    .to_string(),
                });
            }
            DERIVATIVE_PUBLISHED if last.is_none() => {
                let published: DerivativePublished = payload(event)?;
                result = Some(GenerationResult {
                    derivative: published.derivative,
                    output: published.output.as_str().to_string(),
                    file: None,
                    attribution: published.attribution,
                });
            }
            // The job's last event: the output is distributable now.
            CREDENTIALS_ISSUED if last.is_none() => {
                let issued: CredentialsIssued = payload(event)?;
                if let Some(result) = result.as_mut() {
                    result.file = Some(issued.file.as_str().to_string());
                }
                last = Some((GenerationState::Published, None));
            }
            GENERATION_REJECTED if last.is_none() => {
                let rejected: GenerationRejected = payload(event)?;
                last = Some((GenerationState::Rejected, Some(rejected.message)));
                refusal = Some((rejected.reason.code().to_string(), rejected.value));
            }
            GENERATION_ABANDONED if last.is_none() => {
                let abandoned: GenerationAbandoned = payload(event)?;
                last = Some((GenerationState::Abandoned, Some(abandoned.reason)));
            }
            _ => {}
        }
    }
    // Published but not yet credentialed: still running, unless the job
    // ended (failed while credentialing, or a log written before
    // credentials existed).
    if last.is_none() && result.is_some() {
        match &remembered {
            Some(JobState::Queued | JobState::Running) => {}
            Some(JobState::Failed(message)) => {
                last = Some((GenerationState::Failed, Some(message.clone())))
            }
            _ => last = Some((GenerationState::Published, None)),
        }
    }
    let (state, error) = match (last, remembered) {
        (Some(last), _) => last,
        (None, Some(JobState::Queued)) => (GenerationState::Queued, None),
        (None, Some(JobState::Running)) => (GenerationState::Running, None),
        (None, Some(JobState::Failed(message))) => (GenerationState::Failed, Some(message)),
        (None, Some(JobState::Abandoned(reason))) => (GenerationState::Abandoned, Some(reason)),
        (None, Some(JobState::Finished)) => {
            return Err(ApiError::Internal(format!(
                "job {job} finished but its stream holds no last event"
            )))
        }
        (None, None) => (
            GenerationState::Failed,
            Some("the job stopped without a last event when an earlier server process ended; submit it again".into()),
        ),
    };
    let (reason, value) = match refusal {
        Some((reason, value)) => (Some(reason), value),
        None => (None, None),
    };
    Ok(Some(GenerationStatus {
        job,
        state,
        steps,
        result,
        error,
        reason,
        value,
    }))
}

pub(super) fn unknown_job(job: Uuid) -> ApiError {
    ApiError::NotFound(format!(
        "no generation job {job}: neither queued here nor in the log"
    ))
}

/// A job's state, its steps so far and its result (admin, generator and auditor keys).
#[utoipa::path(
    get,
    path = "/v1/generations/{id}",
    tag = "generation",
    params(("id" = String, Path, description = "The job id POST /v1/generations returned")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The job's status", body = GenerationStatus),
        (status = 400, description = "The id is not a UUID", body = super::error::ErrorBody),
        (status = 401, description = "No valid API key", body = super::error::ErrorBody),
        (status = 403, description = "Role may not read generations", body = super::error::ErrorBody),
        (status = 404, description = "No such job", body = super::error::ErrorBody),
    )
)]
pub async fn status(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<GenerationStatus>, ApiError> {
    authorize(&principal, Action::ReadGeneration, None)?;
    let job = job_id(path)?;
    status_of(&state, job)
        .await?
        .map(Json)
        .ok_or_else(|| unknown_job(job))
}
