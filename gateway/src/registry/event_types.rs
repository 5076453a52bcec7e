//! Custom event types (SPEC §4): created under an integration, read, replaced and deleted by id.
//! The definition's rules live in `schemas`; this module stores definitions and answers HTTP.

use crate::http_body::RequestBody;
use http::{HeaderMap, StatusCode};
use schemas::{Category, EventTypeDefinition, ReceiveType};
use serde::Serialize;
use sqlx::{Any, AnyPool, Transaction};

use super::{integrations, to_json, Listing, Page};
use crate::auth::{Caller, Scope};
use crate::error::{ApiError, InternalError};
use crate::http_body;
use crate::routes::HttpResponse;

/// An event type as answered: the definition plus what the registry adds.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventType {
    pub id: String,
    pub integration_id: String,
    #[serde(flatten)]
    pub definition: EventTypeDefinition,
    pub version: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint_url: Option<String>,
    /// For send types: the Standard Webhooks secret their calls are signed with, shown only
    /// when it is created.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signing_secret: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

type Row = (String, String, String, i64, String, String);
const COLUMNS: &str = "id, integration_id, body, version, created_at, updated_at";

/// `POST /v1/custom-integrations/{id}/custom-event-types/`
pub(crate) async fn create(
    db: &AnyPool,
    caller: &Caller,
    integration_id: &str,
    allow_private: bool,
    headers: &HeaderMap,
    incoming: &mut RequestBody,
    base_url: &str,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::CustomEventTypesWrite)?;
    if !integrations::exists(db, &caller.store_id, integration_id).await? {
        return Err(ApiError::NotFound("custom integration"));
    }
    let definition = read_definition(headers, incoming, allow_private).await?;
    let now = store::clock::now();
    let mut event_type = EventType {
        id: super::new_id(),
        integration_id: integration_id.to_owned(),
        definition,
        version: 1,
        endpoint_url: None,
        signing_secret: None,
        created_at: now.clone(),
        updated_at: now,
    };
    if event_type.definition.category == Category::Send {
        event_type.signing_secret = Some(store::webhooks::generate_secret());
    }
    let inserted = sqlx::query(
        "INSERT INTO event_types (id, store_id, integration_id, alias, category, body, version, \
         created_at, updated_at, signing_secret) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&event_type.id)
    .bind(&caller.store_id)
    .bind(integration_id)
    .bind(alias_of(&event_type.definition))
    .bind(category_of(&event_type.definition))
    .bind(to_json(&event_type.definition))
    .bind(event_type.version)
    .bind(&event_type.created_at)
    .bind(&event_type.updated_at)
    .bind(&event_type.signing_secret)
    .execute(db)
    .await;
    conflict_on_alias(inserted, &event_type.definition)?;
    event_type.endpoint_url = endpoint_url(base_url, &caller.store_id, &event_type.definition);
    Ok(http_body::json(StatusCode::CREATED, &event_type))
}

/// `GET /v1/custom-integrations/{id}/custom-event-types/`
pub(crate) async fn list(
    db: &AnyPool,
    caller: &Caller,
    integration_id: &str,
    query: Option<&str>,
    base_url: &str,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::CustomEventTypesRead)?;
    if !integrations::exists(db, &caller.store_id, integration_id).await? {
        return Err(ApiError::NotFound("custom integration"));
    }
    let page = Page::from_query(query)?;
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM event_types WHERE integration_id = $1 AND store_id = $2 \
         ORDER BY id LIMIT $3 OFFSET $4"
    ))
    .bind(integration_id)
    .bind(&caller.store_id)
    .bind(page.fetch_limit())
    .bind(page.offset)
    .fetch_all(db)
    .await?;
    let results = rows
        .into_iter()
        .map(|row| from_row(row, base_url, &caller.store_id))
        .collect::<Result<Vec<_>, _>>()?;
    let path = format!("/v1/custom-integrations/{integration_id}/custom-event-types/");
    Ok(http_body::json(
        StatusCode::OK,
        &Listing::new(&path, page, results),
    ))
}

/// `GET /v1/custom-event-types/{id}`
pub(crate) async fn get(
    db: &AnyPool,
    caller: &Caller,
    id: &str,
    base_url: &str,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::CustomEventTypesRead)?;
    let event_type = find(db, &caller.store_id, id, base_url)
        .await?
        .ok_or(ApiError::NotFound("custom event type"))?;
    Ok(http_body::json(StatusCode::OK, &event_type))
}

/// `PUT /v1/custom-event-types/{id}`: replaces the definition and bumps its version.
pub(crate) async fn replace(
    db: &AnyPool,
    caller: &Caller,
    id: &str,
    allow_private: bool,
    headers: &HeaderMap,
    incoming: &mut RequestBody,
    base_url: &str,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::CustomEventTypesWrite)?;
    let mut event_type = find(db, &caller.store_id, id, base_url)
        .await?
        .ok_or(ApiError::NotFound("custom event type"))?;
    event_type.definition = read_definition(headers, incoming, allow_private).await?;
    event_type.version += 1;
    event_type.updated_at = store::clock::now();
    // A type that becomes a send type gets its secret now, shown in this answer only.
    if event_type.definition.category == Category::Send {
        let (current,): (Option<String>,) =
            sqlx::query_as("SELECT signing_secret FROM event_types WHERE id = $1")
                .bind(id)
                .fetch_one(db)
                .await?;
        if current.is_none() {
            event_type.signing_secret = Some(store::webhooks::generate_secret());
        }
    }
    let updated = sqlx::query(
        "UPDATE event_types SET alias = $1, category = $2, body = $3, version = $4, \
         updated_at = $5, signing_secret = COALESCE(signing_secret, $8) \
         WHERE id = $6 AND store_id = $7",
    )
    .bind(alias_of(&event_type.definition))
    .bind(category_of(&event_type.definition))
    .bind(to_json(&event_type.definition))
    .bind(event_type.version)
    .bind(&event_type.updated_at)
    .bind(id)
    .bind(&caller.store_id)
    .bind(&event_type.signing_secret)
    .execute(db)
    .await;
    conflict_on_alias(updated, &event_type.definition)?;
    event_type.endpoint_url = endpoint_url(base_url, &caller.store_id, &event_type.definition);
    Ok(http_body::json(StatusCode::OK, &event_type))
}

/// `DELETE /v1/custom-event-types/{id}`
pub(crate) async fn delete(
    db: &AnyPool,
    caller: &Caller,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::CustomEventTypesWrite)?;
    let deleted = sqlx::query("DELETE FROM event_types WHERE id = $1 AND store_id = $2")
        .bind(id)
        .bind(&caller.store_id)
        .execute(db)
        .await?
        .rows_affected();
    if deleted == 0 {
        return Err(ApiError::NotFound("custom event type"));
    }
    Ok(http_body::empty(StatusCode::NO_CONTENT))
}

/// Removes an integration's event types, inside the integration's own delete.
pub(crate) async fn delete_for_integration(
    tx: &mut Transaction<'_, Any>,
    store_id: &str,
    integration_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM event_types WHERE integration_id = $1 AND store_id = $2")
        .bind(integration_id)
        .bind(store_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// Reads a definition; a send type's `webhookUrl` is held to the rules of `/v1/webhooks`
/// targets, so it cannot point inside unless the operator allows private targets.
async fn read_definition(
    headers: &HeaderMap,
    incoming: &mut RequestBody,
    allow_private: bool,
) -> Result<EventTypeDefinition, ApiError> {
    let mut buf = http_body::read_json(headers, incoming).await?;
    let value = http_body::decode(&mut buf)?;
    let definition = EventTypeDefinition::parse(&value).map_err(ApiError::Unprocessable)?;
    if let Some(url) = &definition.webhook_url {
        if let Err(error) = schemas::target::check_url(url, allow_private) {
            return Err(crate::error::violation("/webhookUrl", error.to_string()));
        }
    }
    Ok(definition)
}

async fn find(
    db: &AnyPool,
    store_id: &str,
    id: &str,
    base_url: &str,
) -> Result<Option<EventType>, ApiError> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM event_types WHERE id = $1 AND store_id = $2"
    ))
    .bind(id)
    .bind(store_id)
    .fetch_optional(db)
    .await?;
    row.map(|row| from_row(row, base_url, store_id)).transpose()
}

fn from_row(
    (id, integration_id, body, version, created_at, updated_at): Row,
    base_url: &str,
    store_id: &str,
) -> Result<EventType, ApiError> {
    let definition: EventTypeDefinition = serde_json::from_str(&body)
        .map_err(|e| InternalError::Corrupt(format!("event type {id}: {e}")))?;
    Ok(EventType {
        endpoint_url: endpoint_url(base_url, store_id, &definition),
        id,
        integration_id,
        definition,
        version,
        signing_secret: None,
        created_at,
        updated_at,
    })
}

/// A unique-index clash on (store, alias) is the client's 409, not our 500.
fn conflict_on_alias(
    result: Result<sqlx::any::AnyQueryResult, sqlx::Error>,
    definition: &EventTypeDefinition,
) -> Result<(), ApiError> {
    match result {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            Err(ApiError::Conflict(format!(
                "a custom event type with alias {} already exists in this store",
                alias_of(definition).unwrap_or_default()
            )))
        }
        Err(e) => Err(e.into()),
    }
}

fn alias_of(definition: &EventTypeDefinition) -> Option<String> {
    definition.alias.as_ref().map(|a| a.as_str().to_owned())
}

fn category_of(definition: &EventTypeDefinition) -> &'static str {
    match definition.category {
        Category::Send => "send",
        Category::Receive => "receive",
    }
}

/// Where senders post events of a receive type (SPEC §5).
fn endpoint_url(base: &str, store_id: &str, definition: &EventTypeDefinition) -> Option<String> {
    let alias = definition.alias.as_ref()?.as_str();
    let path = match definition.receive_type? {
        ReceiveType::Api => format!("/v1/custom-events/alias/{alias}"),
        ReceiveType::Webhook => format!("/v1/{store_id}/custom-events/alias/{alias}"),
        ReceiveType::WebMobileApp => format!("/v1/{store_id}/sdk/custom-events/alias/{alias}"),
    };
    Some(format!("{}{path}", base.trim_end_matches('/')))
}
