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
    if let Some(schemas::Verification::StandardWebhooks { secrets }) = &definition.verification {
        if !secrets
            .iter()
            .all(|s| crate::ingest::strong_standard_secret(s))
        {
            return Err(violation(
                "/verification/secret",
                "must be whsec_ and the base64 of a 24 to 64 byte key",
            ));
        }
    }
    if let Some(url) = &definition.webhook_url {
        if let Err(error) = schemas::target::check_url(url, allow_private) {
            return Err(violation("/webhookUrl", error.to_string()));
        }
    }
    Ok(definition)
}
