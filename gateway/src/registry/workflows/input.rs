//! The bodies of `POST /v1/workflows` and `PATCH /v1/workflows/{id}`: name, status, trigger
//! and actions, all required on a create and only those present on a patch. Whether the event
//! types they name exist, and fit, is checked by the handler against the store.

use std::collections::BTreeMap;

use schemas::reader::{as_str, is_null, members};
use schemas::{ObjectReader, Violation};
use store::workflows::{Action, Template, Trigger, WorkflowDefinition, WorkflowStatus};

use super::super::read_object;
use crate::contacts::{is_field_name, IDENTITY_FIELDS};
use crate::error::ApiError;

const MAX_ACTIONS: usize = 20;
const MAX_FIELDS: usize = 50;

/// The properties a patch sets; None leaves one as it is (`actions` as a whole).
#[derive(Debug, Default)]
pub(crate) struct PatchWorkflow {
    name: Option<String>,
    status: Option<WorkflowStatus>,
    trigger: Option<Trigger>,
    actions: Option<Vec<Action>>,
}

impl PatchWorkflow {
    /// Sets the properties present on `definition`.
    pub(crate) fn apply(self, definition: &mut WorkflowDefinition) {
        if let Some(name) = self.name {
            definition.name = name;
        }
        if let Some(status) = self.status {
            definition.status = status;
        }
        if let Some(trigger) = self.trigger {
            definition.trigger = trigger;
        }
        if let Some(actions) = self.actions {
            definition.actions = actions;
        }
    }
}

/// A new workflow's definition; it is active unless the body says otherwise.
pub(crate) fn new_workflow(value: &schemas::Value<'_>) -> Result<WorkflowDefinition, ApiError> {
    let read = read_object(value, |reader| read_properties(reader, true))?;
    let (Some(name), Some(trigger), Some(actions)) = (read.name, read.trigger, read.actions) else {
        // Reading reports a missing required property; this is not reached.
        return Err(ApiError::BadRequest(
            "name, trigger and actions are required".into(),
        ));
    };
    Ok(WorkflowDefinition {
        name,
        status: read.status.unwrap_or(WorkflowStatus::Active),
        trigger,
        actions,
    })
}

/// A patch: any of the properties, each checked as on a create.
pub(crate) fn patch_workflow(value: &schemas::Value<'_>) -> Result<PatchWorkflow, ApiError> {
    read_object(value, |reader| read_properties(reader, false))
}

fn read_properties(reader: &mut ObjectReader<'_, '_>, creating: bool) -> PatchWorkflow {
    let mut read = PatchWorkflow {
        // Optional on a patch, but never empty, as on a create.
        name: reader.text("name", creating, 1, 255),
        ..PatchWorkflow::default()
    };
    if let Some(status) = reader.string("status", false, 16) {
        read.status = WorkflowStatus::parse(&status);
        if read.status.is_none() {
            reader.violate("status", "must be active or paused");
        }
    }
    // `null` means absent, as everywhere.
    match reader.value("trigger").filter(|v| !is_null(v)) {
        None if creating => reader.violate("trigger", "is required"),
        None => {}
        Some(value) => {
            let path = reader.child_path("trigger");
            if let Some(mut trigger) = ObjectReader::new(value, &path, reader.violations()) {
                read.trigger = read_trigger(&mut trigger);
                trigger.finish();
            }
        }
    }
    match reader.array("actions", creating) {
        None => {}
        Some([]) => reader.violate("actions", "must hold at least one action"),
        Some(items) if items.len() > MAX_ACTIONS => {
            reader.violate(
                "actions",
                format!("must hold at most {MAX_ACTIONS} actions"),
            );
        }
        Some(items) => {
            let base = reader.child_path("actions");
            let actions: Vec<Option<Action>> = items
                .iter()
                .enumerate()
                .map(|(i, item)| read_action(item, &format!("{base}/{i}"), reader.violations()))
                .collect();
            read.actions = actions.into_iter().collect();
        }
    }
    read
}

/// `{customEventTypeId}` or `{segmentEntered}`: exactly one.
fn read_trigger(trigger: &mut ObjectReader<'_, '_>) -> Option<Trigger> {
    let event = trigger.has("customEventTypeId");
    let segment = trigger.has("segmentEntered");
    match (event, segment) {
        (true, true) => {
            trigger.violate(
                "segmentEntered",
                "a trigger names an event type or a segment, not both",
            );
            None
        }
        (false, true) => trigger
            .string("segmentEntered", true, 64)
            .map(|segment_entered| Trigger::SegmentEntered { segment_entered }),
        _ => trigger
            .string("customEventTypeId", true, 64)
            .map(|custom_event_type_id| Trigger::Event {
                custom_event_type_id,
            }),
    }
}

fn read_action(
    value: &schemas::Value<'_>,
    path: &str,
    violations: &mut Vec<Violation>,
) -> Option<Action> {
    let mut reader = ObjectReader::new(value, path, violations)?;
    let kind = reader.string("type", true, 32);
    let send_type = match kind.as_deref() {
        Some("setContactFields") => {
            if reader.has("customEventTypeId") {
                reader.violate(
                    "customEventTypeId",
                    "only a sendCustomEvent action names a type",
                );
            }
            None
        }
        Some("sendCustomEvent") => Some(reader.string("customEventTypeId", true, 64)),
        Some(_) => {
            reader.violate("type", "must be setContactFields or sendCustomEvent");
            None
        }
        None => None,
    };
    let fields = match reader.value("fields").filter(|v| !is_null(v)) {
        None => {
            reader.violate("fields", "is required");
            BTreeMap::new()
        }
        Some(value) => match members(value) {
            Some(templates) => read_templates(&templates, send_type.is_none(), &mut reader),
            None => {
                reader.violate("fields", "must be an object of templates");
                BTreeMap::new()
            }
        },
    };
    reader.finish();
    match (kind.as_deref(), send_type) {
        (Some("setContactFields"), _) => Some(Action::SetContactFields { fields }),
        (Some("sendCustomEvent"), Some(Some(custom_event_type_id))) => {
            Some(Action::SendCustomEvent {
                custom_event_type_id,
                fields,
            })
        }
        _ => None,
    }
}

/// An action's `fields`: keys are field names, values templates that parse. A contact's
/// identity fields cannot be set (`sets_contact`).
fn read_templates(
    templates: &[(&str, &schemas::Value<'_>)],
    sets_contact: bool,
    reader: &mut ObjectReader<'_, '_>,
) -> BTreeMap<String, String> {
    let mut fields = BTreeMap::new();
    if templates.is_empty() || templates.len() > MAX_FIELDS {
        reader.violate("fields", format!("must set 1 to {MAX_FIELDS} fields"));
    }
    let base = reader.child_path("fields");
    for &(key, template) in templates {
        let key_path = format!("{base}/{}", schemas::pointer::escape(key));
        let mut problem = |message: String| {
            reader.violations().push(Violation {
                path: key_path.clone(),
                message,
            })
        };
        if !is_field_name(key) {
            problem("names a field with 1 to 64 letters, digits, _ or -".into());
            continue;
        }
        if sets_contact && IDENTITY_FIELDS.contains(&key) {
            problem("identifies the contact and cannot be set".into());
            continue;
        }
        match as_str(template) {
            None => problem("must be a template string".into()),
            Some(text) => match Template::parse(text) {
                Ok(_) => {
                    fields.insert(key.to_owned(), text.to_owned());
                }
                Err(message) => problem(message),
            },
        }
    }
    fields
}
