//! The outbound side of a send type: the URL Sluice POSTs to and the extra headers it adds.

use serde::{Deserialize, Serialize};

use crate::{ObjectReader, Violation};

const MAX_HEADERS: usize = 5;

/// Headers the delivery itself sets; letting a type override them would break framing or the
/// Standard Webhooks signature the receiver checks.
const RESERVED: [&str; 9] = [
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "x-sluice-event",
];

/// An extra header sent with a send type's webhook call.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WebhookHeader {
    /// An HTTP token, 1–128 characters, unique case-insensitively within the type.
    pub name: String,
    /// Visible ASCII and spaces, at most 1024 characters.
    pub value: String,
}

/// `webhookUrl`: an absolute http(s) URL of at most 2048 characters. `required` is None when
/// the category is unknown, so the URL is checked only if present.
pub(super) fn read_url(r: &mut ObjectReader<'_, '_>, required: Option<bool>) -> Option<String> {
    const KEY: &str = "webhookUrl";
    if required == Some(false) {
        if r.has(KEY) {
            r.violate(KEY, "not allowed when category is receive");
        }
        return None;
    }
    let text = r.string(KEY, required == Some(true), 2048)?;
    match url::Url::parse(&text) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Some(text),
        _ => {
            r.violate(KEY, "must be an absolute http or https URL");
            None
        }
    }
}

/// `webhookHeaders`: at most 5, names unique ignoring case. `allowed` is None when the category
/// is unknown.
pub(super) fn read_headers(
    r: &mut ObjectReader<'_, '_>,
    allowed: Option<bool>,
) -> Vec<WebhookHeader> {
    const KEY: &str = "webhookHeaders";
    if allowed == Some(false) {
        if r.has(KEY) {
            r.violate(KEY, "not allowed when category is receive");
        }
        return Vec::new();
    }
    read_header_list(r, KEY).unwrap_or_default()
}

/// A list of static headers sent with every delivery, under `key` (a send type's
/// `webhookHeaders`, a subscription's `headers`): at most 5, each a valid HTTP token not set by
/// Sluice itself, names unique ignoring case, values of visible ASCII and spaces. None when
/// absent.
pub fn read_header_list(r: &mut ObjectReader<'_, '_>, key: &str) -> Option<Vec<WebhookHeader>> {
    let items = r.array(key, false)?;
    if items.len() > MAX_HEADERS {
        r.violate(key, format!("must contain at most {MAX_HEADERS} headers"));
    }
    let base = r.child_path(key);
    let mut headers = Vec::with_capacity(items.len());
    let mut seen: Vec<String> = Vec::with_capacity(items.len());
    for (k, item) in items.iter().enumerate() {
        let path = format!("{base}/{k}");
        if let Some(header) = read_header(item, &path, &mut seen, r.violations()) {
            headers.push(header);
        }
    }
    Some(headers)
}

fn read_header(
    item: &crate::Value<'_>,
    path: &str,
    seen: &mut Vec<String>,
    violations: &mut Vec<Violation>,
) -> Option<WebhookHeader> {
    let mut o = ObjectReader::new(item, path, violations)?;
    let name = o.string("name", true, 128).filter(|name| {
        if !name.bytes().all(is_token_byte) {
            o.violate("name", "must be a valid HTTP header name");
            return false;
        }
        let lower = name.to_ascii_lowercase();
        if RESERVED.contains(&lower.as_str()) {
            o.violate("name", "is set by Sluice and cannot be overridden");
            return false;
        }
        if seen.contains(&lower) {
            o.violate("name", "duplicate header name");
        }
        seen.push(lower);
        true
    });
    // An empty header value is legal HTTP, so the value is required but may be "".
    let value = o.text("value", true, 0, 1024).filter(|value| {
        let visible = value.bytes().all(|b| b == b' ' || b.is_ascii_graphic());
        if !visible {
            o.violate(
                "value",
                "must contain only visible ASCII characters and spaces",
            );
        }
        visible
    });
    o.finish();
    Some(WebhookHeader {
        name: name?,
        value: value?,
    })
}

/// RFC 9110 `tchar`.
pub(super) fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}
