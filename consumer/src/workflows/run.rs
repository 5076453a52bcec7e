//! Running the workflows a batch of newly recorded events triggers, inside the batch's
//! transaction: contact fields are changed in memory in event order and written once per
//! contact; send events become outbox deliveries.

use std::collections::{HashMap, HashSet};

use schemas::{ContactKey, EventEnvelope};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::{Any, Transaction};

use super::template::{Scope, Template};
use super::{Action, WorkflowDefinition};
use crate::db::list_placeholders;
use crate::metrics;
use crate::webhooks::{new_message_id, NewDelivery, Payload, SEND_EVENT};

/// What a batch's workflow runs produced besides contact fields.
#[derive(Debug, Default)]
pub struct WorkflowEffects {
    /// Send events to deliver.
    pub deliveries: Vec<NewDelivery>,
    /// Runs completed.
    pub runs: u64,
}

use crate::contacts::ContactId;

/// Runs every active workflow triggered by `events` (newly recorded, in queue order).
pub(crate) async fn run(
    tx: &mut Transaction<'_, Any>,
    events: &[&EventEnvelope],
    now: &str,
) -> Result<WorkflowEffects, sqlx::Error> {
    let mut effects = WorkflowEffects::default();
    let mut stores: Vec<&str> = events.iter().map(|e| e.store_id.as_str()).collect();
    stores.sort_unstable();
    stores.dedup();
    let workflows = active(tx, &stores).await?;
    if workflows.is_empty() {
        return Ok(effects);
    }
    let triggered: Vec<&EventEnvelope> = events
        .iter()
        .copied()
        .filter(|e| workflows.contains_key(&(e.store_id.clone(), e.event_type_id.clone())))
        .collect();
    if triggered.is_empty() {
        return Ok(effects);
    }
    let mut contacts = contact_fields(tx, &triggered).await?;
    let send_types = send_types(tx, &workflows).await?;
    let mut changed: HashSet<ContactId> = HashSet::new();
    for event in triggered {
        let id = (
            event.store_id.clone(),
            crate::contacts::stored_key(&event.contact),
        );
        let key = (event.store_id.clone(), event.event_type_id.clone());
        for (workflow_id, workflow) in workflows.get(&key).into_iter().flatten() {
            let fields = contacts.entry(id.clone()).or_default();
            let ran = run_one(
                workflow_id,
                workflow,
                event,
                fields,
                &send_types,
                now,
                &mut effects.deliveries,
            );
            match ran {
                Ok(set_fields) => {
                    if set_fields {
                        changed.insert(id.clone());
                    }
                    effects.runs += 1;
                    metrics::report_workflow_run("completed");
                }
                Err(why) => {
                    tracing::warn!(workflow = %workflow_id, event = %event.id, why, "workflow run failed");
                    metrics::report_workflow_run("failed");
                }
            }
        }
    }
    for (store, key) in changed {
        let fields = contacts
            .get(&(store.clone(), key.clone()))
            .cloned()
            .unwrap_or_default();
        sqlx::query(
            "UPDATE contacts SET fields = $1, updated_at = $2 WHERE store_id = $3 AND contact_key = $4",
        )
        .bind(Value::Object(fields).to_string())
        .bind(now)
        .bind(&store)
        .bind(&key)
        .execute(&mut **tx)
        .await?;
    }
    Ok(effects)
}

/// The data of a send event's delivery.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SentEvent<'a> {
    custom_event_type_id: &'a str,
    workflow_id: &'a str,
    trigger_event_id: &'a str,
    contact: &'a ContactKey,
    fields: Map<String, Value>,
}

/// One workflow for one event. Returns whether contact fields were set; an error names why
/// the run could not complete, and then none of its actions take effect.
fn run_one(
    workflow_id: &str,
    workflow: &WorkflowDefinition,
    event: &EventEnvelope,
    contact_fields: &mut Map<String, Value>,
    send_types: &HashSet<(String, String)>,
    now: &str,
    deliveries: &mut Vec<NewDelivery>,
) -> Result<bool, &'static str> {
    let mut fields = contact_fields.clone();
    let mut sends = Vec::new();
    let mut set_fields = false;
    for action in &workflow.actions {
        let rendered = {
            let mut readable = fields.clone();
            match &event.contact {
                ContactKey::Email(email) => {
                    readable.entry("email").or_insert(email.as_str().into())
                }
                ContactKey::Tracker(tracker) => readable
                    .entry("trackerId")
                    .or_insert(tracker.as_str().into()),
            };
            render(
                action,
                Scope {
                    event: &event.fields,
                    contact: &readable,
                },
            )?
        };
        match action {
            Action::SetContactFields { .. } => {
                // A value the event or contact lacks leaves the field as it was, rather than
                // erasing it with null.
                fields.extend(rendered.into_iter().filter(|(_, value)| !value.is_null()));
                set_fields = true;
            }
            Action::SendCustomEvent {
                custom_event_type_id,
                ..
            } => {
                if !send_types.contains(&(event.store_id.clone(), custom_event_type_id.clone())) {
                    return Err("its send event type no longer exists");
                }
                let message_id = new_message_id();
                let payload = Payload {
                    id: &message_id,
                    kind: SEND_EVENT,
                    created_at: now,
                    store_id: &event.store_id,
                    data: SentEvent {
                        custom_event_type_id,
                        workflow_id,
                        trigger_event_id: &event.id,
                        contact: &event.contact,
                        fields: rendered,
                    },
                }
                .to_json();
                sends.push(NewDelivery {
                    store_id: event.store_id.clone(),
                    message_id,
                    webhook_id: None,
                    event_type_id: Some(custom_event_type_id.clone()),
                    event: SEND_EVENT.to_owned(),
                    payload,
                });
            }
        }
    }
    *contact_fields = fields;
    deliveries.extend(sends);
    Ok(set_fields)
}

fn render(action: &Action, scope: Scope<'_>) -> Result<Map<String, Value>, &'static str> {
    action
        .fields()
        .iter()
        .map(|(key, text)| {
            // Stored templates were checked when saved; one that no longer parses fails the run.
            let template = Template::parse(text).map_err(|_| "a template does not parse")?;
            Ok((key.clone(), template.render(scope)))
        })
        .collect()
}

type Workflows = HashMap<(String, String), Vec<(String, WorkflowDefinition)>>;

/// Active workflows of these stores, by (store, trigger type), in creation order.
async fn active(tx: &mut Transaction<'_, Any>, stores: &[&str]) -> Result<Workflows, sqlx::Error> {
    let mut workflows = Workflows::new();
    if stores.is_empty() {
        return Ok(workflows);
    }
    let sql = format!(
        "SELECT id, store_id, trigger_event_type_id, body FROM workflows \
         WHERE status = 'active' AND store_id IN ({}) ORDER BY id",
        list_placeholders(1, stores.len())
    );
    let mut query = sqlx::query_as::<_, (String, String, String, String)>(&sql);
    for store in stores {
        query = query.bind(*store);
    }
    for (id, store, trigger, body) in query.fetch_all(&mut **tx).await? {
        match serde_json::from_str::<WorkflowDefinition>(&body) {
            Ok(definition) => workflows
                .entry((store, trigger))
                .or_default()
                .push((id, definition)),
            Err(error) => {
                tracing::error!(workflow = %id, %error, "skipping a workflow that cannot be read")
            }
        }
    }
    Ok(workflows)
}

/// The current fields of the contacts these events are about.
async fn contact_fields(
    tx: &mut Transaction<'_, Any>,
    events: &[&EventEnvelope],
) -> Result<HashMap<ContactId, Map<String, Value>>, sqlx::Error> {
    let ids: Vec<ContactId> = events
        .iter()
        .map(|e| (e.store_id.clone(), crate::contacts::stored_key(&e.contact)))
        .collect();
    Ok(crate::contacts::states(tx, ids.iter())
        .await?
        .into_iter()
        .map(|(id, state)| (id, state.fields))
        .collect())
}

/// The (store, id) of every send type the workflows name that still exists.
async fn send_types(
    tx: &mut Transaction<'_, Any>,
    workflows: &Workflows,
) -> Result<HashSet<(String, String)>, sqlx::Error> {
    let ids: Vec<&str> = workflows
        .values()
        .flatten()
        .flat_map(|(_, w)| &w.actions)
        .filter_map(|action| match action {
            Action::SendCustomEvent {
                custom_event_type_id,
                ..
            } => Some(custom_event_type_id.as_str()),
            Action::SetContactFields { .. } => None,
        })
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if ids.is_empty() {
        return Ok(HashSet::new());
    }
    let sql = format!(
        "SELECT store_id, id FROM event_types WHERE category = 'send' AND id IN ({})",
        list_placeholders(1, ids.len())
    );
    let mut query = sqlx::query_as::<_, (String, String)>(&sql);
    for id in ids {
        query = query.bind(id);
    }
    Ok(query.fetch_all(&mut **tx).await?.into_iter().collect())
}
