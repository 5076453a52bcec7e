//! What the delivery routes read from a request: the optional body of a test
//! (`{type?}`) and the query of the listing (`?status=&limit=&before=`).

use http::HeaderMap;
use store::outbox;
use store::webhooks::EventKind;

use crate::error::{violation, ApiError};
use crate::http_body;
use crate::pagination::CursorPage;

const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 250;

/// The event type a test asks for, if it names one. The body is optional; when there is one
/// it must be JSON.
pub(crate) fn test_kind(
    headers: &HeaderMap,
    mut buf: Vec<u8>,
) -> Result<Option<EventKind>, ApiError> {
    // No body at all asks for the default; anything else must be the JSON object.
    if buf.is_empty() {
        return Ok(None);
    }
    if !http_body::is_json(headers) {
        return Err(ApiError::UnsupportedMediaType(
            "Content-Type must be application/json",
        ));
    }
    let value = http_body::decode(&mut buf)?;
    match schemas::reader::member(&value, "type") {
        None => Ok(None),
        Some(kind) => schemas::reader::as_str(kind)
            .and_then(EventKind::parse)
            .map(Some)
            .ok_or_else(|| violation("/type", "must be one of the event types")),
    }
}

/// `?status=&limit=&before=` of a listing, newest first.
#[derive(Debug)]
pub(crate) struct DeliveryQuery {
    pub page: CursorPage,
    /// Only deliveries in this state.
    pub status: Option<&'static str>,
}

pub(crate) fn delivery_query(query: Option<&str>) -> Result<DeliveryQuery, ApiError> {
    let mut status = None;
    let page = CursorPage::from_query(
        query,
        (DEFAULT_LIMIT, MAX_LIMIT),
        "before is not a valid cursor",
        |name, value| {
            if name == "status" {
                let known = [outbox::PENDING, outbox::DELIVERED, outbox::FAILED];
                let value = known.into_iter().find(|s| *s == value).ok_or_else(|| {
                    ApiError::BadRequest(format!("status must be one of: {}", known.join(", ")))
                })?;
                status = Some(value);
            }
            Ok(())
        },
    )?;
    Ok(DeliveryQuery { page, status })
}
