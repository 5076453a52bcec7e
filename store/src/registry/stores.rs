//! The stores table: tenants. A store is created together with its first (admin) key.

use sqlx::AnyPool;

use super::api_keys::{self, NewApiKey};

/// Creates a store and its first key in one transaction, so no store exists without a key.
pub async fn create(
    db: &AnyPool,
    id: &str,
    name: &str,
    first_key: NewApiKey<'_>,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query("INSERT INTO stores (id, name, created_at) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(name)
        .bind(first_key.created_at)
        .execute(&mut *tx)
        .await?;
    api_keys::insert(&mut tx, first_key).await?;
    tx.commit().await
}

/// How many stores there are; a fresh install has none.
pub async fn count(db: &AnyPool) -> Result<i64, sqlx::Error> {
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM stores")
        .fetch_one(db)
        .await?;
    Ok(count)
}
