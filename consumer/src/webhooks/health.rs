//! Endpoint health: a subscription that keeps failing for `disable_after` is disabled, and the
//! store's other subscriptions to `webhook.disabled` are told.

use std::time::Duration;

use serde::Serialize;
use sqlx::{Any, Transaction};

use store::clock;
use store::outbox::{self, NewDelivery};
use store::webhooks::{new_message_id, subscriptions, EventKind, Payload, DISABLED, ENABLED};

/// A 2xx ends a failing streak.
pub(crate) async fn succeeded(
    db: impl sqlx::Executor<'_, Database = sqlx::Any>,
    webhook_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE webhooks SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL",
    )
    .bind(webhook_id)
    .execute(db)
    .await?;
    Ok(())
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Disabled<'a> {
    webhook_id: &'a str,
    failing_since: &'a str,
    disabled_at: &'a str,
}

/// A failed attempt: starts or continues the streak, and disables the subscription once the
/// streak is long enough. Returns whether this call disabled it.
pub(crate) async fn failed(
    tx: &mut Transaction<'_, Any>,
    webhook_id: &str,
    disable_after: Duration,
) -> Result<bool, sqlx::Error> {
    let now = clock::now();
    // The target URL stays out of the notice: URLs can carry tokens, and the notice goes to
    // the store's other endpoints.
    let streak: Option<(String, String)> = sqlx::query_as(&format!(
        "UPDATE webhooks SET failing_since = COALESCE(failing_since, $1) \
         WHERE id = $2 AND status = '{ENABLED}' RETURNING failing_since, store_id"
    ))
    .bind(&now)
    .bind(webhook_id)
    .fetch_optional(&mut **tx)
    .await?;
    let Some((since, store_id)) = streak else {
        return Ok(false);
    };
    let failing_for = match (clock::parse(&now), clock::parse(&since)) {
        (Some(now), Some(since)) => (now - since).unsigned_abs(),
        _ => Duration::ZERO,
    };
    if failing_for < disable_after {
        return Ok(false);
    }
    sqlx::query(&format!(
        "UPDATE webhooks SET status = '{DISABLED}', updated_at = $1 WHERE id = $2"
    ))
    .bind(&now)
    .bind(webhook_id)
    .execute(&mut **tx)
    .await?;
    tracing::warn!(webhook = %webhook_id, %since, "disabled a webhook that kept failing");
    let others = subscriptions(tx, &[store_id.as_str()]).await?;
    let message_id = new_message_id();
    let payload = Payload {
        id: &message_id,
        kind: EventKind::WebhookDisabled.as_str(),
        created_at: &now,
        store_id: &store_id,
        data: Disabled {
            webhook_id,
            failing_since: &since,
            disabled_at: &now,
        },
    }
    .to_json();
    let notices: Vec<NewDelivery> = others
        .iter()
        .filter(|s| s.id != webhook_id && s.wants(EventKind::WebhookDisabled, None))
        .map(|s| NewDelivery {
            store_id: store_id.clone(),
            message_id: message_id.clone(),
            webhook_id: Some(s.id.clone()),
            event_type_id: None,
            event: EventKind::WebhookDisabled.as_str().to_owned(),
            payload: payload.clone(),
        })
        .collect();
    outbox::enqueue(tx, &notices, &now).await?;
    Ok(true)
}
