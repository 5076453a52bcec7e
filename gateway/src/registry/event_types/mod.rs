//! Custom event types (SPEC §4): created and listed under an integration, read, replaced and
//! deleted by id (the last two with the shared handlers). The definition's rules live in
//! `schemas`; this module answers HTTP and adds where senders post (`endpointUrl`).

mod input;

use http::request::Parts;
use http::{header, StatusCode};
use schemas::{Category, EventTypeDefinition, ReceiveType};
use serde::Serialize;
use store::registry::event_types::{self, EventType, Write};
use store::registry::integrations::Integration;

use super::{Request, Resource};
use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::http_body;
use crate::pagination::{Listing, Page};
use crate::routes::HttpResponse;
use crate::state::AppState;

/// An event type as answered: the stored type plus where its events are posted.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct EventTypeAnswer {
    #[serde(flatten)]
    stored: EventType,
    #[serde(skip_serializing_if = "Option::is_none")]
    endpoint_url: Option<String>,
    /// For send types: the Standard Webhooks secret their calls are signed with, shown only
    /// when it is created.
    #[serde(skip_serializing_if = "Option::is_none")]
    signing_secret: Option<String>,
    /// For verified webhook types: how, never with the secrets (they are write-only).
    #[serde(skip_serializing_if = "Option::is_none")]
    verification: Option<serde_json::Value>,
}

/// The event types, for the shared handlers.
#[derive(Debug)]
pub(crate) struct EventTypes;

impl Resource for EventTypes {
    const NAME: &'static str = "custom event type";
    const READ: Scope = Scope::CustomEventTypesRead;
    const WRITE: Scope = Scope::CustomEventTypesWrite;
    type Stored = EventType;

    fn answer(
        state: &AppState,
        caller: &Caller,
        parts: &Parts,
        stored: EventType,
    ) -> impl Serialize {
        answer(state, caller, parts, stored, None)
    }

    /// Ingest caches types by alias: this gateway learns the change at once.
    fn written(state: &AppState, caller: &Caller) {
        state.types.forget_store(&caller.store_id);
    }
}

/// `POST /v1/custom-integrations/{id}/custom-event-types/`
pub(crate) async fn create(
    state: &AppState,
    caller: &Caller,
    mut request: Request<'_, &str>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::CustomEventTypesWrite)?;
    let integration_id = request.params;
    if !store::registry::exists::<Integration>(&state.db, &caller.store_id, integration_id).await? {
        return Err(ApiError::NotFound("custom integration"));
    }
    let private = state.config.delivery.allow_private_targets;
    let definition = request.read(|v| input::definition(v, private)).await?;
    let now = store::clock::now();
    let event_type = EventType {
        id: super::new_id(),
        integration_id: integration_id.to_owned(),
        definition,
        version: 1,
        created_at: now.clone(),
        updated_at: now,
    };
    let secret =
        (event_type.definition.category == Category::Send).then(store::webhooks::generate_secret);
    save(state, caller, request.parts, event_type, secret).await
}

/// `GET /v1/custom-integrations/{id}/custom-event-types/`
pub(crate) async fn list(
    state: &AppState,
    caller: &Caller,
    request: Request<'_, &str>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::CustomEventTypesRead)?;
    let integration_id = request.params;
    if !store::registry::exists::<Integration>(&state.db, &caller.store_id, integration_id).await? {
        return Err(ApiError::NotFound("custom integration"));
    }
    let page = Page::from_query(request.parts.uri.query())?;
    let rows =
        event_types::page(&state.db, &caller.store_id, integration_id, page.window()).await?;
    let answers: Vec<_> = rows
        .into_iter()
        .map(|row| answer(state, caller, request.parts, row, None))
        .collect();
    let path = format!("/v1/custom-integrations/{integration_id}/custom-event-types/");
    Ok(http_body::json(
        StatusCode::OK,
        &Listing::new(&path, page, answers),
    ))
}

/// `PUT /v1/custom-event-types/{id}`: replaces the definition and bumps its version.
pub(crate) async fn replace(
    state: &AppState,
    caller: &Caller,
    mut request: Request<'_, &str>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::CustomEventTypesWrite)?;
    let mut event_type =
        store::registry::find::<EventType>(&state.db, &caller.store_id, request.params)
            .await?
            .ok_or(ApiError::NotFound(EventTypes::NAME))?;
    let private = state.config.delivery.allow_private_targets;
    let definition = request.read(|v| input::definition(v, private)).await?;
    super::segments::protect_event_type(
        &state.db,
        &caller.store_id,
        &event_type,
        Some(&definition),
    )
    .await?;
    event_type.definition = definition;
    event_type.version += 1;
    event_type.updated_at = store::clock::now();
    // A type that becomes a send type gets its secret now, shown in this answer only.
    let secret = if event_type.definition.category == Category::Send
        && !event_types::has_signing_secret(&state.db, &event_type.id).await?
    {
        Some(store::webhooks::generate_secret())
    } else {
        None
    };
    save(state, caller, request.parts, event_type, secret).await
}

/// `DELETE /v1/custom-event-types/{id}`: refused (409) while a segment counts its events.
pub(crate) async fn delete(
    state: &AppState,
    caller: &Caller,
    request: Request<'_, &str>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::CustomEventTypesWrite)?;
    let Some(event_type) =
        store::registry::find::<EventType>(&state.db, &caller.store_id, request.params).await?
    else {
        return Err(ApiError::NotFound(EventTypes::NAME));
    };
    super::segments::protect_event_type(&state.db, &caller.store_id, &event_type, None).await?;
    super::delete::<EventTypes>(state, caller, request).await
}

/// Stores a new (version 1) or replaced type and answers it, with its signing secret when
/// this write set one. A clash on the store's aliases is the client's 409.
async fn save(
    state: &AppState,
    caller: &Caller,
    parts: &Parts,
    event_type: EventType,
    secret: Option<String>,
) -> Result<HttpResponse, ApiError> {
    let (db, store_id, key) = (&state.db, caller.store_id.as_str(), secret.as_deref());
    let (written, status) = if event_type.version == 1 {
        let written = event_types::insert(db, store_id, &event_type, key).await?;
        (written, StatusCode::CREATED)
    } else {
        let written = event_types::replace(db, store_id, &event_type, key).await?;
        (written, StatusCode::OK)
    };
    if written == Write::AliasTaken {
        let alias = event_type.definition.alias.as_ref().map(|a| a.as_str());
        return Err(ApiError::Conflict(format!(
            "a custom event type with alias {} already exists in this store",
            alias.unwrap_or_default()
        )));
    }
    EventTypes::written(state, caller);
    let answer = answer(state, caller, parts, event_type, secret);
    Ok(http_body::json(status, &answer))
}

/// An event type as answered; the secret is given only by the write that set it.
fn answer(
    state: &AppState,
    caller: &Caller,
    parts: &Parts,
    stored: EventType,
    signing_secret: Option<String>,
) -> EventTypeAnswer {
    let base = base_url(state, parts);
    EventTypeAnswer {
        endpoint_url: endpoint_url(&base, &caller.store_id, &stored.definition),
        verification: (stored.definition.verification.as_ref()).map(schemas::Verification::summary),
        stored,
        signing_secret,
    }
}

/// Where senders post events of a receive type (SPEC §5).
fn endpoint_url(base: &str, store_id: &str, definition: &EventTypeDefinition) -> Option<String> {
    let alias = definition.alias.as_ref()?.as_str();
    let path = match definition.receive_type? {
        ReceiveType::Api => format!("/v1/custom-events/alias/{alias}"),
        ReceiveType::Webhook => format!("/v1/{store_id}/custom-events/alias/{alias}"),
        ReceiveType::WebMobileApp => format!("/v1/{store_id}/sdk/custom-events/alias/{alias}"),
    };
    Some(format!("{}{path}", base.trim_end_matches('/')))
}

/// The base of `endpointUrl`s: `--public-url`, else the scheme-less Host the client used.
fn base_url(state: &AppState, parts: &Parts) -> String {
    if let Some(url) = &state.config.public_url {
        return url.as_str().trim_end_matches('/').to_owned();
    }
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.parse::<http::uri::Authority>().ok())
        .or_else(|| parts.uri.authority().cloned());
    match host {
        Some(host) => format!("http://{host}"),
        None => format!("http://{}", state.config.listen),
    }
}
