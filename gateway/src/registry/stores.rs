//! Stores (tenants): created from the command line or on first start, each with an admin key.
//! There is no HTTP route and no body to read, so this resource is this one file.

use serde::Serialize;
use sqlx::AnyPool;

use crate::auth::{mint_key, Scopes};

/// What `gateway store create` prints, and what a first start prints once.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatedStore {
    pub store_id: String,
    pub api_key: String,
}

/// Creates a store and an admin key holding every scope, in one transaction.
pub(crate) async fn create(db: &AnyPool, name: &str) -> Result<CreatedStore, sqlx::Error> {
    let store_id = super::new_id();
    let key = mint_key();
    let now = store::clock::now();
    let scopes = Scopes::all().to_stored();
    let admin = store::registry::api_keys::NewApiKey {
        id: &key.id,
        store_id: &store_id,
        name: "admin",
        secret_hash: &key.secret_hash,
        scopes: &scopes,
        created_at: &now,
    };
    store::registry::stores::create(db, &store_id, name, admin).await?;
    Ok(CreatedStore {
        store_id,
        api_key: key.presented,
    })
}

/// On an empty store database, creates the first store so a fresh install is usable at once.
pub(crate) async fn create_first(db: &AnyPool) -> Result<Option<CreatedStore>, sqlx::Error> {
    if store::registry::stores::count(db).await? > 0 {
        return Ok(None);
    }
    create(db, "default").await.map(Some)
}
