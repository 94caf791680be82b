//! `Idempotency-Key` for writes whose result the ledger cannot replay by
//! itself (catalog and usage imports, generation requests): the first
//! request with a key reserves it before its work starts, so exactly one
//! request does the work; its successful response is kept in the API's
//! records ([`super::records`]), and every other request with the same key
//! and the same request, concurrent or later, gets it back without running
//! again, from whichever node of a shared log it reaches. (Appends need no
//! record: their event ids are derived from the key, so the ledger's own
//! idempotency answers.)
//!
//! A kept response answers for [`IDEMPOTENCY_TTL`]; after that its key is
//! new again, and expired records are purged. A reservation holds its key
//! for at most [`RESERVATION_LEASE`]: one left by a server that stopped
//! mid-request is then taken over by the next request with the key.

use super::error::ApiError;
use super::records::Records;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use rusqlite::{params, OptionalExtension};
use sha2::{Digest, Sha256};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use time::OffsetDateTime;
use uuid::Uuid;

/// The longest `Idempotency-Key` accepted.
const KEY_BYTES_MAX: usize = 200;
/// How long a kept response answers retries of its key.
pub const IDEMPOTENCY_TTL: Duration = Duration::from_secs(24 * 60 * 60);
/// How long a reservation holds its key while its request runs; a request
/// with the same key waits for it at most this long.
pub const RESERVATION_LEASE: Duration = Duration::from_secs(60);
/// How often a request waiting on a reservation looks for its response.
const RESERVATION_POLL: Duration = Duration::from_millis(20);
/// At most one purge of all expired records per this interval per server.
const PURGE_INTERVAL_S: i64 = 60;
/// The `status` of a row that reserves its key for a request still running
/// (no HTTP status is 0); its `body` is the reservation's token.
const RESERVED: i32 = 0;

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

/// The time in Unix seconds: the system clock, or a test's.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// Kept first responses and reservations, per API key and idempotency key,
/// in the API's records (shared by every node of a PostgreSQL log).
pub struct IdempotencyStore {
    records: Arc<Records>,
    clock: Clock,
    /// When this server last purged expired records (Unix seconds).
    last_purge: AtomicI64,
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

/// What a request found when it tried to reserve its key.
enum Reservation {
    /// The key is this request's: it does the work.
    Reserved { token: String },
    /// An earlier request with the key and the same request answered this.
    Kept(KeptResponse),
    /// An earlier request with the key is still running.
    Running,
}

/// One row of `api_idempotency`: the request's hash, the status (or
/// [`RESERVED`]) and the body (or the reservation's token).
type Row = (Vec<u8>, i32, String);

impl IdempotencyStore {
    pub fn new(records: Arc<Records>) -> IdempotencyStore {
        IdempotencyStore::with_clock(
            records,
            Arc::new(|| OffsetDateTime::now_utc().unix_timestamp()),
        )
    }

    /// A store that reads the time from `clock`, so that tests can move it.
    pub fn with_clock(records: Arc<Records>, clock: Clock) -> IdempotencyStore {
        IdempotencyStore {
            records,
            clock,
            last_purge: AtomicI64::new(i64::MIN),
        }
    }

    /// Reserves `key` for this request, unless a response is kept for it
    /// or another request holds it. An expired response and a reservation
    /// past its lease no longer hold the key. 409 if the key was first used
    /// for a different request.
    async fn reserve(
        &self,
        api_key_id: &str,
        key: &str,
        request: &[u8; 32],
    ) -> Result<Reservation, ApiError> {
        let now = (self.clock)();
        self.purge_expired(now).await?;
        let expired_before = now - IDEMPOTENCY_TTL.as_secs() as i64;
        let lease_ended_before = now - RESERVATION_LEASE.as_secs() as i64;
        let token = Uuid::new_v4().to_string();
        let reserved = match self.records.as_ref() {
            Records::Sqlite(db) => {
                let (api_key_id, key, request, token) = (
                    api_key_id.to_string(),
                    key.to_string(),
                    request.to_vec(),
                    token.clone(),
                );
                db.run(move |conn| {
                    conn.execute(
                        "DELETE FROM api_idempotency
                         WHERE api_key_id = ?1 AND idempotency_key = ?2
                           AND (created_unix < ?3 OR (status = ?4 AND created_unix < ?5))",
                        params![
                            api_key_id,
                            key,
                            expired_before,
                            RESERVED,
                            lease_ended_before
                        ],
                    )?;
                    conn.execute(
                        "INSERT INTO api_idempotency
                           (api_key_id, idempotency_key, request_sha256, status, body, created_unix)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                         ON CONFLICT DO NOTHING",
                        params![api_key_id, key, request, RESERVED, token, now],
                    )
                })
                .await
                .map_err(internal)?
            }
            Records::Postgres(db) => {
                db.execute(
                    "DELETE FROM api_idempotency
                     WHERE api_key_id = $1 AND idempotency_key = $2
                       AND (created_unix < $3 OR (status = $4 AND created_unix < $5))",
                    &[
                        &api_key_id,
                        &key,
                        &expired_before,
                        &RESERVED,
                        &lease_ended_before,
                    ],
                )
                .await
                .map_err(internal)?;
                db.execute(
                    "INSERT INTO api_idempotency
                       (api_key_id, idempotency_key, request_sha256, status, body, created_unix)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT DO NOTHING",
                    &[
                        &api_key_id,
                        &key,
                        &request.to_vec(),
                        &RESERVED,
                        &token,
                        &now,
                    ],
                )
                .await
                .map_err(internal)? as usize
            }
        };
        if reserved == 1 {
            return Ok(Reservation::Reserved { token });
        }
        match self.row(api_key_id, key).await? {
            // Released or expired since the insert: try again.
            None => Ok(Reservation::Running),
            Some((hash, _, _)) if hash != request => Err(ApiError::Reused(format!(
                "Idempotency-Key {key:?} was first used for a different request; use a new key for a new request"
            ))),
            Some((_, RESERVED, _)) => Ok(Reservation::Running),
            Some((_, status, body)) => Ok(Reservation::Kept(KeptResponse {
                status: u16::try_from(status).map_err(internal)?,
                body,
            })),
        }
    }

    /// The row of `key`, if any.
    async fn row(&self, api_key_id: &str, key: &str) -> Result<Option<Row>, ApiError> {
        match self.records.as_ref() {
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
                .map_err(internal)
            }
            Records::Postgres(db) => Ok(db
                .query(
                    "SELECT request_sha256, status, body FROM api_idempotency
                     WHERE api_key_id = $1 AND idempotency_key = $2",
                    &[&api_key_id, &key],
                )
                .await
                .map_err(internal)?
                .first()
                .map(|row| (row.get(0), row.get(1), row.get(2)))),
        }
    }

    /// Keeps the response of the request that holds the reservation
    /// `token`; the TTL runs from now. Returns the response kept for the
    /// key: this one, or, where the reservation's lease ran out and another
    /// request answered first, that one.
    async fn keep(
        &self,
        api_key_id: &str,
        key: &str,
        token: &str,
        response: KeptResponse,
    ) -> Result<KeptResponse, ApiError> {
        let now = (self.clock)();
        let status = i32::from(response.status);
        let kept = match self.records.as_ref() {
            Records::Sqlite(db) => {
                let (api_key_id, key, token, body) = (
                    api_key_id.to_string(),
                    key.to_string(),
                    token.to_string(),
                    response.body.clone(),
                );
                db.run(move |conn| {
                    conn.execute(
                        "UPDATE api_idempotency SET status = ?1, body = ?2, created_unix = ?3
                         WHERE api_key_id = ?4 AND idempotency_key = ?5 AND status = ?6 AND body = ?7",
                        params![status, body, now, api_key_id, key, RESERVED, token],
                    )
                })
                .await
                .map_err(internal)?
            }
            Records::Postgres(db) => db
                .execute(
                    "UPDATE api_idempotency SET status = $1, body = $2, created_unix = $3
                     WHERE api_key_id = $4 AND idempotency_key = $5 AND status = $6 AND body = $7",
                    &[
                        &status,
                        &response.body,
                        &now,
                        &api_key_id,
                        &key,
                        &RESERVED,
                        &token,
                    ],
                )
                .await
                .map_err(internal)? as usize,
        };
        if kept == 1 {
            return Ok(response);
        }
        match self.row(api_key_id, key).await? {
            Some((_, status, body)) if status != RESERVED => Ok(KeptResponse {
                status: u16::try_from(status).map_err(internal)?,
                body,
            }),
            _ => Ok(response),
        }
    }

    /// Gives up the reservation `token` (its request failed, and a failure
    /// is not kept), so that a retry runs the work again.
    async fn release(&self, api_key_id: &str, key: &str, token: &str) -> Result<(), ApiError> {
        match self.records.as_ref() {
            Records::Sqlite(db) => {
                let (api_key_id, key, token) =
                    (api_key_id.to_string(), key.to_string(), token.to_string());
                db.run(move |conn| {
                    conn.execute(
                        "DELETE FROM api_idempotency
                         WHERE api_key_id = ?1 AND idempotency_key = ?2 AND status = ?3 AND body = ?4",
                        params![api_key_id, key, RESERVED, token],
                    )
                })
                .await
                .map_err(internal)?;
            }
            Records::Postgres(db) => {
                db.execute(
                    "DELETE FROM api_idempotency
                     WHERE api_key_id = $1 AND idempotency_key = $2 AND status = $3 AND body = $4",
                    &[&api_key_id, &key, &RESERVED, &token],
                )
                .await
                .map_err(internal)?;
            }
        }
        Ok(())
    }

    /// Deletes every record past its TTL, and every reservation past its
    /// lease, at most once per [`PURGE_INTERVAL_S`] on this server.
    async fn purge_expired(&self, now: i64) -> Result<(), ApiError> {
        let last = self.last_purge.load(Ordering::Relaxed);
        if now.saturating_sub(last) < PURGE_INTERVAL_S
            || self
                .last_purge
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_err()
        {
            return Ok(());
        }
        let expired_before = now - IDEMPOTENCY_TTL.as_secs() as i64;
        let lease_ended_before = now - RESERVATION_LEASE.as_secs() as i64;
        match self.records.as_ref() {
            Records::Sqlite(db) => {
                db.run(move |conn| {
                    conn.execute(
                        "DELETE FROM api_idempotency
                         WHERE created_unix < ?1 OR (status = ?2 AND created_unix < ?3)",
                        params![expired_before, RESERVED, lease_ended_before],
                    )
                })
                .await
                .map_err(internal)?;
            }
            Records::Postgres(db) => {
                db.execute(
                    "DELETE FROM api_idempotency
                     WHERE created_unix < $1 OR (status = $2 AND created_unix < $3)",
                    &[&expired_before, &RESERVED, &lease_ended_before],
                )
                .await
                .map_err(internal)?;
            }
        }
        Ok(())
    }
}

/// A reservation held by a running request. Dropped unreleased (the
/// client went away and the server dropped the request mid-work), it is
/// released in the background, so a retry need not wait out the lease.
struct Held {
    store: Arc<IdempotencyStore>,
    api_key_id: String,
    key: String,
    token: String,
    settled: bool,
}

impl Held {
    async fn keep(mut self, response: KeptResponse) -> Result<KeptResponse, ApiError> {
        self.settled = true;
        self.store
            .keep(&self.api_key_id, &self.key, &self.token, response)
            .await
    }

    async fn release(mut self) -> Result<(), ApiError> {
        self.settled = true;
        self.store
            .release(&self.api_key_id, &self.key, &self.token)
            .await
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let (store, api_key_id, key, token) = (
            self.store.clone(),
            std::mem::take(&mut self.api_key_id),
            std::mem::take(&mut self.key),
            std::mem::take(&mut self.token),
        );
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                if let Err(error) = store.release(&api_key_id, &key, &token).await {
                    tracing::warn!("cannot release an Idempotency-Key reservation: {error}");
                }
            });
        }
    }
}

/// Runs `work` once per `Idempotency-Key`: the first request with the key
/// reserves it and runs `work`; a request with the same key and the same
/// request, concurrent or later, waits for that one and gets its response
/// back without running `work`. Without a key, `work` simply runs. A
/// success answers `status` with the body `work` made; an error is not
/// kept, so a retry runs `work` again.
pub async fn once<T: serde::Serialize>(
    store: &Arc<IdempotencyStore>,
    api_key_id: &str,
    key: Option<&str>,
    request: [u8; 32],
    status: StatusCode,
    work: impl std::future::Future<Output = Result<T, ApiError>>,
) -> Result<Response, ApiError> {
    let render = |body: &T| -> Result<KeptResponse, ApiError> {
        Ok(KeptResponse {
            status: status.as_u16(),
            body: serde_json::to_string(body).map_err(internal)?,
        })
    };
    let Some(key) = key else {
        return Ok(render(&work.await?)?.into_response());
    };
    let token = loop {
        match store.reserve(api_key_id, key, &request).await? {
            Reservation::Reserved { token } => break token,
            Reservation::Kept(kept) => return Ok(kept.into_response()),
            // Bounded: a reservation past its lease is taken over.
            Reservation::Running => tokio::time::sleep(RESERVATION_POLL).await,
        }
    };
    let held = Held {
        store: store.clone(),
        api_key_id: api_key_id.to_string(),
        key: key.to_string(),
        token,
        settled: false,
    };
    match work.await.and_then(|body| render(&body)) {
        Ok(response) => Ok(held.keep(response).await?.into_response()),
        Err(error) => {
            held.release().await?;
            Err(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::records::RecordsLocation;
    use std::sync::atomic::AtomicUsize;

    /// A store over a fresh `api.db`, its clock at `now`.
    async fn store(dir: &std::path::Path, now: &Arc<AtomicI64>) -> Arc<IdempotencyStore> {
        let location = RecordsLocation::DataDir(dir.to_path_buf());
        let records = Arc::new(Records::open(&location, "test.example/api").await.unwrap());
        let now = now.clone();
        Arc::new(IdempotencyStore::with_clock(
            records,
            Arc::new(move || now.load(Ordering::SeqCst)),
        ))
    }

    /// Runs a write under `key` that counts its runs in `runs` and answers
    /// with the run's number.
    async fn write(store: &Arc<IdempotencyStore>, key: &str, runs: &AtomicUsize) -> String {
        let response = once(
            store,
            "api-key-1",
            Some(key),
            [7; 32],
            StatusCode::OK,
            async {
                // Yields, as real work does, so that concurrent requests interleave.
                tokio::time::sleep(Duration::from_millis(5)).await;
                Ok(runs.fetch_add(1, Ordering::SeqCst))
            },
        )
        .await
        .unwrap();
        let body = axum::body::to_bytes(response.into_body(), 1 << 10)
            .await
            .unwrap();
        String::from_utf8(body.to_vec()).unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_requests_with_one_key_run_the_work_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path(), &Arc::new(AtomicI64::new(1_000_000))).await;
        let runs = AtomicUsize::new(0);
        let answers = futures::future::join_all((0..12).map(|_| write(&store, "k", &runs))).await;
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert!(answers.iter().all(|a| a == "0"), "{answers:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_key_past_its_ttl_is_new_again() {
        let dir = tempfile::tempdir().unwrap();
        let now = Arc::new(AtomicI64::new(1_000_000));
        let store = store(dir.path(), &now).await;
        let runs = AtomicUsize::new(0);
        assert_eq!(write(&store, "k", &runs).await, "0");
        now.fetch_add(IDEMPOTENCY_TTL.as_secs() as i64 - 1, Ordering::SeqCst);
        assert_eq!(write(&store, "k", &runs).await, "0", "within the TTL");
        now.fetch_add(2, Ordering::SeqCst);
        assert_eq!(write(&store, "k", &runs).await, "1", "past the TTL");
        assert_eq!(runs.load(Ordering::SeqCst), 2);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn records_past_their_ttl_are_purged() {
        let dir = tempfile::tempdir().unwrap();
        let now = Arc::new(AtomicI64::new(1_000_000));
        let store = store(dir.path(), &now).await;
        let runs = AtomicUsize::new(0);
        for key in ["a", "b", "c"] {
            write(&store, key, &runs).await;
        }
        now.fetch_add(IDEMPOTENCY_TTL.as_secs() as i64 + 1, Ordering::SeqCst);
        write(&store, "d", &runs).await;
        let Records::Sqlite(db) = store.records.as_ref() else {
            unreachable!("a data directory's records are SQLite")
        };
        let keys: Vec<String> = db
            .run(|conn| {
                let mut statement = conn.prepare("SELECT idempotency_key FROM api_idempotency")?;
                let keys = statement
                    .query_map([], |row| row.get(0))?
                    .collect::<Result<Vec<String>, _>>();
                keys
            })
            .await
            .unwrap();
        assert_eq!(keys, ["d"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_request_releases_its_key() {
        let dir = tempfile::tempdir().unwrap();
        let store = store(dir.path(), &Arc::new(AtomicI64::new(1_000_000))).await;
        let failed = once(
            &store,
            "api-key-1",
            Some("k"),
            [7; 32],
            StatusCode::OK,
            async {
                Err::<u32, _>(ApiError::TooManyRequests {
                    message: "full".into(),
                    retry_after_s: 1,
                })
            },
        )
        .await;
        assert!(failed.is_err());
        let runs = AtomicUsize::new(0);
        assert_eq!(write(&store, "k", &runs).await, "0");
    }
}
