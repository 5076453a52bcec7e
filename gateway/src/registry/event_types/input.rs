//! The body of `POST …/custom-event-types/` and `PUT /v1/custom-event-types/{id}`: a whole
//! definition, whose rules live in `schemas`.

use schemas::EventTypeDefinition;

use crate::error::{violation, ApiError};

/// Reads a definition; a send type's `webhookUrl` is held to the rules of `/v1/webhooks`
/// targets, so it cannot point inside unless the operator allows private targets.
pub(crate) fn definition(
    value: &schemas::Value<'_>,
    allow_private: bool,
) -> Result<EventTypeDefinition, ApiError> {
    let definition = EventTypeDefinition::parse(value).map_err(ApiError::Unprocessable)?;
    if let Some(url) = &definition.webhook_url {
        if let Err(error) = schemas::target::check_url(url, allow_private) {
            return Err(violation("/webhookUrl", error.to_string()));
        }
    }
    Ok(definition)
}
