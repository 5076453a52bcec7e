//! Workflows: `/v1/workflows…` (SPEC §6). The gateway checks and stores definitions; the
//! consumer runs them. Listing, reading and deleting are the shared handlers.

mod input;

use std::collections::BTreeMap;

use http::StatusCode;
use schemas::{Category, CompiledEventType, EventTypeDefinition, Violation};
use sqlx::AnyPool;
use store::registry::event_types::EventType;
use store::registry::workflows::Workflow;
use store::registry::Document;
use store::workflows::{Action, Template, Trigger, WorkflowDefinition};

use super::{refuse_any, Listed, Request, Resource};
use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::http_body;
use crate::routes::HttpResponse;
use crate::state::AppState;

/// Workflows per store: every event runs the matching ones inside the consumer's transaction.
const MAX_PER_STORE: i64 = 100;

/// The workflows, for the shared handlers.
#[derive(Debug)]
pub(crate) struct Workflows;

impl Resource for Workflows {
    const NAME: &'static str = "workflow";
    const READ: Scope = Scope::WorkflowsRead;
    const WRITE: Scope = Scope::WorkflowsWrite;
    type Stored = Workflow;
}

impl Listed for Workflows {
    const PATH: &'static str = "/v1/workflows";
}

/// `POST /v1/workflows`
pub(crate) async fn create(
    state: &AppState,
    caller: &Caller,
    mut request: Request<'_, ()>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::WorkflowsWrite)?;
    let definition = request.read(input::new_workflow).await?;
    check_references(&state.db, &caller.store_id, &definition).await?;
    super::ensure_room::<Workflows>(state, &caller.store_id, MAX_PER_STORE).await?;
    let workflow = Document::new(super::new_id(), definition, store::clock::now());
    store::registry::insert(&state.db, &caller.store_id, &workflow).await?;
    Ok(http_body::json(StatusCode::CREATED, &workflow))
}

/// `PATCH /v1/workflows/{id}`: changes only the properties present (`actions` as a whole).
pub(crate) async fn patch(
    state: &AppState,
    caller: &Caller,
    mut request: Request<'_, &str>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::WorkflowsWrite)?;
    let mut workflow =
        store::registry::find::<Workflow>(&state.db, &caller.store_id, request.params)
            .await?
            .ok_or(ApiError::NotFound(Workflows::NAME))?;
    request
        .read(input::patch_workflow)
        .await?
        .apply(&mut workflow.body);
    check_references(&state.db, &caller.store_id, &workflow.body).await?;
    workflow.updated_at = store::clock::now();
    store::registry::update(&state.db, &caller.store_id, &workflow).await?;
    Ok(http_body::json(StatusCode::OK, &workflow))
}

/// Checks what a definition names: the trigger is one of the store's receive types, each sent
/// event one of its send types, and each sent field one of that type's fields.
async fn check_references(
    db: &AnyPool,
    store_id: &str,
    definition: &WorkflowDefinition,
) -> Result<(), ApiError> {
    let mut violations = Vec::new();
    match &definition.trigger {
        Trigger::Event {
            custom_event_type_id,
        } => match event_type(db, store_id, custom_event_type_id).await? {
            Some(t) if t.category == Category::Receive => {}
            Some(_) => violations.push(Violation::new(
                "/trigger/customEventTypeId",
                "must be a receive event type",
            )),
            None => violations.push(Violation::new(
                "/trigger/customEventTypeId",
                "no event type of this store has this id",
            )),
        },
        Trigger::SegmentEntered { segment_entered } => {
            if !super::segments::exists(db, store_id, segment_entered).await? {
                violations.push(Violation::new(
                    "/trigger/segmentEntered",
                    "no segment of this store has this id",
                ));
            }
            check_entry_fields(db, store_id, definition, &mut violations).await?;
        }
    }
    for (i, action) in definition.actions.iter().enumerate() {
        let Action::SendCustomEvent {
            custom_event_type_id,
            fields,
        } = action
        else {
            continue;
        };
        let path = format!("/actions/{i}/customEventTypeId");
        match event_type(db, store_id, custom_event_type_id).await? {
            Some(t) if t.category == Category::Send => {
                check_send_fields(&t, fields, i, &mut violations);
            }
            Some(_) => violations.push(Violation::new(path, "must be a send event type")),
            None => violations.push(Violation::new(
                path,
                "no event type of this store has this id",
            )),
        }
    }
    refuse_any(violations)
}

/// A workflow a segment starts may not set a contact field any segment reads: its runs could
/// move the contact in or out of segments, starting workflows again, in a loop.
async fn check_entry_fields(
    db: &AnyPool,
    store_id: &str,
    definition: &WorkflowDefinition,
    violations: &mut Vec<Violation>,
) -> Result<(), sqlx::Error> {
    let read = super::segments::fields_read(db, store_id).await?;
    for (i, action) in definition.actions.iter().enumerate() {
        let Action::SetContactFields { fields } = action else {
            continue;
        };
        for field in fields.keys() {
            if let Some(segment) = read.get(field) {
                violations.push(Violation::new(
                    format!("/actions/{i}/fields/{}", schemas::pointer::escape(field)),
                    format!(
                        "is read by segment {segment}; a workflow started by a segment cannot \
                         set what segments read"
                    ),
                ));
            }
        }
    }
    Ok(())
}

/// What a send action's templates make certain: every field they set is one of the send
/// type's, every field it requires is set, and a value without placeholders is one its field
/// takes (checked as the consumer checks it when the run sends). Values read from the event
/// or contact are checked when a run renders them.
fn check_send_fields(
    send_type: &EventTypeDefinition,
    fields: &BTreeMap<String, String>,
    action: usize,
    violations: &mut Vec<Violation>,
) {
    let path = |key: &str| format!("/actions/{action}/fields/{}", schemas::pointer::escape(key));
    let compiled = CompiledEventType::compile(send_type);
    for (key, text) in fields {
        if !send_type.fields.iter().any(|f| f.id.as_str() == key) {
            violations.push(Violation::new(
                path(key),
                "is not a field of the send event type",
            ));
            continue;
        }
        let literal = Template::parse(text).ok().and_then(|t| t.literal());
        if let Some(literal) = literal {
            if let Some(Err(message)) =
                compiled.check_value(key, &serde_json::Value::String(literal))
            {
                violations.push(Violation::new(path(key), message));
            }
        }
    }
    for required in compiled.required_fields() {
        if !fields.contains_key(required) {
            violations.push(Violation::new(
                path(required),
                "is required by the send event type",
            ));
        }
    }
}

/// The definition of the store's event type with this id.
async fn event_type(
    db: &AnyPool,
    store_id: &str,
    id: &str,
) -> Result<Option<EventTypeDefinition>, sqlx::Error> {
    let found = store::registry::find::<EventType>(db, store_id, id).await?;
    Ok(found.map(|t| t.definition))
}
