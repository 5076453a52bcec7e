//! Rows whose writable part is one JSON document (`body`): integrations and workflows. Adding a
//! property to such a resource needs no migration, and its rows are read and answered alike.

use serde::de::DeserializeOwned;
use serde::Serialize;
use sqlx::{AnyPool, FromRow};

use super::{corrupt, Owned};
use crate::sql::list_placeholders;

/// The JSON document of a row of [`Self::TABLE`].
pub trait DocumentBody: Serialize + DeserializeOwned + Send + Sync + Unpin {
    const TABLE: &'static str;
    /// See [`Owned::CHILDREN`].
    const CHILDREN: Option<(&'static str, &'static str)> = None;

    /// Values the document's table also keeps in columns of their own, for lookups that
    /// cannot read JSON: (column, value).
    fn columns(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

/// A row holding a JSON document, in the shape the API answers: the document's properties
/// beside the id and timestamps.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Document<T> {
    pub id: String,
    #[serde(flatten)]
    pub body: T,
    pub created_at: String,
    pub updated_at: String,
}

impl<T> Document<T> {
    /// A new row, created and updated `now`.
    pub fn new(id: String, body: T, now: String) -> Document<T> {
        Document {
            id,
            body,
            created_at: now.clone(),
            updated_at: now,
        }
    }

    /// The stored form of the document.
    pub fn body_json(&self) -> String
    where
        T: Serialize,
    {
        // Serialising our own types cannot fail, so an empty string would only mean a bug,
        // and reading it back reports it as corrupt data.
        serde_json::to_string(&self.body).unwrap_or_default()
    }
}

/// Stores a new row of the store.
pub async fn insert<T: DocumentBody>(
    db: &AnyPool,
    store_id: &str,
    document: &Document<T>,
) -> Result<(), sqlx::Error> {
    let extra = document.body.columns();
    let names: String = extra.iter().map(|(name, _)| format!(", {name}")).collect();
    let sql = format!(
        "INSERT INTO {} (id, store_id, body, created_at, updated_at{names}) VALUES ({})",
        T::TABLE,
        list_placeholders(1, 5 + extra.len())
    );
    let mut query = sqlx::query(&sql)
        .bind(&document.id)
        .bind(store_id)
        .bind(document.body_json())
        .bind(&document.created_at)
        .bind(&document.updated_at);
    for (_, value) in extra {
        query = query.bind(value);
    }
    query.execute(db).await?;
    Ok(())
}

/// Writes a row's document (and the columns copied from it) and `updated_at`.
pub async fn update<T: DocumentBody>(
    db: &AnyPool,
    store_id: &str,
    document: &Document<T>,
) -> Result<(), sqlx::Error> {
    let extra = document.body.columns();
    let sets: String = (extra.iter().enumerate())
        .map(|(i, (name, _))| format!(", {name} = ${}", i + 5))
        .collect();
    let sql = format!(
        "UPDATE {} SET body = $3, updated_at = $4{sets} WHERE id = $1 AND store_id = $2",
        T::TABLE
    );
    let mut query = sqlx::query(&sql)
        .bind(&document.id)
        .bind(store_id)
        .bind(document.body_json())
        .bind(&document.updated_at);
    for (_, value) in extra {
        query = query.bind(value);
    }
    query.execute(db).await?;
    Ok(())
}

/// The columns every document table has.
#[derive(Debug, FromRow)]
pub struct DocumentRow {
    id: String,
    body: String,
    created_at: String,
    updated_at: String,
}

impl<T: DocumentBody> Owned for Document<T> {
    const TABLE: &'static str = T::TABLE;
    const COLUMNS: &'static str = "id, body, created_at, updated_at";
    const CHILDREN: Option<(&'static str, &'static str)> = T::CHILDREN;
    type Row = DocumentRow;

    fn from_row(row: DocumentRow) -> Result<Document<T>, sqlx::Error> {
        let body = serde_json::from_str(&row.body)
            .map_err(|e| corrupt("body", format!("{} row {}: {e}", T::TABLE, row.id)))?;
        Ok(Document {
            id: row.id,
            body,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}
