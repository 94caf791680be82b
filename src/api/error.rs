//! The API's one error type. Every failure, from a bad query parameter to a
//! stream version conflict, leaves the server as `{"error":{"code","message"}}`
//! with the status that names its cause. A 500's message is generic: its
//! detail is logged, under the request id the answer carries.

use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ledger::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

/// Why a request failed. The variant picks the status; the message says what
/// was wrong with the input and what would be accepted.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: malformed input; the message names the field.
    #[error("{0}")]
    BadRequest(String),
    /// 400 with a code of its own, for input a client handles specially
    /// (`territory_missing`).
    #[error("{message}")]
    BadRequestCoded { code: &'static str, message: String },
    /// 401: no API key, or one that is unknown or revoked.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: a valid key whose role does not allow this.
    #[error("{0}")]
    Forbidden(String),
    /// 404: nothing at this path.
    #[error("{0}")]
    NotFound(String),
    /// 405: the path exists, the method does not.
    #[error("this path does not accept the {0} method")]
    MethodNotAllowed(String),
    /// 409: the stream does not hold the expected number of events.
    #[error("{message}")]
    VersionConflict {
        message: String,
        stream: String,
        expected: u64,
        actual: u64,
    },
    /// 409: an event id (or an `Idempotency-Key`) reused for different content.
    #[error("{0}")]
    Reused(String),
    /// 409: what the request would record is recorded already (a consent
    /// withdrawn twice).
    #[error("{0}")]
    AlreadyRecorded(String),
    /// 413: the request body is larger than the endpoint accepts.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// 415: the request body is not of a media type the endpoint accepts.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// 422: well-formed JSON whose content the ledger refuses.
    #[error("{0}")]
    Unprocessable(String),
    /// 422: an event whose leaf would be over 65,535 bytes, the most a
    /// tlog-tiles entry bundle carries.
    #[error("{0}")]
    LeafTooLarge(String),
    /// 429: a bounded queue is full; retry after this many seconds.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after_s: u64 },
    /// 503: the server is shutting down.
    #[error("{0}")]
    Unavailable(String),
    /// 500: a failure of the server or its storage, not of the request.
    #[error("{0}")]
    Internal(String),
}

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong: a stable machine-readable code and a sentence for people.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable identifier, e.g. `version_conflict`, `forbidden`, `bad_request`,
    /// `leaf_too_large`.
    pub code: &'static str,
    pub message: String,
    /// For `version_conflict`: the stream, and the version expected and found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conflict: Option<VersionConflictDetail>,
}

/// The typed part of a 409 version conflict, so a client can re-read and retry.
#[derive(Debug, Serialize, ToSchema)]
pub struct VersionConflictDetail {
    pub stream: String,
    pub expected_version: u64,
    pub actual_version: u64,
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::BadRequestCoded { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::VersionConflict { .. }
            | ApiError::Reused(_)
            | ApiError::AlreadyRecorded(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) | ApiError::LeafTooLarge(_) => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::BadRequest(_) => "bad_request",
            ApiError::BadRequestCoded { code, .. } => code,
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::Forbidden(_) => "forbidden",
            ApiError::NotFound(_) => "not_found",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::VersionConflict { .. } => "version_conflict",
            ApiError::Reused(_) => "id_reused",
            ApiError::AlreadyRecorded(_) => "already_recorded",
            ApiError::PayloadTooLarge(_) => "payload_too_large",
            ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
            ApiError::Unprocessable(_) => "unprocessable",
            ApiError::LeafTooLarge(_) => "leaf_too_large",
            ApiError::TooManyRequests { .. } => "too_many_requests",
            ApiError::Unavailable(_) => "unavailable",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, "request failed");
        }
        let conflict = match &self {
            ApiError::VersionConflict {
                stream,
                expected,
                actual,
                ..
            } => Some(VersionConflictDetail {
                stream: stream.clone(),
                expected_version: *expected,
                actual_version: *actual,
            }),
            _ => None,
        };
        let retry_after_s = match &self {
            ApiError::TooManyRequests { retry_after_s, .. } => Some(*retry_after_s),
            _ => None,
        };
        let message = match &self {
            // The detail of a server failure can name files and database
            // internals: it goes to the log (above), tagged with the
            // request id, and the client gets the id to quote.
            ApiError::Internal(_) => match super::current_request_id() {
                Some(id) => format!(
                    "the server failed to answer; its log has the detail under request id {id}"
                ),
                None => "the server failed to answer; its log has the detail".to_string(),
            },
            _ => self.to_string(),
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code(),
                message,
                conflict,
            },
        };
        let mut response = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            // RFC 6750 section 3: a 401 names the scheme the client should use.
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if let Some(seconds) = retry_after_s {
            // RFC 9110 section 10.2.3: delay-seconds.
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        }
        if status.is_client_error() {
            // Many refusals (401, 403, 413, 415) come before the request
            // body is read, and then the server closes the connection once
            // the answer is sent. Saying so (RFC 9112 section 9.6) keeps a
            // client from sending its next request down a connection that
            // is about to close, which it would see as a reset.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        response
    }
}

impl ApiError {
    /// A library error with no status of its own: 400 when the request
    /// caused it (`client_error`, the library's `is_client_error`), else 500.
    pub fn classified(client_error: bool, error: impl std::fmt::Display) -> ApiError {
        if client_error {
            ApiError::BadRequest(error.to_string())
        } else {
            ApiError::Internal(error.to_string())
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        let message = error.to_string();
        match error {
            StoreError::VersionConflict {
                stream,
                expected,
                actual,
            } => ApiError::VersionConflict {
                message,
                stream,
                expected,
                actual,
            },
            StoreError::IdReused { .. } => ApiError::Reused(message),
            StoreError::BadEvent(ledger::envelope::EnvelopeError::TooLarge { .. }) => {
                ApiError::LeafTooLarge(message)
            }
            StoreError::BadEvent(_) => ApiError::Unprocessable(message),
            StoreError::TooManyEvents { .. }
            | StoreError::EmptyAppend
            | StoreError::OutOfRange { .. } => ApiError::BadRequest(message),
            StoreError::Merkle(ledger::merkle::MerkleError::Read(_)) => ApiError::Internal(message),
            StoreError::Merkle(_) => ApiError::BadRequest(message),
            StoreError::NoCheckpoint(_) | StoreError::NoLog(_) => ApiError::NotFound(message),
            StoreError::Closed => ApiError::Unavailable(message),
            StoreError::ReadOnly
            | StoreError::Backend(_)
            | StoreError::Corrupt(_)
            | StoreError::OriginMismatch { .. }
            | StoreError::ForeignKey { .. }
            | StoreError::SchemaBehind { .. } => ApiError::Internal(message),
        }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::BadRequest(format!("query string: {}", rejection.body_text()))
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::BadRequest(format!("path: {}", rejection.body_text()))
    }
}

impl From<BytesRejection> for ApiError {
    fn from(rejection: BytesRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(format!(
                "the request body is too large: {}",
                rejection.body_text()
            ))
        } else {
            ApiError::BadRequest(format!(
                "cannot read the request body: {}",
                rejection.body_text()
            ))
        }
    }
}
