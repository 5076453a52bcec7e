//! A subscription's deliveries: `POST /v1/webhooks/{id}/test`, `GET /v1/webhooks/{id}/deliveries`
//! and `POST /v1/webhooks/{id}/deliveries/{deliveryId}/retry`.

use crate::http_body::RequestBody;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::{HeaderMap, StatusCode};
use serde::Serialize;
use serde_json::json;
use simd_json::prelude::*;
use sqlx::AnyPool;
use store::outbox::{self, NewDelivery};
use store::webhooks::{EventKind, Payload};

use super::{form_pairs, webhooks};
use crate::auth::{Caller, Scope};
use crate::error::{violation, ApiError};
use crate::http_body;
use crate::routes::HttpResponse;

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 250;

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
    db: &AnyPool,
    caller: &Caller,
    id: &str,
    headers: &HeaderMap,
    incoming: &mut RequestBody,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::WebhooksWrite)?;
    let webhook = webhooks::find(db, &caller.store_id, id)
        .await?
        .ok_or(ApiError::NotFound("webhook"))?;
    // The body is optional; when there is one it must be JSON.
    let mut buf = http_body::read_limited(headers, incoming, 64 * 1024)
        .await?
        .to_vec();
    let requested = if buf.iter().all(u8::is_ascii_whitespace) {
        None
    } else {
        if !http_body::is_json(headers) {
            return Err(ApiError::UnsupportedMediaType(
                "Content-Type must be application/json",
            ));
        }
        let value = http_body::decode(&mut buf)?;
        match value.get("type") {
            None => None,
            Some(kind) => Some(
                kind.as_str()
                    .and_then(EventKind::parse)
                    .ok_or_else(|| violation("/type", "must be one of the event types"))?,
            ),
        }
    };
    let kind = requested
        .or_else(|| webhook.kinds().first().copied())
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
        db,
        NewDelivery {
            store_id: caller.store_id.clone(),
            message_id: message_id.clone(),
            webhook_id: Some(webhook.id),
            event_type_id: None,
            event: kind.as_str().to_owned(),
            payload,
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
    db: &AnyPool,
    caller: &Caller,
    id: &str,
    query: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::WebhooksRead)?;
    let mut limit = DEFAULT_LIMIT;
    let mut status = None;
    let mut before = None;
    for (name, value) in form_pairs(query) {
        match name.as_ref() {
            "limit" => limit = crate::registry::parse_limit(&value, MAX_LIMIT)?,
            "status" => {
                let known = [outbox::PENDING, outbox::DELIVERED, outbox::FAILED];
                let value = known.into_iter().find(|s| *s == value).ok_or_else(|| {
                    ApiError::BadRequest(format!("status must be one of: {}", known.join(", ")))
                })?;
                status = Some(value);
            }
            "before" => {
                let cursor = URL_SAFE_NO_PAD
                    .decode(value.as_bytes())
                    .ok()
                    .and_then(|bytes| String::from_utf8(bytes).ok())
                    .ok_or_else(|| ApiError::BadRequest("before is not a valid cursor".into()))?;
                before = Some(cursor);
            }
            _ => {}
        }
    }
    if webhooks::find(db, &caller.store_id, id).await?.is_none() {
        return Err(ApiError::NotFound("webhook"));
    }
    let mut results = outbox::list(db, id, status, before.as_deref(), limit + 1).await?;
    let more = results.len() as i64 > limit;
    results.truncate(limit as usize);
    let next = more.then(|| results.last()).flatten().map(|last| {
        let mut link = format!(
            "/v1/webhooks/{id}/deliveries?limit={limit}&before={}",
            URL_SAFE_NO_PAD.encode(&last.id)
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
    db: &AnyPool,
    caller: &Caller,
    id: &str,
    delivery_id: &str,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::WebhooksWrite)?;
    if webhooks::find(db, &caller.store_id, id).await?.is_none() {
        return Err(ApiError::NotFound("webhook"));
    }
    match outbox::retry_now(db, id, delivery_id).await? {
        outbox::RetryNow::Queued(delivery) => Ok(http_body::json(StatusCode::ACCEPTED, &*delivery)),
        outbox::RetryNow::InFlight => Err(ApiError::Conflict(
            "the delivery is being attempted right now; retry it once that attempt is recorded"
                .into(),
        )),
        outbox::RetryNow::Unknown => Err(ApiError::NotFound("delivery")),
    }
}
