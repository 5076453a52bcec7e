//! Stores (tenants): created from the command line or on first start, each with an admin key.

use serde::Serialize;
use sqlx::AnyPool;

use crate::auth::{mint_key, Scopes};
use crate::registry::api_keys;

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
    let mut tx = db.begin().await?;
    sqlx::query("INSERT INTO stores (id, name, created_at) VALUES ($1, $2, $3)")
        .bind(&store_id)
        .bind(name)
        .bind(&now)
        .execute(&mut *tx)
        .await?;
    api_keys::insert(&mut tx, &store_id, "admin", &key, Scopes::all(), &now).await?;
    tx.commit().await?;
    Ok(CreatedStore {
        store_id,
        api_key: key.presented,
    })
}

/// On an empty store database, creates the first store so a fresh install is usable at once.
pub(crate) async fn create_first(db: &AnyPool) -> Result<Option<CreatedStore>, sqlx::Error> {
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM stores")
        .fetch_one(db)
        .await?;
    if count > 0 {
        return Ok(None);
    }
    create(db, "default").await.map(Some)
}
