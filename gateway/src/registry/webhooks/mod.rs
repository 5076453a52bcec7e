//! Webhook subscriptions: `/v1/webhooks…` (SPEC §7). The gateway stores subscriptions; the
//! consumer's dispatcher delivers to them. Listing, reading and deleting are the shared
//! handlers.

mod input;

use http::StatusCode;
use serde::Serialize;
use sqlx::AnyPool;
use store::registry::event_types;
use store::registry::integrations::Integration;
use store::registry::webhooks::{self, Filter, Webhook, WebhookStatus};
use store::webhooks::generate_secret;

use super::{refuse_any, Listed, Request, Resource};
use crate::auth::{Caller, Scope};
use crate::error::ApiError;
use crate::http_body;
use crate::routes::HttpResponse;
use crate::state::AppState;

/// Subscriptions per store: each event fans out to every matching one inside the consumer's
/// transaction, so their number is bounded.
const MAX_PER_STORE: i64 = 100;

/// The answer to a create: the only time the secret is shown.
#[derive(Debug, Serialize)]
struct Created<'a> {
    #[serde(flatten)]
    webhook: &'a Webhook,
    secret: &'a str,
}

/// The subscriptions, for the shared handlers.
#[derive(Debug)]
pub(crate) struct Webhooks;

impl Resource for Webhooks {
    const NAME: &'static str = "webhook";
    const READ: Scope = Scope::WebhooksRead;
    const WRITE: Scope = Scope::WebhooksWrite;
    type Stored = Webhook;
}

impl Listed for Webhooks {
    const PATH: &'static str = "/v1/webhooks";
}

/// `POST /v1/webhooks`
pub(crate) async fn create(
    state: &AppState,
    caller: &Caller,
    mut request: Request<'_, ()>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::WebhooksWrite)?;
    let private = state.config.delivery.allow_private_targets;
    let asked = request.read(|v| input::new_webhook(v, private)).await?;
    check_filter(&state.db, &caller.store_id, Some(&asked.filter)).await?;
    super::ensure_room::<Webhooks>(state, &caller.store_id, MAX_PER_STORE).await?;
    let now = store::clock::now();
    let webhook = Webhook {
        id: super::new_id(),
        target_url: asked.target_url,
        types: asked.types,
        is_active: asked.is_active,
        status: WebhookStatus::Enabled,
        filter: asked.filter,
        headers: webhooks::header_names(&asked.headers),
        failing_since: None,
        created_at: now.clone(),
        updated_at: now,
    };
    let secret = asked.secret.unwrap_or_else(generate_secret);
    webhooks::insert(
        &state.db,
        &caller.store_id,
        &webhook,
        &secret,
        &asked.headers,
    )
    .await?;
    let created = Created {
        webhook: &webhook,
        secret: &secret,
    };
    Ok(http_body::json(StatusCode::CREATED, &created))
}

/// `PATCH /v1/webhooks/{id}`: changes only the properties present (see
/// `store::registry::webhooks::update` for what `isActive: true` resets).
pub(crate) async fn patch(
    state: &AppState,
    caller: &Caller,
    mut request: Request<'_, &str>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::WebhooksWrite)?;
    let (db, store_id, id) = (&state.db, caller.store_id.as_str(), request.params);
    if store::registry::find::<Webhook>(db, store_id, id)
        .await?
        .is_none()
    {
        return Err(ApiError::NotFound(Webhooks::NAME));
    }
    let private = state.config.delivery.allow_private_targets;
    let patch = request.read(|v| input::patch_webhook(v, private)).await?;
    check_filter(db, store_id, patch.filter.as_ref()).await?;
    let updated = webhooks::update(db, store_id, id, &patch, &store::clock::now()).await?;
    let webhook = match updated {
        false => None,
        true => store::registry::find::<Webhook>(db, store_id, id).await?,
    }
    .ok_or(ApiError::NotFound(Webhooks::NAME))?;
    Ok(http_body::json(StatusCode::OK, &webhook))
}

/// A filter must name what exists: one of the store's integrations, and one of its receive
/// types' aliases (of that integration, when both are given), or it could never match.
async fn check_filter(
    db: &AnyPool,
    store_id: &str,
    filter: Option<&Filter>,
) -> Result<(), ApiError> {
    let Some(filter) = filter else {
        return Ok(());
    };
    let mut violations = Vec::new();
    let mut integration_known = true;
    if let Some(id) = &filter.integration_id {
        integration_known = store::registry::exists::<Integration>(db, store_id, id).await?;
        if !integration_known {
            violations.push(schemas::Violation::new(
                "/filter/integrationId",
                "no custom integration of this store has this id",
            ));
        }
    }
    if let Some(alias) = &filter.alias {
        let owner = event_types::integration_of_alias(db, store_id, alias).await?;
        match (owner, &filter.integration_id) {
            (None, _) => violations.push(schemas::Violation::new(
                "/filter/alias",
                "no custom event type of this store has this alias",
            )),
            (Some(owner), Some(id)) if integration_known && owner != *id => {
                violations.push(schemas::Violation::new(
                    "/filter/alias",
                    "belongs to another integration than filter.integrationId, so nothing would match",
                ))
            }
            _ => {}
        }
    }
    refuse_any(violations)
}
