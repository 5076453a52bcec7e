//! Custom integrations: `/v1/custom-integrations/…` (SPEC §4). An integration groups the event
//! types of one external system. Listing, reading and deleting are the shared handlers.

mod input;

use http::StatusCode;
use store::registry::integrations::Integration;
use store::registry::Document;

use super::{Listed, Request, Resource};
use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::http_body;
use crate::routes::HttpResponse;
use crate::state::AppState;

/// The integrations, for the shared handlers.
#[derive(Debug)]
pub(crate) struct Integrations;

impl Resource for Integrations {
    const NAME: &'static str = "custom integration";
    const READ: Scope = Scope::CustomIntegrationsRead;
    const WRITE: Scope = Scope::CustomIntegrationsWrite;
    type Stored = Integration;

    /// `eventsEnabled` may have changed, or the integration's types gone: this gateway's
    /// aliases learn it at once.
    fn written(state: &AppState, caller: &Caller) {
        state.types.forget_store(&caller.store_id);
    }
}

impl Listed for Integrations {
    const PATH: &'static str = "/v1/custom-integrations/";
}

/// `POST /v1/custom-integrations/`
pub(crate) async fn create(
    state: &AppState,
    caller: &Caller,
    mut request: Request<'_, ()>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::CustomIntegrationsWrite)?;
    let body = request.read(input::new_integration).await?;
    let integration = Document::new(super::new_id(), body, store::clock::now());
    store::registry::insert(&state.db, &caller.store_id, &integration).await?;
    Ok(http_body::json(StatusCode::CREATED, &integration))
}

/// `PATCH /v1/custom-integrations/{id}`: changes only the properties present.
pub(crate) async fn patch(
    state: &AppState,
    caller: &Caller,
    mut request: Request<'_, &str>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::CustomIntegrationsWrite)?;
    let mut integration =
        store::registry::find::<Integration>(&state.db, &caller.store_id, request.params)
            .await?
            .ok_or(ApiError::NotFound(Integrations::NAME))?;
    request
        .read(input::patch_integration)
        .await?
        .apply(&mut integration.body);
    integration.updated_at = store::clock::now();
    store::registry::update(&state.db, &caller.store_id, &integration).await?;
    Integrations::written(state, caller);
    Ok(http_body::json(StatusCode::OK, &integration))
}

/// `DELETE /v1/custom-integrations/{id}`: refused (409) while a segment counts events of one of
/// its types, as the seed says; otherwise the integration and its types go.
pub(crate) async fn delete(
    state: &AppState,
    caller: &Caller,
    request: Request<'_, &str>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::CustomIntegrationsWrite)?;
    super::segments::protect_integration(&state.db, &caller.store_id, request.params).await?;
    super::delete::<Integrations>(state, caller, request).await
}
