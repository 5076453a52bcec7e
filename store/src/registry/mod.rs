//! The registry's tables: stores (tenants), their API keys, custom integrations, custom event
//! types, webhook subscriptions and workflows. The gateway manages them over HTTP; the consumer
//! reads some of them (subscriptions, workflows) through their own modules.
//!
//! Every registry row belongs to one store. The reads and deletes that are alike for every
//! table are written once here, for any [`Owned`] row type, and always take the store's id
//! with the row's so no tenant reaches another's rows.

pub mod api_keys;
mod document;
pub mod event_types;
pub mod integrations;
pub mod segments;
pub mod stores;
pub mod webhooks;
pub mod workflows;

use sqlx::any::AnyRow;
use sqlx::{AnyPool, FromRow};

pub use document::{insert, update, Document, DocumentBody};

/// One page of a listing ordered by id: `limit` rows after skipping `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub limit: i64,
    pub offset: i64,
}

/// A row type of a table whose rows belong to a store.
pub trait Owned: Sized + Send + Unpin {
    const TABLE: &'static str;
    /// The columns [`Self::Row`] reads.
    const COLUMNS: &'static str;
    /// Rows of another table that name this one (table, column) and go with it when it is
    /// deleted.
    const CHILDREN: Option<(&'static str, &'static str)> = None;
    /// The row as the database hands it over.
    type Row: for<'r> FromRow<'r, AnyRow> + Send + Unpin;

    /// The typed row; a stored value that does not parse is a decode error.
    fn from_row(row: Self::Row) -> Result<Self, sqlx::Error>;
}

/// The store's rows of `T`'s table, ordered by id, within `window`.
pub async fn page<T: Owned>(
    db: &AnyPool,
    store_id: &str,
    window: Window,
) -> Result<Vec<T>, sqlx::Error> {
    let rows: Vec<T::Row> = sqlx::query_as(&format!(
        "SELECT {} FROM {} WHERE store_id = $1 ORDER BY id LIMIT $2 OFFSET $3",
        T::COLUMNS,
        T::TABLE
    ))
    .bind(store_id)
    .bind(window.limit)
    .bind(window.offset)
    .fetch_all(db)
    .await?;
    rows.into_iter().map(T::from_row).collect()
}

/// The store's row of `T` with this id.
pub async fn find<T: Owned>(
    db: &AnyPool,
    store_id: &str,
    id: &str,
) -> Result<Option<T>, sqlx::Error> {
    let row: Option<T::Row> = sqlx::query_as(&format!(
        "SELECT {} FROM {} WHERE id = $1 AND store_id = $2",
        T::COLUMNS,
        T::TABLE
    ))
    .bind(id)
    .bind(store_id)
    .fetch_optional(db)
    .await?;
    row.map(T::from_row).transpose()
}

/// How many rows of `T` the store has, for the per-store bounds.
pub async fn count<T: Owned>(db: &AnyPool, store_id: &str) -> Result<i64, sqlx::Error> {
    let (count,): (i64,) = sqlx::query_as(&format!(
        "SELECT COUNT(*) FROM {} WHERE store_id = $1",
        T::TABLE
    ))
    .bind(store_id)
    .fetch_one(db)
    .await?;
    Ok(count)
}

/// Deletes the store's row of `T` with this id and, in the same transaction, its
/// [`Owned::CHILDREN`]; false (and nothing deleted) when the store has no such row.
pub async fn delete<T: Owned>(db: &AnyPool, store_id: &str, id: &str) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    if let Some((children, column)) = T::CHILDREN {
        // Deleted explicitly, not left to the cascade: that needs SQLite's foreign_keys on
        // every connection.
        sqlx::query(&format!(
            "DELETE FROM {children} WHERE {column} = $1 AND store_id = $2"
        ))
        .bind(id)
        .bind(store_id)
        .execute(&mut *tx)
        .await?;
    }
    let deleted = sqlx::query(&format!(
        "DELETE FROM {} WHERE id = $1 AND store_id = $2",
        T::TABLE
    ))
    .bind(id)
    .bind(store_id)
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if deleted == 0 {
        return Ok(false);
    }
    tx.commit().await?;
    Ok(true)
}

/// Whether the store has a row of `T` with this id.
pub async fn exists<T: Owned>(db: &AnyPool, store_id: &str, id: &str) -> Result<bool, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as(&format!(
        "SELECT id FROM {} WHERE id = $1 AND store_id = $2",
        T::TABLE
    ))
    .bind(id)
    .bind(store_id)
    .fetch_optional(db)
    .await?;
    Ok(row.is_some())
}

/// A column value that does not parse, as the decode error sqlx would give.
fn corrupt(column: &str, detail: String) -> sqlx::Error {
    sqlx::Error::ColumnDecode {
        index: column.to_owned(),
        source: detail.into(),
    }
}
