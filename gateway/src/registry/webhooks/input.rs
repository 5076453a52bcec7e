//! The bodies of `POST /v1/webhooks` and `PATCH /v1/webhooks/{id}`: the same properties, all
//! checked on a create and only those present on a patch. Whether a filter names rows that
//! exist is checked by the handler, against the store.

use schemas::reader::{as_str, is_null};
use schemas::{target, ObjectReader, Violation};
use store::registry::webhooks::{Filter, WebhookPatch};
use store::webhooks::{check_secret, EventKind};

use super::super::read_object;
use crate::error::ApiError;

/// A subscription to create.
#[derive(Debug)]
pub(crate) struct NewWebhook {
    pub target_url: String,
    /// Empty means every type.
    pub types: Vec<EventKind>,
    pub is_active: bool,
    /// The secret the user chose, if any.
    pub secret: Option<String>,
    pub filter: Filter,
    /// Static headers sent with every delivery.
    pub headers: Vec<schemas::WebhookHeader>,
}

/// A new subscription: `targetUrl` is required; it is active and receives every type unless
/// the body says otherwise.
pub(crate) fn new_webhook(
    value: &schemas::Value<'_>,
    allow_private: bool,
) -> Result<NewWebhook, ApiError> {
    let read = read_object(value, |reader| read_properties(reader, true, allow_private))?;
    Ok(NewWebhook {
        target_url: read.target_url.unwrap_or_default(),
        types: read.types.unwrap_or_default(),
        is_active: read.is_active.unwrap_or(true),
        secret: read.secret,
        filter: read.filter.unwrap_or_default(),
        headers: read.headers.unwrap_or_default(),
    })
}

/// A patch: any of the properties; `filter: null` clears the filter.
pub(crate) fn patch_webhook(
    value: &schemas::Value<'_>,
    allow_private: bool,
) -> Result<WebhookPatch, ApiError> {
    read_object(value, |reader| {
        read_properties(reader, false, allow_private)
    })
}

fn read_properties(
    reader: &mut ObjectReader<'_, '_>,
    creating: bool,
    allow_private: bool,
) -> WebhookPatch {
    let mut read = WebhookPatch {
        target_url: reader.string("targetUrl", creating, 2048),
        is_active: reader.bool("isActive", false),
        secret: reader.string("secret", false, 128),
        ..WebhookPatch::default()
    };
    if let Some(url) = &read.target_url {
        if let Err(error) = target::check_url(url, allow_private) {
            reader.violate("targetUrl", error.to_string());
        }
    }
    if let Some(secret) = &read.secret {
        if let Err(error) = check_secret(secret) {
            reader.violate("secret", error.to_string());
        }
    }
    if let Some(items) = reader.array("types", false) {
        read.types = Some(read_types(items, reader));
    }
    match reader.value("filter") {
        None => {}
        Some(value) if is_null(value) => read.filter = Some(Filter::default()),
        Some(value) => read.filter = read_filter(value, reader),
    }
    // `headers: null` (or []) removes them all.
    read.headers = match reader.value("headers") {
        Some(value) if is_null(value) => Some(Vec::new()),
        _ => schemas::read_header_list(reader, "headers"),
    };
    read
}

/// The listed types without repeats; each unknown one is a violation at its index.
fn read_types(items: &[schemas::Value<'_>], reader: &mut ObjectReader<'_, '_>) -> Vec<EventKind> {
    let mut kinds = Vec::new();
    let mut bad = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match as_str(item).and_then(EventKind::parse) {
            Some(kind) if !kinds.contains(&kind) => kinds.push(kind),
            Some(_) => {}
            None => bad.push(i),
        }
    }
    let names: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
    for i in bad {
        let path = format!("{}/{i}", reader.child_path("types"));
        reader.violations().push(Violation {
            path,
            message: format!("must be one of: {}", names.join(", ")),
        });
    }
    kinds
}

/// `{integrationId?, alias?}`; None (with the violations recorded) when it is not an object.
fn read_filter(value: &schemas::Value<'_>, reader: &mut ObjectReader<'_, '_>) -> Option<Filter> {
    let path = reader.child_path("filter");
    let mut filter = ObjectReader::new(value, &path, reader.violations())?;
    let parsed = Filter {
        integration_id: filter.string("integrationId", false, 64),
        alias: filter.string("alias", false, 64),
    };
    if let Some(alias) = &parsed.alias {
        if let Err(message) = schemas::Alias::parse(alias) {
            filter.violate("alias", message);
        }
    }
    filter.finish();
    Some(parsed)
}
