//! Outbound webhooks (SPEC §7): which subscriptions want an event, the durable outbox their
//! deliveries wait in, and the dispatcher that signs, sends and retries them.
//!
//! Deliveries are written in the transaction that stores the event's effects, so an effect and
//! its deliveries are stored together or not at all; the dispatcher reads the outbox, so a
//! restart resumes every pending delivery.

mod deliver;
pub(crate) mod events;
mod health;
pub mod outbox;
pub mod retry;
pub mod sign;
pub mod target;

use std::time::Duration;

use serde::Serialize;
use sqlx::{Any, Transaction};

pub use deliver::{DeliveryConfig, Dispatcher, Wake};
pub use outbox::NewDelivery;
pub use retry::RetrySchedule;

/// The event types a subscription can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum EventKind {
    #[serde(rename = "contact.created")]
    ContactCreated,
    #[serde(rename = "contact.updated")]
    ContactUpdated,
    #[serde(rename = "custom_event.received")]
    CustomEventReceived,
    #[serde(rename = "webhook.disabled")]
    WebhookDisabled,
}

impl EventKind {
    pub const ALL: [EventKind; 4] = [
        EventKind::ContactCreated,
        EventKind::ContactUpdated,
        EventKind::CustomEventReceived,
        EventKind::WebhookDisabled,
    ];

    /// The wire name, also the `X-Sluice-Event` header.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ContactCreated => "contact.created",
            EventKind::ContactUpdated => "contact.updated",
            EventKind::CustomEventReceived => "custom_event.received",
            EventKind::WebhookDisabled => "webhook.disabled",
        }
    }

    pub fn parse(name: &str) -> Option<EventKind> {
        EventKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == name)
    }
}

/// The `X-Sluice-Event` of a workflow's send event, POSTed to a send type's `webhookUrl`.
pub const SEND_EVENT: &str = "custom_event.sent";

/// Status of a subscription that failed for too long.
pub const DISABLED: &str = "disabled";
/// Status of a subscription that delivers.
pub const ENABLED: &str = "enabled";

/// An active subscription, as matching needs it.
#[derive(Debug, Clone)]
pub(crate) struct Subscription {
    pub id: String,
    pub store_id: String,
    /// Empty: every type.
    pub kinds: Vec<EventKind>,
    pub integration_id: Option<String>,
    pub alias: Option<String>,
}

/// Where an event came from, for subscription filters.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Origin<'a> {
    pub integration_id: Option<&'a str>,
    pub alias: Option<&'a str>,
}

impl Subscription {
    /// Whether this subscription receives `kind` for an event from `origin`. Filters name an
    /// integration or alias, so they apply to events that came from one; `webhook.disabled`
    /// comes from none and is filtered by type only.
    pub(crate) fn wants(&self, kind: EventKind, origin: Option<Origin<'_>>) -> bool {
        if !self.kinds.is_empty() && !self.kinds.contains(&kind) {
            return false;
        }
        let Some(origin) = origin else { return true };
        let matches = |filter: &Option<String>, value: Option<&str>| {
            filter.as_deref().is_none_or(|f| Some(f) == value)
        };
        matches(&self.integration_id, origin.integration_id) && matches(&self.alias, origin.alias)
    }
}

/// Parses the stored, space-separated type list.
pub fn kinds_of(stored: &str) -> Vec<EventKind> {
    stored
        .split_whitespace()
        .filter_map(EventKind::parse)
        .collect()
}

/// The active, enabled subscriptions of these stores.
pub(crate) async fn subscriptions(
    tx: &mut Transaction<'_, Any>,
    store_ids: &[&str],
) -> Result<Vec<Subscription>, sqlx::Error> {
    if store_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT id, store_id, types, filter_integration_id, filter_alias FROM webhooks \
         WHERE is_active = 1 AND status = '{ENABLED}' AND store_id IN ({})",
        crate::db::list_placeholders(1, store_ids.len())
    );
    let mut query =
        sqlx::query_as::<_, (String, String, String, Option<String>, Option<String>)>(&sql);
    for store in store_ids {
        query = query.bind(*store);
    }
    Ok(query
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .map(
            |(id, store_id, types, integration_id, alias)| Subscription {
                id,
                store_id,
                kinds: kinds_of(&types),
                integration_id,
                alias,
            },
        )
        .collect())
}

/// The body every delivery POSTs: `{id, type, createdAt, storeId, data}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Payload<'a, T: Serialize> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: &'a str,
    pub created_at: &'a str,
    pub store_id: &'a str,
    pub data: T,
}

impl<T: Serialize> Payload<'_, T> {
    /// The JSON text stored in the outbox and sent as is, so the signature covers exactly it.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// A message id for Standard Webhooks' `webhook-id`: `msg_` and a time-ordered UUID.
pub fn new_message_id() -> String {
    format!("msg_{}", uuid::Uuid::now_v7().simple())
}

/// How long a claimed delivery is reserved: longer than any attempt can take, so a dispatcher
/// that dies mid-attempt leaves it to be tried again once the lease runs out.
pub(crate) fn lease(timeout: Duration) -> Duration {
    timeout * 2 + Duration::from_secs(5)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscription(
        kinds: &[EventKind],
        integration: Option<&str>,
        alias: Option<&str>,
    ) -> Subscription {
        Subscription {
            id: "w".into(),
            store_id: "s".into(),
            kinds: kinds.to_vec(),
            integration_id: integration.map(Into::into),
            alias: alias.map(Into::into),
        }
    }

    #[test]
    fn no_types_means_every_type() {
        let all = subscription(&[], None, None);
        for kind in EventKind::ALL {
            assert!(all.wants(kind, None));
        }
        let some = subscription(&[EventKind::ContactCreated], None, None);
        assert!(some.wants(EventKind::ContactCreated, None));
        assert!(!some.wants(EventKind::CustomEventReceived, None));
    }

    #[test]
    fn filters_match_the_origin_integration_and_alias() {
        let origin = |integration, alias| {
            Some(Origin {
                integration_id: Some(integration),
                alias: Some(alias),
            })
        };
        let by_alias = subscription(&[], None, Some("order-paid"));
        assert!(by_alias.wants(EventKind::CustomEventReceived, origin("i1", "order-paid")));
        assert!(!by_alias.wants(EventKind::CustomEventReceived, origin("i1", "signup")));
        let by_integration = subscription(&[], Some("i1"), None);
        assert!(by_integration.wants(EventKind::ContactUpdated, origin("i1", "signup")));
        assert!(!by_integration.wants(EventKind::ContactUpdated, origin("i2", "signup")));
        // A disabled-endpoint notice has no origin; filters do not hide it.
        assert!(by_integration.wants(EventKind::WebhookDisabled, None));
    }

    #[test]
    fn stored_types_round_trip() {
        assert_eq!(
            kinds_of("contact.created custom_event.received"),
            vec![EventKind::ContactCreated, EventKind::CustomEventReceived]
        );
        assert!(kinds_of("").is_empty());
    }
}
