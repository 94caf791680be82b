//! The generation queue: a bounded queue of validated requests, the job
//! table that says what the log cannot say yet (queued, running) or never
//! will (failed without a last event), and the worker thread that runs the
//! jobs one at a time, abandoning them cleanly at shutdown.

use crate::api::error::ApiError;
use crate::api::metrics::{GenerationCounts, GenerationOutcome};
use inference::artifacts::ArtifactStore;
use inference::credentials::SigningIdentity;
use inference::pipeline::{Generator, LicensingIndex, PipelineError, ValidRequest};
use inference::{Backend, Engine};
use ledger::{AppendRequest, EventStore, ExpectedVersion, NewEvent};
use schemas::generation::{
    generation_stream, GenerationAbandoned, GENERATION_ABANDONED, GENERATION_SCHEMA_VERSION,
};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;
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
/// Where a job is, as far as the log cannot tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum JobState {
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
    pub(super) fn is_live(&self) -> bool {
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
pub(super) struct Table {
    queue: VecDeque<Job>,
    pub(super) jobs: HashMap<Uuid, JobState>,
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
pub(super) struct Shared {
    table: Mutex<Table>,
    /// Wakes the worker when a job is queued or the queue is closed.
    work: Condvar,
    capacity_jobs: usize,
    counts: Arc<GenerationCounts>,
}

impl Shared {
    pub(super) fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
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
    pub(super) shared: Arc<Shared>,
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
        identity: SigningIdentity,
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
                run_worker(
                    &worker_shared,
                    store.as_ref(),
                    &artifacts,
                    &identity,
                    &runtime,
                );
            })?;
        Ok(Generations {
            shared,
            worker_done: tokio::sync::Mutex::new(Some(worker_done)),
        })
    }

    /// Queues a validated request: 429 when the queue is full, 503 once
    /// shutdown has begun.
    pub(super) fn submit(&self, request: ValidRequest) -> Result<Uuid, ApiError> {
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

    pub(super) fn state(&self, id: Uuid) -> Option<JobState> {
        self.shared.lock().jobs.get(&id).cloned()
    }

    /// Jobs waiting for the worker (the running one not included).
    pub fn queue_depth(&self) -> usize {
        self.shared.lock().queue.len()
    }

    /// Stops taking jobs, abandons the queued ones, gives the running one
    /// `RUNNING_JOB_WAIT` to finish and abandons it after that. Every
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
    identity: &SigningIdentity,
    runtime: &tokio::runtime::Runtime,
) {
    let engine = Engine::select(Backend::Auto).map_err(|e| e.to_string());
    if let Ok(engine) = &engine {
        tracing::info!(backend = engine.backend_name(), "generation worker ready");
    }
    // The catalog's licensing facts, folded once and caught up per job.
    let licensing = LicensingIndex::new();
    while let Some(job) = shared.next_job() {
        let started = Instant::now();
        // A panic in the pipeline fails this job, not the worker: the jobs
        // queued behind it still run.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            runtime.block_on(run_job(
                &engine, artifacts, identity, store, &licensing, &job,
            ))
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
    identity: &SigningIdentity,
    store: &dyn EventStore,
    licensing: &LicensingIndex,
    job: &Job,
) -> Result<(), PipelineError> {
    let engine = match engine {
        Ok(engine) => *engine,
        Err(message) => return Err(PipelineError::Step(format!("no compute engine: {message}"))),
    };
    let licensed = licensing.inputs_now(store, &job.request).await?;
    let generator = Generator {
        engine,
        artifacts,
        store,
        identity,
    };
    generator
        .generate(job.id, &job.request, &licensed)
        .await
        .map(|_| ())
}

#[cfg(test)]
mod tests {
    use super::*;

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
