//! `POST`/`GET /v1/api-keys`, `DELETE /v1/api-keys/{id}`, and the stored keys that
//! authentication reads.

mod input;

use http::StatusCode;
use serde::Serialize;
use sqlx::AnyPool;
use store::registry::api_keys::Deleted;

use super::Request;
use crate::auth::{mint_key, Caller, Scope, Scopes};
use crate::error::ApiError;
use crate::http_body;
use crate::routes::HttpResponse;
use crate::state::AppState;

/// A key as authentication needs it.
#[derive(Debug, Clone)]
pub(crate) struct StoredKey {
    pub id: String,
    pub store_id: String,
    pub secret_hash: String,
    pub scopes: Scopes,
}

#[derive(Serialize)]
struct CreatedKey<'a> {
    id: &'a str,
    name: &'a str,
    scopes: Vec<&'static str>,
    key: &'a str,
}

/// Most keys a store holds: the list is answered whole, and a leaked admin key must not be able
/// to mint keys without bound.
const MAX_KEYS_PER_STORE: i64 = 100;

/// `POST /v1/api-keys {name, scopes[]}` → 201 with the key shown once. A key can only grant
/// scopes its creator holds, so `apiKeys:write` never escalates.
pub(crate) async fn create(
    state: &AppState,
    caller: &Caller,
    mut request: Request<'_, ()>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::ApiKeysWrite)?;
    let asked = request.read(input::new_api_key).await?;
    // A key can grant only what it holds; the refusal names the first scope it lacks.
    if let Some(lacking) = Scope::ALL
        .into_iter()
        .find(|scope| asked.scopes.contains(*scope) && !caller.scopes.contains(*scope))
    {
        return Err(ApiError::Forbidden(lacking.as_str()));
    }
    if store::registry::api_keys::count(&state.db, &caller.store_id).await? >= MAX_KEYS_PER_STORE {
        return Err(ApiError::Conflict(format!(
            "the store holds {MAX_KEYS_PER_STORE} keys, the most it may; delete one first"
        )));
    }
    let key = mint_key();
    store::registry::api_keys::create(
        &state.db,
        store::registry::api_keys::NewApiKey {
            id: &key.id,
            store_id: &caller.store_id,
            name: &asked.name,
            secret_hash: &key.secret_hash,
            scopes: &asked.scopes.to_stored(),
            created_at: &store::clock::now(),
        },
    )
    .await?;
    Ok(http_body::json(
        StatusCode::CREATED,
        &CreatedKey {
            id: &key.id,
            name: &asked.name,
            scopes: asked.scopes.names(),
            key: &key.presented,
        },
    ))
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ListedKey {
    id: String,
    name: String,
    scopes: Vec<&'static str>,
    created_at: String,
    /// Up to about ten seconds late: uses are written in the background.
    last_used_at: Option<String>,
}

#[derive(Serialize)]
struct Listed {
    results: Vec<ListedKey>,
}

/// `GET /v1/api-keys` → the store's keys, oldest first, never a secret or its hash.
pub(crate) async fn list(state: &AppState, caller: &Caller) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::ApiKeysWrite)?;
    let keys = store::registry::api_keys::list(&state.db, &caller.store_id).await?;
    let results = keys
        .into_iter()
        .map(|key| ListedKey {
            scopes: Scopes::from_stored(&key.scopes).names(),
            id: key.id,
            name: key.name,
            created_at: key.created_at,
            last_used_at: key.last_used_at,
        })
        .collect();
    Ok(http_body::json(StatusCode::OK, &Listed { results }))
}

/// `DELETE /v1/api-keys/{id}` → 204; every gateway refuses the key within the key cache's
/// lifetime (5 s), this one usually at once (a request that read the key just before the
/// delete may cache it again). A store's last key that can manage keys stays (409):
/// without it no key could be made again.
pub(crate) async fn delete(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::ApiKeysWrite)?;
    let outcome = store::registry::api_keys::delete_unless_last(
        &state.db,
        &caller.store_id,
        id,
        Scope::ApiKeysWrite.as_str(),
    )
    .await?;
    match outcome {
        Deleted::Deleted => {
            state.keys.forget(id);
            Ok(http_body::empty(StatusCode::NO_CONTENT))
        }
        Deleted::NotFound => Err(ApiError::NotFound("API key")),
        Deleted::LastHolder => Err(ApiError::Conflict(format!(
            "this is the store's last key holding {}; create another such key before deleting it",
            Scope::ApiKeysWrite.as_str()
        ))),
    }
}

/// Writes `lastUsedAt` for the keys this gateway saw used since the last call.
pub(crate) async fn record_uses(state: &AppState) -> Result<(), sqlx::Error> {
    let used = state.keys.take_used();
    if used.is_empty() {
        return Ok(());
    }
    store::registry::api_keys::mark_used(&state.db, &used, &store::clock::now()).await
}

/// The key with this id, if any.
pub(crate) async fn find(db: &AnyPool, id: &str) -> Result<Option<StoredKey>, sqlx::Error> {
    let row = store::registry::api_keys::find(db, id).await?;
    Ok(row.map(|row| StoredKey {
        scopes: Scopes::from_stored(&row.scopes),
        id: row.id,
        store_id: row.store_id,
        secret_hash: row.secret_hash,
    }))
}
