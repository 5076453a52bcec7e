//! The deliveries a batch's new events cause: `custom_event.received` per event, and one
//! `contact.created` or `contact.updated` per contact the batch touched, with the contact as
//! it stands after the batch (workflow changes included).

use std::collections::{BTreeMap, HashMap, HashSet};

use schemas::{ContactKey, EventEnvelope};
use serde::Serialize;
use serde_json::Value;
use sqlx::{Any, Transaction};

use store::outbox::NewDelivery;
use store::sql::list_placeholders;
use store::webhooks::{new_message_id, subscriptions, EventKind, Origin, Payload, Subscription};

use crate::contacts::ContactId;

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

/// Deliveries for `events` (newly recorded, in queue order); `created` holds the contacts this
/// batch created.
pub(crate) async fn for_batch(
    tx: &mut Transaction<'_, Any>,
    events: &[&EventEnvelope],
    created: &HashSet<ContactId>,
    now: &str,
) -> Result<Vec<NewDelivery>, sqlx::Error> {
    let mut stores: Vec<&str> = events.iter().map(|e| e.store_id.as_str()).collect();
    stores.sort_unstable();
    stores.dedup();
    let subscribed = subscriptions(tx, &stores).await?;
    if subscribed.is_empty() {
        return Ok(Vec::new());
    }
    let mut by_store: HashMap<&str, Vec<&Subscription>> = HashMap::new();
    for subscription in &subscribed {
        by_store
            .entry(subscription.store_id.as_str())
            .or_default()
            .push(subscription);
    }
    let integrations = integrations_of(tx, events).await?;
    let mut deliveries = Vec::new();
    // The last event about each contact is the origin of its contact.* delivery.
    let mut last_event: BTreeMap<ContactId, &EventEnvelope> = BTreeMap::new();
    for event in events {
        let integration_id = integrations
            .get(event.event_type_id.as_str())
            .map(String::as_str);
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
        last_event.insert(
            (
                event.store_id.clone(),
                crate::contacts::stored_key(&event.contact),
            ),
            event,
        );
    }

    let wants_contacts = subscribed.iter().any(|s| {
        s.kinds.is_empty()
            || s.kinds.contains(&EventKind::ContactCreated)
            || s.kinds.contains(&EventKind::ContactUpdated)
    });
    if !wants_contacts {
        return Ok(deliveries);
    }
    let states = crate::contacts::states(tx, last_event.keys()).await?;
    for (id, event) in &last_event {
        let Some(state) = states.get(id) else {
            continue;
        };
        let kind = if created.contains(id) {
            EventKind::ContactCreated
        } else {
            EventKind::ContactUpdated
        };
        let origin = Origin {
            integration_id: integrations
                .get(event.event_type_id.as_str())
                .map(String::as_str),
            alias: Some(&event.alias),
        };
        fan_out(
            &mut deliveries,
            &by_store,
            &event.store_id,
            kind,
            origin,
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
    Ok(deliveries)
}

/// Adds one message of `kind` for every subscription of `store` that wants it.
fn fan_out(
    deliveries: &mut Vec<NewDelivery>,
    by_store: &HashMap<&str, Vec<&Subscription>>,
    store: &str,
    kind: EventKind,
    origin: Origin<'_>,
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
        });
    }
}

/// The integration of each event type in the batch.
async fn integrations_of(
    tx: &mut Transaction<'_, Any>,
    events: &[&EventEnvelope],
) -> Result<HashMap<String, String>, sqlx::Error> {
    let ids: Vec<&str> = events
        .iter()
        .map(|e| e.event_type_id.as_str())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let sql = format!(
        "SELECT id, integration_id FROM event_types WHERE id IN ({})",
        list_placeholders(1, ids.len())
    );
    let mut query = sqlx::query_as::<_, (String, String)>(&sql);
    for id in ids {
        query = query.bind(id);
    }
    Ok(query.fetch_all(&mut **tx).await?.into_iter().collect())
}
