//! The registry: stores (tenants), API keys, custom integrations, custom event types, webhook
//! subscriptions and workflows.
//! Each module holds its resource's HTTP handlers and its SQL, because it owns that data.

pub(crate) mod api_keys;
pub(crate) mod deliveries;
pub(crate) mod event_types;
pub(crate) mod integrations;
pub(crate) mod stores;
pub(crate) mod webhooks;
pub(crate) mod workflows;

use serde::Serialize;

use crate::error::ApiError;

/// Default and largest page sizes for registry listings.
const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;

/// `?limit=&offset=` of a listing.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Page {
    pub limit: i64,
    pub offset: i64,
}

impl Page {
    /// Reads the page from a query string; out-of-range values are a 400 rather than a guess.
    pub(crate) fn from_query(query: Option<&str>) -> Result<Page, ApiError> {
        let mut page = Page {
            limit: DEFAULT_LIMIT,
            offset: 0,
        };
        for (name, value) in form_pairs(query) {
            let number = || {
                value.parse::<i64>().map_err(|_| {
                    ApiError::BadRequest(format!("query parameter {name} must be an integer"))
                })
            };
            match name.as_ref() {
                "limit" => page.limit = number()?,
                "offset" => page.offset = number()?,
                _ => {}
            }
        }
        if !(1..=MAX_LIMIT).contains(&page.limit) {
            return Err(ApiError::BadRequest(format!(
                "limit must be between 1 and {MAX_LIMIT}"
            )));
        }
        if page.offset < 0 {
            return Err(ApiError::BadRequest("offset must not be negative".into()));
        }
        Ok(page)
    }

    /// Fetch one row more than the page to learn whether a next page exists.
    pub(crate) fn fetch_limit(self) -> i64 {
        self.limit + 1
    }
}

/// A `limit` query value within `1..=max`, or a 400 saying so.
pub(crate) fn parse_limit(value: &str, max: i64) -> Result<i64, ApiError> {
    value
        .parse()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| ApiError::BadRequest(format!("limit must be between 1 and {max}")))
}

/// Pairs of a query string, percent-decoded.
pub(crate) fn form_pairs(
    query: Option<&str>,
) -> impl Iterator<Item = (std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>)> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
}

/// `{links: {next, prev}, results}` for a page of `rows` fetched with `Page::fetch_limit`.
#[derive(Debug, Serialize)]
pub(crate) struct Listing<T> {
    links: Links,
    results: Vec<T>,
}

#[derive(Debug, Serialize)]
struct Links {
    next: Option<String>,
    prev: Option<String>,
}

impl<T> Listing<T> {
    pub(crate) fn new(path: &str, page: Page, mut rows: Vec<T>) -> Listing<T> {
        let has_next = rows.len() as i64 > page.limit;
        rows.truncate(page.limit as usize);
        let link = |offset: i64| format!("{path}?limit={}&offset={offset}", page.limit);
        Listing {
            links: Links {
                next: has_next.then(|| link(page.offset + page.limit)),
                prev: (page.offset > 0).then(|| link((page.offset - page.limit).max(0))),
            },
            results: rows,
        }
    }
}

/// A new resource id: UUID v7, so ids sort by creation time.
pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A stored JSON document. Serialising our own types cannot fail, so an empty string would
/// only mean a bug, and reading it back reports it as corrupt data.
pub(crate) fn to_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_default()
}
