//! Segments: `/v1/segments…` (SPEC §6). The gateway checks and stores definitions and answers
//! members; the consumer keeps membership current. Also the protection the seed asks for: what
//! a segment reads (an integration's event types, their fields) cannot be taken from under it.

mod input;

use std::collections::{BTreeMap, HashSet};

use http::StatusCode;
use schemas::{Category, CompiledEventType, FieldType, Violation};
use serde::Serialize;
use sqlx::AnyPool;
use store::registry::event_types::EventType;
use store::registry::segments::Segment;
use store::registry::workflows::Workflow;
use store::registry::{Document, Window};
use store::segments::{Condition, EventCondition, Op, SegmentDefinition};
use store::workflows::{Action, Trigger};

use super::{refuse_any, Request, Resource};
use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::http_body;
use crate::pagination::{Listing, Page};
use crate::routes::HttpResponse;
use crate::state::AppState;

/// Segments per store: each event is matched against those naming its type inside the
/// consumer's transaction, and each contact change against those reading fields.
const MAX_PER_STORE: i64 = 100;
/// Every segment or workflow of a store, for the checks that read them all (both are bounded
/// at 100 per store).
const ALL: Window = Window {
    limit: 1000,
    offset: 0,
};

/// The segments, for the shared handlers.
#[derive(Debug)]
pub(crate) struct Segments;

impl Resource for Segments {
    const NAME: &'static str = "segment";
    const READ: Scope = Scope::SegmentsRead;
    const WRITE: Scope = Scope::SegmentsWrite;
    type Stored = Segment;
}

/// A segment as answered: its definition and how many contacts are members now.
#[derive(Debug, Serialize)]
struct SegmentAnswer {
    #[serde(flatten)]
    segment: Segment,
    size: i64,
}

/// `POST /v1/segments`
pub(crate) async fn create(
    state: &AppState,
    caller: &Caller,
    mut request: Request<'_, ()>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::SegmentsWrite)?;
    let mut definition = request.read(input::definition).await?;
    check_references(&state.db, &caller.store_id, &mut definition).await?;
    super::ensure_room::<Segments>(state, &caller.store_id, MAX_PER_STORE).await?;
    let segment = Document::new(super::new_id(), definition, store::clock::now());
    store::registry::insert(&state.db, &caller.store_id, &segment).await?;
    Ok(http_body::json(
        StatusCode::CREATED,
        &SegmentAnswer { segment, size: 0 },
    ))
}

/// `PUT /v1/segments/{id}`: replaces the definition; the consumer then evaluates every
/// contact against it again, and members that no longer fit leave.
pub(crate) async fn replace(
    state: &AppState,
    caller: &Caller,
    mut request: Request<'_, &str>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::SegmentsWrite)?;
    let mut segment = store::registry::find::<Segment>(&state.db, &caller.store_id, request.params)
        .await?
        .ok_or(ApiError::NotFound(Segments::NAME))?;
    let mut definition = request.read(input::definition).await?;
    check_references(&state.db, &caller.store_id, &mut definition).await?;
    segment.body = definition;
    segment.updated_at = store::clock::now();
    store::registry::update(&state.db, &caller.store_id, &segment).await?;
    answer(&state.db, StatusCode::OK, segment).await
}

/// `GET /v1/segments/{id}`
pub(crate) async fn get(
    state: &AppState,
    caller: &Caller,
    request: Request<'_, &str>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::SegmentsRead)?;
    let segment = store::registry::find::<Segment>(&state.db, &caller.store_id, request.params)
        .await?
        .ok_or(ApiError::NotFound(Segments::NAME))?;
    answer(&state.db, StatusCode::OK, segment).await
}

async fn answer(
    db: &AnyPool,
    status: StatusCode,
    segment: Segment,
) -> Result<HttpResponse, ApiError> {
    let sizes = store::segments::members::sizes(db, &[segment.id.as_str()]).await?;
    let size = sizes.get(&segment.id).copied().unwrap_or(0);
    Ok(http_body::json(status, &SegmentAnswer { segment, size }))
}

/// `GET /v1/segments?limit=&offset=`
pub(crate) async fn list(
    state: &AppState,
    caller: &Caller,
    request: Request<'_, ()>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::SegmentsRead)?;
    let page = Page::from_query(request.parts.uri.query())?;
    let rows = store::registry::page::<Segment>(&state.db, &caller.store_id, page.window()).await?;
    let ids: Vec<&str> = rows.iter().map(|s| s.id.as_str()).collect();
    let sizes = store::segments::members::sizes(&state.db, &ids).await?;
    let answers: Vec<SegmentAnswer> = rows
        .into_iter()
        .map(|segment| SegmentAnswer {
            size: sizes.get(&segment.id).copied().unwrap_or(0),
            segment,
        })
        .collect();
    Ok(http_body::json(
        StatusCode::OK,
        &Listing::new("/v1/segments", page, answers),
    ))
}

/// `DELETE /v1/segments/{id}`: the segment, its members and its rechecks. Workflows it starts
/// stay, and never run again.
pub(crate) async fn delete(
    state: &AppState,
    caller: &Caller,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::SegmentsWrite)?;
    if !store::segments::members::delete(&state.db, &caller.store_id, id).await? {
        return Err(ApiError::NotFound(Segments::NAME));
    }
    Ok(http_body::empty(StatusCode::NO_CONTENT))
}

/// Checks what a definition names against the store and normalises the values it compares:
/// each event type is one of the store's receive types, each field one of its fields, each op
/// one that fits the field's type and each value one the field takes; no contact field is one
/// a segment-started workflow sets (its runs would move contacts between segments in a loop).
async fn check_references(
    db: &AnyPool,
    store_id: &str,
    definition: &mut SegmentDefinition,
) -> Result<(), ApiError> {
    let mut violations = Vec::new();
    let set_by_workflows = fields_set_on_entry(db, store_id).await?;
    for (i, condition) in definition.conditions.iter_mut().enumerate() {
        match condition {
            Condition::Contact(contact) => {
                if let Some(workflow) = set_by_workflows.get(&contact.contact_field) {
                    violations.push(Violation::new(
                        format!("/conditions/{i}/contactField"),
                        format!(
                            "is set by workflow {workflow}, which a segment starts; a segment \
                             cannot read what segment workflows write"
                        ),
                    ));
                }
            }
            Condition::Event { event } => {
                let found =
                    store::registry::find::<EventType>(db, store_id, &event.custom_event_type_id)
                        .await?;
                check_event(
                    event,
                    found.as_ref(),
                    &format!("/conditions/{i}/event"),
                    &mut violations,
                );
            }
        }
    }
    refuse_any(violations)
}

fn check_event(
    event: &mut EventCondition,
    found: Option<&EventType>,
    path: &str,
    violations: &mut Vec<Violation>,
) {
    let Some(event_type) = found else {
        violations.push(Violation::new(
            format!("{path}/customEventTypeId"),
            "no event type of this store has this id",
        ));
        return;
    };
    if event_type.definition.category != Category::Receive {
        violations.push(Violation::new(
            format!("{path}/customEventTypeId"),
            "must be a receive event type: segments count events contacts sent",
        ));
        return;
    }
    let Some(field_id) = &event.field else {
        return;
    };
    let Some(field) = event_type
        .definition
        .fields
        .iter()
        .find(|f| f.id.as_str() == field_id)
    else {
        violations.push(Violation::new(
            format!("{path}/field"),
            "is not a field of the event type",
        ));
        return;
    };
    let Some(op) = event.op else { return };
    if !fits(field.kind, op) {
        violations.push(Violation::new(
            format!("{path}/op"),
            format!(
                "{} does not apply to a {} field",
                op.as_str(),
                field.kind.as_str()
            ),
        ));
        return;
    }
    let Some(value) = &event.value else { return };
    let compiled = CompiledEventType::compile(&event_type.definition);
    // A checkbox holds option ids; `contains` names one of them.
    let checkbox = field.kind == FieldType::Checkbox;
    let candidate = if checkbox {
        serde_json::Value::Array(vec![value.clone()])
    } else {
        value.clone()
    };
    match compiled.check_value(field_id, &candidate) {
        Some(Ok(normal)) => {
            event.value = match normal {
                serde_json::Value::Array(mut items) if checkbox && items.len() == 1 => items.pop(),
                // A decimal's exact text becomes a number, which compares with the stored
                // text as a number.
                serde_json::Value::String(text) if field.kind == FieldType::Decimal => text
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(serde_json::Value::Number),
                other => Some(other),
            };
        }
        Some(Err(message)) => violations.push(Violation::new(format!("{path}/value"), message)),
        None => {}
    }
}

/// Whether `op` means something for values of `field_type`.
fn fits(field_type: FieldType, op: Op) -> bool {
    match op {
        Op::Exists | Op::NotExists => true,
        Op::Eq | Op::Ne => field_type != FieldType::Checkbox,
        Op::Gt | Op::Gte | Op::Lt | Op::Lte => matches!(
            field_type,
            FieldType::Decimal | FieldType::Integer | FieldType::Date
        ),
        Op::Contains => matches!(
            field_type,
            FieldType::Text | FieldType::Email | FieldType::Phone | FieldType::Checkbox
        ),
    }
}

/// The contact fields that workflows started by a segment set, each with one such workflow.
async fn fields_set_on_entry(
    db: &AnyPool,
    store_id: &str,
) -> Result<BTreeMap<String, String>, sqlx::Error> {
    let mut set = BTreeMap::new();
    for workflow in store::registry::page::<Workflow>(db, store_id, ALL).await? {
        if !matches!(workflow.body.trigger, Trigger::SegmentEntered { .. }) {
            continue;
        }
        for action in &workflow.body.actions {
            if let Action::SetContactFields { fields } = action {
                for field in fields.keys() {
                    set.entry(field.clone())
                        .or_insert_with(|| workflow.id.clone());
                }
            }
        }
    }
    Ok(set)
}

/// The store's segments.
async fn all(db: &AnyPool, store_id: &str) -> Result<Vec<Segment>, sqlx::Error> {
    store::registry::page::<Segment>(db, store_id, ALL).await
}

/// Whether the store has this segment, for workflow triggers.
pub(crate) async fn exists(db: &AnyPool, store_id: &str, id: &str) -> Result<bool, sqlx::Error> {
    store::registry::exists::<Segment>(db, store_id, id).await
}

/// The contact fields the store's segments read, each with one segment reading it, for the
/// workflows check: a segment-started workflow may not set them.
pub(crate) async fn fields_read(
    db: &AnyPool,
    store_id: &str,
) -> Result<BTreeMap<String, String>, sqlx::Error> {
    let mut read = BTreeMap::new();
    for segment in all(db, store_id).await? {
        for field in segment.body.contact_fields() {
            read.entry(field.to_owned())
                .or_insert_with(|| named(&segment));
        }
    }
    Ok(read)
}

/// How a 409 names a segment.
fn named(segment: &Segment) -> String {
    format!("\"{}\" ({})", segment.body.name, segment.id)
}

/// 409 unless no segment counts events of the integration's types (the seed: an integration a
/// segment uses cannot be deleted).
pub(crate) async fn protect_integration(
    db: &AnyPool,
    store_id: &str,
    integration_id: &str,
) -> Result<(), ApiError> {
    let segments = all(db, store_id).await?;
    let mut checked = HashSet::new();
    for segment in &segments {
        for type_id in segment.body.event_types() {
            if !checked.insert(type_id.to_owned()) {
                continue;
            }
            let found = store::registry::find::<EventType>(db, store_id, type_id).await?;
            if found.is_some_and(|t| t.integration_id == integration_id) {
                return Err(ApiError::Conflict(format!(
                    "segment {} counts events of this integration's type {type_id}; change or \
                     delete the segment first",
                    named(segment)
                )));
            }
        }
    }
    Ok(())
}

/// 409 when a segment counts events of this type and `replacement` (None: the type is being
/// deleted) takes away what it reads: the type itself, its receive category, or a field it
/// compares, or that field's type.
pub(crate) async fn protect_event_type(
    db: &AnyPool,
    store_id: &str,
    current: &EventType,
    replacement: Option<&schemas::EventTypeDefinition>,
) -> Result<(), ApiError> {
    for segment in all(db, store_id).await? {
        if !segment.body.event_types().any(|t| t == current.id) {
            continue;
        }
        let Some(replacement) = replacement else {
            return Err(ApiError::Conflict(format!(
                "segment {} counts events of this type; change or delete the segment first",
                named(&segment)
            )));
        };
        if replacement.category != Category::Receive {
            return Err(ApiError::Conflict(format!(
                "segment {} counts events of this type, so it stays a receive type",
                named(&segment)
            )));
        }
        for (_, field_id) in segment
            .body
            .event_fields()
            .filter(|(t, _)| *t == current.id)
        {
            let type_of = |definition: &schemas::EventTypeDefinition| {
                (definition.fields.iter())
                    .find(|f| f.id.as_str() == field_id)
                    .map(|f| f.kind)
            };
            if type_of(replacement) != type_of(&current.definition) {
                return Err(ApiError::Conflict(format!(
                    "segment {} compares the field {field_id}, which cannot be removed or \
                     change type",
                    named(&segment)
                )));
            }
        }
    }
    Ok(())
}
