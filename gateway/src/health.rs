//! Liveness and readiness, kept apart: a live gateway whose store is down is not ready.

use http::StatusCode;

use crate::error::ApiError;
use crate::http_body;
use crate::routes::HttpResponse;
use crate::state::AppState;

/// `GET /healthz`: the process answers.
pub(crate) fn live() -> HttpResponse {
    http_body::json(StatusCode::OK, &serde_json::json!({"status": "ok"}))
}

/// `GET /readyz`: the queue takes writes, the store answers, and the in-process consumer (if
/// any) is not stuck on a batch.
pub(crate) async fn ready(state: &AppState) -> Result<HttpResponse, ApiError> {
    if state
        .consumer
        .as_ref()
        .is_some_and(|health| health.is_stuck())
    {
        return Err(ApiError::Unavailable {
            detail: "the consumer has been failing to store a batch",
            retry_after_secs: 5,
        });
    }
    if !state.queue.is_ready() {
        return Err(ApiError::Unavailable {
            detail: "the event queue is not accepting writes",
            retry_after_secs: 1,
        });
    }
    match store::ping(&state.db).await {
        Ok(()) => Ok(http_body::json(
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
