//! One workflow run for one event, in memory: actions render their templates against the
//! event and the contact, set fields or build a send event, and fail as a whole.

use schemas::{ContactKey, EventEnvelope};
use serde::Serialize;
use serde_json::{Map, Value};
use store::outbox::NewDelivery;
use store::webhooks::{new_message_id, Payload, SEND_EVENT};
use store::workflows::template::{Scope, Template};
use store::workflows::{Action, WorkflowDefinition};

use super::SendTypes;

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
pub(super) struct RunFailure {
    pub(super) reason: String,
    pub(super) refused: Option<Box<NewDelivery>>,
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
pub(super) fn one(
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
                    contact_key: Some(event.contact.tagged()),
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
