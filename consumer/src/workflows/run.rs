//! Running the workflows a batch of newly recorded events triggers, inside the batch's
//! transaction: contact fields are changed in memory in event order and written once per
//! contact; send events become outbox deliveries once their values pass the send type's
//! checks. A run that fails takes no effect; a send it refused is recorded in the outbox as
//! dead-lettered with the reason, never sent.

use std::collections::{HashMap, HashSet};

use schemas::{CompiledEventType, ContactKey, EventEnvelope, EventTypeDefinition};
use serde::Serialize;
use serde_json::{Map, Value};
use sqlx::{Any, Transaction};

use crate::metrics;
use store::outbox::{self, NewDelivery};
use store::sql::list_placeholders;
use store::webhooks::{new_message_id, Payload, SEND_EVENT};
use store::workflows::template::{Scope, Template};
use store::workflows::{Action, WorkflowDefinition};

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
    let mut refused_sends = Vec::new();
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
                Err(failure) => {
                    tracing::warn!(
                        workflow = %workflow_id, event = %event.id, why = %failure.reason,
                        "workflow run failed"
                    );
                    metrics::report_workflow_run("failed");
                    if let Some(refused) = failure.refused {
                        refused_sends.push((*refused, failure.reason));
                    }
                }
            }
        }
    }
    outbox::dead_letter(tx, &refused_sends, now).await?;
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

/// Why a run failed; when a send event was refused, the send as it would have gone out.
#[derive(Debug)]
struct RunFailure {
    reason: String,
    refused: Option<Box<NewDelivery>>,
}

impl RunFailure {
    fn new(reason: impl Into<String>) -> RunFailure {
        RunFailure {
            reason: reason.into(),
            refused: None,
        }
    }
}

/// One workflow for one event. Returns whether contact fields were set; an error names why
/// the run could not complete, and then none of its actions take effect.
fn run_one(
    workflow_id: &str,
    workflow: &WorkflowDefinition,
    event: &EventEnvelope,
    contact_fields: &mut Map<String, Value>,
    send_types: &SendTypes,
    now: &str,
    deliveries: &mut Vec<NewDelivery>,
) -> Result<bool, RunFailure> {
    let mut fields = contact_fields.clone();
    let mut sends = Vec::new();
    let mut set_fields = false;
    for (index, action) in workflow.actions.iter().enumerate() {
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
            )
            .map_err(RunFailure::new)?
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
                let send_type = send_types
                    .get(&(event.store_id.clone(), custom_event_type_id.clone()))
                    .ok_or_else(|| RunFailure::new("its send event type no longer exists"))?;
                // A refused send keeps the values as rendered, to show what did not fit.
                let (values, refused) = match send_type.check_values(&rendered) {
                    Ok(checked) => (checked, None),
                    Err(violations) => (rendered, Some(violations)),
                };
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
                        fields: values,
                    },
                }
                .to_json();
                let send = NewDelivery {
                    store_id: event.store_id.clone(),
                    message_id,
                    webhook_id: None,
                    event_type_id: Some(custom_event_type_id.clone()),
                    event: SEND_EVENT.to_owned(),
                    payload,
                };
                if let Some(violations) = refused {
                    let problems: Vec<String> =
                        violations.iter().map(|v| v.message.clone()).collect();
                    return Err(RunFailure {
                        reason: format!(
                            "action {index} (sendCustomEvent) does not fit its send event type: {}",
                            problems.join("; ")
                        ),
                        refused: Some(Box::new(send)),
                    });
                }
                sends.push(send);
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

/// The send types the workflows name that still exist, compiled to check values, by
/// (store, id).
type SendTypes = HashMap<(String, String), CompiledEventType>;

/// Reads the send types the workflows name.
async fn send_types(
    tx: &mut Transaction<'_, Any>,
    workflows: &Workflows,
) -> Result<SendTypes, sqlx::Error> {
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
    let mut found = SendTypes::new();
    if ids.is_empty() {
        return Ok(found);
    }
    let sql = format!(
        "SELECT store_id, id, body FROM event_types WHERE category = 'send' AND id IN ({})",
        list_placeholders(1, ids.len())
    );
    let mut query = sqlx::query_as::<_, (String, String, String)>(&sql);
    for id in ids {
        query = query.bind(id);
    }
    for (store, id, body) in query.fetch_all(&mut **tx).await? {
        match serde_json::from_str::<EventTypeDefinition>(&body) {
            Ok(definition) => {
                found.insert((store, id), CompiledEventType::compile(&definition));
            }
            // Left out, so runs sending it fail rather than send unchecked values.
            Err(error) => tracing::error!(event_type = %id, %error, "a send type cannot be read"),
        }
    }
    Ok(found)
}
