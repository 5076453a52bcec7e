//! `POST /v1/custom-events/alias/{alias}/batch`: up to 1000 api events in one request, as a
//! JSON array or NDJSON. Each item is answered on its own; the good ones are made durable
//! together, so one sync covers the whole batch.

use crate::http_body::RequestBody;
use http::request::Parts;
use http::StatusCode;
use schemas::batch::{BatchError, Framing};
use schemas::{ReceiveType, ValidatedEvent};
use serde::Serialize;

use super::idempotency::{self, BodyHash, Claim, Sender};
use super::paths::{create_contact, find};
use super::types::IngestType;
use super::{idempotency_key, item_id, message, new_event_id, publish, require_contact};
use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::http_body::{self, content_type, read_limited};
use crate::routes::HttpResponse;
use crate::state::AppState;
use queue::Message;

const MAX_BATCH_EVENTS: usize = 1000;
const MAX_BATCH_BYTES: usize = 5 * 1024 * 1024;

#[derive(Debug, Serialize)]
struct ItemResult {
    index: usize,
    status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<serde_json::Value>,
}

/// The batch route.
pub(crate) async fn batch(
    state: &AppState,
    caller: &Caller,
    alias: &str,
    parts: &Parts,
    incoming: &mut RequestBody,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::CustomEventsWrite)?;
    let create_contact = create_contact(parts.uri.query())?;
    let ty = find(state, &caller.store_id, alias, ReceiveType::Api).await?;
    let idempotency = idempotency_key(&parts.headers)?;
    let framing = match content_type(&parts.headers)
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("application/json") => Framing::JsonArray,
        Some("application/x-ndjson") => Framing::Ndjson,
        _ => {
            return Err(ApiError::UnsupportedMediaType(
                "Content-Type must be application/json or application/x-ndjson",
            ))
        }
    };
    let bytes = read_limited(&parts.headers, incoming, MAX_BATCH_BYTES).await?;
    let items = split(&bytes, framing)?;
    let mut checked = Vec::with_capacity(items.len());
    for mut buf in items {
        checked.push(check_item(state, caller, &ty, &mut buf, create_contact).await);
    }
    // A keyed batch claims its key once, and only when it has something to publish: a batch
    // refused whole, or item by item, leaves the key free for the corrected retry. The items'
    // ids derive from the claimed id, so a repeat gives each item the id it had.
    let batch_id = match idempotency {
        Some(key) if checked.iter().any(Result::is_ok) => {
            let sender = Sender::ApiKey(&caller.key_id);
            let body_hash = BodyHash::of(&bytes);
            let claim = Claim::new(&caller.store_id, "batch", alias, sender, key, body_hash);
            Some(idempotency::claim(&state.db, &claim).await?)
        }
        _ => None,
    };
    let mut results = Vec::with_capacity(checked.len());
    let mut messages: Vec<Message> = Vec::new();
    for (index, outcome) in checked.into_iter().enumerate() {
        results.push(match outcome {
            Ok(event) => {
                let id = match &batch_id {
                    Some(batch) => item_id(batch, index),
                    None => new_event_id(),
                };
                messages.push(message(&caller.store_id, &ty, event, id.clone()));
                ItemResult {
                    index,
                    status: StatusCode::CREATED.as_u16(),
                    id: Some(id),
                    error: None,
                }
            }
            Err(error) => {
                crate::metrics::report_rejected(&error);
                ItemResult {
                    index,
                    status: error.status().as_u16(),
                    id: None,
                    error: Some(error.problem()),
                }
            }
        });
    }
    let accepted = messages.len() as u64;
    if !messages.is_empty() {
        publish(state, messages).await?;
    }
    crate::metrics::report_accepted(ReceiveType::Api, accepted);
    Ok(http_body::json(
        StatusCode::OK,
        &serde_json::json!({ "results": results }),
    ))
}

/// Checks one item: decoded, valid, its contact known (or to be created), within the rate.
async fn check_item(
    state: &AppState,
    caller: &Caller,
    ty: &IngestType,
    buf: &mut [u8],
    create_contact: bool,
) -> Result<ValidatedEvent, ApiError> {
    let value = http_body::decode(buf)?;
    let event = ty
        .compiled
        .validate(&value)
        .map_err(ApiError::Unprocessable)?;
    if !create_contact {
        require_contact(state, &caller.store_id, &event.contact).await?;
    }
    state.limits.check(ReceiveType::Api, &caller.key_id)?;
    Ok(event)
}

/// The items of a batch body, each as its own JSON buffer.
fn split(bytes: &[u8], framing: Framing) -> Result<Vec<Vec<u8>>, ApiError> {
    schemas::batch::split(bytes, framing, MAX_BATCH_EVENTS).map_err(|error| match error {
        BatchError::TooMany(_) => ApiError::PayloadTooLarge(error.to_string()),
        BatchError::Decode(error) => http_body::decode_error(error),
        BatchError::NotAnArray => ApiError::BadRequest(error.to_string()),
    })
}
