//! The webhooks table as the registry manages it: subscriptions created, listed, changed and
//! deleted over HTTP. What the consumer needs of them (matching, secrets, payloads) is in
//! `crate::webhooks`. Reading, listing, counting and deleting (with the subscription's
//! deliveries) are the shared functions of [`super`], for [`Webhook`].

use schemas::WebhookHeader;
use serde::Serialize;
use sqlx::{AnyPool, FromRow};

use super::{corrupt, Owned};
use crate::webhooks::{kinds_of, EventKind, DISABLED, ENABLED};

/// Whether a subscription delivers, or was disabled for failing too long.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WebhookStatus {
    Enabled,
    Disabled,
}

impl WebhookStatus {
    /// The stored and answered name.
    pub fn as_str(self) -> &'static str {
        match self {
            WebhookStatus::Enabled => ENABLED,
            WebhookStatus::Disabled => DISABLED,
        }
    }

    pub fn parse(text: &str) -> Option<WebhookStatus> {
        [WebhookStatus::Enabled, WebhookStatus::Disabled]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// Which events a subscription receives besides its types.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Filter {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub integration_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
}

impl Filter {
    /// No filter: every event of the subscription's types.
    pub fn is_empty(&self) -> bool {
        self.integration_id.is_none() && self.alias.is_none()
    }
}

/// A subscription, in the shape the API answers (the secret is never read back).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Webhook {
    pub id: String,
    pub target_url: String,
    /// Empty means every type.
    pub types: Vec<EventKind>,
    pub is_active: bool,
    pub status: WebhookStatus,
    #[serde(skip_serializing_if = "Filter::is_empty")]
    pub filter: Filter,
    /// The static headers' names: their values may be secrets, so they are never read back.
    pub headers: Vec<HeaderName>,
    pub failing_since: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A static header as answered: its name only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HeaderName {
    pub name: String,
}

/// The names of stored headers.
pub fn header_names(headers: &[WebhookHeader]) -> Vec<HeaderName> {
    headers
        .iter()
        .map(|h| HeaderName {
            name: h.name.clone(),
        })
        .collect()
}

/// Headers as stored: a JSON array, or NULL for none.
pub fn stored_headers(headers: &[WebhookHeader]) -> Option<String> {
    (!headers.is_empty()).then(|| serde_json::to_string(headers).unwrap_or_default())
}

/// Headers from their stored form; a row written before headers existed has none.
pub fn parse_headers(stored: Option<&str>) -> Vec<WebhookHeader> {
    stored
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default()
}

/// The properties a change sets; None leaves one as it is.
#[derive(Debug, Clone, Default)]
pub struct WebhookPatch {
    pub target_url: Option<String>,
    pub types: Option<Vec<EventKind>>,
    pub is_active: Option<bool>,
    pub secret: Option<String>,
    /// Some(empty) clears the filter.
    pub filter: Option<Filter>,
    /// Some(empty) removes every header.
    pub headers: Option<Vec<WebhookHeader>>,
}

/// A webhooks row as the database hands it over.
#[derive(Debug, FromRow)]
pub struct WebhookRow {
    id: String,
    target_url: String,
    types: String,
    filter_integration_id: Option<String>,
    filter_alias: Option<String>,
    /// 0 or 1: booleans are integers in both engines' shared SQL.
    is_active: i64,
    status: String,
    headers: Option<String>,
    failing_since: Option<String>,
    created_at: String,
    updated_at: String,
}

impl Owned for Webhook {
    const TABLE: &'static str = "webhooks";
    const COLUMNS: &'static str = "id, target_url, types, filter_integration_id, filter_alias, \
         is_active, status, headers, failing_since, created_at, updated_at";
    const CHILDREN: Option<(&'static str, &'static str)> = Some(("deliveries", "webhook_id"));
    type Row = WebhookRow;

    fn from_row(row: WebhookRow) -> Result<Webhook, sqlx::Error> {
        let status = WebhookStatus::parse(&row.status).ok_or_else(|| {
            corrupt(
                "status",
                format!("webhook {}: unknown status {:?}", row.id, row.status),
            )
        })?;
        Ok(Webhook {
            id: row.id,
            target_url: row.target_url,
            types: kinds_of(&row.types),
            is_active: row.is_active != 0,
            status,
            filter: Filter {
                integration_id: row.filter_integration_id,
                alias: row.filter_alias,
            },
            headers: header_names(&parse_headers(row.headers.as_deref())),
            failing_since: row.failing_since,
            created_at: row.created_at,
            updated_at: row.updated_at,
        })
    }
}

/// The stored, space-separated form of a type list.
fn stored_types(kinds: &[EventKind]) -> String {
    kinds
        .iter()
        .map(|k| k.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

/// Stores a new subscription of the store with its signing secret and static headers.
pub async fn insert(
    db: &AnyPool,
    store_id: &str,
    webhook: &Webhook,
    secret: &str,
    headers: &[WebhookHeader],
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO webhooks (id, store_id, target_url, types, filter_integration_id, \
         filter_alias, is_active, status, secret, created_at, updated_at, headers) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
    )
    .bind(&webhook.id)
    .bind(store_id)
    .bind(&webhook.target_url)
    .bind(stored_types(&webhook.types))
    .bind(&webhook.filter.integration_id)
    .bind(&webhook.filter.alias)
    .bind(i64::from(webhook.is_active))
    .bind(webhook.status.as_str())
    .bind(secret)
    .bind(&webhook.created_at)
    .bind(&webhook.updated_at)
    .bind(stored_headers(headers))
    .execute(db)
    .await?;
    Ok(())
}

/// Writes only the columns a patch names, so a dispatcher disabling the subscription meanwhile
/// is not undone. Setting `isActive: true` on a subscription that was paused or disabled for
/// failing enables it again with a fresh failure streak, so an old streak does not disable it
/// at its first failure. False when the store has no such subscription.
pub async fn update(
    db: &AnyPool,
    store_id: &str,
    id: &str,
    patch: &WebhookPatch,
    now: &str,
) -> Result<bool, sqlx::Error> {
    let filter = patch.filter.as_ref();
    let updated = sqlx::query(&format!(
        "UPDATE webhooks SET target_url = COALESCE($1, target_url), types = COALESCE($2, types), \
         filter_integration_id = CASE WHEN $3 = 1 THEN $4 ELSE filter_integration_id END, \
         filter_alias = CASE WHEN $3 = 1 THEN $5 ELSE filter_alias END, \
         is_active = COALESCE($6, is_active), \
         status = CASE WHEN $6 = 1 THEN '{ENABLED}' ELSE status END, \
         failing_since = CASE WHEN $6 = 1 AND (status = '{DISABLED}' OR is_active = 0) \
             THEN NULL ELSE failing_since END, \
         secret = COALESCE($7, secret), updated_at = $8, \
         headers = CASE WHEN $11 = 1 THEN $12 ELSE headers END \
         WHERE id = $9 AND store_id = $10"
    ))
    .bind(&patch.target_url)
    .bind(patch.types.as_deref().map(stored_types))
    .bind(i64::from(filter.is_some()))
    .bind(filter.and_then(|f| f.integration_id.clone()))
    .bind(filter.and_then(|f| f.alias.clone()))
    .bind(patch.is_active.map(i64::from))
    .bind(&patch.secret)
    .bind(now)
    .bind(id)
    .bind(store_id)
    .bind(i64::from(patch.headers.is_some()))
    .bind(patch.headers.as_deref().and_then(stored_headers))
    .execute(db)
    .await?
    .rows_affected();
    Ok(updated > 0)
}
