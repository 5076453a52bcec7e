//! Reading event bodies: bounded before they are read whole, JSON or (on webhook paths)
//! form-encoded, decoded once by `schemas::decode`.

use crate::http_body::RequestBody;
use bytes::Bytes;
use http::HeaderMap;

use crate::error::ApiError;
use crate::http_body::{content_type, read_limited};

/// How a path accepts bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Accepts {
    /// `application/json` only (the keyed API).
    Json,
    /// JSON or `application/x-www-form-urlencoded` (webhooks from systems we do not control).
    JsonOrForm,
    /// JSON, also sent as `text/plain`, which browsers' `sendBeacon` uses to avoid a preflight.
    JsonOrBeacon,
}

/// The body as JSON bytes ready for `schemas::decode`.
pub(super) async fn read_event(
    headers: &HeaderMap,
    incoming: &mut RequestBody,
    limit: usize,
    accepts: Accepts,
    verification: Option<&schemas::Verification>,
) -> Result<Vec<u8>, ApiError> {
    let media = content_type(headers).map(str::to_ascii_lowercase);
    let form = match (media.as_deref(), accepts) {
        (Some("application/json"), _) => false,
        (Some("application/x-www-form-urlencoded"), Accepts::JsonOrForm) => true,
        (Some("text/plain"), Accepts::JsonOrBeacon) => false,
        _ => {
            return Err(ApiError::UnsupportedMediaType(match accepts {
                Accepts::Json => "Content-Type must be application/json",
                Accepts::JsonOrForm => {
                    "Content-Type must be application/json or application/x-www-form-urlencoded"
                }
                Accepts::JsonOrBeacon => "Content-Type must be application/json or text/plain",
            }))
        }
    };
    // Credentials in headers are checked before the body is read, signatures over its raw
    // bytes before it is parsed.
    if let Some(verification) = verification {
        super::verify::headers(verification, headers)?;
    }
    let bytes = read_limited(headers, incoming, limit).await?;
    if let Some(verification) = verification {
        super::verify::body(verification, headers, &bytes)?;
    }
    Ok(if form {
        form_to_json(&bytes)
    } else {
        bytes.to_vec()
    })
}

/// A form body as a JSON object of strings; a repeated name becomes an array of its values,
/// which is how checkbox fields arrive from HTML forms.
fn form_to_json(bytes: &Bytes) -> Vec<u8> {
    let mut object = serde_json::Map::new();
    for (name, value) in form_urlencoded::parse(bytes) {
        let value = serde_json::Value::String(value.into_owned());
        match object.get_mut(name.as_ref()) {
            None => {
                object.insert(name.into_owned(), value);
            }
            Some(serde_json::Value::Array(values)) => values.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = serde_json::Value::Array(vec![first, value]);
            }
        }
    }
    serde_json::to_vec(&object).unwrap_or_else(|_| b"{}".to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_become_objects_and_repeated_names_arrays() {
        let json = form_to_json(&Bytes::from_static(
            b"email=Ann%40Example.com&tags=a&tags=b&note=x+y",
        ));
        let value: serde_json::Value = serde_json::from_slice(&json).expect("json");
        assert_eq!(
            value,
            serde_json::json!({"email": "Ann@Example.com", "tags": ["a", "b"], "note": "x y"})
        );
    }
}
