//! `POST /v1/api-keys`, and the stored keys that authentication reads.

mod input;

use http::StatusCode;
use serde::Serialize;
use sqlx::AnyPool;

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
