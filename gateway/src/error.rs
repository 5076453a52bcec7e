//! The gateway's one error type at the HTTP boundary and its one mapping to status codes.
//! Every 4xx/5xx answer is `application/problem+json`; internal causes are logged, never sent.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use http_body_util::Full;
use schemas::Violation;
use serde::Serialize;

use crate::log_throttle::Throttle;

/// Why a request was refused.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("{detail}")]
    BadRequestCode { detail: String, code: &'static str },
    #[error("a valid API key is required")]
    Unauthorized,
    /// An event whose sender's signature or credentials do not verify.
    #[error("{0}")]
    Unverified(&'static str),
    #[error("the API key lacks the scope {0}")]
    Forbidden(&'static str),
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("method not allowed; this resource allows {0}")]
    MethodNotAllowed(&'static str),
    #[error("the request body did not arrive in time")]
    RequestTimeout,
    #[error("this Idempotency-Key was used with a different body")]
    IdempotencyConflict,
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    #[error("{0}")]
    UnsupportedMediaType(&'static str),
    #[error("the body has {} validation error(s)", .0.len())]
    Unprocessable(Vec<Violation>),
    #[error("rate limit exceeded")]
    RateLimited(RateLimitHeaders),
    #[error("{detail}")]
    Unavailable {
        detail: &'static str,
        retry_after_secs: u64,
    },
    #[error("internal error")]
    Internal(#[from] InternalError),
}

/// The rate-limit headers a 429 carries (SPEC §5).
#[derive(Debug, Clone, Copy)]
pub(crate) struct RateLimitHeaders {
    pub limit: u32,
    pub remaining: u32,
    pub reset_secs: u64,
}

/// A failure that is ours, not the client's: logged with its cause, answered as a bare 500.
#[derive(Debug, thiserror::Error)]
pub(crate) enum InternalError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

#[derive(Serialize)]
struct Problem<'a> {
    status: u16,
    title: &'a str,
    detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    code: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    errors: Option<&'a [Violation]>,
}

impl ApiError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) | ApiError::BadRequestCode { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized | ApiError::Unverified(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            ApiError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ApiError::Conflict(_) => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            ApiError::Unprocessable(_) | ApiError::IdempotencyConflict => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            ApiError::RateLimited(_) => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The problem+json body, also used for the items of a batch answer.
    pub(crate) fn problem(&self) -> serde_json::Value {
        let status = self.status();
        if let ApiError::Internal(cause) = self {
            static FAILED: Throttle = Throttle::new();
            if let Some(left_out) = FAILED.allow() {
                tracing::error!(error = %cause, left_out, "request failed");
            }
        }
        let detail = match self {
            ApiError::Internal(_) => "the server could not complete the request".to_owned(),
            other => other.to_string(),
        };
        let code = match self {
            ApiError::BadRequestCode { code, .. } => Some(*code),
            ApiError::IdempotencyConflict => Some("E0601"),
            _ => None,
        };
        let errors = match self {
            ApiError::Unprocessable(violations) => Some(violations.as_slice()),
            _ => None,
        };
        let problem = Problem {
            status: status.as_u16(),
            title: status.canonical_reason().unwrap_or("Error"),
            detail,
            code,
            errors,
        };
        serde_json::to_value(&problem).unwrap_or_default()
    }

    /// The problem+json answer for this error.
    pub(crate) fn into_response(self) -> Response<Full<Bytes>> {
        let status = self.status();
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        match &self {
            ApiError::RateLimited(limits) => {
                headers.insert(header::RETRY_AFTER, limits.reset_secs.into());
                headers.insert("ratelimit-limit", limits.limit.into());
                headers.insert("ratelimit-remaining", limits.remaining.into());
                headers.insert("ratelimit-reset", limits.reset_secs.into());
            }
            ApiError::Unavailable {
                retry_after_secs, ..
            } => {
                headers.insert(header::RETRY_AFTER, (*retry_after_secs).into());
            }
            ApiError::Unauthorized => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("apiKey"));
            }
            ApiError::MethodNotAllowed(allowed) => {
                headers.insert(header::ALLOW, HeaderValue::from_static(allowed));
            }
            _ => {}
        }
        response
    }
}

impl From<sqlx::Error> for ApiError {
    /// A store that cannot be reached right now is the sender's cue to retry (503 with
    /// `Retry-After`); anything else the store says is our fault (500).
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => {
                static UNREACHABLE: Throttle = Throttle::new();
                if let Some(left_out) = UNREACHABLE.allow() {
                    tracing::warn!(%error, left_out, "the store is not reachable");
                }
                ApiError::Unavailable {
                    detail: "the store is not reachable right now",
                    retry_after_secs: 1,
                }
            }
            error => ApiError::Internal(InternalError::Database(error)),
        }
    }
}

/// One violation as a 422.
pub(crate) fn violation(path: &str, message: impl Into<String>) -> ApiError {
    ApiError::Unprocessable(vec![Violation {
        path: path.to_owned(),
        message: message.into(),
    }])
}
