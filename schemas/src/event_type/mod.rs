//! The custom event type as users create it (seed 000, SPEC §4): the model the gateway stores
//! and echoes back, and [`EventTypeDefinition::parse`], which enforces every creation rule.

mod field;
mod names;
mod parse;
mod verification;
mod webhook;

#[cfg(test)]
mod tests;

use serde::{Deserialize, Serialize};

pub use field::{Field, FieldOption, FieldType};
pub use names::{Alias, FieldId};
pub use verification::{Encoding, Verification};
pub use webhook::{read_header_list, WebhookHeader};

/// A validated creation body. Build it with [`EventTypeDefinition::parse`]; serde is for
/// storing it and echoing it back, with absent optional properties left out.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventTypeDefinition {
    /// Display name, 1–255 characters.
    pub name: String,
    /// Whether Sluice sends this event out or receives it.
    pub category: Category,
    /// Names the type in ingest URLs; present exactly for receive types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alias: Option<Alias>,
    /// How events arrive; present exactly for receive types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub receive_type: Option<ReceiveType>,
    /// 1–100 fields with unique ids.
    pub fields: Vec<Field>,
    /// Icon identifier, at most 255 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub icon: Option<String>,
    /// Where send events are POSTed; present exactly for send types.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// Up to 5 extra headers for send events.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub webhook_headers: Vec<WebhookHeader>,
    /// How a webhook receive type's events are verified. Never part of the stored or answered
    /// definition: its secrets are kept apart (see `Verification`).
    #[serde(skip)]
    pub verification: Option<Verification>,
}

/// Which direction events of a type flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Category {
    /// Sluice POSTs the event to the type's `webhookUrl`.
    Send,
    /// External systems send the event to Sluice.
    Receive,
}

impl Category {
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Send => "send",
            Self::Receive => "receive",
        }
    }

    fn from_wire(s: &str) -> Option<Self> {
        [Self::Send, Self::Receive]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

/// How a receive type's events arrive, which also sets how strictly they are validated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ReceiveType {
    /// Unauthenticated URL; lenient, values found by JSON pointer.
    #[serde(rename = "webhook")]
    Webhook,
    /// API-key authenticated; strict, unknown fields refused.
    #[serde(rename = "api")]
    Api,
    /// Browser or app SDK; lenient, anonymous visitors identified by `_trackerId`.
    #[serde(rename = "web/mobile-app")]
    WebMobileApp,
}

impl ReceiveType {
    /// The wire name, also usable as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Webhook => "webhook",
            Self::Api => "api",
            Self::WebMobileApp => "web/mobile-app",
        }
    }

    fn from_wire(s: &str) -> Option<Self> {
        [Self::Webhook, Self::Api, Self::WebMobileApp]
            .into_iter()
            .find(|t| t.as_str() == s)
    }

    /// Whether every event must carry a primary-key email.
    pub fn needs_primary_key(self) -> bool {
        matches!(self, Self::Webhook | Self::Api)
    }
}

impl std::fmt::Display for ReceiveType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
