//! The registry's HTTP side: stores (tenants), API keys, custom integrations, custom event
//! types, webhook subscriptions, their deliveries, workflows and segments.
//!
//! Each resource is a folder: `input.rs` turns a request body into typed values (or the
//! violations that refuse it), `mod.rs` holds the handlers. The SQL is in
//! `store::registry`. Every handler takes `(&AppState, &Caller, Request)`, and the list, get
//! and delete routes that are alike for every resource are the generic handlers here.

pub(crate) mod api_keys;
pub(crate) mod deliveries;
pub(crate) mod event_types;
pub(crate) mod integrations;
pub(crate) mod segments;
pub(crate) mod stores;
pub(crate) mod webhooks;
pub(crate) mod workflows;

use http::request::Parts;
use http::StatusCode;
use schemas::ObjectReader;
use serde::Serialize;
use store::registry::{self, Owned};

use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::http_body::{self, RequestBody};
use crate::pagination::{Listing, Page};
use crate::routes::HttpResponse;
use crate::state::AppState;

/// What a registry handler gets besides the state and the caller: the ids its path carries
/// (`()`, one id, or two), the request head, and the body, which only writes read.
#[derive(Debug)]
pub(crate) struct Request<'a, P> {
    pub params: P,
    pub parts: &'a Parts,
    pub body: &'a mut RequestBody,
}

impl<'a, P> Request<'a, P> {
    pub(crate) fn new(params: P, parts: &'a Parts, body: &'a mut RequestBody) -> Request<'a, P> {
        Request {
            params,
            parts,
            body,
        }
    }

    /// Reads the JSON body and hands the decoded document to `read`, one of the `input`
    /// functions.
    pub(crate) async fn read<T>(
        &mut self,
        read: impl FnOnce(&schemas::Value<'_>) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let mut buf = http_body::read_json(&self.parts.headers, self.body).await?;
        let value = http_body::decode(&mut buf)?;
        read(&value)
    }

    fn query(&self) -> Option<&str> {
        self.parts.uri.query()
    }
}

/// A resource answered by the shared [`get`] and [`delete`] handlers.
pub(crate) trait Resource {
    /// How a 404 names it ("custom integration").
    const NAME: &'static str;
    const READ: Scope;
    const WRITE: Scope;
    /// The row as `store::registry` reads it, and by default as answered.
    type Stored: Owned + Serialize;

    /// The answer for a stored row; `parts` is the request's head.
    fn answer(
        _state: &AppState,
        _caller: &Caller,
        _parts: &Parts,
        stored: Self::Stored,
    ) -> impl Serialize {
        stored
    }

    /// Called after a write succeeded, for the caches that hold what it changed.
    fn written(_state: &AppState, _caller: &Caller) {}
}

/// Refuses a create once the store holds `max` of `R`: every event is matched against all of
/// them inside the consumer's transaction, so their number is bounded per store.
pub(crate) async fn ensure_room<R: Resource>(
    state: &AppState,
    store_id: &str,
    max: i64,
) -> Result<(), ApiError> {
    if store::registry::count::<R::Stored>(&state.db, store_id).await? >= max {
        return Err(ApiError::Conflict(format!(
            "a store has at most {max} {}s; delete one first",
            R::NAME
        )));
    }
    Ok(())
}

/// A resource whose listing is one path of all the store's rows, answered by the shared
/// [`list`].
pub(crate) trait Listed: Resource {
    /// The listing's path, for its page links.
    const PATH: &'static str;
}

/// `GET` of a resource's listing, `?limit=&offset=`.
pub(crate) async fn list<R: Listed>(
    state: &AppState,
    caller: &Caller,
    request: Request<'_, ()>,
) -> Result<HttpResponse, ApiError> {
    caller.require(R::READ)?;
    let page = Page::from_query(request.query())?;
    let rows = registry::page::<R::Stored>(&state.db, &caller.store_id, page.window()).await?;
    let answers = rows
        .into_iter()
        .map(|row| R::answer(state, caller, request.parts, row))
        .collect();
    Ok(http_body::json(
        StatusCode::OK,
        &Listing::new(R::PATH, page, answers),
    ))
}

/// `GET` of one row by id.
pub(crate) async fn get<R: Resource>(
    state: &AppState,
    caller: &Caller,
    request: Request<'_, &str>,
) -> Result<HttpResponse, ApiError> {
    caller.require(R::READ)?;
    let stored = registry::find::<R::Stored>(&state.db, &caller.store_id, request.params)
        .await?
        .ok_or(ApiError::NotFound(R::NAME))?;
    let answer = R::answer(state, caller, request.parts, stored);
    Ok(http_body::json(StatusCode::OK, &answer))
}

/// `DELETE` of one row by id: 204, or 404 when the store has no such row.
pub(crate) async fn delete<R: Resource>(
    state: &AppState,
    caller: &Caller,
    request: Request<'_, &str>,
) -> Result<HttpResponse, ApiError> {
    caller.require(R::WRITE)?;
    if !registry::delete::<R::Stored>(&state.db, &caller.store_id, request.params).await? {
        return Err(ApiError::NotFound(R::NAME));
    }
    R::written(state, caller);
    Ok(http_body::empty(StatusCode::NO_CONTENT))
}

/// Reads a body that must be one object: `read` takes the properties it knows, every other one
/// is refused as unknown, and all violations come back at once as a 422.
pub(crate) fn read_object<T>(
    value: &schemas::Value<'_>,
    read: impl FnOnce(&mut ObjectReader<'_, '_>) -> T,
) -> Result<T, ApiError> {
    let mut violations = Vec::new();
    let read = {
        let Some(mut reader) = ObjectReader::new(value, "", &mut violations) else {
            return Err(ApiError::Unprocessable(violations));
        };
        let read = read(&mut reader);
        reader.finish();
        read
    };
    refuse_any(violations).map(|()| read)
}

/// Violations found after reading (references to other rows, say) as the 422 they make.
pub(crate) fn refuse_any(violations: Vec<schemas::Violation>) -> Result<(), ApiError> {
    if violations.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Unprocessable(violations))
    }
}

/// A new resource id: UUID v7, so ids sort by creation time.
pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
