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
    insert(&mut tx, id, name, first_key).await?;
    tx.commit().await
}

async fn insert(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    id: &str,
    name: &str,
    first_key: NewApiKey<'_>,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO stores (id, name, created_at) VALUES ($1, $2, $3)")
        .bind(id)
        .bind(name)
        .bind(first_key.created_at)
        .execute(&mut **tx)
        .await?;
    api_keys::insert(tx, first_key).await
}

/// Creates the store only when there is none yet, and says whether it did. Gateways starting
/// together on an empty PostgreSQL database (replicas of one Deployment) take turns on a
/// transaction-scoped advisory lock, so exactly one creates the first store. On SQLite a
/// second writer racing it fails its transaction (the database is locked) rather than add a
/// second store.
pub async fn create_first(
    db: &AnyPool,
    id: &str,
    name: &str,
    first_key: NewApiKey<'_>,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    if crate::sql::engine_of(&tx) == crate::Engine::Postgres {
        sqlx::query(&format!("SELECT pg_advisory_xact_lock({FIRST_STORE_LOCK})"))
            .execute(&mut *tx)
            .await?;
    }
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM stores")
        .fetch_one(&mut *tx)
        .await?;
    if count > 0 {
        return Ok(false);
    }
    insert(&mut tx, id, name, first_key).await?;
    tx.commit().await?;
    Ok(true)
}

/// The advisory lock key that serialises first-store creation ("sluice" in ASCII).
pub const FIRST_STORE_LOCK: i64 = 0x736c_7569_6365;

/// How many stores there are; a fresh install has none.
pub async fn count(db: &AnyPool) -> Result<i64, sqlx::Error> {
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM stores")
        .fetch_one(db)
        .await?;
    Ok(count)
}

/// A store as `GET /v1/store` shows it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Store {
    pub id: String,
    pub name: String,
    pub created_at: String,
}

/// The store with this id.
pub async fn find(db: &AnyPool, id: &str) -> Result<Option<Store>, sqlx::Error> {
    sqlx::query_as("SELECT id, name, created_at FROM stores WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}
