//! The workflows table as the registry manages it: a definition (see `crate::workflows`) stored
//! as a JSON document, with its trigger and status copied into columns for the consumer's
//! lookups. Every read and write is a shared function of [`super`], for [`Workflow`].

use super::{Document, DocumentBody};
use crate::workflows::WorkflowDefinition;

/// A workflow as stored and answered.
pub type Workflow = Document<WorkflowDefinition>;

impl DocumentBody for WorkflowDefinition {
    const TABLE: &'static str = "workflows";

    fn columns(&self) -> Vec<(&'static str, String)> {
        vec![
            ("trigger_event_type_id", self.trigger.id().to_owned()),
            ("status", self.status.as_str().to_owned()),
        ]
    }
}
