//! `GET /v1/generations/{id}/events`: a job's log events as Server-Sent
//! Events, each as it is appended, polled from the log.

use super::queue::{JobState, Shared};
use super::{job_id, unknown_job};
use crate::api::auth::{authorize, Action, Principal};
use crate::api::error::ApiError;
use crate::api::AppState;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::Stream;
use ledger::EventStore;
use schemas::generation::{
    generation_stream, CREDENTIALS_ISSUED, GENERATION_ABANDONED, GENERATION_REJECTED,
};
use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// How often an event stream looks for new events in the log.
const EVENTS_POLL_INTERVAL: Duration = Duration::from_millis(100);
/// Events read from the log per poll.
const EVENTS_PAGE_MAX: usize = 256;
/// The longest an event stream stays open; a client may reconnect with
/// `Last-Event-ID` to go on.
const EVENTS_STREAM_DURATION_MAX: Duration = Duration::from_secs(60 * 60);
/// Event streams one API key may hold open at once. Each holds a connection
/// and polls the log; a key that wants more should poll job status instead.
pub const EVENT_STREAMS_PER_KEY_MAX: usize = 8;
/// What a refused event stream's `Retry-After` says, in seconds.
const EVENT_STREAMS_RETRY_AFTER_S: u64 = 5;
/// The SSE event type of the synthetic event that ends the stream of a job
/// that failed without a last event in the log (it has no `id:`, as it is
/// not a log event).
pub const JOB_FAILED_SSE_EVENT: &str = "job-failed";

/// How many event streams each API key holds open now.
#[derive(Default)]
pub struct OpenStreams(Arc<Mutex<HashMap<String, usize>>>);

impl OpenStreams {
    /// Counts a new stream for `key_id`, or refuses it (429) when the key
    /// already holds [`EVENT_STREAMS_PER_KEY_MAX`]. The stream is counted
    /// until the returned value is dropped, which is when the response body
    /// ends or its connection closes.
    fn open(&self, key_id: &str) -> Result<OpenStream, ApiError> {
        let mut open = self.0.lock().expect("open event streams lock");
        let count = open.entry(key_id.to_string()).or_default();
        if *count >= EVENT_STREAMS_PER_KEY_MAX {
            return Err(ApiError::TooManyRequests {
                message: format!(
                    "this API key already has {EVENT_STREAMS_PER_KEY_MAX} event streams open, the most one key may; close one, or poll GET /v1/generations/{{id}}"
                ),
                retry_after_s: EVENT_STREAMS_RETRY_AFTER_S,
            });
        }
        *count += 1;
        Ok(OpenStream {
            streams: self.0.clone(),
            key_id: key_id.to_string(),
        })
    }
}

/// One open event stream, counted against its key while it lives.
struct OpenStream {
    streams: Arc<Mutex<HashMap<String, usize>>>,
    key_id: String,
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        let mut open = self.streams.lock().expect("open event streams lock");
        if let Some(count) = open.get_mut(&self.key_id) {
            *count -= 1;
            if *count == 0 {
                open.remove(&self.key_id);
            }
        }
    }
}

/// Follows one job's stream in the log, for its event stream.
struct Follow {
    _open: OpenStream,
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
                    CREDENTIALS_ISSUED | GENERATION_REJECTED | GENERATION_ABANDONED
                );
                if self.seen_seq.is_none_or(|seen| event.seq > seen) {
                    self.pending.push_back(
                        Event::default()
                            .event(&event.event_type)
                            .id(event.seq.to_string())
                            .data(serde_json::to_string(event).expect("an event serializes")),
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
/// ends after `generation.credentials-issued` (the job's last event, after
/// `generation.derivative-published`), `generation.rejected` or
/// `generation.abandoned`; a job that failed without one ends with a
/// `job-failed` event (`{"job","error"}`, no id). `Last-Event-ID` resumes
/// after that seq. One key may hold [`EVENT_STREAMS_PER_KEY_MAX`] streams
/// open at once; more are refused with 429.
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
        (status = 400, description = "The id is not a UUID, or Last-Event-ID is not a seq", body = crate::api::error::ErrorBody),
        (status = 401, description = "No valid API key", body = crate::api::error::ErrorBody),
        (status = 403, description = "Role may not read generations", body = crate::api::error::ErrorBody),
        (status = 404, description = "No such job", body = crate::api::error::ErrorBody),
        (status = 429, description = "The key has the most event streams open it may", body = crate::api::error::ErrorBody),
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
    let open = state.event_streams.open(&principal.key_id)?;
    let follow = Follow {
        _open: open,
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
