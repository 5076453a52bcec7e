//! Paging for every list route: the page size, `?limit=&offset=` pages of the registry's
//! listings (`{links: {next, prev}, results}`), and the opaque `before` cursors of the
//! newest-first listings (deliveries, contact activities).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde::Serialize;

use crate::error::ApiError;

/// Default and largest page sizes for registry listings.
const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;

/// Pairs of a query string, percent-decoded.
pub(crate) fn query_pairs(
    query: Option<&str>,
) -> impl Iterator<Item = (std::borrow::Cow<'_, str>, std::borrow::Cow<'_, str>)> {
    form_urlencoded::parse(query.unwrap_or_default().as_bytes())
}

/// A `limit` query value within `1..=max`, or a 400 saying so.
pub(crate) fn parse_limit(value: &str, max: i64) -> Result<i64, ApiError> {
    value
        .parse()
        .ok()
        .filter(|n| (1..=max).contains(n))
        .ok_or_else(|| ApiError::BadRequest(format!("limit must be between 1 and {max}")))
}

/// `?limit=&offset=` of a registry listing.
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
        for (name, value) in query_pairs(query) {
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

    /// The rows to fetch: one more than the page, to learn whether a next page exists.
    pub(crate) fn window(self) -> store::registry::Window {
        store::registry::Window {
            limit: self.limit + 1,
            offset: self.offset,
        }
    }
}

/// `{links: {next, prev}, results}` for a page of `rows` fetched with [`Page::window`].
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

/// `?limit=&before=` of a newest-first listing; other parameters go to the route.
#[derive(Debug, Clone)]
pub(crate) struct CursorPage {
    pub limit: i64,
    /// The decoded cursor: where the previous page ended.
    pub before: Option<String>,
}

impl CursorPage {
    /// Reads `limit` (default `default`, at most `max`) and `before`; a cursor that does not
    /// decode is a 400 with `bad_cursor`. Every other pair is handed to `other`.
    pub(crate) fn from_query(
        query: Option<&str>,
        (default, max): (i64, i64),
        bad_cursor: &str,
        mut other: impl FnMut(&str, &str) -> Result<(), ApiError>,
    ) -> Result<CursorPage, ApiError> {
        let mut page = CursorPage {
            limit: default,
            before: None,
        };
        for (name, value) in query_pairs(query) {
            match name.as_ref() {
                "limit" => page.limit = parse_limit(&value, max)?,
                "before" => {
                    let cursor = decode_cursor(&value)
                        .ok_or_else(|| ApiError::BadRequest(bad_cursor.to_owned()))?;
                    page.before = Some(cursor);
                }
                name => other(name, &value)?,
            }
        }
        Ok(page)
    }
}

/// The `before` value that continues after `position` (opaque to clients).
pub(crate) fn encode_cursor(position: &str) -> String {
    URL_SAFE_NO_PAD.encode(position)
}

/// The position a cursor from [`encode_cursor`] names; None for anything else.
pub(crate) fn decode_cursor(cursor: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor.as_bytes()).ok()?;
    String::from_utf8(bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_what_no_page_made() {
        let cursor = encode_cursor("2024-01-01T00:00:00Z|evt_1");
        let query = format!("before={cursor}&limit=3&status=x");
        let mut seen = Vec::new();
        let page = CursorPage::from_query(Some(&query), (10, 5), "bad", |name, value| {
            seen.push(format!("{name}={value}"));
            Ok(())
        })
        .expect("page");
        assert_eq!(page.limit, 3);
        assert_eq!(page.before.as_deref(), Some("2024-01-01T00:00:00Z|evt_1"));
        assert_eq!(seen, ["status=x"]);
        let refused = CursorPage::from_query(Some("before=%FF"), (10, 5), "bad", |_, _| Ok(()));
        assert!(matches!(refused, Err(ApiError::BadRequest(m)) if m == "bad"));
        let refused = CursorPage::from_query(Some("limit=6"), (10, 5), "bad", |_, _| Ok(()));
        assert!(matches!(refused, Err(ApiError::BadRequest(_))));
    }

    #[test]
    fn listings_link_neighbouring_pages() {
        let page = Page::from_query(Some("limit=2&offset=2")).expect("page");
        assert_eq!(page.window().limit, 3);
        let listing = Listing::new("/v1/x", page, vec![1, 2, 3]);
        assert_eq!(listing.results, [1, 2]);
        assert_eq!(
            listing.links.next.as_deref(),
            Some("/v1/x?limit=2&offset=4")
        );
        assert_eq!(
            listing.links.prev.as_deref(),
            Some("/v1/x?limit=2&offset=0")
        );
        assert!(Page::from_query(Some("offset=-1")).is_err());
    }
}
