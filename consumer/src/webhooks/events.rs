//! The deliveries a batch's new events cause: `custom_event.received` per event, and one
//! `contact.created` or `contact.updated` per contact the batch touched, with the contact as
//! it stands after the batch (workflow changes included).

use std::collections::{BTreeMap, HashMap, HashSet};

use schemas::{ContactKey, EventEnvelope};
use serde::Serialize;
use serde_json::Value;
use sqlx::{Any, Transaction};

use store::contacts::{contact_id, ContactId, ContactState};
use store::outbox::NewDelivery;
use store::webhooks::{
    integrations_of, new_message_id, subscriptions, EventKind, Origin, Payload, Subscription,
};

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ReceivedEvent<'a> {
    event_id: &'a str,
    custom_event_type_id: &'a str,
    integration_id: Option<&'a str>,
    alias: &'a str,
    contact: &'a ContactKey,
    fields: &'a serde_json::Map<String, Value>,
    received_at: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ContactData<'a> {
    #[serde(flatten)]
    key: &'a ContactKey,
    fields: Value,
    created_at: String,
    updated_at: String,
}

/// The subscriptions of a batch's stores, read once per batch.
#[derive(Debug, Default)]
pub(crate) struct Subscribers {
    subscribed: Vec<Subscription>,
    /// The integration of each event type in the batch, for filters.
    integrations: HashMap<String, String>,
}

impl Subscribers {
    /// Reads the active subscriptions of the stores in `events`, and, when there are any, the
    /// integration of each event type in the batch.
    pub(crate) async fn load(
        tx: &mut Transaction<'_, Any>,
        events: &[&EventEnvelope],
    ) -> Result<Subscribers, sqlx::Error> {
        let stores = crate::stores_of(events);
        let subscribed = subscriptions(tx, &stores).await?;
        if subscribed.is_empty() {
            return Ok(Subscribers::default());
        }
        let types: Vec<&str> = events
            .iter()
            .map(|e| e.event_type_id.as_str())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let integrations = integrations_of(tx, &types).await?;
        Ok(Subscribers {
            subscribed,
            integrations,
        })
    }

    /// The active subscriptions of the batch's stores.
    pub(crate) fn subscribed(&self) -> &[Subscription] {
        &self.subscribed
    }

    /// Whether any subscription wants contact.* messages, which carry the contact's state.
    pub(crate) fn want_contacts(&self) -> bool {
        self.subscribed.iter().any(|s| {
            s.kinds.is_empty()
                || s.kinds.contains(&EventKind::ContactCreated)
                || s.kinds.contains(&EventKind::ContactUpdated)
        })
    }

    /// Deliveries for `events` (newly recorded, in queue order); `created` holds the contacts
    /// this batch created and `contacts` their state after the batch (every contact of
    /// `events` when [`Subscribers::want_contacts`]).
    pub(crate) fn deliveries(
        &self,
        events: &[&EventEnvelope],
        created: &HashSet<ContactId>,
        contacts: &HashMap<ContactId, ContactState>,
        now: &str,
    ) -> Vec<NewDelivery> {
        let mut deliveries = Vec::new();
        if self.subscribed.is_empty() {
            return deliveries;
        }
        let mut by_store: HashMap<&str, Vec<&Subscription>> = HashMap::new();
        for subscription in &self.subscribed {
            by_store
                .entry(subscription.store_id.as_str())
                .or_default()
                .push(subscription);
        }
        let integration_of = |event: &EventEnvelope| {
            self.integrations
                .get(event.event_type_id.as_str())
                .map(String::as_str)
        };
        // The last event about each contact is the origin of its contact.* delivery.
        let mut last_event: BTreeMap<ContactId, &EventEnvelope> = BTreeMap::new();
        for event in events {
            let integration_id = integration_of(event);
            let origin = Origin {
                integration_id,
                alias: Some(&event.alias),
            };
            fan_out(
                &mut deliveries,
                &by_store,
                &event.store_id,
                EventKind::CustomEventReceived,
                origin,
                &event.contact,
                &|id| {
                    Payload {
                        id,
                        kind: EventKind::CustomEventReceived.as_str(),
                        created_at: now,
                        store_id: &event.store_id,
                        data: ReceivedEvent {
                            event_id: &event.id,
                            custom_event_type_id: &event.event_type_id,
                            integration_id,
                            alias: &event.alias,
                            contact: &event.contact,
                            fields: &event.fields,
                            received_at: &event.received_at,
                        },
                    }
                    .to_json()
                },
            );
            last_event.insert(contact_id(&event.store_id, &event.contact), event);
        }

        if !self.want_contacts() {
            return deliveries;
        }
        for (id, event) in &last_event {
            let Some(state) = contacts.get(id) else {
                continue;
            };
            let kind = if created.contains(id) {
                EventKind::ContactCreated
            } else {
                EventKind::ContactUpdated
            };
            let origin = Origin {
                integration_id: integration_of(event),
                alias: Some(&event.alias),
            };
            fan_out(
                &mut deliveries,
                &by_store,
                &event.store_id,
                kind,
                origin,
                &event.contact,
                &|message_id| {
                    Payload {
                        id: message_id,
                        kind: kind.as_str(),
                        created_at: now,
                        store_id: &event.store_id,
                        data: ContactData {
                            key: &event.contact,
                            fields: Value::Object(state.fields.clone()),
                            created_at: state.created_at.clone(),
                            updated_at: state.updated_at.clone(),
                        },
                    }
                    .to_json()
                },
            );
        }
        deliveries
    }
}

/// Adds one message of `kind` for every subscription of `store` that wants it.
fn fan_out(
    deliveries: &mut Vec<NewDelivery>,
    by_store: &HashMap<&str, Vec<&Subscription>>,
    store: &str,
    kind: EventKind,
    origin: Origin<'_>,
    contact: &ContactKey,
    payload: &dyn Fn(&str) -> String,
) {
    let wanting: Vec<&&Subscription> = by_store
        .get(store)
        .into_iter()
        .flatten()
        .filter(|s| s.wants(kind, Some(origin)))
        .collect();
    if wanting.is_empty() {
        return;
    }
    // One message, one id, for every subscriber: receivers dedupe on webhook-id.
    let message_id = new_message_id();
    let body = payload(&message_id);
    for subscription in wanting {
        deliveries.push(NewDelivery {
            store_id: store.to_owned(),
            message_id: message_id.clone(),
            webhook_id: Some(subscription.id.clone()),
            event_type_id: None,
            event: kind.as_str().to_owned(),
            payload: body.clone(),
            contact_key: Some(contact.tagged()),
        });
    }
}
