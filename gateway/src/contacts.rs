//! The contacts API (SPEC §6): the store's contacts, a contact by email and its activities,
//! newest first.

use http::StatusCode;
use percent_encoding::{percent_decode_str, utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

use serde_json::{Map, Value};
use store::contacts::Patched;

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::http_body;
use crate::pagination::{decode_cursor, encode_cursor, parse_limit, query_pairs, CursorPage};
use crate::registry::{self, read_object, Request};
use crate::routes::HttpResponse;
use crate::state::AppState;
use schemas::Violation;

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;
const BAD_CURSOR: &str = "before is not a cursor from a previous page";

/// What an email must escape to stand as one path segment: everything but RFC 3986's
/// unreserved characters and `@` (`?`, `#`, `/` and `%` may all appear in an address).
const PATH_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~')
    .remove(b'@');

/// `GET /v1/contacts?limit=&cursor=&segmentId=`: the store's contacts, known and anonymous,
/// or a segment's members, in a stable order, a page at a time.
pub(crate) async fn list(
    state: &AppState,
    caller: &Caller,
    query: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::ContactsRead)?;
    let segment = query_pairs(query)
        .find(|(name, _)| name == "segmentId")
        .map(|(_, value)| value.into_owned());
    list_of(state, caller, segment.as_deref(), "/v1/contacts", query).await
}

/// `GET /v1/segments/{id}/contacts?limit=&cursor=`: the segment's members.
pub(crate) async fn members(
    state: &AppState,
    caller: &Caller,
    segment: &str,
    query: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::SegmentsRead)?;
    caller.require(Scope::ContactsRead)?;
    let path = format!(
        "/v1/segments/{}/contacts",
        utf8_percent_encode(segment, PATH_SEGMENT)
    );
    list_of(state, caller, Some(segment), &path, query).await
}

/// A page of contacts, of one segment when named (404 when the store has no such segment).
async fn list_of(
    state: &AppState,
    caller: &Caller,
    segment: Option<&str>,
    path: &str,
    query: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    let (limit, after) = limit_and_cursor(query)?;
    if let Some(segment) = segment {
        if !registry::segments::exists(&state.db, &caller.store_id, segment).await? {
            return Err(ApiError::NotFound("segment"));
        }
    }
    let (results, next) = store::contacts::list(
        &state.db,
        &caller.store_id,
        segment,
        after.as_deref(),
        limit,
    )
    .await?;
    let next = next.map(|key| {
        let cursor = encode_cursor(&key);
        let mut link = format!("{path}?limit={limit}&cursor={cursor}");
        if path == "/v1/contacts" {
            if let Some(segment) = segment {
                link.push_str("&segmentId=");
                link.extend(form_urlencoded::byte_serialize(segment.as_bytes()));
            }
        }
        link
    });
    Ok(http_body::json(
        StatusCode::OK,
        &serde_json::json!({ "results": results, "links": { "next": next } }),
    ))
}

/// `?limit=&cursor=` of a listing that pages by position: the page size, and the position a
/// previous page's cursor names, to continue after.
fn limit_and_cursor(query: Option<&str>) -> Result<(i64, Option<String>), ApiError> {
    let mut limit = DEFAULT_LIMIT;
    let mut after = None;
    for (name, value) in query_pairs(query) {
        match name.as_ref() {
            "limit" => limit = parse_limit(&value, MAX_LIMIT)?,
            "cursor" => {
                let position = decode_cursor(&value).ok_or_else(|| {
                    ApiError::BadRequest("cursor is not a cursor from a previous page".into())
                })?;
                after = Some(position);
            }
            _ => {}
        }
    }
    Ok((limit, after))
}

/// `GET /v1/contacts/{email}/segments?limit=&cursor=`: the segments the contact is in now.
pub(crate) async fn segments(
    state: &AppState,
    caller: &Caller,
    email: &str,
    query: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::ContactsRead)?;
    caller.require(Scope::SegmentsRead)?;
    let email = normalise(email)?;
    let (limit, after) = limit_and_cursor(query)?;
    let after = after.unwrap_or_default();
    if !store::contacts::contact_exists(&state.db, &caller.store_id, &email).await? {
        return Err(ApiError::NotFound("contact"));
    }
    let key = format!("e:{email}");
    let (results, more) =
        store::segments::members::of_contact(&state.db, &caller.store_id, &key, &after, limit)
            .await?;
    let next = more.then(|| results.last()).flatten().map(|last| {
        let segment = utf8_percent_encode(&email, PATH_SEGMENT);
        let cursor = encode_cursor(&last.id);
        format!("/v1/contacts/{segment}/segments?limit={limit}&cursor={cursor}")
    });
    Ok(http_body::json(
        StatusCode::OK,
        &serde_json::json!({ "results": results, "links": { "next": next } }),
    ))
}

/// `GET /v1/contacts/{email}`
pub(crate) async fn get(
    state: &AppState,
    caller: &Caller,
    email: &str,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::ContactsRead)?;
    let email = normalise(email)?;
    let contact = store::contacts::contact(&state.db, &caller.store_id, &email)
        .await?
        .ok_or(ApiError::NotFound("contact"))?;
    Ok(http_body::json(StatusCode::OK, &contact))
}

/// `DELETE /v1/contacts/{email}`: erases the contact and what is stored about it (see
/// `store::contacts::erase`); 404 when there is none, so a second erasure says so.
pub(crate) async fn erase(
    state: &AppState,
    caller: &Caller,
    email: &str,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::ContactsWrite)?;
    let email = normalise(email)?;
    if !store::contacts::erase(&state.db, &caller.store_id, &email).await? {
        return Err(ApiError::NotFound("contact"));
    }
    Ok(http_body::empty(StatusCode::NO_CONTENT))
}

/// Fields that say who a contact is: neither a change nor a workflow may set them.
pub(crate) const IDENTITY_FIELDS: [&str; 2] = ["email", "trackerId"];

/// Whether `name` can name a contact field (or a send type's field a workflow fills): 1 to 64
/// letters, digits, `_` or `-`.
pub(crate) fn is_field_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Most fields one change sets or removes.
const MAX_CHANGES: usize = 50;
/// Longest text a field holds, in characters.
const MAX_TEXT: usize = 1024;

/// `PATCH /v1/contacts/{email} {fields: {name: value | null}}`: sets the named fields (text,
/// numbers, booleans) and removes those given `null`; answers the contact.
pub(crate) async fn patch(
    state: &AppState,
    caller: &Caller,
    mut request: Request<'_, &str>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::ContactsWrite)?;
    let email = normalise(request.params)?;
    let changes = request.read(read_changes).await?;
    let now = store::clock::now();
    match store::contacts::patch_fields(&state.db, &caller.store_id, &email, &changes, &now).await?
    {
        Patched::Done(contact) => Ok(http_body::json(StatusCode::OK, &contact)),
        Patched::NotFound => Err(ApiError::NotFound("contact")),
        // The body is fine; the contact's state is what refuses it.
        Patched::TooMany => Err(ApiError::Conflict(format!(
            "the contact would hold more than {} fields; remove some (null) first",
            store::contacts::MAX_CONTACT_FIELDS
        ))),
    }
}

/// `{fields: {...}}`: 1 to 50 names of 1 to 64 letters, digits, `_` or `-` (not the ones that
/// identify a contact), each a string of at most 1024 characters, a number, a boolean or null.
fn read_changes(value: &schemas::Value<'_>) -> Result<Map<String, Value>, ApiError> {
    let mut changes = Map::new();
    read_object(value, |reader| {
        let Some(fields) = reader.value("fields") else {
            reader.violate("fields", "is required");
            return;
        };
        let Some(members) = schemas::reader::members(fields) else {
            reader.violate("fields", "must be an object");
            return;
        };
        if members.is_empty() || members.len() > MAX_CHANGES {
            reader.violate("fields", format!("must name 1 to {MAX_CHANGES} fields"));
            return;
        }
        let base = reader.child_path("fields");
        for (name, value) in members {
            let path = format!("{base}/{}", schemas::pointer::escape(name));
            let mut refuse = |message: String| {
                reader.violations().push(Violation {
                    path: path.clone(),
                    message,
                })
            };
            if !is_field_name(name) {
                refuse("names a field with 1 to 64 letters, digits, _ or -".into());
                continue;
            }
            if IDENTITY_FIELDS.contains(&name) {
                refuse("identifies the contact and cannot be set".into());
                continue;
            }
            match schemas::reader::scalar(value) {
                Some(Value::String(text)) if text.chars().count() > MAX_TEXT => {
                    refuse(format!("must be at most {MAX_TEXT} characters"));
                }
                Some(scalar) => {
                    changes.insert(name.to_owned(), scalar);
                }
                None => refuse("must be a string, a number, a boolean or null".into()),
            }
        }
    })?;
    Ok(changes)
}

/// `GET /v1/contacts/{email}/activities?limit=N&before=CURSOR`
pub(crate) async fn activities(
    state: &AppState,
    caller: &Caller,
    email: &str,
    query: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::ContactsRead)?;
    let email = normalise(email)?;
    let page =
        CursorPage::from_query(query, (DEFAULT_LIMIT, MAX_LIMIT), BAD_CURSOR, |_, _| Ok(()))?;
    let before = page.before.as_deref().map(split_cursor).transpose()?;
    let limit = page.limit;
    if store::contacts::contact(&state.db, &caller.store_id, &email)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound("contact"));
    }
    let page =
        store::contacts::activities(&state.db, &caller.store_id, &email, limit, before).await?;
    let next = page.next.map(|(received, event)| {
        let cursor = encode_cursor(&format!("{received}|{event}"));
        let segment = utf8_percent_encode(&email, PATH_SEGMENT);
        format!("/v1/contacts/{segment}/activities?limit={limit}&before={cursor}")
    });
    Ok(http_body::json(
        StatusCode::OK,
        &serde_json::json!({ "results": page.results, "links": { "next": next } }),
    ))
}

/// The path's email, percent-decoded and normalised the way ingest stores it.
fn normalise(raw: &str) -> Result<String, ApiError> {
    let decoded = percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| ApiError::BadRequest("the email is not valid UTF-8".into()))?;
    schemas::normalise::email(&decoded)
        .ok_or_else(|| ApiError::BadRequest(format!("{decoded} is not an email address")))
}

/// A cursor's position: when the activity was received, and its event id.
fn split_cursor(cursor: &str) -> Result<(&str, &str), ApiError> {
    cursor
        .split_once('|')
        .ok_or_else(|| ApiError::BadRequest(BAD_CURSOR.into()))
}
