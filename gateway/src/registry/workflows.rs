//! Workflows: `/v1/workflows…` (SPEC §6). This module checks and stores definitions; the
//! consumer runs them.

use std::collections::BTreeMap;

use crate::http_body::RequestBody;
use http::{HeaderMap, StatusCode};
use schemas::{Category, CompiledEventType, EventTypeDefinition, Violation};
use serde::Serialize;
use simd_json::prelude::*;
use sqlx::AnyPool;
use store::workflows::{Action, Template, Trigger, WorkflowDefinition, WorkflowStatus};

use super::{to_json, Listing, Page};
use crate::auth::{Caller, Scope};
use crate::error::{ApiError, InternalError};
use crate::http_body;
use crate::routes::HttpResponse;

const MAX_ACTIONS: usize = 20;
/// Workflows per store: every event runs the matching ones inside the consumer's transaction.
const MAX_PER_STORE: i64 = 100;
const MAX_FIELDS: usize = 50;
/// Who a contact is cannot be changed by a workflow.
const IDENTITY_FIELDS: [&str; 2] = ["email", "trackerId"];

/// A workflow as answered.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Workflow {
    id: String,
    #[serde(flatten)]
    definition: WorkflowDefinition,
    created_at: String,
    updated_at: String,
}

/// The properties present in a body; a create needs them all.
#[derive(Debug, Default)]
struct Changes {
    name: Option<String>,
    status: Option<WorkflowStatus>,
    trigger: Option<Trigger>,
    actions: Option<Vec<Action>>,
}

fn read_changes(value: &schemas::Value<'_>, creating: bool) -> Result<Changes, ApiError> {
    let mut violations = Vec::new();
    let changes = {
        let Some(mut reader) = schemas::ObjectReader::new(value, "", &mut violations) else {
            return Err(ApiError::Unprocessable(violations));
        };
        let mut changes = Changes {
            name: reader.string("name", creating, 255),
            ..Changes::default()
        };
        if let Some(status) = reader.string("status", false, 16) {
            changes.status = WorkflowStatus::parse(&status);
            if changes.status.is_none() {
                reader.violate("status", "must be active or paused");
            }
        }
        match reader.value("trigger") {
            None if creating => reader.violate("trigger", "is required"),
            None => {}
            Some(value) => {
                let path = reader.child_path("trigger");
                if let Some(mut trigger) =
                    schemas::ObjectReader::new(value, &path, reader.violations())
                {
                    let id = trigger.string("customEventTypeId", true, 64);
                    trigger.finish();
                    changes.trigger = id.map(|custom_event_type_id| Trigger {
                        custom_event_type_id,
                    });
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
                changes.actions = actions.into_iter().collect();
            }
        }
        reader.finish();
        changes
    };
    if violations.is_empty() {
        Ok(changes)
    } else {
        Err(ApiError::Unprocessable(violations))
    }
}

fn read_action(
    value: &schemas::Value<'_>,
    path: &str,
    violations: &mut Vec<Violation>,
) -> Option<Action> {
    let mut reader = schemas::ObjectReader::new(value, path, violations)?;
    let kind = reader.string("type", true, 32);
    let send_type = match kind.as_deref() {
        Some("setContactFields") => None,
        Some("sendCustomEvent") => Some(reader.string("customEventTypeId", true, 64)),
        Some(_) => {
            reader.violate("type", "must be setContactFields or sendCustomEvent");
            None
        }
        None => None,
    };
    let mut fields = BTreeMap::new();
    match reader.value("fields") {
        None | Some(simd_json::BorrowedValue::Static(simd_json::StaticNode::Null)) => {
            reader.violate("fields", "is required")
        }
        Some(simd_json::BorrowedValue::Object(object)) => {
            if object.is_empty() || object.len() > MAX_FIELDS {
                reader.violate("fields", format!("must set 1 to {MAX_FIELDS} fields"));
            }
            let base = reader.child_path("fields");
            for (key, template) in object.iter() {
                let key_path = format!("{base}/{}", schemas::pointer::escape(key));
                let mut problem = |message: String| {
                    reader.violations().push(Violation {
                        path: key_path.clone(),
                        message,
                    })
                };
                let valid_key = !key.is_empty()
                    && key.len() <= 64
                    && key
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
                if !valid_key {
                    problem("names a field with 1 to 64 letters, digits, _ or -".into());
                    continue;
                }
                if send_type.is_none() && IDENTITY_FIELDS.contains(&key.as_ref()) {
                    problem("identifies the contact and cannot be set".into());
                    continue;
                }
                match template.as_str() {
                    None => problem("must be a template string".into()),
                    Some(text) => match Template::parse(text) {
                        Ok(_) => {
                            fields.insert(key.to_string(), text.to_owned());
                        }
                        Err(message) => problem(message),
                    },
                }
            }
        }
        Some(_) => reader.violate("fields", "must be an object of templates"),
    }
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

/// Checks what a definition names: the trigger is one of the store's receive types, each sent
/// event one of its send types, and each sent field one of that type's fields.
async fn check_references(
    db: &AnyPool,
    store_id: &str,
    definition: &WorkflowDefinition,
) -> Result<(), ApiError> {
    let mut violations = Vec::new();
    match event_type(db, store_id, &definition.trigger.custom_event_type_id).await? {
        Some(t) if t.category == Category::Receive => {}
        Some(_) => violations.push(Violation::new(
            "/trigger/customEventTypeId",
            "must be a receive event type",
        )),
        None => violations.push(Violation::new(
            "/trigger/customEventTypeId",
            "no event type of this store has this id",
        )),
    }
    for i in 0..definition.actions.len() {
        let Action::SendCustomEvent {
            custom_event_type_id,
            fields,
        } = &definition.actions[i]
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
    if violations.is_empty() {
        Ok(())
    } else {
        Err(ApiError::Unprocessable(violations))
    }
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

async fn event_type(
    db: &AnyPool,
    store_id: &str,
    id: &str,
) -> Result<Option<EventTypeDefinition>, ApiError> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT body FROM event_types WHERE id = $1 AND store_id = $2")
            .bind(id)
            .bind(store_id)
            .fetch_optional(db)
            .await?;
    row.map(|(body,)| {
        serde_json::from_str(&body)
            .map_err(|e| ApiError::from(InternalError::Corrupt(format!("event type {id}: {e}"))))
    })
    .transpose()
}

/// `POST /v1/workflows`
pub(crate) async fn create(
    db: &AnyPool,
    caller: &Caller,
    headers: &HeaderMap,
    incoming: &mut RequestBody,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::WorkflowsWrite)?;
    let mut buf = http_body::read_json(headers, incoming).await?;
    let changes = read_changes(&http_body::decode(&mut buf)?, true)?;
    let (Some(name), Some(trigger), Some(actions)) =
        (changes.name, changes.trigger, changes.actions)
    else {
        // read_changes reports a missing required property; this is not reached.
        return Err(ApiError::BadRequest(
            "name, trigger and actions are required".into(),
        ));
    };
    let definition = WorkflowDefinition {
        name,
        status: changes.status.unwrap_or(WorkflowStatus::Active),
        trigger,
        actions,
    };
    check_references(db, &caller.store_id, &definition).await?;
    let (count,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM workflows WHERE store_id = $1")
        .bind(&caller.store_id)
        .fetch_one(db)
        .await?;
    if count >= MAX_PER_STORE {
        return Err(ApiError::Conflict(format!(
            "a store has at most {MAX_PER_STORE} workflows; delete one first"
        )));
    }
    let now = store::clock::now();
    let workflow = Workflow {
        id: super::new_id(),
        definition,
        created_at: now.clone(),
        updated_at: now,
    };
    sqlx::query(
        "INSERT INTO workflows (id, store_id, trigger_event_type_id, status, body, created_at, \
         updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&workflow.id)
    .bind(&caller.store_id)
    .bind(&workflow.definition.trigger.custom_event_type_id)
    .bind(workflow.definition.status.as_str())
    .bind(to_json(&workflow.definition))
    .bind(&workflow.created_at)
    .bind(&workflow.updated_at)
    .execute(db)
    .await?;
    Ok(http_body::json(StatusCode::CREATED, &workflow))
}

/// `GET /v1/workflows`
pub(crate) async fn list(
    db: &AnyPool,
    caller: &Caller,
    query: Option<&str>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::WorkflowsRead)?;
    let page = Page::from_query(query)?;
    let rows: Vec<Row> = sqlx::query_as(
        "SELECT id, body, created_at, updated_at FROM workflows WHERE store_id = $1 \
         ORDER BY id LIMIT $2 OFFSET $3",
    )
    .bind(&caller.store_id)
    .bind(page.fetch_limit())
    .bind(page.offset)
    .fetch_all(db)
    .await?;
    let results = rows
        .into_iter()
        .map(from_row)
        .collect::<Result<Vec<_>, _>>()?;
    Ok(http_body::json(
        StatusCode::OK,
        &Listing::new("/v1/workflows", page, results),
    ))
}

/// `GET /v1/workflows/{id}`
pub(crate) async fn get(db: &AnyPool, caller: &Caller, id: &str) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::WorkflowsRead)?;
    let workflow = find(db, &caller.store_id, id)
        .await?
        .ok_or(ApiError::NotFound("workflow"))?;
    Ok(http_body::json(StatusCode::OK, &workflow))
}

/// `PATCH /v1/workflows/{id}`: changes only the properties present (`actions` as a whole).
pub(crate) async fn patch(
    db: &AnyPool,
    caller: &Caller,
    id: &str,
    headers: &HeaderMap,
    incoming: &mut RequestBody,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::WorkflowsWrite)?;
    let mut workflow = find(db, &caller.store_id, id)
        .await?
        .ok_or(ApiError::NotFound("workflow"))?;
    let mut buf = http_body::read_json(headers, incoming).await?;
    let changes = read_changes(&http_body::decode(&mut buf)?, false)?;
    let definition = &mut workflow.definition;
    if let Some(name) = changes.name {
        definition.name = name;
    }
    if let Some(status) = changes.status {
        definition.status = status;
    }
    if let Some(trigger) = changes.trigger {
        definition.trigger = trigger;
    }
    if let Some(actions) = changes.actions {
        definition.actions = actions;
    }
    check_references(db, &caller.store_id, definition).await?;
    workflow.updated_at = store::clock::now();
    sqlx::query(
        "UPDATE workflows SET trigger_event_type_id = $1, status = $2, body = $3, updated_at = $4 \
         WHERE id = $5 AND store_id = $6",
    )
    .bind(&workflow.definition.trigger.custom_event_type_id)
    .bind(workflow.definition.status.as_str())
    .bind(to_json(&workflow.definition))
    .bind(&workflow.updated_at)
    .bind(id)
    .bind(&caller.store_id)
    .execute(db)
    .await?;
    Ok(http_body::json(StatusCode::OK, &workflow))
}

/// `DELETE /v1/workflows/{id}`
pub(crate) async fn delete(
    db: &AnyPool,
    caller: &Caller,
    id: &str,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::WorkflowsWrite)?;
    let deleted = sqlx::query("DELETE FROM workflows WHERE id = $1 AND store_id = $2")
        .bind(id)
        .bind(&caller.store_id)
        .execute(db)
        .await?
        .rows_affected();
    if deleted == 0 {
        return Err(ApiError::NotFound("workflow"));
    }
    Ok(http_body::empty(StatusCode::NO_CONTENT))
}

type Row = (String, String, String, String);

async fn find(db: &AnyPool, store_id: &str, id: &str) -> Result<Option<Workflow>, ApiError> {
    let row: Option<Row> = sqlx::query_as(
        "SELECT id, body, created_at, updated_at FROM workflows WHERE id = $1 AND store_id = $2",
    )
    .bind(id)
    .bind(store_id)
    .fetch_optional(db)
    .await?;
    row.map(from_row).transpose()
}

fn from_row((id, body, created_at, updated_at): Row) -> Result<Workflow, ApiError> {
    let definition = serde_json::from_str(&body)
        .map_err(|e| InternalError::Corrupt(format!("workflow {id}: {e}")))?;
    Ok(Workflow {
        id,
        definition,
        created_at,
        updated_at,
    })
}
