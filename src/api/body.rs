//! Request bodies: media type checked first (415), size bounded (413) before
//! anything is parsed, then parsed as JSON (400 naming what was wrong).

use super::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};

/// The largest JSON body any endpoint accepts: room for many events of up
/// to 1 MiB each, small enough that a body never strains memory.
pub const JSON_BODY_BYTES_MAX: usize = 8 << 20;

/// A JSON request body (`Content-Type: application/json`), at most
/// [`JSON_BODY_BYTES_MAX`] bytes.
pub struct JsonBody(pub serde_json::Value);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let media_type = request
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .map(|value| {
                value
                    .split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            });
        if media_type.as_deref() != Some("application/json") {
            return Err(ApiError::UnsupportedMediaType(format!(
                "the body must be JSON sent as `Content-Type: application/json`, not {}",
                media_type.map_or("a body without Content-Type".to_string(), |t| format!(
                    "{t:?}"
                ))
            )));
        }
        // A declared length over the limit is refused before any byte is
        // read; a chunked body is cut off by the limit layer as it arrives.
        let declared = request
            .headers()
            .get(CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.parse::<u64>().ok());
        if let Some(size_bytes) = declared {
            if size_bytes > JSON_BODY_BYTES_MAX as u64 {
                return Err(too_large(size_bytes));
            }
        }
        let bytes = Bytes::from_request(request, state).await?;
        let value = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::BadRequest(format!("the body is not valid JSON: {e}")))?;
        Ok(JsonBody(value))
    }
}

fn too_large(size_bytes: u64) -> ApiError {
    ApiError::PayloadTooLarge(format!(
        "the body is {size_bytes} bytes; the limit is {JSON_BODY_BYTES_MAX} bytes (8 MiB): send fewer events per request"
    ))
}
