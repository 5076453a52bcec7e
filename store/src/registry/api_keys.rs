//! The api_keys table: keys are stored as the hash of their secret, never the secret, with the
//! scopes they grant as space-separated names.

use sqlx::{Any, AnyPool, FromRow, Transaction};

/// A key about to be stored.
#[derive(Debug, Clone, Copy)]
pub struct NewApiKey<'a> {
    pub id: &'a str,
    pub store_id: &'a str,
    pub name: &'a str,
    /// Hex SHA-256 of the secret.
    pub secret_hash: &'a str,
    /// Space-separated scope names.
    pub scopes: &'a str,
    pub created_at: &'a str,
}

/// A key as authentication needs it.
#[derive(Debug, Clone, FromRow)]
pub struct ApiKey {
    pub id: String,
    pub store_id: String,
    /// Hex SHA-256 of the secret.
    pub secret_hash: String,
    /// Space-separated scope names.
    pub scopes: String,
}

/// Stores a key, inside the caller's transaction (a store's first key goes with the store).
pub async fn insert(tx: &mut Transaction<'_, Any>, key: NewApiKey<'_>) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO api_keys (id, store_id, name, secret_hash, scopes, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(key.id)
    .bind(key.store_id)
    .bind(key.name)
    .bind(key.secret_hash)
    .bind(key.scopes)
    .bind(key.created_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Stores one key on its own.
pub async fn create(db: &AnyPool, key: NewApiKey<'_>) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    insert(&mut tx, key).await?;
    tx.commit().await
}

/// The key with this id, of whichever store: the id is what a request presents.
pub async fn find(db: &AnyPool, id: &str) -> Result<Option<ApiKey>, sqlx::Error> {
    sqlx::query_as("SELECT id, store_id, secret_hash, scopes FROM api_keys WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}
