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

/// A key as its store's list shows it: never its hash.
#[derive(Debug, Clone, FromRow)]
pub struct ListedKey {
    pub id: String,
    pub name: String,
    pub scopes: String,
    pub created_at: String,
    pub last_used_at: Option<String>,
}

/// The store's keys, oldest first.
pub async fn list(db: &AnyPool, store_id: &str) -> Result<Vec<ListedKey>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, name, scopes, created_at, last_used_at FROM api_keys \
         WHERE store_id = $1 ORDER BY created_at, id",
    )
    .bind(store_id)
    .fetch_all(db)
    .await
}

/// How many keys the store has.
pub async fn count(db: &AnyPool, store_id: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT COUNT(*) FROM api_keys WHERE store_id = $1")
        .bind(store_id)
        .fetch_one(db)
        .await
}

/// What deleting a key did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deleted {
    Deleted,
    NotFound,
    /// The key is the store's last holding `scope`; it stays.
    LastHolder,
}

/// Deletes the store's key `id` unless it is the last key holding `scope` (the scope that
/// manages keys: without it, no key could ever be made again). The delete comes first, so the
/// count after it sees every concurrent delete that committed: on SQLite the delete holds the
/// write lock; on PostgreSQL the store's row is locked first, so two deletes of a store's last
/// two holders cannot both succeed.
pub async fn delete_unless_last(
    db: &AnyPool,
    store_id: &str,
    id: &str,
    scope: &str,
) -> Result<Deleted, sqlx::Error> {
    let mut tx = db.begin().await?;
    if crate::sql::engine_of(&tx) == crate::Engine::Postgres {
        sqlx::query("SELECT id FROM stores WHERE id = $1 FOR UPDATE")
            .bind(store_id)
            .execute(&mut *tx)
            .await?;
    }
    let scopes: Option<String> =
        sqlx::query_scalar("DELETE FROM api_keys WHERE id = $1 AND store_id = $2 RETURNING scopes")
            .bind(id)
            .bind(store_id)
            .fetch_optional(&mut *tx)
            .await?;
    let Some(scopes) = scopes else {
        return Ok(Deleted::NotFound);
    };
    if scopes.split_whitespace().any(|held| held == scope) {
        let holders: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM api_keys WHERE store_id = $1 \
             AND (' ' || scopes || ' ') LIKE $2",
        )
        .bind(store_id)
        .bind(format!("% {scope} %"))
        .fetch_one(&mut *tx)
        .await?;
        if holders == 0 {
            tx.rollback().await?;
            return Ok(Deleted::LastHolder);
        }
    }
    tx.commit().await?;
    Ok(Deleted::Deleted)
}

/// Notes that the keys `ids` were used at `at` (a gateway's uses since its last write).
pub async fn mark_used(db: &AnyPool, ids: &[String], at: &str) -> Result<(), sqlx::Error> {
    for chunk in ids.chunks(500) {
        let sql = format!(
            "UPDATE api_keys SET last_used_at = $1 WHERE id IN ({})",
            crate::sql::list_placeholders(2, chunk.len())
        );
        let mut query = sqlx::query(&sql).bind(at);
        for id in chunk {
            query = query.bind(id);
        }
        query.execute(db).await?;
    }
    Ok(())
}
