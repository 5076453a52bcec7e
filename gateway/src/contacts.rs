//! The contacts API (SPEC §6): a contact by email and its activities, newest first.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::StatusCode;
use percent_encoding::percent_decode_str;

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::http_body;
use crate::registry::form_pairs;
use crate::routes::HttpResponse;
use crate::state::AppState;

const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 1000;

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

/// `GET /v1/contacts/{email}/activities?limit=N&before=CURSOR`
pub(crate) async fn activities(
    state: &AppState,
    caller: &Caller,
    email: &str,
    query: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::ContactsRead)?;
    let email = normalise(email)?;
    let mut limit = DEFAULT_LIMIT;
    let mut before = None;
    for (name, value) in form_pairs(query) {
        match name.as_ref() {
            "limit" => limit = crate::registry::parse_limit(&value, MAX_LIMIT)?,
            "before" => before = Some(decode_cursor(&value)?),
            _ => {}
        }
    }
    if store::contacts::contact(&state.db, &caller.store_id, &email)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound("contact"));
    }
    let page = store::contacts::activities(
        &state.db,
        &caller.store_id,
        &email,
        limit,
        before.as_ref().map(|(r, e)| (r.as_str(), e.as_str())),
    )
    .await?;
    let next = page.next.map(|(received, event)| {
        let cursor = URL_SAFE_NO_PAD.encode(format!("{received}|{event}"));
        format!("/v1/contacts/{email}/activities?limit={limit}&before={cursor}")
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

fn decode_cursor(cursor: &str) -> Result<(String, String), ApiError> {
    let bad = || ApiError::BadRequest("before is not a cursor from a previous page".into());
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (received, event) = text.split_once('|').ok_or_else(bad)?;
    Ok((received.to_owned(), event.to_owned()))
}
