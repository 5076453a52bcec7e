//! HTTP bodies for every route: request bodies read with a bound and a timeout (knowing whether
//! they were read to the end), and JSON answers. Event bodies add their media types in
//! `ingest::event_body`.

use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Body, Incoming};
use serde::Serialize;

use crate::error::ApiError;

/// Largest management (registry, keys) body; event bodies have their own flag.
pub(crate) const MAX_MANAGEMENT_BODY: usize = 1024 * 1024;

/// Whether a content type is JSON (`application/json`, optionally with parameters).
pub(crate) fn is_json(headers: &HeaderMap) -> bool {
    content_type(headers).is_some_and(|mime| mime.eq_ignore_ascii_case("application/json"))
}

/// The media type of the request, without parameters.
pub(crate) fn content_type(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    Some(value.split(';').next().unwrap_or_default().trim())
}

/// Refuses a body whose declared length is over `limit` before reading any of it.
pub(crate) fn check_declared_length(headers: &HeaderMap, limit: usize) -> Result<(), ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(length) if length > limit as u64 => Err(too_large(limit)),
        _ => Ok(()),
    }
}

/// A request's body as handlers receive it: read once, within the body timeout, and able to
/// tell afterwards whether it was read to its end. An answer given before that must close the
/// connection, or the unread rest would be taken for the client's next request.
#[derive(Debug)]
pub(crate) struct RequestBody {
    incoming: Incoming,
    timeout: Duration,
    read: bool,
}

impl RequestBody {
    pub(crate) fn new(incoming: Incoming, timeout: Duration) -> RequestBody {
        RequestBody {
            incoming,
            timeout,
            read: false,
        }
    }

    /// Whether nothing of the body is left unread.
    pub(crate) fn is_finished(&self) -> bool {
        self.read || self.incoming.is_end_stream()
    }
}

/// Reads at most `limit` bytes within the body timeout; a longer body (declared or streamed) is
/// a 413, a slower one a 408.
pub(crate) async fn read_limited(
    headers: &HeaderMap,
    body: &mut RequestBody,
    limit: usize,
) -> Result<Bytes, ApiError> {
    check_declared_length(headers, limit)?;
    let reading = Limited::new(&mut body.incoming, limit).collect();
    let collected = tokio::time::timeout(body.timeout, reading)
        .await
        .map_err(|_| ApiError::RequestTimeout)?;
    match collected {
        Ok(collected) => {
            body.read = true;
            Ok(collected.to_bytes())
        }
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(too_large(limit)),
        Err(_) => Err(ApiError::BadRequest(
            "the request body could not be read".to_owned(),
        )),
    }
}

fn too_large(limit: usize) -> ApiError {
    ApiError::PayloadTooLarge(format!("the body is larger than {limit} bytes"))
}

/// Reads a management body, which must be JSON.
pub(crate) async fn read_json(
    headers: &HeaderMap,
    body: &mut RequestBody,
) -> Result<Vec<u8>, ApiError> {
    if !is_json(headers) {
        return Err(ApiError::UnsupportedMediaType(
            "Content-Type must be application/json",
        ));
    }
    let bytes = read_limited(headers, body, MAX_MANAGEMENT_BODY).await?;
    Ok(bytes.to_vec())
}

/// Decodes a JSON body: malformed JSON (or a lone surrogate) is a 400; well-formed JSON holding
/// what no field may (U+0000, a number beyond any float) is a 422 naming where.
pub(crate) fn decode(buf: &mut [u8]) -> Result<schemas::Value<'_>, ApiError> {
    schemas::decode(buf).map_err(decode_error)
}

/// The answer to a body that does not decode; the batch route's whole-body decode shares it.
pub(crate) fn decode_error(error: schemas::DecodeError) -> ApiError {
    match error.violation() {
        Some(violation) => ApiError::Unprocessable(vec![violation]),
        None => ApiError::BadRequest(error.to_string()),
    }
}

/// A JSON answer.
pub(crate) fn json<T: Serialize>(status: StatusCode, value: &T) -> Response<Full<Bytes>> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// An empty answer, e.g. 204 after a delete.
pub(crate) fn empty(status: StatusCode) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = status;
    response
}
