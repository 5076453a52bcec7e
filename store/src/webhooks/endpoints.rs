//! What the dispatcher reads and writes about the endpoints deliveries go to: a subscription's
//! or a send type's target and secret, read when a delivery is claimed, and a subscription's
//! failing streak, which ends in its being disabled.

use std::collections::HashMap;

use sqlx::{Any, AnyConnection, Transaction};

use super::{DISABLED, ENABLED};
use crate::sql::{engine_of, list_placeholders, positional};

/// A subscription as the dispatcher sends to it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WebhookTarget {
    pub id: String,
    pub target_url: String,
    pub secret: String,
    /// 0 when paused.
    pub is_active: i64,
    /// [`ENABLED`] or [`DISABLED`].
    pub status: String,
    /// Static headers sent with every delivery, as stored (see
    /// [`crate::registry::webhooks::parse_headers`]).
    pub headers: Option<String>,
}

/// These subscriptions (those that still exist).
pub async fn webhook_targets(
    db: &mut AnyConnection,
    ids: &[&str],
) -> Result<Vec<WebhookTarget>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT id, target_url, secret, is_active, status, headers FROM webhooks WHERE id IN ({})",
        list_placeholders(1, ids.len())
    );
    let sql = positional(engine_of(db), sql);
    let mut query = sqlx::query_as::<_, WebhookTarget>(&sql);
    for id in ids {
        query = query.bind(*id);
    }
    query.fetch_all(db).await
}

/// A send event type as the dispatcher sends to it: its definition (where `webhookUrl` and
/// the headers are) as stored JSON, and its signing secret.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SendTarget {
    pub id: String,
    pub body: String,
    pub signing_secret: Option<String>,
}

/// These event types (those that still exist), whatever their category.
pub async fn send_targets(
    db: &mut AnyConnection,
    ids: &[&str],
) -> Result<Vec<SendTarget>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT id, body, signing_secret FROM event_types WHERE id IN ({})",
        list_placeholders(1, ids.len())
    );
    let sql = positional(engine_of(db), sql);
    let mut query = sqlx::query_as::<_, SendTarget>(&sql);
    for id in ids {
        query = query.bind(*id);
    }
    query.fetch_all(db).await
}

/// The integration of each of these event types, for subscription filters.
pub async fn integrations_of(
    tx: &mut Transaction<'_, Any>,
    event_type_ids: &[&str],
) -> Result<HashMap<String, String>, sqlx::Error> {
    if event_type_ids.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!(
        "SELECT id, integration_id FROM event_types WHERE id IN ({})",
        list_placeholders(1, event_type_ids.len())
    );
    let mut query = sqlx::query_as::<_, (String, String)>(&sql);
    for id in event_type_ids {
        query = query.bind(*id);
    }
    Ok(query.fetch_all(&mut **tx).await?.into_iter().collect())
}

/// Ends these subscriptions' failing streaks (a 2xx arrived for each).
pub async fn clear_failing(
    db: &mut AnyConnection,
    webhook_ids: &[&str],
) -> Result<(), sqlx::Error> {
    if webhook_ids.is_empty() {
        return Ok(());
    }
    let sql = positional(
        engine_of(db),
        format!(
            "UPDATE webhooks SET failing_since = NULL WHERE id IN ({}) \
             AND failing_since IS NOT NULL",
            list_placeholders(1, webhook_ids.len())
        ),
    );
    let mut query = sqlx::query(&sql);
    for id in webhook_ids {
        query = query.bind(*id);
    }
    query.execute(db).await?;
    Ok(())
}

/// An enabled subscription's failing streak.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Streak {
    /// When its first failure in a row was recorded.
    pub failing_since: String,
    pub store_id: String,
}

/// Starts an enabled subscription's failing streak at `now`, or continues the one it has;
/// `None` when it is not enabled (or gone).
pub async fn continue_failing(
    tx: &mut Transaction<'_, Any>,
    webhook_id: &str,
    now: &str,
) -> Result<Option<Streak>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE webhooks SET failing_since = COALESCE(failing_since, $1) \
         WHERE id = $2 AND status = '{ENABLED}' RETURNING failing_since, store_id"
    ))
    .bind(now)
    .bind(webhook_id)
    .fetch_optional(&mut **tx)
    .await
}

/// Disables a subscription that failed for too long.
pub async fn disable(
    tx: &mut Transaction<'_, Any>,
    webhook_id: &str,
    now: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "UPDATE webhooks SET status = '{DISABLED}', updated_at = $1 WHERE id = $2"
    ))
    .bind(now)
    .bind(webhook_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}
