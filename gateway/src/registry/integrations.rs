//! Custom integrations: `/v1/custom-integrations/…` (SPEC §4). An integration groups the event
//! types of one external system.

use crate::http_body::RequestBody;
use http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};
use sqlx::AnyPool;

use super::{to_json, Listing, Page};
use crate::auth::{Caller, Scope};
use crate::error::{ApiError, InternalError};
use crate::http_body;
use crate::routes::HttpResponse;

/// The writable part of an integration, as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct IntegrationBody {
    name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    color: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    image_uri: Option<String>,
    events_enabled: bool,
}

/// An integration as answered.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Integration {
    id: String,
    #[serde(flatten)]
    body: IntegrationBody,
    created_at: String,
    updated_at: String,
}

/// The properties of a create (all checked) or a patch (only those present).
#[derive(Debug, Default)]
struct Changes {
    name: Option<String>,
    description: Option<String>,
    color: Option<String>,
    image_uri: Option<String>,
    events_enabled: Option<bool>,
}

fn read_changes(value: &schemas::Value<'_>, creating: bool) -> Result<Changes, ApiError> {
    let mut violations = Vec::new();
    let changes = {
        let Some(mut reader) = schemas::ObjectReader::new(value, "", &mut violations) else {
            return Err(ApiError::Unprocessable(violations));
        };
        let changes = Changes {
            name: reader.string("name", creating, 255),
            description: reader.string("description", false, 2048),
            color: reader.string("color", false, 32),
            image_uri: reader.string("imageUri", false, 2048),
            events_enabled: reader.bool("eventsEnabled", false),
        };
        if let Some(uri) = &changes.image_uri {
            let valid = url::Url::parse(uri)
                .map(|u| matches!(u.scheme(), "http" | "https"))
                .unwrap_or(false);
            if !valid {
                reader.violate("imageUri", "must be an absolute http or https URL");
            }
        }
        reader.finish();
        changes
    };
    if violations.is_empty() {
        Ok(changes)
    } else {
        Err(ApiError::Unprocessable(violations))
    }
}

/// `POST /v1/custom-integrations/`
pub(crate) async fn create(
    db: &AnyPool,
    caller: &Caller,
    headers: &HeaderMap,
    incoming: &mut RequestBody,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::CustomIntegrationsWrite)?;
    let mut buf = http_body::read_json(headers, incoming).await?;
    let changes = read_changes(&http_body::decode(&mut buf)?, true)?;
    let integration = Integration {
        id: super::new_id(),
        body: IntegrationBody {
            name: changes.name.unwrap_or_default(),
            description: changes.description,
            color: changes.color,
            image_uri: changes.image_uri,
            events_enabled: changes.events_enabled.unwrap_or(true),
        },
        created_at: store::clock::now(),
        updated_at: store::clock::now(),
    };
    sqlx::query(
        "INSERT INTO integrations (id, store_id, body, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&integration.id)
    .bind(&caller.store_id)
    .bind(to_json(&integration.body))
    .bind(&integration.created_at)
    .bind(&integration.updated_at)
    .execute(db)
    .await?;
    Ok(http_body::json(StatusCode::CREATED, &integration))
}

/// `GET /v1/custom-integrations/`
pub(crate) async fn list(
    db: &AnyPool,
    caller: &Caller,
    query: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::CustomIntegrationsRead)?;
    let page = Page::from_query(query)?;
    let rows: Vec<(String, String, String, String)> = sqlx::query_as(
        "SELECT id, body, created_at, updated_at FROM integrations \
         WHERE store_id = $1 ORDER BY id LIMIT $2 OFFSET $3",
    )
    .bind(&caller.store_id)
    .bind(page.fetch_limit())
    .bind(page.offset)
    .fetch_all(db)
    .await?;
    let results = rows
        .into_iter()
        .map(from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(http_body::json(
        StatusCode::OK,
        &Listing::new("/v1/custom-integrations/", page, results),
    ))
}

/// `GET /v1/custom-integrations/{id}`
pub(crate) async fn get(db: &AnyPool, caller: &Caller, id: &str) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::CustomIntegrationsRead)?;
    let integration = find(db, &caller.store_id, id)
        .await?
        .ok_or(ApiError::NotFound("custom integration"))?;
    Ok(http_body::json(StatusCode::OK, &integration))
}

/// `PATCH /v1/custom-integrations/{id}`: changes only the properties present.
pub(crate) async fn patch(
    db: &AnyPool,
    caller: &Caller,
    id: &str,
    headers: &HeaderMap,
    incoming: &mut RequestBody,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::CustomIntegrationsWrite)?;
    let mut integration = find(db, &caller.store_id, id)
        .await?
        .ok_or(ApiError::NotFound("custom integration"))?;
    let mut buf = http_body::read_json(headers, incoming).await?;
    let changes = read_changes(&http_body::decode(&mut buf)?, false)?;
    let current = &mut integration.body;
    if let Some(name) = changes.name {
        current.name = name;
    }
    if changes.description.is_some() {
        current.description = changes.description;
    }
    if changes.color.is_some() {
        current.color = changes.color;
    }
    if changes.image_uri.is_some() {
        current.image_uri = changes.image_uri;
    }
    if let Some(enabled) = changes.events_enabled {
        current.events_enabled = enabled;
    }
    integration.updated_at = store::clock::now();
    sqlx::query(
        "UPDATE integrations SET body = $1, updated_at = $2 WHERE id = $3 AND store_id = $4",
    )
    .bind(to_json(&integration.body))
    .bind(&integration.updated_at)
    .bind(id)
    .bind(&caller.store_id)
    .execute(db)
    .await?;
    Ok(http_body::json(StatusCode::OK, &integration))
}

/// `DELETE /v1/custom-integrations/{id}`: its event types go with it.
pub(crate) async fn delete(
    db: &AnyPool,
    caller: &Caller,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::CustomIntegrationsWrite)?;
    let mut tx = db.begin().await?;
    super::event_types::delete_for_integration(&mut tx, &caller.store_id, id).await?;
    let deleted = sqlx::query("DELETE FROM integrations WHERE id = $1 AND store_id = $2")
        .bind(id)
        .bind(&caller.store_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if deleted == 0 {
        return Err(ApiError::NotFound("custom integration"));
    }
    tx.commit().await?;
    Ok(http_body::empty(StatusCode::NO_CONTENT))
}

/// Whether the store has this integration.
pub(crate) async fn exists(db: &AnyPool, store_id: &str, id: &str) -> Result<bool, sqlx::Error> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT id FROM integrations WHERE id = $1 AND store_id = $2")
            .bind(id)
            .bind(store_id)
            .fetch_optional(db)
            .await?;
    Ok(row.is_some())
}

async fn find(db: &AnyPool, store_id: &str, id: &str) -> Result<Option<Integration>, ApiError> {
    let row: Option<(String, String, String, String)> = sqlx::query_as(
        "SELECT id, body, created_at, updated_at FROM integrations WHERE id = $1 AND store_id = $2",
    )
    .bind(id)
    .bind(store_id)
    .fetch_optional(db)
    .await?;
    row.map(from_row).transpose()
}

fn from_row(
    (id, body, created_at, updated_at): (String, String, String, String),
) -> Result<Integration, ApiError> {
    let body = serde_json::from_str(&body)
        .map_err(|e| InternalError::Corrupt(format!("integration {id}: {e}")))?;
    Ok(Integration {
        id,
        body,
        created_at,
        updated_at,
    })
}
