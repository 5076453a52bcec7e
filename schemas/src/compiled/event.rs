//! What validation hands back: the contact an event belongs to and its normalised values.

use serde::{Deserialize, Serialize};

/// Who an event is about: the primary-key email, or an anonymous SDK visitor.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ContactKey {
    /// Normalised primary-key email. Serialised as `{"email": "..."}`.
    #[serde(rename = "email")]
    Email(String),
    /// `_trackerId` of an anonymous visitor. Serialised as `{"trackerId": "..."}`.
    #[serde(rename = "trackerId")]
    Tracker(String),
}

impl ContactKey {
    /// A short prefixed form (`e:<email>` / `t:<tracker>`) that cannot collide across kinds,
    /// for partition and cache keys.
    pub fn tagged(&self) -> String {
        match self {
            Self::Email(email) => format!("e:{email}"),
            Self::Tracker(tracker) => format!("t:{tracker}"),
        }
    }

    /// The key [`tagged`](Self::tagged) wrote.
    pub fn from_tagged(tagged: &str) -> Option<Self> {
        match tagged.split_at_checked(2)? {
            ("e:", email) => Some(Self::Email(email.to_owned())),
            ("t:", tracker) => Some(Self::Tracker(tracker.to_owned())),
            _ => None,
        }
    }
}

/// An event that passed its type's validation.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedEvent {
    /// Who the event is about.
    pub contact: ContactKey,
    /// Normalised values keyed by field id; absent optional fields are omitted.
    pub fields: serde_json::Map<String, serde_json::Value>,
}
