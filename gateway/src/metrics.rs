//! Every metric the gateway reports, by name, in one place (SPEC §8). Labels come from fixed
//! sets (route names, status codes, reasons), never from user input.

use std::sync::OnceLock;
use std::time::Duration;

use http::StatusCode;
use schemas::ReceiveType;

use crate::error::ApiError;
use metrics_exporter_prometheus::PrometheusHandle;

static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (once; later calls reuse it). Called by
/// `main`, and by tests that read `/metrics`.
pub fn install_recorder() -> Result<(), String> {
    HANDLE
        .get_or_init(|| {
            // The in-process consumer reports through the same recorder.
            consumer::install_recorder()
                .map_err(|e| e.to_string())
                .inspect(|_| describe())
        })
        .as_ref()
        .map(|_| ())
        .map_err(Clone::clone)
}

/// HELP text and units of the gateway's metrics, shown on `/metrics` beside each one.
fn describe() {
    use metrics::{describe_counter, describe_histogram, Unit};
    describe_counter!(
        "sluice_http_requests_total",
        Unit::Count,
        "HTTP requests answered, by route and status code."
    );
    describe_histogram!(
        "sluice_http_request_duration_seconds",
        Unit::Seconds,
        "Time from a request's head to its answer, by route."
    );
    describe_counter!(
        "sluice_events_accepted_total",
        Unit::Count,
        "Events answered 201 (durable in the queue), by receive type."
    );
    describe_counter!(
        "sluice_events_rejected_total",
        Unit::Count,
        "Events refused, by reason."
    );
    describe_counter!(
        "sluice_rate_limited_total",
        Unit::Count,
        "Requests answered 429 by a rate limit, by receive type."
    );
    describe_histogram!(
        "sluice_queue_publish_duration_seconds",
        Unit::Seconds,
        "Time to make a publish durable in the queue (embedded log sync or Kafka acks)."
    );
    describe_counter!(
        "sluice_http_connection_timeouts_total",
        Unit::Count,
        "Client connections closed for sending a request or taking an answer too slowly."
    );
    describe_counter!(
        "sluice_http_connections_shed_total",
        Unit::Count,
        "Quiet client connections closed to make room at the connection limit."
    );
    // Every series starts at 0, so rate() and increase() see the first event: a counter that
    // first appears already at 1 looks unchanged to them, and alerts on it never fire.
    for reason in REJECTED_REASONS {
        metrics::counter!("sluice_events_rejected_total", "reason" => reason).increment(0);
    }
    for path in [
        ReceiveType::Api,
        ReceiveType::Webhook,
        ReceiveType::WebMobileApp,
    ] {
        let label = receive_type_label(path);
        metrics::counter!("sluice_events_accepted_total", "receive_type" => label).increment(0);
        metrics::counter!("sluice_rate_limited_total", "receive_type" => label).increment(0);
    }
}

/// The Prometheus text exposition, empty when no recorder is installed.
pub(crate) fn render() -> String {
    HANDLE
        .get()
        .and_then(|installed| installed.as_ref().ok())
        .map(PrometheusHandle::render)
        .unwrap_or_default()
}

/// One answered HTTP request.
pub(crate) fn record_request(route: &'static str, status: StatusCode, elapsed: Duration) {
    metrics::counter!(
        "sluice_http_requests_total",
        "route" => route,
        "status" => status_label(status)
    )
    .increment(1);
    metrics::histogram!("sluice_http_request_duration_seconds", "route" => route)
        .record(elapsed.as_secs_f64());
}

fn status_label(status: StatusCode) -> &'static str {
    // `as_str` of a `StatusCode` borrows it; the codes we send are a fixed set anyway.
    match status.as_u16() {
        200 => "200",
        201 => "201",
        204 => "204",
        400 => "400",
        401 => "401",
        403 => "403",
        404 => "404",
        405 => "405",
        409 => "409",
        413 => "413",
        415 => "415",
        422 => "422",
        429 => "429",
        500 => "500",
        503 => "503",
        _ => "other",
    }
}

/// Events accepted (answered 201) on a receive path.
pub(crate) fn report_accepted(path: ReceiveType, events: u64) {
    metrics::counter!("sluice_events_accepted_total", "receive_type" => receive_type_label(path))
        .increment(events);
}

/// Why events are refused, as `sluice_events_rejected_total` labels them.
const REJECTED_REASONS: [&str; 16] = [
    "bad_request",
    "unknown_contact",
    "unauthorized",
    "signature",
    "forbidden",
    "unknown_event_type",
    "method_not_allowed",
    "timeout",
    "idempotency_conflict",
    "conflict",
    "too_large",
    "unsupported_media_type",
    "invalid",
    "rate_limited",
    "queue_unavailable",
    "internal",
];

fn rejected_reason(error: &ApiError) -> &'static str {
    match error {
        ApiError::BadRequest(_) => "bad_request",
        ApiError::BadRequestCode { .. } => "unknown_contact",
        ApiError::Unauthorized => "unauthorized",
        ApiError::Unverified(_) => "signature",
        ApiError::Forbidden(_) => "forbidden",
        ApiError::NotFound(_) => "unknown_event_type",
        ApiError::MethodNotAllowed(_) => "method_not_allowed",
        ApiError::RequestTimeout => "timeout",
        ApiError::IdempotencyConflict => "idempotency_conflict",
        ApiError::Conflict(_) => "conflict",
        ApiError::PayloadTooLarge(_) => "too_large",
        ApiError::UnsupportedMediaType(_) => "unsupported_media_type",
        ApiError::Unprocessable(_) => "invalid",
        ApiError::RateLimited(_) => "rate_limited",
        ApiError::Unavailable { .. } => "queue_unavailable",
        ApiError::Internal(_) => "internal",
    }
}

/// An event refused, by why.
pub(crate) fn report_rejected(error: &ApiError) {
    let reason = rejected_reason(error);
    debug_assert!(REJECTED_REASONS.contains(&reason), "{reason} is not listed");
    metrics::counter!("sluice_events_rejected_total", "reason" => reason).increment(1);
}

/// A request refused by a rate limit.
pub(crate) fn report_rate_limited(path: ReceiveType) {
    metrics::counter!("sluice_rate_limited_total", "receive_type" => receive_type_label(path))
        .increment(1);
}

/// Time to make a publish durable.
pub(crate) fn report_publish(elapsed: Duration) {
    metrics::histogram!("sluice_queue_publish_duration_seconds").record(elapsed.as_secs_f64());
}

fn receive_type_label(path: ReceiveType) -> &'static str {
    match path {
        ReceiveType::Api => "api",
        ReceiveType::Webhook => "webhook",
        ReceiveType::WebMobileApp => "web_mobile_app",
    }
}

/// A client connection closed for taking too long to send a request or take an answer.
pub(crate) fn report_connection_timeout() {
    metrics::counter!("sluice_http_connection_timeouts_total").increment(1);
}

/// A quiet client connection closed to make room for a new one at the connection limit.
pub(crate) fn report_connection_shed() {
    metrics::counter!("sluice_http_connections_shed_total").increment(1);
}
