//! The integrations table: each row's writable properties are one JSON document. Every read
//! and write is a shared function of [`super`], for [`Integration`]; deleting one deletes its
//! event types.

use serde::{Deserialize, Serialize};

use super::{Document, DocumentBody};

/// An integration as stored and answered.
pub type Integration = Document<IntegrationBody>;

/// The writable part of an integration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IntegrationBody {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub image_uri: Option<String>,
    pub events_enabled: bool,
}

impl DocumentBody for IntegrationBody {
    const TABLE: &'static str = "integrations";
    const CHILDREN: Option<(&'static str, &'static str)> = Some(("event_types", "integration_id"));
}
