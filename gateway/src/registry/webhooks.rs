//! Webhook subscriptions: `/v1/webhooks…` (SPEC §7). This module stores subscriptions; the
//! consumer's dispatcher delivers to them.

use crate::http_body::RequestBody;
use http::{HeaderMap, StatusCode};
use schemas::target;
use serde::Serialize;
use simd_json::prelude::*;
use sqlx::AnyPool;
use store::webhooks::{check_secret, generate_secret, EventKind, DISABLED, ENABLED};

use super::{integrations, Listing, Page};
use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::http_body;
use crate::routes::HttpResponse;

/// Subscriptions per store: each event fans out to every matching one inside the consumer's
/// transaction, so their number is bounded.
const MAX_PER_STORE: i64 = 100;

/// A subscription as answered. The secret appears only in the answer to its creation.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Webhook {
    pub id: String,
    target_url: String,
    types: Vec<&'static str>,
    is_active: bool,
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    #[serde(skip_serializing_if = "Filter::is_empty")]
    filter: Filter,
    failing_since: Option<String>,
    created_at: String,
    updated_at: String,
}

/// Which events a subscription receives besides its types.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(skip_serializing_if = "Option::is_none")]
    integration_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    alias: Option<String>,
}

impl Filter {
    fn is_empty(&self) -> bool {
        self.integration_id.is_none() && self.alias.is_none()
    }
}

/// The properties of a create (all checked) or a patch (only those present).
#[derive(Debug, Default)]
struct Changes {
    target_url: Option<String>,
    types: Option<Vec<EventKind>>,
    is_active: Option<bool>,
    secret: Option<String>,
    /// Some(None) clears the filter.
    filter: Option<Filter>,
}

fn read_changes(
    value: &schemas::Value<'_>,
    creating: bool,
    allow_private: bool,
) -> Result<Changes, ApiError> {
    let mut violations = Vec::new();
    let changes = {
        let Some(mut reader) = schemas::ObjectReader::new(value, "", &mut violations) else {
            return Err(ApiError::Unprocessable(violations));
        };
        let mut changes = Changes {
            target_url: reader.string("targetUrl", creating, 2048),
            is_active: reader.bool("isActive", false),
            secret: reader.string("secret", false, 128),
            ..Changes::default()
        };
        if let Some(url) = &changes.target_url {
            if let Err(error) = target::check_url(url, allow_private) {
                reader.violate("targetUrl", error.to_string());
            }
        }
        if let Some(secret) = &changes.secret {
            if let Err(error) = check_secret(secret) {
                reader.violate("secret", error.to_string());
            }
        }
        if let Some(items) = reader.array("types", false) {
            let mut kinds = Vec::new();
            let mut bad = Vec::new();
            for (i, item) in items.iter().enumerate() {
                match item.as_str().and_then(EventKind::parse) {
                    Some(kind) if !kinds.contains(&kind) => kinds.push(kind),
                    Some(_) => {}
                    None => bad.push(i),
                }
            }
            let names: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
            for i in bad {
                let path = format!("{}/{i}", reader.child_path("types"));
                reader.violations().push(schemas::Violation {
                    path,
                    message: format!("must be one of: {}", names.join(", ")),
                });
            }
            changes.types = Some(kinds);
        }
        match reader.value("filter") {
            None => {}
            Some(value) if value.is_null() => changes.filter = Some(Filter::default()),
            Some(value) => {
                let path = reader.child_path("filter");
                if let Some(mut filter) =
                    schemas::ObjectReader::new(value, &path, reader.violations())
                {
                    let parsed = Filter {
                        integration_id: filter.string("integrationId", false, 64),
                        alias: filter.string("alias", false, 64),
                    };
                    if let Some(alias) = &parsed.alias {
                        if let Err(message) = schemas::Alias::parse(alias) {
                            filter.violate("alias", message);
                        }
                    }
                    filter.finish();
                    changes.filter = Some(parsed);
                }
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

/// A filter must name what exists: one of the store's integrations, and one of its receive
/// types' aliases (of that integration, when both are given), or it could never match.
async fn check_filter(db: &AnyPool, store_id: &str, changes: &Changes) -> Result<(), ApiError> {
    let Some(filter) = &changes.filter else {
        return Ok(());
    };
    let mut violations = Vec::new();
    let mut integration_known = true;
    if let Some(id) = &filter.integration_id {
        integration_known = integrations::exists(db, store_id, id).await?;
        if !integration_known {
            violations.push(schemas::Violation::new(
                "/filter/integrationId",
                "no custom integration of this store has this id",
            ));
        }
    }
    if let Some(alias) = &filter.alias {
        let found: Option<(String,)> = sqlx::query_as(
            "SELECT integration_id FROM event_types WHERE store_id = $1 AND alias = $2",
        )
        .bind(store_id)
        .bind(alias)
        .fetch_optional(db)
        .await?;
        match (found, &filter.integration_id) {
            (None, _) => violations.push(schemas::Violation::new(
                "/filter/alias",
                "no custom event type of this store has this alias",
            )),
            (Some((owner,)), Some(id)) if integration_known && owner != *id => {
                violations.push(schemas::Violation::new(
                    "/filter/alias",
                    "belongs to another integration than filter.integrationId, so nothing would match",
                ))
            }
            _ => {}
        }
    }
    if violations.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Unprocessable(violations))
    }
}

/// `POST /v1/webhooks`
pub(crate) async fn create(
    db: &AnyPool,
    caller: &Caller,
    allow_private: bool,
    headers: &HeaderMap,
    incoming: &mut RequestBody,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::WebhooksWrite)?;
    let mut buf = http_body::read_json(headers, incoming).await?;
    let changes = read_changes(&http_body::decode(&mut buf)?, true, allow_private)?;
    check_filter(db, &caller.store_id, &changes).await?;
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM webhooks WHERE store_id = $1")
        .bind(&caller.store_id)
        .fetch_one(db)
        .await?;
    if count >= MAX_PER_STORE {
        return Err(ApiError::Conflict(format!(
            "a store has at most {MAX_PER_STORE} webhooks; delete one first"
        )));
    }
    let now = store::clock::now();
    let filter = changes.filter.unwrap_or_default();
    let webhook = Webhook {
        id: super::new_id(),
        target_url: changes.target_url.unwrap_or_default(),
        types: changes
            .types
            .unwrap_or_default()
            .iter()
            .map(|k| k.as_str())
            .collect(),
        is_active: changes.is_active.unwrap_or(true),
        status: ENABLED.to_owned(),
        secret: Some(changes.secret.unwrap_or_else(generate_secret)),
        filter,
        failing_since: None,
        created_at: now.clone(),
        updated_at: now,
    };
    sqlx::query(
        "INSERT INTO webhooks (id, store_id, target_url, types, filter_integration_id, \
         filter_alias, is_active, status, secret, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(&webhook.id)
    .bind(&caller.store_id)
    .bind(&webhook.target_url)
    .bind(webhook.types.join(" "))
    .bind(&webhook.filter.integration_id)
    .bind(&webhook.filter.alias)
    .bind(i64::from(webhook.is_active))
    .bind(&webhook.status)
    .bind(&webhook.secret)
    .bind(&webhook.created_at)
    .bind(&webhook.updated_at)
    .execute(db)
    .await?;
    Ok(http_body::json(StatusCode::CREATED, &webhook))
}

/// `GET /v1/webhooks`
pub(crate) async fn list(
    db: &AnyPool,
    caller: &Caller,
    query: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::WebhooksRead)?;
    let page = Page::from_query(query)?;
    let rows: Vec<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM webhooks WHERE store_id = $1 ORDER BY id LIMIT $2 OFFSET $3"
    ))
    .bind(&caller.store_id)
    .bind(page.fetch_limit())
    .bind(page.offset)
    .fetch_all(db)
    .await?;
    let results: Vec<Webhook> = rows.into_iter().map(from_row).collect();
    Ok(http_body::json(
        StatusCode::OK,
        &Listing::new("/v1/webhooks", page, results),
    ))
}

/// `GET /v1/webhooks/{id}`
pub(crate) async fn get(db: &AnyPool, caller: &Caller, id: &str) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::WebhooksRead)?;
    let webhook = find(db, &caller.store_id, id)
        .await?
        .ok_or(ApiError::NotFound("webhook"))?;
    Ok(http_body::json(StatusCode::OK, &webhook))
}

/// `PATCH /v1/webhooks/{id}`: changes only the properties present. Setting `isActive: true`
/// on a subscription that was paused or disabled for failing enables it again with a fresh
/// failure streak, so an old streak does not disable it at its first failure. Only the columns named
/// are written, so a dispatcher disabling the webhook meanwhile is not undone.
pub(crate) async fn patch(
    db: &AnyPool,
    caller: &Caller,
    id: &str,
    allow_private: bool,
    headers: &HeaderMap,
    incoming: &mut RequestBody,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::WebhooksWrite)?;
    if find(db, &caller.store_id, id).await?.is_none() {
        return Err(ApiError::NotFound("webhook"));
    }
    let mut buf = http_body::read_json(headers, incoming).await?;
    let changes = read_changes(&http_body::decode(&mut buf)?, false, allow_private)?;
    check_filter(db, &caller.store_id, &changes).await?;
    let types = changes.types.map(|kinds| {
        kinds
            .iter()
            .map(|k| k.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    });
    let filter = changes.filter.as_ref();
    let updated = sqlx::query(&format!(
        "UPDATE webhooks SET target_url = COALESCE($1, target_url), types = COALESCE($2, types), \
         filter_integration_id = CASE WHEN $3 = 1 THEN $4 ELSE filter_integration_id END, \
         filter_alias = CASE WHEN $3 = 1 THEN $5 ELSE filter_alias END, \
         is_active = COALESCE($6, is_active), \
         status = CASE WHEN $6 = 1 THEN '{ENABLED}' ELSE status END, \
         failing_since = CASE WHEN $6 = 1 AND (status = '{DISABLED}' OR is_active = 0) \
             THEN NULL ELSE failing_since END, \
         secret = COALESCE($7, secret), updated_at = $8 WHERE id = $9 AND store_id = $10"
    ))
    .bind(&changes.target_url)
    .bind(types)
    .bind(i64::from(filter.is_some()))
    .bind(filter.and_then(|f| f.integration_id.clone()))
    .bind(filter.and_then(|f| f.alias.clone()))
    .bind(changes.is_active.map(i64::from))
    .bind(&changes.secret)
    .bind(store::clock::now())
    .bind(id)
    .bind(&caller.store_id)
    .execute(db)
    .await?
    .rows_affected();
    let webhook = match updated {
        0 => None,
        _ => find(db, &caller.store_id, id).await?,
    }
    .ok_or(ApiError::NotFound("webhook"))?;
    Ok(http_body::json(StatusCode::OK, &webhook))
}

/// `DELETE /v1/webhooks/{id}`: its deliveries go with it.
pub(crate) async fn delete(
    db: &AnyPool,
    caller: &Caller,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::WebhooksWrite)?;
    let mut tx = db.begin().await?;
    // Deleted explicitly too: the cascade needs SQLite's foreign_keys on every connection.
    sqlx::query("DELETE FROM deliveries WHERE webhook_id = $1 AND store_id = $2")
        .bind(id)
        .bind(&caller.store_id)
        .execute(&mut *tx)
        .await?;
    let deleted = sqlx::query("DELETE FROM webhooks WHERE id = $1 AND store_id = $2")
        .bind(id)
        .bind(&caller.store_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
    if deleted == 0 {
        return Err(ApiError::NotFound("webhook"));
    }
    tx.commit().await?;
    Ok(http_body::empty(StatusCode::NO_CONTENT))
}

type Row = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    i64,
    String,
    Option<String>,
    String,
    String,
);
const COLUMNS: &str = "id, target_url, types, filter_integration_id, filter_alias, is_active, \
     status, failing_since, created_at, updated_at";

/// The store's subscription with this id.
pub(crate) async fn find(
    db: &AnyPool,
    store_id: &str,
    id: &str,
) -> Result<Option<Webhook>, sqlx::Error> {
    let row: Option<Row> = sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM webhooks WHERE id = $1 AND store_id = $2"
    ))
    .bind(id)
    .bind(store_id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(from_row))
}

fn from_row(row: Row) -> Webhook {
    let (id, target_url, types, integration_id, alias, active, status, failing, created, updated) =
        row;
    Webhook {
        id,
        target_url,
        types: store::webhooks::kinds_of(&types)
            .into_iter()
            .map(EventKind::as_str)
            .collect(),
        is_active: active != 0,
        status,
        secret: None,
        filter: Filter {
            integration_id,
            alias,
        },
        failing_since: failing,
        created_at: created,
        updated_at: updated,
    }
}

impl Webhook {
    /// The types this subscription receives; empty means every type.
    pub(crate) fn kinds(&self) -> Vec<EventKind> {
        self.types
            .iter()
            .filter_map(|t| EventKind::parse(t))
            .collect()
    }
}
