//! The route table: `match (route, method)` and one handler per route.

use std::time::Instant;

use bytes::Bytes;
use http::request::Parts;
use http::{header, Method, Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;

use crate::error::ApiError;
use crate::registry::{api_keys, event_types, integrations};
use crate::state::AppState;
use crate::{health, metrics};

pub(crate) type HttpResponse = Response<Full<Bytes>>;

/// Which route a path names, with the ids it carries.
#[derive(Debug, Clone, Copy)]
enum Route<'a> {
    Healthz,
    Readyz,
    Metrics,
    ApiKeys,
    Integrations,
    Integration(&'a str),
    EventTypes(&'a str),
    EventType(&'a str),
    Unknown,
}

impl<'a> Route<'a> {
    fn of(segments: &[&'a str]) -> Route<'a> {
        match segments {
            ["healthz"] => Route::Healthz,
            ["readyz"] => Route::Readyz,
            ["metrics"] => Route::Metrics,
            ["v1", "api-keys"] => Route::ApiKeys,
            ["v1", "custom-integrations"] => Route::Integrations,
            ["v1", "custom-integrations", id] => Route::Integration(id),
            ["v1", "custom-integrations", id, "custom-event-types"] => Route::EventTypes(id),
            ["v1", "custom-event-types", id] => Route::EventType(id),
            _ => Route::Unknown,
        }
    }

    /// The metric label: a fixed name per route, never the ids in the path.
    fn label(self) -> &'static str {
        match self {
            Route::Healthz => "healthz",
            Route::Readyz => "readyz",
            Route::Metrics => "metrics",
            Route::ApiKeys => "api_keys",
            Route::Integrations => "custom_integrations",
            Route::Integration(_) => "custom_integration",
            Route::EventTypes(_) => "custom_event_types",
            Route::EventType(_) => "custom_event_type",
            Route::Unknown => "unknown",
        }
    }
}

/// Answers one request; every error becomes its problem+json response here.
pub(crate) async fn handle(state: AppState, request: Request<Incoming>) -> HttpResponse {
    let started = Instant::now();
    let (parts, incoming) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let route = Route::of(&segments);
    let response = dispatch(&state, route, &parts, incoming)
        .await
        .unwrap_or_else(ApiError::into_response);
    metrics::record_request(route.label(), response.status(), started.elapsed());
    response
}

async fn dispatch(
    state: &AppState,
    route: Route<'_>,
    parts: &Parts,
    incoming: Incoming,
) -> Result<HttpResponse, ApiError> {
    let db = &state.db;
    let headers = &parts.headers;
    let query = parts.uri.query();
    let caller = || state.keys.authenticate(db, headers);
    let base = || base_url(state, parts);
    match (route, &parts.method) {
        (Route::Healthz, &Method::GET) => Ok(health::live()),
        (Route::Readyz, &Method::GET) => health::ready(state).await,
        (Route::Metrics, &Method::GET) => Ok(prometheus()),
        (Route::ApiKeys, &Method::POST) => {
            api_keys::create(db, &caller().await?, headers, incoming).await
        }
        (Route::Integrations, &Method::POST) => {
            integrations::create(db, &caller().await?, headers, incoming).await
        }
        (Route::Integrations, &Method::GET) => {
            integrations::list(db, &caller().await?, query).await
        }
        (Route::Integration(id), &Method::GET) => integrations::get(db, &caller().await?, id).await,
        (Route::Integration(id), &Method::PATCH) => {
            integrations::patch(db, &caller().await?, id, headers, incoming).await
        }
        (Route::Integration(id), &Method::DELETE) => {
            integrations::delete(db, &caller().await?, id).await
        }
        (Route::EventTypes(id), &Method::POST) => {
            let caller = caller().await?;
            event_types::create(db, &caller, id, headers, incoming, &base()).await
        }
        (Route::EventTypes(id), &Method::GET) => {
            let caller = caller().await?;
            event_types::list(db, &caller, id, query, &base()).await
        }
        (Route::EventType(id), &Method::GET) => {
            event_types::get(db, &caller().await?, id, &base()).await
        }
        (Route::EventType(id), &Method::PUT) => {
            let caller = caller().await?;
            event_types::replace(db, &caller, id, headers, incoming, &base()).await
        }
        (Route::EventType(id), &Method::DELETE) => {
            event_types::delete(db, &caller().await?, id).await
        }
        (Route::Unknown, _) => Err(ApiError::NotFound("route")),
        _ => Err(ApiError::MethodNotAllowed),
    }
}

fn prometheus() -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from(metrics::render())));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    response
}

/// The base of `endpointUrl`s: `--public-url`, else the scheme-less Host the client used.
fn base_url(state: &AppState, parts: &Parts) -> String {
    if let Some(url) = &state.config.public_url {
        return url.as_str().trim_end_matches('/').to_owned();
    }
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.parse::<http::uri::Authority>().ok())
        .or_else(|| parts.uri.authority().cloned());
    match host {
        Some(host) => format!("http://{host}"),
        None => format!("http://{}", state.config.listen),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_ignore_trailing_slashes_and_label_without_ids() {
        let path = "/v1/custom-integrations/abc/custom-event-types/";
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let route = Route::of(&segments);
        assert!(matches!(route, Route::EventTypes("abc")));
        assert_eq!(route.label(), "custom_event_types");
        assert!(matches!(Route::of(&["v1", "nope"]), Route::Unknown));
    }
}
