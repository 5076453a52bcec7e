//! The event_types table: each row holds a definition (checked by `schemas`) as a JSON
//! document, with its alias and category copied into columns for lookups and the per-store
//! alias uniqueness index. Reading and deleting are the shared functions of [`super`], for
//! [`EventType`].

use schemas::{Category, EventTypeDefinition};
use serde::Serialize;
use sqlx::any::AnyArguments;
use sqlx::query::Query;
use sqlx::{Any, AnyPool, FromRow};

use super::{corrupt, Owned, Window};

/// An event type as stored: the definition plus what the registry adds.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EventType {
    pub id: String,
    pub integration_id: String,
    #[serde(flatten)]
    pub definition: EventTypeDefinition,
    /// 1 when created, one more at each replacement.
    pub version: i64,
    pub created_at: String,
    pub updated_at: String,
}

/// How a write ended that could clash with the store's unique aliases.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    Done,
    /// Another event type of the store has the definition's alias.
    AliasTaken,
}

/// An event_types row as the database hands it over.
#[derive(Debug, FromRow)]
pub struct EventTypeRow {
    id: String,
    integration_id: String,
    body: String,
    version: i64,
    created_at: String,
    updated_at: String,
    verification: Option<String>,
}

impl Owned for EventType {
    const TABLE: &'static str = "event_types";
    const COLUMNS: &'static str =
        "id, integration_id, body, version, created_at, updated_at, verification";
    type Row = EventTypeRow;

    fn from_row(row: EventTypeRow) -> Result<EventType, sqlx::Error> {
        let mut definition: EventTypeDefinition = serde_json::from_str(&row.body)
            .map_err(|e| corrupt("body", format!("event type {}: {e}", row.id)))?;
        definition.verification = read_verification(&row.id, row.verification.as_deref())?;
        Ok(EventType {
            definition,
            id: row.id,
            integration_id: row.integration_id,
            version: row.version,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// Stores a new event type of the store; a send type comes with its signing secret.
pub async fn insert(
    db: &AnyPool,
    store_id: &str,
    event_type: &EventType,
    signing_secret: Option<&str>,
) -> Result<Write, sqlx::Error> {
    let insert = sqlx::query(
        "INSERT INTO event_types (alias, category, body, version, updated_at, signing_secret, \
         id, store_id, integration_id, created_at, verification) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    );
    let inserted = bind_written(insert, event_type, signing_secret)
        .bind(store_id)
        .bind(&event_type.integration_id)
        .bind(&event_type.created_at)
        .bind(verification_json(&event_type.definition))
        .execute(db)
        .await;
    write_outcome(inserted)
}

/// Replaces an event type's definition, version and `updated_at`. `signing_secret` is kept
/// when the type has one, so it is set only on a type's first turn as a send type.
pub async fn replace(
    db: &AnyPool,
    store_id: &str,
    event_type: &EventType,
    signing_secret: Option<&str>,
) -> Result<Write, sqlx::Error> {
    let update = sqlx::query(
        "UPDATE event_types SET alias = $1, category = $2, body = $3, version = $4, \
         updated_at = $5, signing_secret = COALESCE(signing_secret, $6), verification = $9 \
         WHERE id = $7 AND store_id = $8",
    );
    let updated = bind_written(update, event_type, signing_secret)
        .bind(store_id)
        .bind(verification_json(&event_type.definition))
        .execute(db)
        .await;
    write_outcome(updated)
}

/// Binds `$1`–`$7` of a write: what the definition puts in columns, the version,
/// `updated_at`, the secret and the id.
fn bind_written<'q>(
    query: Query<'q, Any, AnyArguments<'q>>,
    event_type: &'q EventType,
    signing_secret: Option<&'q str>,
) -> Query<'q, Any, AnyArguments<'q>> {
    let definition = &event_type.definition;
    let category = match definition.category {
        Category::Send => "send",
        Category::Receive => "receive",
    };
    // Serialising our own type cannot fail; an empty body would read back as corrupt.
    let body = serde_json::to_string(definition).unwrap_or_default();
    query
        .bind(definition.alias.as_ref().map(|a| a.as_str()))
        .bind(category)
        .bind(body)
        .bind(event_type.version)
        .bind(&event_type.updated_at)
        .bind(signing_secret)
        .bind(&event_type.id)
}

/// Whether the event type already has a signing secret.
pub async fn has_signing_secret(db: &AnyPool, id: &str) -> Result<bool, sqlx::Error> {
    let (current,): (Option<String>,) =
        sqlx::query_as("SELECT signing_secret FROM event_types WHERE id = $1")
            .bind(id)
            .fetch_one(db)
            .await?;
    Ok(current.is_some())
}

/// One page of an integration's event types, by id.
pub async fn page(
    db: &AnyPool,
    store_id: &str,
    integration_id: &str,
    window: Window,
) -> Result<Vec<EventType>, sqlx::Error> {
    let rows: Vec<EventTypeRow> = sqlx::query_as(&format!(
        "SELECT {} FROM event_types WHERE integration_id = $1 AND store_id = $2 \
         ORDER BY id LIMIT $3 OFFSET $4",
        EventType::COLUMNS
    ))
    .bind(integration_id)
    .bind(store_id)
    .bind(window.limit)
    .bind(window.offset)
    .fetch_all(db)
    .await?;
    rows.into_iter().map(EventType::from_row).collect()
}

/// The integration of the store's receive type with this alias, if there is one.
pub async fn integration_of_alias(
    db: &AnyPool,
    store_id: &str,
    alias: &str,
) -> Result<Option<String>, sqlx::Error> {
    let found: Option<(String,)> =
        sqlx::query_as("SELECT integration_id FROM event_types WHERE store_id = $1 AND alias = $2")
            .bind(store_id)
            .bind(alias)
            .fetch_optional(db)
            .await?;
    Ok(found.map(|(id,)| id))
}

/// A receive type as ingest compiles it: the stored definition text and its integration's,
/// read by (store, alias) on a cache miss.
#[derive(Debug, Clone, FromRow)]
pub struct ReceiveType {
    pub id: String,
    pub version: i64,
    pub body: String,
    pub integration_body: String,
    pub verification: Option<String>,
}

/// The store's receive type with this alias, with its integration's stored body.
pub async fn receive_type(
    db: &AnyPool,
    store_id: &str,
    alias: &str,
) -> Result<Option<ReceiveType>, sqlx::Error> {
    sqlx::query_as(
        "SELECT t.id, t.version, t.body, i.body AS integration_body, t.verification \
         FROM event_types t \
         JOIN integrations i ON i.id = t.integration_id \
         WHERE t.store_id = $1 AND t.alias = $2 AND t.category = 'receive'",
    )
    .bind(store_id)
    .bind(alias)
    .fetch_optional(db)
    .await
}

/// A unique-index clash on (store, alias) is the client's conflict, not a database failure.
fn write_outcome(
    result: Result<sqlx::any::AnyQueryResult, sqlx::Error>,
) -> Result<Write, sqlx::Error> {
    match result {
        Ok(_) => Ok(Write::Done),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(Write::AliasTaken),
        Err(e) => Err(e),
    }
}

/// The stored form of a definition's verification, secrets included.
fn verification_json(definition: &EventTypeDefinition) -> Option<String> {
    let verification = definition.verification.as_ref()?;
    // Serialising our own type cannot fail.
    serde_json::to_string(verification).ok()
}

/// A stored verification read back; text that does not parse is corruption, refused rather
/// than taken as "no verification", which would let unverified events in.
pub fn read_verification(
    id: &str,
    stored: Option<&str>,
) -> Result<Option<schemas::Verification>, sqlx::Error> {
    stored
        .map(|text| {
            serde_json::from_str(text)
                .map_err(|e| corrupt("verification", format!("event type {id}: {e}")))
        })
        .transpose()
}
