//! Request bodies: media type checked first (415), size bounded (413) before
//! anything is parsed; JSON is then parsed (400 naming what was wrong).

use super::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};

/// The largest body any endpoint accepts: room for many events of up to
/// 1 MiB each or a usage report of the most lines one import takes, small
/// enough that a body never strains memory.
pub const BODY_BYTES_MAX: usize = 8 << 20;

/// A JSON request body (`Content-Type: application/json`), at most
/// [`BODY_BYTES_MAX`] bytes.
pub struct JsonBody(pub serde_json::Value);

/// A CSV request body (`Content-Type: text/csv`), at most [`BODY_BYTES_MAX`] bytes.
pub struct CsvBody(pub Bytes);

/// A JSON request body kept as its text, for parsers of their own formats.
pub struct JsonText(pub String);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(request, state, "application/json").await?;
        let value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
        Ok(JsonBody(value))
    }
}

impl<S: Send + Sync> FromRequest<S> for CsvBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        Ok(CsvBody(read_body(request, state, "text/csv").await?))
    }
}

impl<S: Send + Sync> FromRequest<S> for JsonText {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = read_body(request, state, "application/json").await?;
        let text = String::from_utf8(bytes.to_vec()).map_err(|e| {
            ApiError::BadRequest(format!(
                "the body is not UTF-8 (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ))
        })?;
        Ok(JsonText(text))
    }
}

/// The request's media type (`Content-Type` without parameters, lowercase),
/// if it sent a readable one.
pub fn media_type(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get(CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .map(|value| {
            value
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
}

/// Checks the media type, then reads at most [`BODY_BYTES_MAX`] bytes.
async fn read_body<S: Send + Sync>(
    request: Request,
    state: &S,
    wanted: &str,
) -> Result<Bytes, ApiError> {
    let media_type = media_type(request.headers());
    if media_type.as_deref() != Some(wanted) {
        return Err(ApiError::UnsupportedMediaType(format!(
            "the body must be sent as `Content-Type: {wanted}`, not {}",
            media_type.map_or("a body without Content-Type".to_string(), |t| format!(
                "{t:?}"
            ))
        )));
    }
    // A declared length over the limit is refused before any byte is read;
    // a chunked body is cut off by the limit layer as it arrives.
    let declared = request
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<u64>().ok());
    if let Some(size_bytes) = declared {
        if size_bytes > BODY_BYTES_MAX as u64 {
            return Err(ApiError::PayloadTooLarge(format!(
                "the body is {size_bytes} bytes; the limit is {BODY_BYTES_MAX} bytes (8 MiB): send less per request"
            )));
        }
    }
    Ok(Bytes::from_request(request, state).await?)
}
