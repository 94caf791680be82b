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
//! [`RUNNING_JOB_WAIT`] to finish; either way an abandoned job's stream ends
//! with `generation.abandoned`.

use super::auth::{authorize, Action, Principal};
use super::body::JsonText;
use super::error::ApiError;
use super::idempotency::{idempotency_key, once, request_hash};
use super::metrics::{GenerationCounts, GenerationOutcome};
use super::AppState;
use axum::extract::rejection::PathRejection;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::Json;
use futures::Stream;
use inference::artifacts::{ArtifactError, ArtifactStore};
use inference::pipeline::{
    GenerationRequest, Generator, LicensedInputs, PipelineError, RequestError, ValidRequest,
};
use inference::{Backend, Engine};
use ledger::{AppendRequest, EventStore, ExpectedVersion, NewEvent, StoredEvent};
use schemas::generation::{
    generation_stream, AttributionComponent, DerivativePublished, GenerationAbandoned,
    GenerationRejected, GenerationStep, DERIVATIVE_PUBLISHED, GENERATION_ABANDONED,
    GENERATION_REJECTED, GENERATION_SCHEMA_VERSION, GENERATION_STEP,
};
use serde::Serialize;
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
use utoipa::ToSchema;
use uuid::Uuid;

/// Jobs that may wait for the worker unless `--generation-queue` says otherwise.
pub const QUEUE_JOBS_DEFAULT: usize = 4;
/// The most waiting jobs `--generation-queue` may allow: each holds a
/// request in memory and a client waiting minutes per job ahead of it.
pub const QUEUE_JOBS_MAX: usize = 1024;
/// Jobs the table remembers. Finished jobs are forgotten oldest first (the
/// log still answers for all but those that failed without a last event);
/// queued and running ones never are, as `QUEUE_JOBS_MAX + 1` is far below.
const JOBS_REMEMBERED_MAX: usize = 4096;
/// What a 429 asks the client to wait: about one short job.
const RETRY_AFTER_S: u64 = 10;
/// How long shutdown lets a running job finish before abandoning it.
pub const RUNNING_JOB_WAIT: Duration = Duration::from_secs(30);
/// How often an event stream looks for new events in the log.
const EVENTS_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Events read from the log per poll.
const EVENTS_PAGE_MAX: usize = 256;
/// The longest an event stream stays open; a client may reconnect with
/// `Last-Event-ID` to go on.
const EVENTS_STREAM_DURATION_MAX: Duration = Duration::from_secs(60 * 60);
/// Events of one job read for its status: the pipeline writes at most a
/// requested event, a handful of steps and a last event.
const JOB_EVENTS_MAX: usize = projections::lineage::GENERATION_STEPS_MAX;
/// The SSE event type of the synthetic event that ends the stream of a job
/// that failed without a last event in the log (it has no `id:`, as it is
/// not a log event).
pub const JOB_FAILED_SSE_EVENT: &str = "job-failed";

/// Where a job is, as far as the log cannot tell.
#[derive(Debug, Clone, PartialEq, Eq)]
enum JobState {
    Queued,
    Running,
    /// The pipeline returned: its last event (published or rejected) is in the log.
    Finished,
    /// The pipeline stopped with this error; the log holds no last event.
    Failed(String),
    /// Shutdown stopped the job, for this reason (also recorded in its
    /// `generation.abandoned` event unless that append failed).
    Abandoned(String),
}

impl JobState {
    fn is_live(&self) -> bool {
        matches!(self, JobState::Queued | JobState::Running)
    }
}

/// A validated request waiting for the worker.
struct Job {
    id: Uuid,
    request: ValidRequest,
}

/// The queue and the job table, under one lock so a job is always in exactly
/// one place.
struct Table {
    queue: VecDeque<Job>,
    jobs: HashMap<Uuid, JobState>,
    /// Job ids in submission order, for forgetting the oldest finished ones.
    order: VecDeque<Uuid>,
    running: Option<Uuid>,
    /// Set at shutdown: no job is accepted or started after it.
    closed: bool,
}

impl Table {
    fn remember(&mut self, id: Uuid, state: JobState) {
        if self.jobs.len() >= JOBS_REMEMBERED_MAX {
            let oldest_finished = self
                .order
                .iter()
                .position(|id| !self.jobs[id].is_live())
                .expect("queued and running jobs are far fewer than the table holds");
            let forgotten = self.order.remove(oldest_finished).expect("position exists");
            self.jobs.remove(&forgotten);
        }
        self.jobs.insert(id, state);
        self.order.push_back(id);
    }
}

/// What the handlers and the worker share.
struct Shared {
    table: Mutex<Table>,
    /// Wakes the worker when a job is queued or the queue is closed.
    work: Condvar,
    capacity_jobs: usize,
    counts: Arc<GenerationCounts>,
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        self.table.lock().expect("generation table lock")
    }

    /// The next job to run, marked running; `None` once the queue is closed.
    fn next_job(&self) -> Option<Job> {
        let mut table = self.lock();
        loop {
            if table.closed {
                return None;
            }
            if let Some(job) = table.queue.pop_front() {
                table.jobs.insert(job.id, JobState::Running);
                table.running = Some(job.id);
                return Some(job);
            }
            table = self.work.wait(table).expect("generation table lock");
        }
    }

    /// Records how a job ended, unless shutdown abandoned it meanwhile.
    fn finish(&self, id: Uuid, outcome: GenerationOutcome, state: JobState) {
        let mut table = self.lock();
        table.running = None;
        if let Some(current) = table.jobs.get_mut(&id) {
            if matches!(current, JobState::Abandoned(_)) {
                return;
            }
            *current = state;
        }
        self.counts.record(outcome);
    }
}

/// The generation queue, its job table and its worker thread.
pub struct Generations {
    shared: Arc<Shared>,
    /// Resolves (with an error: the sender is dropped) when the worker thread ends.
    worker_done: tokio::sync::Mutex<Option<oneshot::Receiver<()>>>,
}

impl Generations {
    /// Starts the worker on `store` and the data directory's `artifacts`,
    /// with room for `capacity_jobs` waiting jobs. The compute engine is
    /// resolved once, on the worker thread, so a slow GPU start does not
    /// delay the server.
    pub fn start(
        store: Arc<dyn EventStore>,
        artifacts: ArtifactStore,
        capacity_jobs: usize,
        counts: Arc<GenerationCounts>,
    ) -> anyhow::Result<Generations> {
        anyhow::ensure!(
            (1..=QUEUE_JOBS_MAX).contains(&capacity_jobs),
            "the generation queue holds 1 to {QUEUE_JOBS_MAX} jobs, not {capacity_jobs}"
        );
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let shared = Arc::new(Shared {
            table: Mutex::new(Table {
                queue: VecDeque::with_capacity(capacity_jobs),
                jobs: HashMap::new(),
                order: VecDeque::new(),
                running: None,
                closed: false,
            }),
            work: Condvar::new(),
            capacity_jobs,
            counts,
        });
        let (done, worker_done) = oneshot::channel::<()>();
        let worker_shared = shared.clone();
        std::thread::Builder::new()
            .name("generation-worker".into())
            .spawn(move || {
                // Locals drop in reverse order, on return or unwind: the
                // store handle goes before `done` tells `stop` the worker
                // has ended, so the server can then close the store.
                let _done = done;
                let store = store;
                run_worker(&worker_shared, store.as_ref(), &artifacts, &runtime);
            })?;
        Ok(Generations {
            shared,
            worker_done: tokio::sync::Mutex::new(Some(worker_done)),
        })
    }

    /// Queues a validated request: 429 when the queue is full, 503 once
    /// shutdown has begun.
    fn submit(&self, request: ValidRequest) -> Result<Uuid, ApiError> {
        let mut table = self.shared.lock();
        if table.closed {
            return Err(ApiError::Unavailable(
                "the server is shutting down and takes no more generation jobs".into(),
            ));
        }
        if table.queue.len() >= self.shared.capacity_jobs {
            return Err(ApiError::TooManyRequests {
                message: format!(
                    "the generation queue is full ({} jobs waiting); retry in {RETRY_AFTER_S} s",
                    table.queue.len()
                ),
                retry_after_s: RETRY_AFTER_S,
            });
        }
        let id = Uuid::new_v4();
        table.remember(id, JobState::Queued);
        table.queue.push_back(Job { id, request });
        drop(table);
        self.shared.work.notify_one();
        Ok(id)
    }

    fn state(&self, id: Uuid) -> Option<JobState> {
        self.shared.lock().jobs.get(&id).cloned()
    }

    /// Jobs waiting for the worker (the running one not included).
    pub fn queue_depth(&self) -> usize {
        self.shared.lock().queue.len()
    }

    /// Stops taking jobs, abandons the queued ones, gives the running one
    /// [`RUNNING_JOB_WAIT`] to finish and abandons it after that. Every
    /// abandoned job gets a `generation.abandoned` event. Call it before
    /// the store is closed; calling it again does nothing.
    pub async fn stop(&self, store: &dyn EventStore) {
        let Some(worker_done) = self.worker_done.lock().await.take() else {
            return;
        };
        let queued: Vec<Uuid> = {
            let mut table = self.shared.lock();
            table.closed = true;
            let queued: Vec<Uuid> = table.queue.drain(..).map(|job| job.id).collect();
            for id in &queued {
                table
                    .jobs
                    .insert(*id, JobState::Abandoned(QUEUED_REASON.into()));
            }
            queued
        };
        self.shared.work.notify_all();
        for id in queued {
            // The job never started, so its stream must still be empty.
            abandon(store, id, QUEUED_REASON, ExpectedVersion::Exact(0)).await;
            self.shared.counts.record(GenerationOutcome::Abandoned);
        }
        if tokio::time::timeout(RUNNING_JOB_WAIT, worker_done)
            .await
            .is_ok()
        {
            return;
        }
        let running = {
            let mut table = self.shared.lock();
            let running = table.running;
            if let Some(id) = running {
                table
                    .jobs
                    .insert(id, JobState::Abandoned(RUNNING_REASON.into()));
            }
            running
        };
        if let Some(id) = running {
            tracing::warn!(job = %id, "a generation job outlived the shutdown wait; abandoning it");
            // `Any`: the job may append a step meanwhile. Its own appends
            // expect an exact version, so once this lands its next one is
            // refused and it writes nothing after the abandonment.
            abandon(store, id, RUNNING_REASON, ExpectedVersion::Any).await;
            self.shared.counts.record(GenerationOutcome::Abandoned);
        }
    }
}

const QUEUED_REASON: &str = "the server shut down while the job was queued; submit it again";
const RUNNING_REASON: &str =
    "the server shut down and the job did not finish within the shutdown wait; submit it again";

/// Appends `generation.abandoned` to the job's stream; a failure is logged,
/// as shutdown goes on regardless.
async fn abandon(store: &dyn EventStore, job: Uuid, reason: &str, expected: ExpectedVersion) {
    let payload = GenerationAbandoned {
        job,
        reason: reason.to_string(),
    };
    let mut event = NewEvent::new(
        GENERATION_ABANDONED,
        serde_json::to_value(&payload).expect("the abandoned payload serializes"),
    );
    event.schema = GENERATION_SCHEMA_VERSION;
    let request = AppendRequest::new(generation_stream(job), expected, vec![event]);
    match store.append(request).await {
        Ok(_) => tracing::info!(%job, "generation job abandoned"),
        Err(error) => {
            tracing::error!(%job, %error, "could not record the abandonment of a generation job")
        }
    }
}

/// The worker loop: one job at a time, in submission order, until the queue closes.
fn run_worker(
    shared: &Shared,
    store: &dyn EventStore,
    artifacts: &ArtifactStore,
    runtime: &tokio::runtime::Runtime,
) {
    let engine = Engine::select(Backend::Auto).map_err(|e| e.to_string());
    if let Ok(engine) = &engine {
        tracing::info!(backend = engine.backend_name(), "generation worker ready");
    }
    while let Some(job) = shared.next_job() {
        let started = Instant::now();
        // A panic in the pipeline fails this job, not the worker: the jobs
        // queued behind it still run.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            runtime.block_on(run_job(&engine, artifacts, store, &job))
        }));
        let (outcome, state) = match result {
            Ok(Ok(())) => (GenerationOutcome::Published, JobState::Finished),
            Ok(Err(PipelineError::Refused { .. })) => {
                (GenerationOutcome::Rejected, JobState::Finished)
            }
            Ok(Err(error)) => (
                GenerationOutcome::Failed,
                JobState::Failed(error.to_string()),
            ),
            Err(_) => (
                GenerationOutcome::Failed,
                JobState::Failed("the generation pipeline panicked; see the server log".into()),
            ),
        };
        tracing::info!(
            job = %job.id,
            outcome = outcome.name(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "generation job done"
        );
        shared.finish(job.id, outcome, state);
    }
}

/// One job, as `ledgerline generate` runs it.
async fn run_job(
    engine: &Result<Engine, String>,
    artifacts: &ArtifactStore,
    store: &dyn EventStore,
    job: &Job,
) -> Result<(), PipelineError> {
    let engine = match engine {
        Ok(engine) => *engine,
        Err(message) => return Err(PipelineError::Step(format!("no compute engine: {message}"))),
    };
    let licensed = LicensedInputs::from_log(store, &job.request).await?;
    let generator = Generator {
        engine,
        artifacts,
        store,
    };
    generator
        .generate(job.id, &job.request, &licensed)
        .await
        .map(|_| ())
}

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
        ApiError::BadRequest(error.to_string())
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
    let mut response = once(
        &state.idempotency,
        &principal.key_id,
        key.as_deref(),
        fingerprint,
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
    .await?;
    // `once` answers (and keeps) a success as 200; every success here, first
    // or replayed, is an accepted job.
    if response.status() == StatusCode::OK {
        *response.status_mut() = StatusCode::ACCEPTED;
    }
    Ok(response)
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
    /// `load-stems`, `mix`, `time-stretch`, `pitch-shift` or `voice-transfer`.
    op: String,
    duration_ms: u64,
    /// `gpu` or `cpu`.
    backend: String,
}

/// The published derivative.
#[derive(Serialize, ToSchema)]
pub struct GenerationResult {
    derivative: Uuid,
    /// `sha256:<hex>` of the output file: `GET /v1/artifacts/{hash}` serves it.
    output: String,
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
}

fn job_id(path: Result<Path<String>, PathRejection>) -> Result<Uuid, ApiError> {
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
                    attribution: published.attribution,
                });
                last = Some((GenerationState::Published, None));
            }
            GENERATION_REJECTED if last.is_none() => {
                let rejected: GenerationRejected = payload(event)?;
                last = Some((GenerationState::Rejected, Some(rejected.message)));
            }
            GENERATION_ABANDONED if last.is_none() => {
                let abandoned: GenerationAbandoned = payload(event)?;
                last = Some((GenerationState::Abandoned, Some(abandoned.reason)));
            }
            _ => {}
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
    Ok(Some(GenerationStatus {
        job,
        state,
        steps,
        result,
        error,
    }))
}

fn unknown_job(job: Uuid) -> ApiError {
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

/// Follows one job's stream in the log, for its event stream.
struct Follow {
    store: Arc<dyn EventStore>,
    generations: Arc<Shared>,
    job: Uuid,
    stream: String,
    /// The stream version to read from next.
    next_version: u64,
    /// Events up to this seq were seen by the client (`Last-Event-ID`).
    seen_seq: Option<u64>,
    pending: VecDeque<Event>,
    done: bool,
    deadline: Instant,
}

impl Follow {
    /// The next SSE event, or `None` when the stream should end.
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(event) = self.pending.pop_front() {
                return Some(event);
            }
            if self.done || Instant::now() >= self.deadline {
                return None;
            }
            // Read the table before the log: a job the table saw end has
            // every event in the log by then.
            let remembered = self.generations.lock().jobs.get(&self.job).cloned();
            let events = match self
                .store
                .read_stream(&self.stream, self.next_version, EVENTS_PAGE_MAX)
                .await
            {
                Ok(events) => events,
                Err(error) => {
                    tracing::warn!(job = %self.job, %error, "event stream ends: the log read failed");
                    return None;
                }
            };
            let page_full = events.len() == EVENTS_PAGE_MAX;
            for event in &events {
                self.next_version = event.version + 1;
                let terminal = matches!(
                    event.event_type.as_str(),
                    DERIVATIVE_PUBLISHED | GENERATION_REJECTED | GENERATION_ABANDONED
                );
                if self.seen_seq.is_none_or(|seen| event.seq > seen) {
                    self.pending.push_back(
                        Event::default()
                            .event(&event.event_type)
                            .id(event.seq.to_string())
                            .data(crate::cli::log::event_json(event).to_string()),
                    );
                }
                if terminal {
                    self.done = true;
                    break;
                }
            }
            if self.done || page_full {
                continue;
            }
            match remembered {
                Some(state) if state.is_live() => {
                    if self.pending.is_empty() {
                        tokio::time::sleep(EVENTS_POLL_INTERVAL).await;
                    }
                }
                Some(JobState::Failed(message)) => {
                    let data = serde_json::json!({"job": self.job, "error": message});
                    self.pending.push_back(
                        Event::default()
                            .event(JOB_FAILED_SSE_EVENT)
                            .data(data.to_string()),
                    );
                    self.done = true;
                }
                // Ended, or from an earlier server process: nothing more will come.
                _ => self.done = true,
            }
        }
    }
}

/// The job's log events as Server-Sent Events (admin, generator and auditor
/// keys), each as it is appended: `event:` the event type, `id:` its seq,
/// `data:` the event as `GET /v1/streams/{stream}` renders it. The stream
/// ends after `generation.derivative-published`, `generation.rejected` or
/// `generation.abandoned`; a job that failed without one ends with a
/// `job-failed` event (`{"job","error"}`, no id). `Last-Event-ID` resumes
/// after that seq.
#[utoipa::path(
    get,
    path = "/v1/generations/{id}/events",
    operation_id = "generation_events",
    tag = "generation",
    params(
        ("id" = String, Path, description = "The job id POST /v1/generations returned"),
        ("Last-Event-ID" = Option<u64>, Header, description = "Resume after the event with this seq"),
    ),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Server-Sent Events, one per log event of the job", body = String, content_type = "text/event-stream"),
        (status = 400, description = "The id is not a UUID, or Last-Event-ID is not a seq", body = super::error::ErrorBody),
        (status = 401, description = "No valid API key", body = super::error::ErrorBody),
        (status = 403, description = "Role may not read generations", body = super::error::ErrorBody),
        (status = 404, description = "No such job", body = super::error::ErrorBody),
    )
)]
pub async fn events(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    authorize(&principal, Action::ReadGeneration, None)?;
    let job = job_id(path)?;
    let seen_seq = match headers.get("last-event-id") {
        None => None,
        Some(value) => Some(
            value
                .to_str()
                .ok()
                .and_then(|text| text.trim().parse::<u64>().ok())
                .ok_or_else(|| {
                    ApiError::BadRequest(
                        "Last-Event-ID must be the seq of the last event received".into(),
                    )
                })?,
        ),
    };
    let stream = generation_stream(job);
    if state.generations.state(job).is_none()
        && state.store.read_stream(&stream, 0, 1).await?.is_empty()
    {
        return Err(unknown_job(job));
    }
    let follow = Follow {
        store: state.store.clone(),
        generations: state.generations.shared.clone(),
        job,
        stream,
        next_version: 0,
        seen_seq,
        pending: VecDeque::new(),
        done: false,
        deadline: Instant::now() + EVENTS_STREAM_DURATION_MAX,
    };
    let events = futures::stream::unfold(follow, |mut follow| async move {
        let event = follow.next().await?;
        Some((Ok(event), follow))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::default()))
}

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
/// stems, step outputs and derivatives. The bytes are checked against the
/// hash before they are sent.
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
        (status = 400, description = "Not a content hash", body = super::error::ErrorBody),
        (status = 401, description = "No valid API key", body = super::error::ErrorBody),
        (status = 403, description = "Role may not read artifacts", body = super::error::ErrorBody),
        (status = 404, description = "No such artifact", body = super::error::ErrorBody),
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
    let loaded = tokio::task::spawn_blocking(move || artifacts.load_bytes(&hash))
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

    #[test]
    fn the_table_forgets_finished_jobs_first() {
        let mut table = Table {
            queue: VecDeque::new(),
            jobs: HashMap::new(),
            order: VecDeque::new(),
            running: None,
            closed: false,
        };
        let queued = Uuid::new_v4();
        table.remember(queued, JobState::Queued);
        let first_finished = Uuid::new_v4();
        table.remember(first_finished, JobState::Finished);
        for _ in 2..JOBS_REMEMBERED_MAX {
            table.remember(Uuid::new_v4(), JobState::Finished);
        }
        assert_eq!(table.jobs.len(), JOBS_REMEMBERED_MAX);
        table.remember(Uuid::new_v4(), JobState::Queued);
        assert_eq!(table.jobs.len(), JOBS_REMEMBERED_MAX);
        assert_eq!(table.jobs.get(&queued), Some(&JobState::Queued));
        assert_eq!(table.jobs.get(&first_finished), None);
    }
}
