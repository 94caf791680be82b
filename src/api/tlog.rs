//! The C2SP tlog-tiles read API (<https://c2sp.org/tlog-tiles>) under
//! `/tlog/`: the checkpoint, hash tiles and entry bundles, public like the
//! checkpoint, so that any tlog-tiles client (a monitor, a witness, Go's
//! `sumdb/tlog` tile reader) can mirror and check the log.
//!
//! Full tiles are immutable and cached for a year by anyone (and in memory
//! here, [`super::tile_cache`]); partial tiles and the checkpoint change as
//! the log grows and are cached briefly.

use super::error::ApiError;
use super::AppState;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, Uri};
use axum::response::{IntoResponse, Response};
use ledger::store::tiles::{read_entry_bundle, read_hash_tile, TileReadError};
use ledger::tile::{Tile, TileKind};
use std::sync::Arc;

/// A full tile never changes (RFC 8246 `immutable`).
const CACHE_FULL_TILE: &str = "public, max-age=31536000, immutable";
/// A partial tile is replaced by a wider one as the log grows.
const CACHE_PARTIAL_TILE: &str = "public, max-age=60";
/// The specification: the checkpoint's headers should prevent caching
/// beyond a few seconds.
const CACHE_CHECKPOINT: &str = "public, max-age=5";
const OCTET_STREAM: &str = "application/octet-stream";

/// The latest checkpoint (under a witness policy, the latest witnessed
/// one), exactly as `GET /v1/checkpoint` serves it: the same function
/// answers both.
#[utoipa::path(
    get,
    path = "/tlog/checkpoint",
    operation_id = "tlog_checkpoint",
    tag = "log",
    responses(
        (status = 200, description = "The signed checkpoint note (C2SP tlog-checkpoint), cacheable for 5 s", body = String, content_type = "text/plain; charset=utf-8"),
    )
)]
pub async fn checkpoint(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    let checkpoint = super::log::served_checkpoint(&state, None, true).await?;
    Ok((
        [
            (CONTENT_TYPE, "text/plain; charset=utf-8"),
            (CACHE_CONTROL, CACHE_CHECKPOINT),
        ],
        checkpoint.note,
    )
        .into_response())
}

/// A hash tile (`tile/<L>/<N>[.p/<W>]`, 32-byte hashes of tree level 8L)
/// or an entry bundle (`tile/entries/<N>[.p/<W>]`, each leaf behind its
/// big-endian 16-bit length).
#[utoipa::path(
    get,
    path = "/tlog/tile/{path}",
    operation_id = "tlog_tile",
    tag = "log",
    params(("path" = String, Path, description = "The rest of the tile path, slashes included: `<L>/<N>[.p/<W>]` or `entries/<N>[.p/<W>]`, N in 3-digit groups (`x001/x234/067`)")),
    responses(
        (status = 200, description = "The tile's bytes; a full tile is cacheable for a year (immutable), a partial one for 60 s", body = Vec<u8>, content_type = "application/octet-stream"),
        (status = 400, description = "Not a canonical tlog-tiles path", body = super::error::ErrorBody),
        (status = 404, description = "The tree does not have this tile (yet)", body = super::error::ErrorBody),
    )
)]
pub async fn tile(State(state): State<Arc<AppState>>, uri: Uri) -> Result<Response, ApiError> {
    // The raw path, not a decoded one: `%2F` is no slash, and a tile has
    // one spelling.
    let path = uri.path().strip_prefix("/tlog/").unwrap_or_default();
    let tile = Tile::parse_path(path).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    if let Some(data) = state.tiles.get(&tile) {
        return Ok(tile_response(&tile, data));
    }
    let size = state.store.size().await?;
    if !tile.is_within(size) {
        return Err(ApiError::NotFound(format!(
            "{tile}: the tree of {size} leaves does not have this tile"
        )));
    }
    let read = match tile.kind {
        TileKind::Hashes { .. } => read_hash_tile(state.store.as_ref(), &tile).await,
        TileKind::Entries => read_entry_bundle(state.store.as_ref(), &tile).await,
    };
    let data = Bytes::from(read.map_err(|error| match error {
        TileReadError::Store(error) => ApiError::from(error),
        other => ApiError::Internal(other.to_string()),
    })?);
    state.tiles.insert(tile, data.clone());
    Ok(tile_response(&tile, data))
}

fn tile_response(tile: &Tile, data: Bytes) -> Response {
    let cache = if tile.is_full() {
        CACHE_FULL_TILE
    } else {
        CACHE_PARTIAL_TILE
    };
    (
        [
            (CONTENT_TYPE, HeaderValue::from_static(OCTET_STREAM)),
            (CACHE_CONTROL, HeaderValue::from_static(cache)),
        ],
        data,
    )
        .into_response()
}
