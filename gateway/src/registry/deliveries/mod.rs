//! A subscription's deliveries: `POST /v1/webhooks/{id}/test`, `GET /v1/webhooks/{id}/deliveries`
//! and `POST /v1/webhooks/{id}/deliveries/{deliveryId}/retry`. The outbox they read and write is
//! `store::outbox`.

mod input;

use http::StatusCode;
use serde::Serialize;
use serde_json::json;
use store::outbox::{self, NewDelivery};
use store::registry::webhooks::Webhook;
use store::webhooks::{EventKind, Payload};

use super::Request;
use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::http_body;
use crate::pagination::encode_cursor;
use crate::routes::HttpResponse;
use crate::state::AppState;

/// The largest test body: it names one event type.
const MAX_TEST_BODY: usize = 64 * 1024;

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TestQueued {
    delivery_id: String,
    message_id: String,
    #[serde(rename = "type")]
    kind: &'static str,
}

/// `POST /v1/webhooks/{id}/test {type?}`: queues an example event of `type` (by default the
/// subscription's first type) and answers 202 with the delivery to watch.
pub(crate) async fn test(
    state: &AppState,
    caller: &Caller,
    request: Request<'_, &str>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::WebhooksWrite)?;
    let webhook = subscription(state, caller, request.params).await?;
    let headers = &request.parts.headers;
    let buf = http_body::read_limited(headers, request.body, MAX_TEST_BODY).await?;
    let kind = input::test_kind(headers, buf.to_vec())?
        .or_else(|| webhook.types.first().copied())
        .unwrap_or(EventKind::CustomEventReceived);
    let now = store::clock::now();
    let message_id = store::webhooks::new_message_id();
    let payload = Payload {
        id: &message_id,
        kind: kind.as_str(),
        created_at: &now,
        store_id: &caller.store_id,
        data: json!({ "test": true, "example": example(kind) }),
    }
    .to_json();
    let delivery_id = outbox::enqueue_one(
        &state.db,
        NewDelivery {
            store_id: caller.store_id.clone(),
            message_id: message_id.clone(),
            webhook_id: Some(webhook.id),
            event_type_id: None,
            event: kind.as_str().to_owned(),
            payload,
            contact_key: None,
        },
    )
    .await?;
    Ok(http_body::json(
        StatusCode::ACCEPTED,
        &TestQueued {
            delivery_id,
            message_id,
            kind: kind.as_str(),
        },
    ))
}

/// What a real event of this type carries, so a receiver can be built against the test.
fn example(kind: EventKind) -> serde_json::Value {
    match kind {
        EventKind::ContactCreated | EventKind::ContactUpdated => json!({
            "email": "ann@example.com",
            "fields": {"name": "Ann"},
        }),
        EventKind::CustomEventReceived => json!({
            "alias": "order-paid",
            "contact": {"email": "ann@example.com"},
            "fields": {"email": "ann@example.com", "total": 12.5},
        }),
        EventKind::WebhookDisabled => json!({"targetUrl": "https://hooks.example.com/in"}),
        EventKind::SegmentEntered | EventKind::SegmentExited => json!({
            "segmentId": "0193a5b2-7c1e-7d2a-9f3b-5e8d4c2a1b00",
            "segmentName": "Loyal customers",
            "contact": {"email": "ann@example.com"},
        }),
    }
}

#[derive(Debug, Serialize)]
struct Page {
    results: Vec<outbox::DeliveryView>,
    links: Links,
}

#[derive(Debug, Serialize)]
struct Links {
    next: Option<String>,
}

/// `GET /v1/webhooks/{id}/deliveries?status=&limit=&before=`: newest first.
pub(crate) async fn list(
    state: &AppState,
    caller: &Caller,
    request: Request<'_, &str>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::WebhooksRead)?;
    let id = request.params;
    let query = input::delivery_query(request.parts.uri.query())?;
    subscription(state, caller, id).await?;
    let (limit, status) = (query.page.limit, query.status);
    let before = query.page.before.as_deref();
    let mut results = outbox::list(&state.db, id, status, before, limit + 1).await?;
    let more = results.len() as i64 > limit;
    results.truncate(limit as usize);
    let next = more.then(|| results.last()).flatten().map(|last| {
        let mut link = format!(
            "/v1/webhooks/{id}/deliveries?limit={limit}&before={}",
            encode_cursor(&last.id)
        );
        if let Some(status) = status {
            link.push_str(&format!("&status={status}"));
        }
        link
    });
    Ok(http_body::json(
        StatusCode::OK,
        &Page {
            results,
            links: Links { next },
        },
    ))
}

/// `POST /v1/webhooks/{id}/deliveries/{deliveryId}/retry`: due again now, whatever its state.
pub(crate) async fn retry(
    state: &AppState,
    caller: &Caller,
    request: Request<'_, (&str, &str)>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::WebhooksWrite)?;
    let (id, delivery_id) = request.params;
    subscription(state, caller, id).await?;
    match outbox::retry_now(&state.db, id, delivery_id).await? {
        outbox::RetryNow::Queued(delivery) => Ok(http_body::json(StatusCode::ACCEPTED, &*delivery)),
        outbox::RetryNow::InFlight => Err(ApiError::Conflict(
            "the delivery is being attempted right now; retry it once that attempt is recorded"
                .into(),
        )),
        outbox::RetryNow::Unknown => Err(ApiError::NotFound("delivery")),
    }
}

/// The caller's subscription with this id, or a 404.
async fn subscription(state: &AppState, caller: &Caller, id: &str) -> Result<Webhook, ApiError> {
    store::registry::find::<Webhook>(&state.db, &caller.store_id, id)
        .await?
        .ok_or(ApiError::NotFound("webhook"))
}
