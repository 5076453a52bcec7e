//! Stores (tenants): created from the command line or on first start, each with an admin key,
//! and shown to any of their keys at `GET /v1/store`.

use serde::Serialize;
use sqlx::AnyPool;

use http::StatusCode;

use crate::auth::{mint_key, Caller, Scopes};
use crate::error::ApiError;
use crate::http_body;
use crate::routes::HttpResponse;

/// What `gateway store create` prints, and what a first start prints once.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedStore {
    pub store_id: String,
    pub api_key: String,
}

/// Creates a store and an admin key holding every scope, in one transaction.
pub(crate) async fn create(db: &AnyPool, name: &str) -> Result<CreatedStore, sqlx::Error> {
    let (created, admin) = new_store();
    store::registry::stores::create(db, &created.store_id, name, admin.key()).await?;
    Ok(created)
}

/// On an empty store database, creates the first store so a fresh install is usable at once;
/// of gateways starting together, one does.
pub(crate) async fn create_first(db: &AnyPool) -> Result<Option<CreatedStore>, sqlx::Error> {
    if store::registry::stores::count(db).await? > 0 {
        return Ok(None);
    }
    let (created, admin) = new_store();
    let first =
        store::registry::stores::create_first(db, &created.store_id, "default", admin.key())
            .await?;
    Ok(first.then_some(created))
}

/// A new store's id and admin key, and the key's row.
fn new_store() -> (CreatedStore, AdminKey) {
    let store_id = super::new_id();
    let key = mint_key();
    let admin = AdminKey {
        id: key.id,
        store_id: store_id.clone(),
        secret_hash: key.secret_hash,
        scopes: Scopes::all().to_stored(),
        created_at: store::clock::now(),
    };
    (
        CreatedStore {
            store_id,
            api_key: key.presented,
        },
        admin,
    )
}

/// The admin key's row, owned until it is written.
struct AdminKey {
    id: String,
    store_id: String,
    secret_hash: String,
    scopes: String,
    created_at: String,
}

impl AdminKey {
    fn key(&self) -> store::registry::api_keys::NewApiKey<'_> {
        store::registry::api_keys::NewApiKey {
            id: &self.id,
            store_id: &self.store_id,
            name: "admin",
            secret_hash: &self.secret_hash,
            scopes: &self.scopes,
            created_at: &self.created_at,
        }
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Shown {
    id: String,
    name: String,
    created_at: String,
}

/// `GET /v1/store` → the caller's store; any valid key may ask.
pub(crate) async fn show(db: &AnyPool, caller: &Caller) -> Result<HttpResponse, ApiError> {
    let found = store::registry::stores::find(db, &caller.store_id).await?;
    let store = found.ok_or(ApiError::NotFound("store"))?;
    Ok(http_body::json(
        StatusCode::OK,
        &Shown {
            id: store.id,
            name: store.name,
            created_at: store.created_at,
        },
    ))
}
