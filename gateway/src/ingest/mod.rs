//! Ingest (SPEC §5): events arrive on three receive paths (a keyed API, public webhook URLs and
//! the browser/app SDK) and a batch route; each is checked against its event type, normalised,
//! made durable in the queue and only then answered 201.

mod batch;
mod event_body;
mod idempotency;
mod paths;
mod types;
mod verify;

pub(crate) use batch::batch;
pub(crate) use idempotency::sweep as sweep_idempotency_keys;
pub(crate) use paths::{api, sdk, sdk_preflight, webhook};
pub(crate) use types::TypeCache;
pub(crate) use verify::strong_standard_secret;

use schemas::{ContactKey, EventEnvelope, ReceiveType, ValidatedEvent};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::log_throttle::Throttle;
use crate::state::AppState;
use queue::Message;
use types::IngestType;

/// Longest `Idempotency-Key` / `webhook-id` accepted.
const MAX_IDEMPOTENCY_KEY: usize = 255;

/// The id of an event sent without an idempotency key: time-ordered, so ids sort by arrival.
fn new_event_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The id of item `index` of a batch whose idempotency key claimed `batch_id`: derived, so a
/// repeated batch gives every item the id it had the first time.
fn item_id(batch_id: &str, index: usize) -> String {
    let mut hash = Sha256::new();
    hash.update(batch_id.as_bytes());
    hash.update((index as u64).to_be_bytes());
    let digest = hash.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Uuid::new_v8(bytes).to_string()
}

/// The sender's idempotency key: `Idempotency-Key`, or Standard Webhooks' `webhook-id`.
fn idempotency_key(headers: &http::HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers
        .get("idempotency-key")
        .or_else(|| headers.get("webhook-id"))
    else {
        return Ok(None);
    };
    match value.to_str() {
        Ok(key) if is_idempotency_key(key) => Ok(Some(key)),
        _ => Err(bad_idempotency_key()),
    }
}

/// The `idempotencyKey` query parameter of the SDK path: `navigator.sendBeacon`, which the Web
/// SDK uses as a page is left, cannot set headers, and without its key a beacon that arrived
/// would be sent again, and doubled, on the next page.
fn beacon_idempotency_key(query: Option<&str>) -> Result<Option<String>, ApiError> {
    let found = crate::pagination::query_pairs(query).find(|(name, _)| name == "idempotencyKey");
    match found {
        None => Ok(None),
        Some((_, key)) if is_idempotency_key(&key) => Ok(Some(key.into_owned())),
        Some(_) => Err(bad_idempotency_key()),
    }
}

fn is_idempotency_key(key: &str) -> bool {
    !key.is_empty() && key.len() <= MAX_IDEMPOTENCY_KEY && key.bytes().all(|b| b.is_ascii_graphic())
}

fn bad_idempotency_key() -> ApiError {
    ApiError::BadRequest(format!(
        "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY} visible ASCII characters"
    ))
}

/// The queue message for a validated event.
fn message(store_id: &str, ty: &IngestType, event: ValidatedEvent, id: String) -> Message {
    let envelope = EventEnvelope {
        id,
        store_id: store_id.to_owned(),
        event_type_id: ty.id.clone(),
        event_type_version: ty.version,
        alias: ty.alias.clone(),
        receive_type: ty.receive_type(),
        received_at: store::clock::now(),
        contact: event.contact,
        fields: event.fields,
    };
    Message {
        key: envelope.partition_key(),
        payload: envelope.to_bytes(),
    }
}

/// Refuses an event for a contact that does not exist when `createContact=false`.
async fn require_contact(
    state: &AppState,
    store_id: &str,
    contact: &ContactKey,
) -> Result<(), ApiError> {
    if let ContactKey::Email(email) = contact {
        if !store::contacts::contact_exists(&state.db, store_id, email).await? {
            return Err(ApiError::BadRequestCode {
                detail: format!("contact {email} does not exist and createContact is false"),
                code: "E0501",
            });
        }
    }
    Ok(())
}

/// Publishes and maps a queue refusal to 503.
async fn publish(state: &AppState, messages: Vec<Message>) -> Result<(), ApiError> {
    let started = std::time::Instant::now();
    let published = state.queue.publish(messages).await;
    crate::metrics::report_publish(started.elapsed());
    published.map_err(|error| {
        static REFUSED: Throttle = Throttle::new();
        if let Some(left_out) = REFUSED.allow() {
            tracing::warn!(%error, left_out, "queue refused events");
        }
        ApiError::Unavailable {
            detail: "the event queue cannot take more events right now",
            retry_after_secs: 1,
        }
    })
}

/// Counts an ingest outcome.
fn report(path: ReceiveType, result: &Result<crate::routes::HttpResponse, ApiError>) {
    match result {
        Ok(_) => crate::metrics::report_accepted(path, 1),
        Err(error) => crate::metrics::report_rejected(error),
    }
}
