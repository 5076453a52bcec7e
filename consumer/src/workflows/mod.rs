//! Workflows (SPEC §6): on a custom event of a chosen type, set contact fields and send custom
//! events, with values from templates. They run inside the consumer's batch transaction, in
//! queue order, so one contact's runs happen in event order and exactly once per event.
//!
//! Contact fields are changed in memory in event order and written once per contact; send
//! events become outbox deliveries once their values pass the send type's checks. A run that
//! fails takes no effect; a send it refused is recorded in the outbox as dead-lettered with
//! the reason, never sent.

mod run;

use std::collections::{HashMap, HashSet};

use schemas::{CompiledEventType, EventEnvelope, EventTypeDefinition};
use serde_json::{Map, Value};
use sqlx::{Any, Transaction};
use store::contacts::{contact_id, ContactId, ContactState};
use store::outbox::{self, NewDelivery};
use store::workflows::{Action, WorkflowDefinition};

use crate::metrics;

/// What a batch's workflow runs produced besides contact fields.
#[derive(Debug, Default)]
pub(crate) struct WorkflowEffects {
    /// Send events to deliver.
    pub deliveries: Vec<NewDelivery>,
    /// Runs completed.
    pub runs: u64,
    /// Contacts whose fields the runs changed.
    pub changed: HashSet<ContactId>,
}

/// Active workflows by (store, trigger type), in creation order.
type ByTrigger = HashMap<(String, String), Vec<(String, WorkflowDefinition)>>;

/// The send types the workflows name that still exist, compiled to check values, by
/// (store, id).
pub(crate) type SendTypes = HashMap<(String, String), CompiledEventType>;

/// The workflows a batch's new events trigger, read once per batch.
#[derive(Debug, Default)]
pub(crate) struct Workflows {
    by_trigger: ByTrigger,
    send_types: SendTypes,
}

impl Workflows {
    /// Reads the active workflows of the stores in `events`, and the send types they name
    /// when any event triggers one.
    pub(crate) async fn load(
        tx: &mut Transaction<'_, Any>,
        events: &[&EventEnvelope],
    ) -> Result<Workflows, sqlx::Error> {
        let stores = crate::stores_of(events);
        let mut workflows = Workflows::default();
        for row in store::workflows::active(tx, &stores).await? {
            match row.definition() {
                Ok(definition) => workflows
                    .by_trigger
                    .entry((row.store_id, row.trigger_event_type_id))
                    .or_default()
                    .push((row.id, definition)),
                Err(error) => {
                    tracing::error!(workflow = %row.id, %error, "skipping a workflow that cannot be read")
                }
            }
        }
        if events.iter().any(|e| workflows.triggered_by(e)) {
            workflows.send_types = send_types(tx, &workflows.by_trigger).await?;
        }
        Ok(workflows)
    }

    /// Whether `event` triggers any workflow.
    pub(crate) fn triggered_by(&self, event: &EventEnvelope) -> bool {
        self.by_trigger
            .contains_key(&(event.store_id.clone(), event.event_type_id.clone()))
    }

    /// Runs every workflow `events` (newly recorded, in queue order) trigger. `contacts` holds
    /// the state of the triggering events' contacts; the fields runs set are written and
    /// changed there too.
    pub(crate) async fn run(
        &self,
        tx: &mut Transaction<'_, Any>,
        events: &[&EventEnvelope],
        contacts: &mut HashMap<ContactId, ContactState>,
        now: &str,
    ) -> Result<WorkflowEffects, sqlx::Error> {
        let mut effects = WorkflowEffects::default();
        // Fields as the runs leave them, starting from the stored ones.
        let mut fields: HashMap<ContactId, Map<String, Value>> = HashMap::new();
        let mut changed: HashSet<ContactId> = HashSet::new();
        let mut refused_sends = Vec::new();
        for event in events.iter().copied().filter(|e| self.triggered_by(e)) {
            let id = contact_id(&event.store_id, &event.contact);
            let key = (event.store_id.clone(), event.event_type_id.clone());
            for (workflow_id, workflow) in self.by_trigger.get(&key).into_iter().flatten() {
                let current = fields.entry(id.clone()).or_insert_with(|| {
                    contacts
                        .get(&id)
                        .map(|state| state.fields.clone())
                        .unwrap_or_default()
                });
                let ran = run::one(
                    workflow_id,
                    workflow,
                    event,
                    current,
                    &self.send_types,
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
        for id in &changed {
            let set = fields.remove(id).unwrap_or_default();
            store::contacts::set_fields(tx, id, &set, now).await?;
            if let Some(state) = contacts.get_mut(id) {
                state.fields = set;
                now.clone_into(&mut state.updated_at);
            }
        }
        effects.changed = changed;
        Ok(effects)
    }
}

/// Reads the send types the workflows name.
async fn send_types(
    tx: &mut Transaction<'_, Any>,
    workflows: &ByTrigger,
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
    for row in store::workflows::send_types(tx, &ids).await? {
        match serde_json::from_str::<EventTypeDefinition>(&row.body) {
            Ok(definition) => {
                found.insert(
                    (row.store_id, row.id),
                    CompiledEventType::compile(&definition),
                );
            }
            // Left out, so runs sending it fail rather than send unchecked values.
            Err(error) => {
                tracing::error!(event_type = %row.id, %error, "a send type cannot be read")
            }
        }
    }
    Ok(found)
}
