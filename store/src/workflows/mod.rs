//! The workflows table's definition: what triggers a workflow and the actions it runs, with
//! values as templates. The gateway checks a definition when it is saved; the consumer runs it.

mod active;
pub mod template;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use active::{active, send_types, ActiveWorkflow, SendType};
pub use template::Template;

/// A workflow's stored and answered definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkflowDefinition {
    pub name: String,
    pub status: WorkflowStatus,
    pub trigger: Trigger,
    pub actions: Vec<Action>,
}

/// Paused workflows do nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkflowStatus {
    Active,
    Paused,
}

impl WorkflowStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            WorkflowStatus::Active => "active",
            WorkflowStatus::Paused => "paused",
        }
    }

    pub fn parse(text: &str) -> Option<WorkflowStatus> {
        [WorkflowStatus::Active, WorkflowStatus::Paused]
            .into_iter()
            .find(|s| s.as_str() == text)
    }
}

/// What starts a run: an accepted event of a receive type, or a contact entering a segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", untagged)]
pub enum Trigger {
    #[serde(rename_all = "camelCase")]
    Event { custom_event_type_id: String },
    #[serde(rename_all = "camelCase")]
    SegmentEntered { segment_entered: String },
}

impl Trigger {
    /// The id of the event type or segment that starts a run, as the consumer looks it up.
    pub fn id(&self) -> &str {
        match self {
            Trigger::Event {
                custom_event_type_id,
            } => custom_event_type_id,
            Trigger::SegmentEntered { segment_entered } => segment_entered,
        }
    }
}

/// One step of a run; values are templates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase")]
pub enum Action {
    /// Sets the contact's fields, keyed by contact field name.
    #[serde(rename_all = "camelCase")]
    SetContactFields { fields: BTreeMap<String, String> },
    /// POSTs an event of a send type to its `webhookUrl`, keyed by the type's field ids.
    #[serde(rename_all = "camelCase")]
    SendCustomEvent {
        custom_event_type_id: String,
        fields: BTreeMap<String, String>,
    },
}

impl Action {
    /// The wire name of the action.
    pub fn kind(&self) -> &'static str {
        match self {
            Action::SetContactFields { .. } => "setContactFields",
            Action::SendCustomEvent { .. } => "sendCustomEvent",
        }
    }

    /// The templates of the action, by key.
    pub fn fields(&self) -> &BTreeMap<String, String> {
        match self {
            Action::SetContactFields { fields } | Action::SendCustomEvent { fields, .. } => fields,
        }
    }
}
