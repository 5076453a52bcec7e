//! The route table: `match (route, method)` and one handler per route.

use std::net::IpAddr;
use std::time::Instant;

use bytes::Bytes;
use http::request::Parts;
use http::{header, Method, Request, Response, Version};
use http_body_util::Full;
use hyper::body::Incoming;

use crate::error::ApiError;
use crate::http_body::RequestBody;
use crate::registry::{api_keys, deliveries, event_types, integrations, webhooks, workflows};
use crate::state::AppState;
use crate::{contacts, health, ingest, metrics};

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
    ApiEvent(&'a str),
    ApiBatch(&'a str),
    WebhookEvent { store: &'a str, alias: &'a str },
    SdkEvent { store: &'a str, alias: &'a str },
    Contact(&'a str),
    Activities(&'a str),
    Webhooks,
    Webhook(&'a str),
    WebhookTest(&'a str),
    Deliveries(&'a str),
    DeliveryRetry { webhook: &'a str, delivery: &'a str },
    Workflows,
    Workflow(&'a str),
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
            ["v1", "custom-events", "alias", alias] => Route::ApiEvent(alias),
            ["v1", "custom-events", "alias", alias, "batch"] => Route::ApiBatch(alias),
            ["v1", store, "custom-events", "alias", alias] => Route::WebhookEvent { store, alias },
            ["v1", store, "sdk", "custom-events", "alias", alias] => {
                Route::SdkEvent { store, alias }
            }
            ["v1", "contacts", email] => Route::Contact(email),
            ["v1", "contacts", email, "activities"] => Route::Activities(email),
            ["v1", "webhooks"] => Route::Webhooks,
            ["v1", "webhooks", id] => Route::Webhook(id),
            ["v1", "webhooks", id, "test"] => Route::WebhookTest(id),
            ["v1", "webhooks", id, "deliveries"] => Route::Deliveries(id),
            ["v1", "webhooks", webhook, "deliveries", delivery, "retry"] => {
                Route::DeliveryRetry { webhook, delivery }
            }
            ["v1", "workflows"] => Route::Workflows,
            ["v1", "workflows", id] => Route::Workflow(id),
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
            Route::ApiEvent(_) => "ingest_api",
            Route::ApiBatch(_) => "ingest_batch",
            Route::WebhookEvent { .. } => "ingest_webhook",
            Route::SdkEvent { .. } => "ingest_sdk",
            Route::Contact(_) => "contact",
            Route::Activities(_) => "contact_activities",
            Route::Webhooks => "webhooks",
            Route::Webhook(_) => "webhook",
            Route::WebhookTest(_) => "webhook_test",
            Route::Deliveries(_) => "webhook_deliveries",
            Route::DeliveryRetry { .. } => "webhook_delivery_retry",
            Route::Workflows => "workflows",
            Route::Workflow(_) => "workflow",
            Route::Unknown => "unknown",
        }
    }

    /// The methods a route answers, for `Allow` on a 405.
    fn allowed(self) -> &'static str {
        match self {
            Route::Healthz | Route::Readyz | Route::Metrics => "GET, HEAD",
            Route::Contact(_) | Route::Activities(_) | Route::Deliveries(_) => "GET, HEAD",
            Route::ApiKeys
            | Route::ApiEvent(_)
            | Route::ApiBatch(_)
            | Route::WebhookEvent { .. }
            | Route::WebhookTest(_)
            | Route::DeliveryRetry { .. } => "POST",
            Route::SdkEvent { .. } => "POST, OPTIONS",
            Route::Integrations | Route::EventTypes(_) | Route::Webhooks | Route::Workflows => {
                "GET, HEAD, POST"
            }
            Route::Integration(_) | Route::Webhook(_) | Route::Workflow(_) => {
                "GET, HEAD, PATCH, DELETE"
            }
            Route::EventType(_) => "GET, HEAD, PUT, DELETE",
            Route::Unknown => "",
        }
    }
}

/// Answers one request; every error becomes its problem+json response here.
pub(crate) async fn handle(
    state: AppState,
    peer: IpAddr,
    request: Request<Incoming>,
) -> HttpResponse {
    let started = Instant::now();
    let (mut parts, incoming) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let route = Route::of(&segments);
    // HEAD is GET without the body, which hyper leaves out of the answer.
    if parts.method == Method::HEAD {
        parts.method = Method::GET;
    }
    let mut body = RequestBody::new(incoming, state.config.body_timeout);
    let mut response = match refuse_encoded(&parts) {
        Err(refused) => refused.into_response(),
        Ok(()) => dispatch(&state, route, peer, &parts, &mut body)
            .await
            .unwrap_or_else(ApiError::into_response),
    };
    if !body.is_finished() && parts.version <= Version::HTTP_11 {
        response.headers_mut().insert(
            header::CONNECTION,
            header::HeaderValue::from_static("close"),
        );
    }
    metrics::record_request(route.label(), response.status(), started.elapsed());
    response
}

/// Bodies are taken as sent: a compressed one would pass the size bound compressed and could
/// not be validated, so any coding but `identity` is refused.
fn refuse_encoded(parts: &Parts) -> Result<(), ApiError> {
    for value in parts.headers.get_all(header::CONTENT_ENCODING) {
        let identity = value.to_str().is_ok_and(|codings| {
            codings
                .split(',')
                .all(|coding| coding.trim().eq_ignore_ascii_case("identity"))
        });
        if !identity {
            return Err(ApiError::UnsupportedMediaType(
                "Content-Encoding is not supported; send the body uncompressed",
            ));
        }
    }
    Ok(())
}

async fn dispatch(
    state: &AppState,
    route: Route<'_>,
    peer: IpAddr,
    parts: &Parts,
    incoming: &mut RequestBody,
) -> Result<HttpResponse, ApiError> {
    let db = &state.db;
    let headers = &parts.headers;
    let query = parts.uri.query();
    let caller = || state.keys.authenticate(db, headers);
    let base = || base_url(state, parts);
    let private = state.config.delivery.allow_private_targets;
    match (route, &parts.method) {
        (Route::WebhookEvent { store, alias }, &Method::POST) => {
            ingest::webhook(state, store, alias, parts, incoming).await
        }
        (Route::SdkEvent { store, alias }, &Method::POST) => {
            Ok(ingest::sdk(state, store, alias, peer, parts, incoming).await)
        }
        (Route::SdkEvent { .. }, &Method::OPTIONS) => Ok(ingest::sdk_preflight()),
        (Route::ApiEvent(alias), &Method::POST) => {
            ingest::api(state, &caller().await?, alias, parts, incoming).await
        }
        (Route::ApiBatch(alias), &Method::POST) => {
            ingest::batch(state, &caller().await?, alias, parts, incoming).await
        }
        (Route::Contact(email), &Method::GET) => {
            contacts::get(state, &caller().await?, email).await
        }
        (Route::Activities(email), &Method::GET) => {
            contacts::activities(state, &caller().await?, email, query).await
        }
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
            // `eventsEnabled` may have changed: this gateway's aliases learn it at once.
            let caller = caller().await?;
            let response = integrations::patch(db, &caller, id, headers, incoming).await;
            state.types.forget_store(&caller.store_id);
            response
        }
        (Route::Integration(id), &Method::DELETE) => {
            let caller = caller().await?;
            let response = integrations::delete(db, &caller, id).await;
            state.types.forget_store(&caller.store_id);
            response
        }
        (Route::EventTypes(id), &Method::POST) => {
            let caller = caller().await?;
            let response =
                event_types::create(db, &caller, id, private, headers, incoming, &base()).await;
            state.types.forget_store(&caller.store_id);
            response
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
            let response =
                event_types::replace(db, &caller, id, private, headers, incoming, &base()).await;
            state.types.forget_store(&caller.store_id);
            response
        }
        (Route::EventType(id), &Method::DELETE) => {
            let caller = caller().await?;
            let response = event_types::delete(db, &caller, id).await;
            state.types.forget_store(&caller.store_id);
            response
        }
        (Route::Webhooks, &Method::POST) => {
            webhooks::create(db, &caller().await?, private, headers, incoming).await
        }
        (Route::Webhooks, &Method::GET) => webhooks::list(db, &caller().await?, query).await,
        (Route::Webhook(id), &Method::GET) => webhooks::get(db, &caller().await?, id).await,
        (Route::Webhook(id), &Method::PATCH) => {
            webhooks::patch(db, &caller().await?, id, private, headers, incoming).await
        }
        (Route::Webhook(id), &Method::DELETE) => webhooks::delete(db, &caller().await?, id).await,
        (Route::WebhookTest(id), &Method::POST) => {
            deliveries::test(db, &caller().await?, id, headers, incoming).await
        }
        (Route::Deliveries(id), &Method::GET) => {
            deliveries::list(db, &caller().await?, id, query).await
        }
        (Route::DeliveryRetry { webhook, delivery }, &Method::POST) => {
            deliveries::retry(db, &caller().await?, webhook, delivery).await
        }
        (Route::Workflows, &Method::POST) => {
            workflows::create(db, &caller().await?, headers, incoming).await
        }
        (Route::Workflows, &Method::GET) => workflows::list(db, &caller().await?, query).await,
        (Route::Workflow(id), &Method::GET) => workflows::get(db, &caller().await?, id).await,
        (Route::Workflow(id), &Method::PATCH) => {
            workflows::patch(db, &caller().await?, id, headers, incoming).await
        }
        (Route::Workflow(id), &Method::DELETE) => workflows::delete(db, &caller().await?, id).await,
        (Route::Unknown, _) => Err(ApiError::NotFound("route")),
        _ => Err(ApiError::MethodNotAllowed(route.allowed())),
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
