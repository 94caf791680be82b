//! The HTTP API: the ledger as a service (`ledgerline serve`).
//!
//! One [`router`] over an [`AppState`] shared in an `Arc`; one file per
//! endpoint group ([`log`], [`catalog`], [`consent`], [`usage`], [`statements`],
//! [`lineage`], [`reconcile`], [`generations`], [`health`], [`metrics`],
//! [`openapi`], and [`tlog`] for the C2SP tlog-tiles read API); one error type
//! ([`error::ApiError`]); one access table ([`auth`]). Every request gets an
//! `x-request-id` (the caller's, if it sent a usable one) that tags its log
//! lines and comes back on the response.

pub mod auth;
pub mod body;
pub mod catalog;
pub mod connections;
pub mod consent;
pub mod error;
pub mod generations;
pub mod health;
pub mod idempotency;
pub mod keys;
pub mod lineage;
pub mod log;
pub mod metrics;
pub mod openapi;
pub mod reconcile;
pub mod records;
pub mod server_timing;
pub mod statements;
pub mod tile_cache;
pub mod tlog;
pub mod usage;

use crate::context::Context;
use anyhow::Context as _;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::Router;
use error::ApiError;
use keys::KeyStore;
use ledger::EventStore;
use metrics::Metrics;
use records::Records;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;
use tracing::Instrument;

/// The API's own records in the data directory (keys, idempotency), unless
/// the log is in PostgreSQL: see [`records`].
pub const API_DATABASE_FILE: &str = "api.db";
/// The request id header, echoed on every response.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// How long shutdown waits for finished connections to release the store.
const STORE_RELEASE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);
/// The longest caller-supplied request id kept; longer ones are replaced.
const REQUEST_ID_BYTES_MAX: usize = 128;

tokio::task_local! {
    /// The id of the request the current task answers (see [`observe`]).
    static REQUEST_ID: String;
}

/// The id of the request being answered, when called while answering one.
pub fn current_request_id() -> Option<String> {
    REQUEST_ID.try_with(String::clone).ok()
}

/// What every handler shares.
pub struct AppState {
    pub store: Arc<dyn EventStore>,
    pub keys: Arc<KeyStore>,
    pub idempotency: Arc<idempotency::IdempotencyStore>,
    pub metrics: Metrics,
    /// The royalty read model in the log's database; one request folds at a time.
    pub projections: tokio::sync::Mutex<projections::runner::Projections>,
    /// The generation queue and its worker.
    pub generations: generations::Generations,
    /// The data directory's artifacts: stems, step outputs, derivatives.
    pub artifacts: inference::artifacts::ArtifactStore,
    /// The generation event streams open now, per key.
    pub event_streams: generations::sse::OpenStreams,
    /// Audio uploads to `POST /v1/lineage`: their staging folder and decode slots.
    pub uploads: lineage::Uploads,
    /// The witness policy of `serve --witness-policy`, and where each of its
    /// witnesses stands; `None` without one.
    pub witnessing: Option<WitnessingState>,
    /// Full tiles served under `/tlog/`, kept in memory (they never change).
    pub tiles: tile_cache::TileCache,
    /// The data directory: its credentials' root is lineage's trust anchor.
    pub data_dir: std::path::PathBuf,
    /// The takedown list's fold, caught up on each `GET /v1/takedowns`.
    pub takedowns: projections::takedowns::TakedownIndex,
}

/// What the API needs of the log's witnessing (`crate::witnessing`).
#[derive(Clone)]
pub struct WitnessingState {
    pub policy: Arc<ledger::witness_policy::WitnessPolicy>,
    pub status: Arc<crate::witnessing::status::WitnessingStatus>,
}

impl AppState {
    /// Opens what the API serves from `context`: the log, the API's records
    /// (keys, idempotency), the read models, the artifacts and the upload
    /// staging folder; and starts the generation worker, with room for
    /// `generation_queue_jobs` waiting jobs.
    pub async fn open(
        context: &Context,
        generation_queue_jobs: usize,
    ) -> anyhow::Result<Arc<AppState>> {
        let store = context.open_store().await?;
        let records = Arc::new(Records::open(&context.records_location()?, &context.origin).await?);
        let keys = KeyStore::new(records.clone());
        let idempotency = idempotency::IdempotencyStore::new(records);
        let database = context.local_database()?;
        let projections =
            tokio::task::spawn_blocking(move || projections::runner::Projections::open(&database))
                .await??;
        let metrics = Metrics::default();
        let artifacts = inference::artifacts::ArtifactStore::open(&context.data_dir)?;
        let uploads = lineage::Uploads::open(&context.data_dir)
            .with_context(|| format!("cannot prepare {}/uploads", context.data_dir.display()))?;
        let generations = generations::Generations::start(
            store.clone(),
            artifacts.clone(),
            context.signing_identity()?,
            generation_queue_jobs,
            metrics.generations.clone(),
        )?;
        Ok(Arc::new(AppState {
            store,
            keys: Arc::new(keys),
            idempotency: Arc::new(idempotency),
            metrics,
            projections: tokio::sync::Mutex::new(projections),
            generations,
            artifacts,
            event_streams: generations::sse::OpenStreams::default(),
            uploads,
            witnessing: None,
            tiles: tile_cache::TileCache::default(),
            data_dir: context.data_dir.clone(),
            takedowns: projections::takedowns::TakedownIndex::default(),
        }))
    }
}

/// Every route, with request ids, logs, metrics and the body limit.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .merge(crate::console::routes())
        .route("/v1/checkpoint", get(log::checkpoint))
        .route("/v1/checkpoints", get(log::checkpoints))
        .route("/v1/key", get(log::key))
        .route("/v1/witnesses", get(log::witnesses))
        .route("/v1/events", get(log::events))
        .route("/v1/streams/{stream}", get(log::stream))
        .route("/v1/streams/{stream}/events", post(log::append))
        .route("/v1/proofs/inclusion", get(log::inclusion_proof))
        .route("/v1/proofs/consistency", get(log::consistency_proof))
        .route("/v1/statements/{period}", get(statements::statement))
        .route("/v1/lineage/{derivative}", get(lineage::derivative))
        .route("/v1/lineage", post(lineage::upload))
        .route("/v1/reconciliations", post(reconcile::reconcile))
        .route("/v1/catalog", post(catalog::import))
        .route(
            "/v1/voice-models/{id}/consent-withdrawals",
            post(consent::withdraw),
        )
        .route("/v1/takedowns", get(consent::list))
        .route("/v1/usage", post(usage::import))
        .route("/v1/generations", post(generations::submit))
        .route("/v1/generations/{id}", get(generations::status))
        .route("/v1/generations/{id}/events", get(generations::sse::events))
        .route(
            "/v1/artifacts/{hash}",
            get(generations::artifacts::artifact),
        )
        .route("/tlog/checkpoint", get(tlog::checkpoint))
        .route("/tlog/tile/{*path}", get(tlog::tile))
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(metrics::metrics))
        .route("/openapi.json", get(openapi::openapi_json))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body::BODY_BYTES_MAX))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .with_state(state)
}

async fn not_found(request: Request) -> ApiError {
    ApiError::NotFound(format!(
        "no endpoint at {}; GET /openapi.json lists them",
        request.uri().path()
    ))
}

async fn method_not_allowed(method: Method) -> ApiError {
    ApiError::MethodNotAllowed(method.to_string())
}

/// Gives the request its id and span, logs its outcome and counts it.
async fn observe(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let request_id = request
        .headers()
        .get(REQUEST_ID_HEADER)
        .and_then(|value| value.to_str().ok())
        .filter(|id| !id.is_empty() && id.len() <= REQUEST_ID_BYTES_MAX)
        .filter(|id| id.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| uuid::Uuid::new_v4().to_string(), str::to_string);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |path| path.as_str())
        .to_string();
    let span = tracing::info_span!(
        "request",
        id = %request_id,
        method = %request.method(),
        path = %request.uri().path(),
        route = %route,
        key = tracing::field::Empty,
    );
    let mut response = REQUEST_ID
        .scope(
            request_id.clone(),
            next.run(request).instrument(span.clone()),
        )
        .await;
    let elapsed = started.elapsed();
    let status = response.status().as_u16();
    state.metrics.record_request(status, elapsed);
    tracing::info!(parent: &span, status, elapsed_us = elapsed.as_micros() as u64, "served");
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    response
}

/// Serves the API on `listen` over the data directory's log until SIGTERM or
/// ctrl-c, with room for `generation_queue_jobs` waiting generation jobs and
/// at most `connections_max` open connections (see [`connections`]); then
/// finishes in-flight requests, finishes or abandons generation jobs
/// (see [`generations::Generations::stop`]), signs a checkpoint covering
/// every acknowledged append and closes the store.
pub async fn serve(
    listen: SocketAddr,
    generation_queue_jobs: usize,
    connections_max: usize,
    witness_policy: Option<ledger::witness_policy::WitnessPolicy>,
    context: &Context,
) -> anyhow::Result<()> {
    let shutdown = shutdown_signal()?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let address = listener.local_addr()?;
    let mut state = AppState::open(context, generation_queue_jobs).await?;
    let store = state.store.clone();
    // Witnesses are asked in the background: appends never wait for them.
    let witnessing =
        witness_policy.map(|policy| crate::witnessing::Witnessing::start(store.clone(), policy));
    if let Some(witnessing) = &witnessing {
        let state = Arc::get_mut(&mut state).expect("the state is not shared yet");
        // Statements and lineage answers cite the latest witnessed
        // checkpoint when it covers them.
        state
            .projections
            .get_mut()
            .cite_witnessed(witnessing.policy.clone());
        state.witnessing = Some(WitnessingState {
            policy: witnessing.policy.clone(),
            status: witnessing.status.clone(),
        });
    }
    // Generation jobs are stopped as soon as the signal comes, while the
    // server drains: an open event stream of a queued or running job ends
    // only when its job does, so the server could not drain first.
    let (stopping, stop_requested) = tokio::sync::oneshot::channel::<()>();
    let stop_generations = tokio::spawn({
        let state = state.clone();
        async move {
            // Also runs if the server fails and drops the sender.
            let _ = stop_requested.await;
            state.generations.stop(state.store.as_ref()).await;
        }
    });
    let signal = async move {
        shutdown.await;
        let _ = stopping.send(());
    };
    tracing::info!(%address, "listening");
    // Tests and scripts wait for this line before sending requests.
    println!("listening on http://{address}");
    connections::serve(listener, router(state), connections_max, signal).await;
    stop_generations.await?;
    if let Some(witnessing) = witnessing {
        witnessing.stop().await;
    }
    let checkpoint = store.checkpoint_now().await?;
    tracing::info!(size = checkpoint.size, "final checkpoint signed");
    // Dropping the last handle closes the writer and waits for it. Connection
    // tasks release their handles just after the server stops; give them a moment.
    let deadline = Instant::now() + STORE_RELEASE_WAIT;
    loop {
        // The only handle left cannot be cloned by anyone else.
        if Arc::strong_count(&store) == 1 {
            tokio::task::spawn_blocking(move || drop(store)).await?;
            break;
        }
        if Instant::now() >= deadline {
            tracing::warn!("the store is still shared at shutdown; it closes at exit");
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    Ok(())
}

/// Resolves on SIGTERM or SIGINT. The handlers are installed before the
/// server listens, so an early signal is never fatal.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut terminate = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => {}
            _ = interrupt.recv() => {}
        }
        tracing::info!("shutting down: finishing in-flight requests");
    })
}
