//! The log over HTTP: checkpoints, the verifier key and proofs (public),
//! events and streams (auditors and admins), and appends (ingest and admins).
//! Formats match the CLI's (`ledgerline checkpoint`, `events`, `proof`), so
//! an outside verifier can use either.

use super::auth::{authorize, Action, Principal};
use super::body::JsonBody;
use super::error::ApiError;
use super::idempotency::idempotency_key;
use super::AppState;
use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, Path, Query, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use ledger::{
    AppendRequest, EventStore, ExpectedVersion, NewEvent, SignedCheckpoint, StoreError, StoredEvent,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Instant;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

/// Events returned by one page of `/v1/events` or `/v1/streams/{stream}` when
/// no `limit` is given.
const PAGE_EVENTS_DEFAULT: usize = 1000;
/// The most events one page may return.
pub const PAGE_EVENTS_MAX: usize = 10_000;
/// The leaf bytes that end a page of events (4 MiB; as base64 in the
/// response, under 6 MiB): the event that reaches them is the page's last,
/// so a page of large events holds fewer than `limit` and `next` says where
/// to go on.
pub const PAGE_LEAF_BYTES_MAX: usize = 4 << 20;
/// The leaf bytes read from the store at a time while a page streams out, so
/// that a request holds one chunk in memory rather than its whole page.
const PAGE_CHUNK_LEAF_BYTES: usize = 1 << 20;
/// UUID v5 namespace for event ids derived from an `Idempotency-Key`, so a
/// retried request carries the same ids and the ledger's own idempotency
/// returns the first result (never change it: old keys would stop matching).
const IDEMPOTENCY_NAMESPACE: Uuid = Uuid::from_u128(0x6c65_6467_6572_4c69_8e3a_1f0d_5b2c_9a47);

/// One event, exactly as `ledgerline events` prints it. The API writes it
/// with `StoredEvent`'s own `Serialize`; this type documents it in the OpenAPI
/// document, and a test holds the two to the same members.
#[derive(ToSchema)]
#[allow(dead_code)] // Only its schema is used.
pub struct Event {
    /// Index in the global log (the Merkle leaf index).
    seq: u64,
    stream: String,
    /// Position in its stream.
    version: u64,
    id: Uuid,
    #[serde(rename = "type")]
    event_type: String,
    /// Base64 (standard alphabet) of the exact leaf bytes (RFC 8785 JSON envelope).
    leaf: String,
    /// Hex SHA-256(0x00 || leaf), RFC 6962 section 2.1.
    leaf_hash: String,
}

/// A page of events in seq (or stream version) order. The handlers stream
/// it as they read it; this type documents it in the OpenAPI document.
#[derive(Serialize, ToSchema)]
#[allow(dead_code)] // Only its schema is used.
pub struct EventPage {
    #[schema(value_type = Vec<Event>)]
    events: Vec<serde_json::Value>,
    /// Pass as `from` to read the next page (the seq, or for a stream the
    /// version, after the last event returned).
    next: u64,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CheckpointQuery {
    /// Tree size of a stored checkpoint (default: the latest).
    size: Option<u64>,
    /// `true`: the latest checkpoint the witness policy's quorum cosigned
    /// (the server runs with `--witness-policy`). Not with `size`.
    witnessed: Option<bool>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// First seq (for a stream: first version) to return. Default 0.
    from: Option<u64>,
    /// Most events to return: default 1000, at most 10000. A page also
    /// ends at the event that takes its leaves to 4 MiB.
    limit: Option<usize>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct InclusionQuery {
    /// Leaf index (the event's seq).
    seq: u64,
    /// Tree size (default: the latest checkpoint's).
    size: Option<u64>,
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ConsistencyQuery {
    /// The smaller tree size.
    from: u64,
    /// The larger tree size (default: the latest checkpoint's).
    to: Option<u64>,
}

/// The checkpoint verifier key.
#[derive(Serialize, ToSchema)]
pub struct VerifierKey {
    /// Go note verifier key: `name+hex8+base64(0x01 || Ed25519 public key)`.
    key: String,
}

/// RFC 6962 inclusion proof (section 2.1.1), hashes in hex: the same JSON as
/// `ledgerline proof inclusion`.
#[derive(Serialize, ToSchema)]
pub struct InclusionProof {
    leaf_index: u64,
    tree_size: u64,
    leaf_hash: String,
    root_hash: String,
    proof: Vec<String>,
}

/// RFC 6962 consistency proof (section 2.1.2), hashes in hex: the same JSON
/// as `ledgerline proof consistency`.
#[derive(Serialize, ToSchema)]
pub struct ConsistencyProof {
    from_size: u64,
    to_size: u64,
    from_root: String,
    to_root: String,
    proof: Vec<String>,
}

/// One event to append.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEventBody {
    /// Event type, e.g. `catalog.recording-registered`.
    #[serde(rename = "type")]
    event_type: String,
    /// The payload: a JSON object.
    #[schema(value_type = Object)]
    data: serde_json::Value,
    /// Number of events the stream must already hold (0: it must be new).
    /// Only on the first event of a request.
    expected_version: Option<u64>,
    /// Event id for idempotent retries (default: derived from the
    /// `Idempotency-Key`, or random).
    id: Option<Uuid>,
    /// Version of the payload's schema (default 1).
    schema: Option<u32>,
}

/// An append request: one event, or a list appended atomically.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum AppendBody {
    One(NewEventBody),
    Many(Vec<NewEventBody>),
}

/// Where one appended event landed.
#[derive(Serialize, ToSchema)]
pub struct Appended {
    seq: u64,
    version: u64,
    /// Hex RFC 6962 leaf hash.
    leaf_hash: String,
}

/// The events of one append, in request order.
#[derive(Serialize, ToSchema)]
pub struct AppendResult {
    events: Vec<Appended>,
}

/// The latest signed checkpoint, or a stored one by size, byte for byte as
/// `ledgerline checkpoint` prints it (C2SP tlog-checkpoint, signed note),
/// with the witness cosignatures the log keeps for it as further signature
/// lines (C2SP tlog-cosignature).
#[utoipa::path(
    get,
    path = "/v1/checkpoint",
    tag = "log",
    params(CheckpointQuery),
    responses(
        (status = 200, description = "The signed note", body = String, content_type = "text/plain"),
        (status = 400, description = "Bad query", body = super::error::ErrorBody),
        (status = 404, description = "No checkpoint of that size, or (witnessed=true) none cosigned by the quorum yet", body = super::error::ErrorBody),
    )
)]
pub async fn checkpoint(
    State(state): State<Arc<AppState>>,
    query: Result<Query<CheckpointQuery>, QueryRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let Query(query) = query?;
    let witnessed = query.witnessed.unwrap_or(false);
    if witnessed && query.size.is_some() {
        return Err(ApiError::BadRequest(
            "give size or witnessed=true, not both".into(),
        ));
    }
    let checkpoint = served_checkpoint(&state, query.size, witnessed).await?;
    Ok((
        [(CONTENT_TYPE, "text/plain; charset=utf-8")],
        checkpoint.note,
    ))
}

/// The checkpoint as every route serves it (`/v1/checkpoint`,
/// `/tlog/checkpoint`): the stored one of `size`, or
/// the latest, or (`witnessed`, under a witness policy) the latest one the
/// policy's quorum cosigned; its note carries the kept cosignatures
/// (`ledger::witnessed` builds it). Without a policy, `witnessed` asks for
/// the latest checkpoint.
pub async fn served_checkpoint(
    state: &AppState,
    size: Option<u64>,
    witnessed: bool,
) -> Result<SignedCheckpoint, ApiError> {
    let store = state.store.as_ref();
    if let (true, Some(witnessing)) = (witnessed, &state.witnessing) {
        return ledger::witnessed::latest_witnessed(store, &witnessing.policy)
            .await?
            .ok_or_else(|| {
                ApiError::NotFound(format!(
                    "no checkpoint has been cosigned by {} of the policy's witnesses yet",
                    witnessing.policy.quorum()
                ))
            });
    }
    match size {
        Some(size) => ledger::witnessed::served(store, Some(size))
            .await?
            .ok_or_else(|| {
                ApiError::NotFound(format!(
                    "no checkpoint of size {size} is stored; omit size for the latest"
                ))
            }),
        None => ledger::witnessed::served(store, None)
            .await?
            .ok_or_else(|| ApiError::Internal("the log has no checkpoint yet".into())),
    }
}

async fn latest(state: &AppState) -> Result<SignedCheckpoint, ApiError> {
    state
        .store
        .latest_checkpoint()
        .await?
        .ok_or_else(|| ApiError::Internal("the log has no checkpoint yet".into()))
}

/// The verifier key of the checkpoint signatures.
#[utoipa::path(
    get,
    path = "/v1/key",
    tag = "log",
    responses((status = 200, description = "The verifier key", body = VerifierKey))
)]
pub async fn key(State(state): State<Arc<AppState>>) -> Json<VerifierKey> {
    Json(VerifierKey {
        key: state.store.verifier_key().to_string(),
    })
}

/// The most checkpoints one `GET /v1/checkpoints` returns.
pub const CHECKPOINTS_MAX: usize = 1000;
/// What `GET /v1/checkpoints` returns without a `limit`.
const CHECKPOINTS_DEFAULT: usize = 20;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CheckpointsQuery {
    /// How many of the newest checkpoints to return: default 20, at most 1000.
    limit: Option<usize>,
}

/// One stored checkpoint.
#[derive(Serialize, ToSchema)]
pub struct CheckpointEntry {
    /// Tree size.
    size: u64,
    /// Hex RFC 6962 root hash.
    root: String,
    /// The signed note, exactly as the log signed it.
    note: String,
}

/// Stored checkpoints, newest first.
#[derive(Serialize, ToSchema)]
pub struct CheckpointList {
    checkpoints: Vec<CheckpointEntry>,
}

/// The newest stored checkpoints, newest first, each note with the witness
/// cosignatures the log keeps for it, the same bytes as
/// `GET /v1/checkpoint?size=N`. Public, as a checkpoint is: a history to
/// check consistency proofs and cosignatures against.
#[utoipa::path(
    get,
    path = "/v1/checkpoints",
    tag = "log",
    params(CheckpointsQuery),
    responses(
        (status = 200, description = "Checkpoints, newest first", body = CheckpointList),
        (status = 400, description = "Bad query", body = super::error::ErrorBody),
    )
)]
pub async fn checkpoints(
    State(state): State<Arc<AppState>>,
    query: Result<Query<CheckpointsQuery>, QueryRejection>,
) -> Result<Json<CheckpointList>, ApiError> {
    let Query(query) = query?;
    let limit = bounded_limit(query.limit, CHECKPOINTS_DEFAULT, CHECKPOINTS_MAX)?;
    let store = state.store.as_ref();
    let mut checkpoints = Vec::new();
    for checkpoint in store.newest_checkpoints(limit).await? {
        let served = ledger::witnessed::with_cosignatures(store, checkpoint).await?;
        checkpoints.push(CheckpointEntry {
            size: served.size,
            root: hex::encode(served.root),
            note: served.note,
        });
    }
    Ok(Json(CheckpointList { checkpoints }))
}

/// One witness of the server's witness policy.
#[derive(Serialize, ToSchema)]
pub struct WitnessEntry {
    /// The policy's label for the witness.
    name: String,
    /// Its C2SP `cosignature/v1` verifier key,
    /// `<key name>+<hex8 key id>+base64(0x04 || Ed25519 public key)`.
    verifier_key: String,
}

/// The witness policy the server runs with: whose cosignatures it asks
/// for, and how many make a checkpoint witnessed.
#[derive(Serialize, ToSchema)]
pub struct WitnessList {
    /// Valid cosignatures a checkpoint needs to count as witnessed; 0 when
    /// the server runs without a witness policy.
    quorum: usize,
    /// The policy's witnesses, in its order; empty without a policy.
    witnesses: Vec<WitnessEntry>,
}

/// The witnesses of `serve --witness-policy` and their verifier keys, so a
/// reader can check the cosignatures on a checkpoint (the console does, in
/// the browser). Public, as the policy file is. A reader who does not take
/// the server's word for the keys compares them with the witnesses' own.
#[utoipa::path(
    get,
    path = "/v1/witnesses",
    tag = "log",
    responses((status = 200, description = "The witness policy; empty without one", body = WitnessList))
)]
pub async fn witnesses(State(state): State<Arc<AppState>>) -> Json<WitnessList> {
    let Some(witnessing) = &state.witnessing else {
        return Json(WitnessList {
            quorum: 0,
            witnesses: Vec::new(),
        });
    };
    let policy = &witnessing.policy;
    Json(WitnessList {
        quorum: policy.quorum(),
        witnesses: policy
            .witnesses()
            .iter()
            .map(|w| WitnessEntry {
                name: w.name.clone(),
                verifier_key: w.verifier.verifier_key(),
            })
            .collect(),
    })
}

fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    bounded_limit(limit, PAGE_EVENTS_DEFAULT, PAGE_EVENTS_MAX)
}

/// A `limit` query parameter: `default` when absent, refused above `max`.
fn bounded_limit(limit: Option<usize>, default: usize, max: usize) -> Result<usize, ApiError> {
    match limit {
        None => Ok(default),
        Some(limit) if limit <= max => Ok(limit),
        Some(limit) => Err(ApiError::BadRequest(format!(
            "limit is {limit}; it must be at most {max}"
        ))),
    }
}

/// Events in seq order, the same objects as `ledgerline events` (admin and
/// auditor keys). A page holds at most `limit` events and ends at the event
/// that takes its leaves to 4 MiB; it is streamed as it is read, and
/// `next` is the `from` of the following page.
#[utoipa::path(
    get,
    path = "/v1/events",
    tag = "log",
    params(PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of events: at most `limit`, ending at the event that takes its leaves to 4 MiB", body = EventPage),
        (status = 400, description = "Bad query, or `from` beyond any log (2^63 or more)", body = super::error::ErrorBody),
        (status = 401, description = "No valid API key", body = super::error::ErrorBody),
        (status = 403, description = "Role may not read the log", body = super::error::ErrorBody),
    )
)]
pub async fn events(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    authorize(&principal, Action::ReadLog, None)?;
    let Query(query) = query?;
    let mut page = PageCursor::new(
        state.store.clone(),
        None,
        query.from.unwrap_or(0),
        page_limit(query.limit)?,
    );
    // The first chunk is read before the response starts, so that a bad
    // `from` or a log that does not answer gets its own status code.
    let first = page.read_chunk().await?;
    Ok(page.into_response(first))
}

/// Where a page of events (of the log, or of one stream) stands as it
/// streams out.
struct PageCursor {
    store: Arc<dyn EventStore>,
    /// The stream paged through; `None` for the whole log.
    stream: Option<String>,
    /// The seq (for a stream: the version) after the last event read: the
    /// page's `next`.
    next: u64,
    events_left: usize,
    leaf_bytes_left: usize,
}

impl PageCursor {
    fn new(
        store: Arc<dyn EventStore>,
        stream: Option<String>,
        from: u64,
        limit: usize,
    ) -> PageCursor {
        PageCursor {
            store,
            stream,
            next: from,
            events_left: limit,
            leaf_bytes_left: PAGE_LEAF_BYTES_MAX,
        }
    }

    /// The page's next events, as many as one chunk holds; none once the
    /// page is complete or the log (or stream) ends.
    async fn read_chunk(&mut self) -> Result<Vec<StoredEvent>, StoreError> {
        if self.leaf_bytes_left == 0 {
            return Ok(Vec::new());
        }
        let leaf_bytes_max = self.leaf_bytes_left.min(PAGE_CHUNK_LEAF_BYTES);
        let events = match &self.stream {
            None => {
                self.store
                    .read_range_bytes(self.next, self.events_left, leaf_bytes_max)
                    .await?
            }
            Some(stream) => {
                self.store
                    .read_stream_bytes(stream, self.next, self.events_left, leaf_bytes_max)
                    .await?
            }
        };
        let leaf_bytes: usize = events.iter().map(|e| e.leaf.len()).sum();
        self.leaf_bytes_left = self.leaf_bytes_left.saturating_sub(leaf_bytes);
        self.events_left -= events.len();
        if let Some(last) = events.last() {
            self.next = match self.stream {
                None => last.seq + 1,
                Some(_) => last.version + 1,
            };
        }
        Ok(events)
    }

    /// The page as a streamed JSON response, starting with `first`.
    fn into_response(self, first: Vec<StoredEvent>) -> Response {
        (
            [(CONTENT_TYPE, "application/json")],
            Body::from_stream(self.into_json(first)),
        )
            .into_response()
    }

    /// The page as an [`EventPage`] document, one chunk of events at a
    /// time, starting with `first`. A store error after the first chunk can
    /// only cut the body short, which the client sees as a broken response.
    fn into_json(
        self,
        first: Vec<StoredEvent>,
    ) -> impl futures::Stream<Item = Result<Vec<u8>, StoreError>> + Send {
        let start = (self, Some(first), true);
        futures::stream::unfold(Some(start), |state| async move {
            let (mut page, chunk, opening) = state?;
            let chunk = match chunk {
                Some(chunk) => chunk,
                None => match page.read_chunk().await {
                    Ok(chunk) => chunk,
                    Err(error) => {
                        tracing::error!("a page of events ended early: {error}");
                        return Some((Err(error), None));
                    }
                },
            };
            let mut json = Vec::new();
            if opening {
                json.extend_from_slice(b"{\"events\":[");
            }
            if chunk.is_empty() {
                json.extend_from_slice(format!("],\"next\":{}}}", page.next).as_bytes());
                return Some((Ok(json), None));
            }
            for (index, event) in chunk.iter().enumerate() {
                if index > 0 || !opening {
                    json.push(b',');
                }
                serde_json::to_writer(&mut json, event).expect("a JSON value serializes");
            }
            Some((Ok(json), Some((page, None, false))))
        })
    }
}

/// One stream's events in version order (admin and auditor keys), paged
/// and streamed as `/v1/events` is.
#[utoipa::path(
    get,
    path = "/v1/streams/{stream}",
    tag = "log",
    params(("stream" = String, Path, description = "Stream name"), PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of the stream's events: at most `limit`, ending at the event that takes its leaves to 4 MiB", body = EventPage),
        (status = 400, description = "Bad stream name or query", body = super::error::ErrorBody),
        (status = 401, description = "No valid API key", body = super::error::ErrorBody),
        (status = 403, description = "Role may not read the log", body = super::error::ErrorBody),
        (status = 404, description = "No such stream", body = super::error::ErrorBody),
    )
)]
pub async fn stream(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    authorize(&principal, Action::ReadLog, None)?;
    let Path(stream) = path?;
    let Query(query) = query?;
    ledger::envelope::validate_stream_name(&stream)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let from = query.from.unwrap_or(0);
    let limit = page_limit(query.limit)?;
    let mut page = PageCursor::new(state.store.clone(), Some(stream.clone()), from, limit);
    let first = page.read_chunk().await?;
    // A page of no events from version 0 may still be of a stream that
    // exists, when the limit is 0.
    if first.is_empty()
        && from == 0
        && (limit > 0 || state.store.read_stream(&stream, 0, 1).await?.is_empty())
    {
        return Err(ApiError::NotFound(format!(
            "stream {stream:?} has no events"
        )));
    }
    Ok(page.into_response(first))
}

/// Inclusion proof of the event at `seq` in the tree of `size` leaves.
#[utoipa::path(
    get,
    path = "/v1/proofs/inclusion",
    tag = "log",
    params(InclusionQuery),
    responses(
        (status = 200, description = "The proof", body = InclusionProof),
        (status = 400, description = "Missing or out-of-range seq or size", body = super::error::ErrorBody),
    )
)]
pub async fn inclusion_proof(
    State(state): State<Arc<AppState>>,
    query: Result<Query<InclusionQuery>, QueryRejection>,
) -> Result<Json<InclusionProof>, ApiError> {
    let Query(query) = query?;
    let size = match query.size {
        Some(size) => size,
        None => latest(&state).await?.size,
    };
    let proof = state.store.prove_inclusion(query.seq, size).await?;
    Ok(Json(InclusionProof {
        leaf_index: proof.leaf_index,
        tree_size: proof.tree_size,
        leaf_hash: hex::encode(proof.leaf_hash),
        root_hash: hex::encode(proof.root_hash),
        proof: proof.proof.iter().map(hex::encode).collect(),
    }))
}

/// Consistency proof between tree sizes `from` and `to`.
#[utoipa::path(
    get,
    path = "/v1/proofs/consistency",
    tag = "log",
    params(ConsistencyQuery),
    responses(
        (status = 200, description = "The proof", body = ConsistencyProof),
        (status = 400, description = "Missing or out-of-range sizes", body = super::error::ErrorBody),
    )
)]
pub async fn consistency_proof(
    State(state): State<Arc<AppState>>,
    query: Result<Query<ConsistencyQuery>, QueryRejection>,
) -> Result<Json<ConsistencyProof>, ApiError> {
    let Query(query) = query?;
    let to = match query.to {
        Some(to) => to,
        None => latest(&state).await?.size,
    };
    let proof = state.store.prove_consistency(query.from, to).await?;
    Ok(Json(ConsistencyProof {
        from_size: proof.from_size,
        to_size: proof.to_size,
        from_root: hex::encode(proof.from_root),
        to_root: hex::encode(proof.to_root),
        proof: proof.proof.iter().map(hex::encode).collect(),
    }))
}

/// Parses an append body: one event object or a list of them. Errors name
/// the event (by index in a list) and the field.
fn parse_append_body(value: serde_json::Value) -> Result<AppendBody, ApiError> {
    match value {
        serde_json::Value::Array(items) => {
            let events = items
                .into_iter()
                .enumerate()
                .map(|(index, item)| parse_event(item, &format!("event [{index}]")))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(AppendBody::Many(events))
        }
        value @ serde_json::Value::Object(_) => {
            Ok(AppendBody::One(parse_event(value, "the event")?))
        }
        _ => Err(ApiError::BadRequest(
            "the body must be an event object {\"type\",\"data\",...} or a list of them".into(),
        )),
    }
}

/// Parses one event object, field by field, so that every error names its field.
fn parse_event(value: serde_json::Value, at: &str) -> Result<NewEventBody, ApiError> {
    use serde_json::Value;
    let bad =
        |field: &str, want: &str| ApiError::BadRequest(format!("{at}: field `{field}` {want}"));
    let Value::Object(mut members) = value else {
        return Err(ApiError::BadRequest(format!(
            "{at} must be an object {{\"type\",\"data\",...}}"
        )));
    };
    let event_type = match members.remove("type") {
        Some(Value::String(text)) => text,
        Some(_) => return Err(bad("type", "must be a string")),
        None => return Err(bad("type", "is missing")),
    };
    let data = members
        .remove("data")
        .ok_or_else(|| bad("data", "is missing"))?;
    let expected_version = match members.remove("expected_version") {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            value
                .as_u64()
                .ok_or_else(|| bad("expected_version", "must be a non-negative integer"))?,
        ),
    };
    let id = match members.remove("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) => {
            Some(Uuid::parse_str(&text).map_err(|e| bad("id", &format!("must be a UUID: {e}")))?)
        }
        Some(_) => return Err(bad("id", "must be a UUID string")),
    };
    let schema = match members.remove("schema") {
        None | Some(Value::Null) => None,
        Some(value) => Some(
            value
                .as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| bad("schema", "must be an integer from 0 to 4294967295"))?,
        ),
    };
    if let Some(unknown) = members.keys().next() {
        return Err(bad(
            unknown,
            "is not an event field; use type, data, expected_version, id, schema",
        ));
    }
    Ok(NewEventBody {
        event_type,
        data,
        expected_version,
        id,
        schema,
    })
}

/// Appends one event, or a list atomically, to a stream (admin and ingest
/// keys). With an `Idempotency-Key`, a retry returns the first response and
/// appends nothing. The event types and streams of the generation engine and
/// the importers are refused ([`schemas::reserved`]): they are written only
/// by those writers, through their own endpoints.
#[utoipa::path(
    post,
    path = "/v1/streams/{stream}/events",
    tag = "log",
    params(
        ("stream" = String, Path, description = "Stream name"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: the same key and body return the first response"),
    ),
    request_body(content = AppendBody, content_type = "application/json"),
    security(("bearer" = [])),
    responses(
        (status = 201, description = "Durably appended", body = AppendResult),
        (status = 400, description = "Malformed body; the message names the field", body = super::error::ErrorBody),
        (status = 401, description = "No valid API key", body = super::error::ErrorBody),
        (status = 403, description = "Role may not append, or the stream or an event type is reserved for the generation engine and the importers (`generation.`, `catalog.`, `usage.`, `voice.` types; `generation-`, `voice-`, `party-`, `work-`, `recording-`, `policy-`, `usage-` streams)", body = super::error::ErrorBody),
        (status = 409, description = "Version conflict (typed in `error.conflict`), or an id or Idempotency-Key reused for other content", body = super::error::ErrorBody),
        (status = 413, description = "Body over 8 MiB", body = super::error::ErrorBody),
        (status = 415, description = "Body is not application/json", body = super::error::ErrorBody),
        (status = 422, description = "Event refused by the ledger: bad type, data not an object, an unsafe number (`unprocessable`), or a leaf over 65,535 bytes (`leaf_too_large`)", body = super::error::ErrorBody),
    )
)]
pub async fn append(
    State(state): State<Arc<AppState>>,
    principal: Principal,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
    request: Request,
) -> Result<(StatusCode, Json<AppendResult>), ApiError> {
    // The role and the path are checked before a byte of the body is read.
    authorize(&principal, Action::AppendEvents, None)?;
    let Path(stream) = path?;
    ledger::envelope::validate_stream_name(&stream)
        .map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let idempotency_key = idempotency_key(&headers)?;
    let JsonBody(body) = JsonBody::from_request(request, &()).await?;
    let bodies = match parse_append_body(body)? {
        AppendBody::One(event) => vec![event],
        AppendBody::Many(events) => events,
    };
    // 403, not 422: the events may be well formed; what is refused is this
    // caller writing them, since only the engine and the importers may.
    if let Some(refusal) = schemas::reserved::raw_append_refusal(
        &stream,
        bodies.iter().map(|body| body.event_type.as_str()),
    ) {
        return Err(ApiError::Forbidden(refusal));
    }
    let expected = match bodies.first() {
        Some(first) => first
            .expected_version
            .map_or(ExpectedVersion::Any, ExpectedVersion::Exact),
        None => ExpectedVersion::Any,
    };
    if let Some(index) = bodies
        .iter()
        .skip(1)
        .position(|e| e.expected_version.is_some())
    {
        return Err(ApiError::BadRequest(format!(
            "event [{}]: expected_version may only be given on the first event of a request",
            index + 1
        )));
    }
    let events = bodies
        .into_iter()
        .enumerate()
        .map(|(index, body)| NewEvent {
            id: body.id.or_else(|| {
                idempotency_key.as_ref().map(|key| {
                    let name = format!("{}\n{key}\n{index}", principal.key_id);
                    Uuid::new_v5(&IDEMPOTENCY_NAMESPACE, name.as_bytes())
                })
            }),
            event_type: body.event_type,
            schema: body.schema.unwrap_or(1),
            data: body.data,
        })
        .collect();
    let started = Instant::now();
    let result = state
        .store
        .append(AppendRequest::new(stream, expected, events))
        .await;
    let appended = match result {
        Ok(appended) => appended,
        Err(error) => {
            state.metrics.record_append_failure();
            return Err(match (&error, &idempotency_key) {
                (StoreError::IdReused { .. }, Some(key)) => ApiError::Reused(format!(
                    "Idempotency-Key {key:?} was first used for a different request ({error}); use a new key for a new request"
                )),
                _ => error.into(),
            });
        }
    };
    state
        .metrics
        .record_append(appended.len(), started.elapsed());
    let events = appended
        .iter()
        .map(|a| Appended {
            seq: a.seq,
            version: a.version,
            leaf_hash: hex::encode(a.leaf_hash),
        })
        .collect();
    Ok((StatusCode::CREATED, Json(AppendResult { events })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::PartialSchema;

    /// The documented `Event` schema names exactly the members
    /// `StoredEvent` serializes, so the OpenAPI document cannot drift from it.
    #[test]
    fn event_schema_matches_the_cli_objects() {
        let event = ledger::StoredEvent {
            seq: 3,
            stream: "s".into(),
            version: 0,
            id: Uuid::nil(),
            event_type: "t".into(),
            leaf: b"{}".to_vec(),
            leaf_hash: [0; 32],
        };
        let json = serde_json::to_value(&event).unwrap();
        let mut members: Vec<_> = json.as_object().unwrap().keys().cloned().collect();
        members.sort();
        let schema = serde_json::to_value(Event::schema()).unwrap();
        let mut documented: Vec<_> = schema["properties"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        documented.sort();
        assert_eq!(members, documented);
    }

    #[test]
    fn append_bodies_are_one_event_or_a_list() {
        let body = serde_json::json!([{"type": "t", "data": {}}, {"type": "t", "data": {}, "expected_version": 1}]);
        let AppendBody::Many(events) = parse_append_body(body).unwrap() else {
            panic!("a list parses as many events");
        };
        assert_eq!(events.len(), 2);
        assert!(matches!(
            parse_append_body(serde_json::json!("text")),
            Err(ApiError::BadRequest(_))
        ));
        let missing = parse_append_body(serde_json::json!({"data": {}}));
        assert!(matches!(missing, Err(ApiError::BadRequest(m)) if m.contains("type")));
    }
}
