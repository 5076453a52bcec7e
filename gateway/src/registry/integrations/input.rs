//! The bodies of `POST` and `PATCH /v1/custom-integrations/…`: the same properties, all
//! checked on a create and only those present on a patch.

use schemas::ObjectReader;
use store::registry::integrations::IntegrationBody;

use super::super::read_object;
use crate::error::ApiError;

/// The properties a patch sets; None leaves one as it is.
#[derive(Debug, Default)]
pub(crate) struct PatchIntegration {
    name: Option<String>,
    description: Option<String>,
    color: Option<String>,
    image_uri: Option<String>,
    events_enabled: Option<bool>,
}

impl PatchIntegration {
    /// Sets the properties present on `body`.
    pub(crate) fn apply(self, body: &mut IntegrationBody) {
        if let Some(name) = self.name {
            body.name = name;
        }
        if self.description.is_some() {
            body.description = self.description;
        }
        if self.color.is_some() {
            body.color = self.color;
        }
        if self.image_uri.is_some() {
            body.image_uri = self.image_uri;
        }
        if let Some(enabled) = self.events_enabled {
            body.events_enabled = enabled;
        }
    }
}

/// A new integration: `name` is required, events are enabled unless it says otherwise.
pub(crate) fn new_integration(value: &schemas::Value<'_>) -> Result<IntegrationBody, ApiError> {
    let read = read_object(value, |reader| read_properties(reader, true))?;
    Ok(IntegrationBody {
        name: read.name.unwrap_or_default(),
        description: read.description,
        color: read.color,
        image_uri: read.image_uri,
        events_enabled: read.events_enabled.unwrap_or(true),
    })
}

/// A patch: any of the properties, each checked as on a create.
pub(crate) fn patch_integration(value: &schemas::Value<'_>) -> Result<PatchIntegration, ApiError> {
    read_object(value, |reader| read_properties(reader, false))
}

fn read_properties(reader: &mut ObjectReader<'_, '_>, creating: bool) -> PatchIntegration {
    let read = PatchIntegration {
        // Optional on a patch, but never empty, as on a create.
        name: reader.text("name", creating, 1, 255),
        description: reader.string("description", false, 2048),
        color: reader.string("color", false, 32),
        image_uri: reader.string("imageUri", false, 2048),
        events_enabled: reader.bool("eventsEnabled", false),
    };
    if let Some(uri) = &read.image_uri {
        let valid = url::Url::parse(uri)
            .map(|u| matches!(u.scheme(), "http" | "https"))
            .unwrap_or(false);
        if !valid {
            reader.violate("imageUri", "must be an absolute http or https URL");
        }
    }
    read
}
