//! The webhooks table and what is stored about subscriptions: the event kinds they ask for,
//! their status, their `whsec_` signing secrets, and the payload every delivery carries.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::RngCore;
use serde::Serialize;
use sqlx::{Any, Transaction};

mod endpoints;

pub use endpoints::{
    clear_failing, continue_failing, disable, integrations_of, send_targets, webhook_targets,
    SendTarget, Streak, WebhookTarget,
};

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
    #[serde(rename = "segment.entered")]
    SegmentEntered,
    #[serde(rename = "segment.exited")]
    SegmentExited,
}

impl EventKind {
    pub const ALL: [EventKind; 6] = [
        EventKind::ContactCreated,
        EventKind::ContactUpdated,
        EventKind::CustomEventReceived,
        EventKind::WebhookDisabled,
        EventKind::SegmentEntered,
        EventKind::SegmentExited,
    ];

    /// The wire name, also the `X-Sluice-Event` header.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::ContactCreated => "contact.created",
            EventKind::ContactUpdated => "contact.updated",
            EventKind::CustomEventReceived => "custom_event.received",
            EventKind::WebhookDisabled => "webhook.disabled",
            EventKind::SegmentEntered => "segment.entered",
            EventKind::SegmentExited => "segment.exited",
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

/// A subscription row as stored, its types still a space-separated list.
#[derive(Debug, sqlx::FromRow)]
struct SubscriptionRow {
    id: String,
    store_id: String,
    types: String,
    filter_integration_id: Option<String>,
    filter_alias: Option<String>,
}

/// An active subscription, as matching needs it.
#[derive(Debug, Clone)]
pub struct Subscription {
    pub id: String,
    pub store_id: String,
    /// Empty: every type.
    pub kinds: Vec<EventKind>,
    pub integration_id: Option<String>,
    pub alias: Option<String>,
}

/// Where an event came from, for subscription filters.
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub integration_id: Option<&'a str>,
    pub alias: Option<&'a str>,
}

impl Subscription {
    /// Whether this subscription receives `kind` for an event from `origin`. Filters name an
    /// integration or alias, so they apply to events that came from one; `webhook.disabled`
    /// comes from none and is filtered by type only.
    pub fn wants(&self, kind: EventKind, origin: Option<Origin<'_>>) -> bool {
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
pub async fn subscriptions(
    tx: &mut Transaction<'_, Any>,
    store_ids: &[&str],
) -> Result<Vec<Subscription>, sqlx::Error> {
    if store_ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT id, store_id, types, filter_integration_id, filter_alias FROM webhooks \
         WHERE is_active = 1 AND status = '{ENABLED}' AND store_id IN ({})",
        crate::sql::list_placeholders(1, store_ids.len())
    );
    let mut query = sqlx::query_as::<_, SubscriptionRow>(&sql);
    for store in store_ids {
        query = query.bind(*store);
    }
    Ok(query
        .fetch_all(&mut **tx)
        .await?
        .into_iter()
        .map(|row| Subscription {
            id: row.id,
            store_id: row.store_id,
            kinds: kinds_of(&row.types),
            integration_id: row.filter_integration_id,
            alias: row.filter_alias,
        })
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

const PREFIX: &str = "whsec_";
/// 192 bits: the Standard Webhooks recommendation is 24 to 64 bytes.
const SECRET_BYTES: usize = 24;
/// The most key material accepted from a user-supplied secret.
const MAX_SECRET_BYTES: usize = 64;

/// Why a user-supplied secret was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SecretError {
    #[error("must be whsec_ followed by base64")]
    NotBase64,
    #[error("must hold between {SECRET_BYTES} and {MAX_SECRET_BYTES} bytes of key")]
    Length,
}

/// A fresh random secret, in the form users copy into their verifier.
pub fn generate_secret() -> String {
    let mut key = [0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut key);
    format!("{PREFIX}{}", STANDARD.encode(key))
}

/// Checks a secret a user chose: the same form as a generated one, with enough key in it.
pub fn check_secret(secret: &str) -> Result<(), SecretError> {
    let key = secret_key(secret).ok_or(SecretError::NotBase64)?;
    if (SECRET_BYTES..=MAX_SECRET_BYTES).contains(&key.len()) {
        Ok(())
    } else {
        Err(SecretError::Length)
    }
}

/// The key bytes of a `whsec_` secret, or `None` when it is not one.
pub fn secret_key(secret: &str) -> Option<Vec<u8>> {
    STANDARD.decode(secret.strip_prefix(PREFIX)?).ok()
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

    #[test]
    fn generated_secrets_are_valid_and_distinct() {
        let (a, b) = (generate_secret(), generate_secret());
        assert_ne!(a, b);
        assert_eq!(check_secret(&a), Ok(()));
        assert!(a.starts_with("whsec_"));
    }

    #[test]
    fn refuses_secrets_without_prefix_base64_or_enough_key() {
        assert_eq!(check_secret("plain"), Err(SecretError::NotBase64));
        assert_eq!(check_secret("whsec_***"), Err(SecretError::NotBase64));
        assert_eq!(check_secret("whsec_c2hvcnQ="), Err(SecretError::Length));
    }
}
