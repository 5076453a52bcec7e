//! Liveness and readiness, kept apart: a live gateway whose store is down is not ready.

use http::StatusCode;

use crate::body;
use crate::error::ApiError;
use crate::routes::HttpResponse;
use crate::state::AppState;

/// `GET /healthz`: the process answers.
pub(crate) fn live() -> HttpResponse {
    body::json(StatusCode::OK, &serde_json::json!({"status": "ok"}))
}

/// `GET /readyz`: the queue takes writes and the store answers.
pub(crate) async fn ready(state: &AppState) -> Result<HttpResponse, ApiError> {
    if !state.queue.is_ready() {
        return Err(ApiError::Unavailable {
            detail: "the event queue is not accepting writes",
            retry_after_secs: 1,
        });
    }
    match consumer::db::ping(&state.db).await {
        Ok(()) => Ok(body::json(
            StatusCode::OK,
            &serde_json::json!({"status": "ready", "queue": "ok", "store": "ok"}),
        )),
        Err(error) => {
            tracing::warn!(%error, "store not reachable");
            Err(ApiError::Unavailable {
                detail: "the store is not reachable",
                retry_after_secs: 1,
            })
        }
    }
}
