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
use crate::registry::event_types::{self, EventTypes};
use crate::registry::integrations::{self, Integrations};
use crate::registry::segments;
use crate::registry::webhooks::{self, Webhooks};
use crate::registry::workflows::{self, Workflows};
use crate::registry::{self, api_keys, deliveries, Request as RegistryRequest};
use crate::state::AppState;
use crate::{contacts, health, ingest, metrics};

pub(crate) type HttpResponse = Response<Full<Bytes>>;

/// Which route a path names, with the ids it carries.
#[derive(Debug, Clone, Copy)]
enum Route<'a> {
    Healthz,
    Readyz,
    Metrics,
    OpenApi,
    SdkScript,
    Store,
    ApiKeys,
    ApiKey(&'a str),
    Integrations,
    Integration(&'a str),
    EventTypes(&'a str),
    EventType(&'a str),
    ApiEvent(&'a str),
    ApiBatch(&'a str),
    WebhookEvent { store: &'a str, alias: &'a str },
    SdkEvent { store: &'a str, alias: &'a str },
    Contacts,
    Contact(&'a str),
    Activities(&'a str),
    ContactSegments(&'a str),
    Segments,
    Segment(&'a str),
    SegmentContacts(&'a str),
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
            ["openapi.json"] => Route::OpenApi,
            ["sdk", "v1", "sluice.js"] => Route::SdkScript,
            ["v1", "store"] => Route::Store,
            ["v1", "api-keys"] => Route::ApiKeys,
            ["v1", "api-keys", id] => Route::ApiKey(id),
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
            ["v1", "contacts"] => Route::Contacts,
            ["v1", "contacts", email] => Route::Contact(email),
            ["v1", "contacts", email, "activities"] => Route::Activities(email),
            ["v1", "contacts", email, "segments"] => Route::ContactSegments(email),
            ["v1", "segments"] => Route::Segments,
            ["v1", "segments", id] => Route::Segment(id),
            ["v1", "segments", id, "contacts"] => Route::SegmentContacts(id),
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
            Route::OpenApi => "openapi",
            Route::SdkScript => "sdk_script",
            Route::Store => "store",
            Route::ApiKeys => "api_keys",
            Route::ApiKey(_) => "api_key",
            Route::Integrations => "custom_integrations",
            Route::Integration(_) => "custom_integration",
            Route::EventTypes(_) => "custom_event_types",
            Route::EventType(_) => "custom_event_type",
            Route::ApiEvent(_) => "ingest_api",
            Route::ApiBatch(_) => "ingest_batch",
            Route::WebhookEvent { .. } => "ingest_webhook",
            Route::SdkEvent { .. } => "ingest_sdk",
            Route::Contacts => "contacts",
            Route::Contact(_) => "contact",
            Route::Activities(_) => "contact_activities",
            Route::ContactSegments(_) => "contact_segments",
            Route::Segments => "segments",
            Route::Segment(_) => "segment",
            Route::SegmentContacts(_) => "segment_contacts",
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
            Route::Healthz
            | Route::Readyz
            | Route::Metrics
            | Route::OpenApi
            | Route::SdkScript
            | Route::Store => "GET, HEAD",
            Route::ApiKey(_) => "DELETE",
            Route::Contacts
            | Route::Activities(_)
            | Route::ContactSegments(_)
            | Route::SegmentContacts(_)
            | Route::Deliveries(_) => "GET, HEAD",
            Route::Contact(_) => "GET, HEAD, PATCH, DELETE",
            Route::ApiEvent(_)
            | Route::ApiBatch(_)
            | Route::WebhookEvent { .. }
            | Route::WebhookTest(_)
            | Route::DeliveryRetry { .. } => "POST",
            Route::SdkEvent { .. } => "POST, OPTIONS",
            Route::ApiKeys
            | Route::Integrations
            | Route::EventTypes(_)
            | Route::Segments
            | Route::Webhooks
            | Route::Workflows => "GET, HEAD, POST",
            Route::Integration(_) | Route::Webhook(_) | Route::Workflow(_) => {
                "GET, HEAD, PATCH, DELETE"
            }
            Route::EventType(_) | Route::Segment(_) => "GET, HEAD, PUT, DELETE",
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
    // A registry handler's request: the path's ids, the head and the body.
    macro_rules! req {
        ($params:expr) => {
            RegistryRequest::new($params, parts, incoming)
        };
    }
    match (route, &parts.method) {
        (Route::WebhookEvent { store, alias }, &Method::POST) => {
            ingest::webhook(state, store, alias, parts, incoming).await
        }
        (Route::SdkEvent { store, alias }, &Method::POST) => {
            let client = state.config.trusted_proxies.client(peer, headers);
            Ok(ingest::sdk(state, store, alias, client, parts, incoming).await)
        }
        (Route::SdkEvent { .. }, &Method::OPTIONS) => Ok(ingest::sdk_preflight()),
        (Route::ApiEvent(alias), &Method::POST) => {
            ingest::api(state, &caller().await?, alias, parts, incoming).await
        }
        (Route::ApiBatch(alias), &Method::POST) => {
            ingest::batch(state, &caller().await?, alias, parts, incoming).await
        }
        (Route::Contacts, &Method::GET) => contacts::list(state, &caller().await?, query).await,
        (Route::Contact(email), &Method::PATCH) => {
            contacts::patch(state, &caller().await?, req!(email)).await
        }
        (Route::Contact(email), &Method::DELETE) => {
            contacts::erase(state, &caller().await?, email).await
        }
        (Route::Contact(email), &Method::GET) => {
            contacts::get(state, &caller().await?, email).await
        }
        (Route::Activities(email), &Method::GET) => {
            contacts::activities(state, &caller().await?, email, query).await
        }
        (Route::ContactSegments(email), &Method::GET) => {
            contacts::segments(state, &caller().await?, email, query).await
        }
        (Route::Segments, &Method::POST) => {
            segments::create(state, &caller().await?, req!(())).await
        }
        (Route::Segments, &Method::GET) => segments::list(state, &caller().await?, req!(())).await,
        (Route::Segment(id), &Method::GET) => {
            segments::get(state, &caller().await?, req!(id)).await
        }
        (Route::Segment(id), &Method::PUT) => {
            segments::replace(state, &caller().await?, req!(id)).await
        }
        (Route::Segment(id), &Method::DELETE) => {
            segments::delete(state, &caller().await?, id).await
        }
        (Route::SegmentContacts(id), &Method::GET) => {
            contacts::members(state, &caller().await?, id, query).await
        }
        (Route::Healthz, &Method::GET) => Ok(health::live()),
        (Route::Readyz, &Method::GET) => health::ready(state).await,
        (Route::Metrics, &Method::GET) => Ok(prometheus()),
        (Route::OpenApi, &Method::GET) => Ok(openapi()),
        (Route::SdkScript, &Method::GET) => Ok(crate::sdk::script(headers)),
        (Route::Store, &Method::GET) => registry::stores::show(db, &caller().await?).await,
        (Route::ApiKeys, &Method::POST) => {
            api_keys::create(state, &caller().await?, req!(())).await
        }
        (Route::ApiKeys, &Method::GET) => api_keys::list(state, &caller().await?).await,
        (Route::ApiKey(id), &Method::DELETE) => api_keys::delete(state, &caller().await?, id).await,
        (Route::Integrations, &Method::POST) => {
            integrations::create(state, &caller().await?, req!(())).await
        }
        (Route::Integrations, &Method::GET) => {
            registry::list::<Integrations>(state, &caller().await?, req!(())).await
        }
        (Route::Integration(id), &Method::GET) => {
            registry::get::<Integrations>(state, &caller().await?, req!(id)).await
        }
        (Route::Integration(id), &Method::PATCH) => {
            integrations::patch(state, &caller().await?, req!(id)).await
        }
        (Route::Integration(id), &Method::DELETE) => {
            integrations::delete(state, &caller().await?, req!(id)).await
        }
        (Route::EventTypes(id), &Method::POST) => {
            event_types::create(state, &caller().await?, req!(id)).await
        }
        (Route::EventTypes(id), &Method::GET) => {
            event_types::list(state, &caller().await?, req!(id)).await
        }
        (Route::EventType(id), &Method::GET) => {
            registry::get::<EventTypes>(state, &caller().await?, req!(id)).await
        }
        (Route::EventType(id), &Method::PUT) => {
            event_types::replace(state, &caller().await?, req!(id)).await
        }
        (Route::EventType(id), &Method::DELETE) => {
            event_types::delete(state, &caller().await?, req!(id)).await
        }
        (Route::Webhooks, &Method::POST) => {
            webhooks::create(state, &caller().await?, req!(())).await
        }
        (Route::Webhooks, &Method::GET) => {
            registry::list::<Webhooks>(state, &caller().await?, req!(())).await
        }
        (Route::Webhook(id), &Method::GET) => {
            registry::get::<Webhooks>(state, &caller().await?, req!(id)).await
        }
        (Route::Webhook(id), &Method::PATCH) => {
            webhooks::patch(state, &caller().await?, req!(id)).await
        }
        (Route::Webhook(id), &Method::DELETE) => {
            registry::delete::<Webhooks>(state, &caller().await?, req!(id)).await
        }
        (Route::WebhookTest(id), &Method::POST) => {
            deliveries::test(state, &caller().await?, req!(id)).await
        }
        (Route::Deliveries(id), &Method::GET) => {
            deliveries::list(state, &caller().await?, req!(id)).await
        }
        (Route::DeliveryRetry { webhook, delivery }, &Method::POST) => {
            deliveries::retry(state, &caller().await?, req!((webhook, delivery))).await
        }
        (Route::Workflows, &Method::POST) => {
            workflows::create(state, &caller().await?, req!(())).await
        }
        (Route::Workflows, &Method::GET) => {
            registry::list::<Workflows>(state, &caller().await?, req!(())).await
        }
        (Route::Workflow(id), &Method::GET) => {
            registry::get::<Workflows>(state, &caller().await?, req!(id)).await
        }
        (Route::Workflow(id), &Method::PATCH) => {
            workflows::patch(state, &caller().await?, req!(id)).await
        }
        (Route::Workflow(id), &Method::DELETE) => {
            registry::delete::<Workflows>(state, &caller().await?, req!(id)).await
        }
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

/// The OpenAPI 3.1 document of every route, kept beside the code (a test holds the two to
/// each other).
const OPENAPI: &str = include_str!("../openapi.json");

fn openapi() -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from_static(OPENAPI.as_bytes())));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    // The document changes only with the binary; a client may keep it for an hour.
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("public, max-age=3600"),
    );
    response
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// One of each route, with ids filled in.
    fn every_route() -> Vec<Route<'static>> {
        let every = vec![
            Route::Healthz,
            Route::Readyz,
            Route::Metrics,
            Route::OpenApi,
            Route::SdkScript,
            Route::Store,
            Route::ApiKeys,
            Route::ApiKey("k"),
            Route::Integrations,
            Route::Integration("i"),
            Route::EventTypes("i"),
            Route::EventType("t"),
            Route::ApiEvent("a"),
            Route::ApiBatch("a"),
            Route::WebhookEvent {
                store: "s",
                alias: "a",
            },
            Route::SdkEvent {
                store: "s",
                alias: "a",
            },
            Route::Contacts,
            Route::Contact("c"),
            Route::Activities("c"),
            Route::ContactSegments("c"),
            Route::Segments,
            Route::Segment("s"),
            Route::SegmentContacts("s"),
            Route::Webhooks,
            Route::Webhook("w"),
            Route::WebhookTest("w"),
            Route::Deliveries("w"),
            Route::DeliveryRetry {
                webhook: "w",
                delivery: "d",
            },
            Route::Workflows,
            Route::Workflow("w"),
        ];
        for route in &every {
            // No wildcard: a new route fails to compile here until it is listed above too.
            match route {
                Route::Healthz
                | Route::Readyz
                | Route::Metrics
                | Route::OpenApi
                | Route::SdkScript
                | Route::Store
                | Route::ApiKeys
                | Route::ApiKey(_)
                | Route::Integrations
                | Route::Integration(_)
                | Route::EventTypes(_)
                | Route::EventType(_)
                | Route::ApiEvent(_)
                | Route::ApiBatch(_)
                | Route::WebhookEvent { .. }
                | Route::SdkEvent { .. }
                | Route::Contacts
                | Route::Contact(_)
                | Route::Activities(_)
                | Route::ContactSegments(_)
                | Route::Segments
                | Route::Segment(_)
                | Route::SegmentContacts(_)
                | Route::Webhooks
                | Route::Webhook(_)
                | Route::WebhookTest(_)
                | Route::Deliveries(_)
                | Route::DeliveryRetry { .. }
                | Route::Workflows
                | Route::Workflow(_) => {}
                Route::Unknown => panic!("not a route"),
            }
        }
        every
    }

    fn methods(list: &str) -> BTreeSet<String> {
        list.split(", ")
            .filter(|m| !m.is_empty())
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn the_openapi_document_names_every_route_and_method_and_no_other() {
        let document: serde_json::Value = serde_json::from_str(OPENAPI).expect("valid JSON");
        assert_eq!(document["openapi"].as_str().map(|v| &v[..4]), Some("3.1."));
        let paths = document["paths"].as_object().expect("paths");
        let mut documented = BTreeSet::new();
        for (template, operations) in paths {
            // Each `{parameter}` stands for one segment.
            let segments: Vec<&str> = template
                .split('/')
                .filter(|s| !s.is_empty())
                .map(|s| if s.starts_with('{') { "x" } else { s })
                .collect();
            let route = Route::of(&segments);
            assert!(
                !matches!(route, Route::Unknown),
                "{template} is documented but the router does not know it"
            );
            let mut listed: BTreeSet<String> = operations
                .as_object()
                .expect("path item")
                .keys()
                .filter(|k| {
                    ["get", "head", "post", "put", "patch", "delete", "options"]
                        .contains(&k.as_str())
                })
                .map(|k| k.to_uppercase())
                .collect();
            // HEAD is GET without the body, for every GET route.
            if listed.contains("GET") {
                listed.insert("HEAD".to_owned());
            }
            assert_eq!(
                listed,
                methods(route.allowed()),
                "{template}: documented methods against the router's"
            );
            assert!(
                documented.insert(route.label()),
                "{template}: a second path for {}",
                route.label()
            );
        }
        for route in every_route() {
            assert!(
                documented.contains(route.label()),
                "the route {} is not in openapi.json",
                route.label()
            );
        }
    }

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
