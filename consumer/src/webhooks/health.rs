//! Endpoint health: a subscription that keeps failing for `disable_after` is disabled, and the
//! store's other subscriptions to `webhook.disabled` are told.

use std::time::Duration;

use serde::Serialize;
use sqlx::{Any, Transaction};

use store::clock;
use store::outbox::{self, NewDelivery};
use store::webhooks::{new_message_id, subscriptions, EventKind, Payload, Streak};

/// A 2xx ends a failing streak: these subscriptions' each.
pub(crate) async fn succeeded(
    db: &mut sqlx::AnyConnection,
    webhook_ids: &[&str],
) -> Result<(), sqlx::Error> {
    store::webhooks::clear_failing(db, webhook_ids).await
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
    let Some(Streak {
        failing_since: since,
        store_id,
    }) = store::webhooks::continue_failing(tx, webhook_id, &now).await?
    else {
        return Ok(false);
    };
    let failing_for = match (clock::parse(&now), clock::parse(&since)) {
        (Some(now), Some(since)) => (now - since).unsigned_abs(),
        _ => Duration::ZERO,
    };
    if failing_for < disable_after {
        return Ok(false);
    }
    store::webhooks::disable(tx, webhook_id, &now).await?;
    tracing::warn!(webhook = %webhook_id, %since, "disabled a webhook that kept failing");
    let others = subscriptions(tx, &[store_id.as_str()]).await?;
    // The target URL stays out of the notice: URLs can carry tokens, and the notice goes to
    // the store's other endpoints.
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
            contact_key: None,
        })
        .collect();
    outbox::enqueue(tx, &notices, &now).await?;
    Ok(true)
}
