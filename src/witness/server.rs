//! The witness's HTTP interface: `POST /add-checkpoint` (C2SP tlog-witness),
//! served with the same connection limits and timeouts as the API.

use super::cosign::{Decision, Witness};
use super::protocol::{REQUEST_BYTES_MAX, TLOG_SIZE_CONTENT_TYPE};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use std::sync::Arc;

/// The router of a witness.
pub fn router(witness: Arc<Witness>) -> Router {
    Router::new()
        .route("/add-checkpoint", post(add_checkpoint))
        .layer(DefaultBodyLimit::max(REQUEST_BYTES_MAX))
        .with_state(witness)
}

fn text(status: StatusCode, content_type: &'static str, body: String) -> Response {
    (status, [(CONTENT_TYPE, content_type)], body).into_response()
}

async fn add_checkpoint(State(witness): State<Arc<Witness>>, body: Bytes) -> Response {
    let decided = tokio::task::spawn_blocking({
        let witness = witness.clone();
        move || witness.add_checkpoint(&body)
    })
    .await;
    let decision = match decided {
        Ok(Ok(decision)) => decision,
        Ok(Err(error)) => {
            tracing::error!("the witness could not record a checkpoint: {error:#}");
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain; charset=utf-8",
                "the witness could not record the checkpoint; see its log\n".into(),
            );
        }
        Err(error) => {
            tracing::error!("the witness's decision failed: {error}");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    match decision {
        Decision::Cosigned(lines) => {
            tracing::info!("cosigned a checkpoint");
            text(StatusCode::OK, "text/plain; charset=utf-8", lines)
        }
        Decision::Conflict {
            latest_size,
            reason,
        } => {
            tracing::info!(latest_size, "409: {reason}");
            text(
                StatusCode::CONFLICT,
                TLOG_SIZE_CONTENT_TYPE,
                format!("{latest_size}\n"),
            )
        }
        Decision::Refused { status, reason } => {
            tracing::info!(status, "refused: {reason}");
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
            text(status, "text/plain; charset=utf-8", format!("{reason}\n"))
        }
    }
}
