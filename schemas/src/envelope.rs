//! The queue message for one accepted event (SPEC §5): everything the consumer needs without
//! reading the registry again, keyed so one contact's events stay in order.

use serde::{Deserialize, Serialize};

use crate::decode::{decode_as, DecodeError};
use crate::{ContactKey, ReceiveType};

/// One accepted event on its way through the queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EventEnvelope {
    /// Event id, answered to the sender and used to drop redeliveries.
    pub id: String,
    /// The tenant.
    pub store_id: String,
    /// The event type the fields were validated against.
    pub event_type_id: String,
    /// Which version of that type, since types can change while events are queued.
    pub event_type_version: i64,
    /// The type's alias at receipt.
    pub alias: String,
    /// How the event arrived.
    pub receive_type: ReceiveType,
    /// When the gateway accepted it, RFC 3339.
    pub received_at: String,
    /// Who the event is about.
    pub contact: ContactKey,
    /// Normalised values keyed by field id.
    pub fields: serde_json::Map<String, serde_json::Value>,
}

impl EventEnvelope {
    /// The JSON message body.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Cannot fail: every key is a string and serde_json values hold only finite numbers.
        #[allow(clippy::expect_used)]
        serde_json::to_vec(self).expect("an envelope always serialises")
    }

    /// Reads a message body written by [`to_bytes`](Self::to_bytes). Parses in place.
    pub fn from_bytes(buf: &mut [u8]) -> Result<Self, DecodeError> {
        decode_as(buf)
    }

    /// `{storeId}:e:{email}` or `{storeId}:t:{trackerId}`: one contact's events share a
    /// partition, so they are consumed in order.
    pub fn partition_key(&self) -> String {
        format!("{}:{}", self.store_id, self.contact.tagged())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(contact: ContactKey) -> EventEnvelope {
        let mut fields = serde_json::Map::new();
        fields.insert("email".into(), "a@b.co".into());
        fields.insert("total".into(), serde_json::json!(12.5));
        fields.insert("count".into(), serde_json::json!(3));
        fields.insert("tags".into(), serde_json::json!(["x", "y"]));
        EventEnvelope {
            id: "evt_1".into(),
            store_id: "store_1".into(),
            event_type_id: "type_1".into(),
            event_type_version: 4,
            alias: "order-paid".into(),
            receive_type: ReceiveType::WebMobileApp,
            received_at: "2024-01-02T10:00:00Z".into(),
            contact,
            fields,
        }
    }

    #[test]
    fn round_trips_through_bytes() {
        for contact in [
            ContactKey::Email("a@b.co".into()),
            ContactKey::Tracker("t-1".into()),
        ] {
            let envelope = sample(contact);
            let mut bytes = envelope.to_bytes();
            assert_eq!(EventEnvelope::from_bytes(&mut bytes), Ok(envelope));
        }
    }

    #[test]
    fn uses_camel_case_and_tagged_contact() {
        let json: serde_json::Value =
            serde_json::from_slice(&sample(ContactKey::Tracker("t-1".into())).to_bytes())
                .unwrap_or_default();
        assert_eq!(json["storeId"], "store_1");
        assert_eq!(json["eventTypeVersion"], 4);
        assert_eq!(json["receiveType"], "web/mobile-app");
        assert_eq!(json["contact"], serde_json::json!({"trackerId": "t-1"}));
    }

    #[test]
    fn partition_key_keeps_contact_kinds_apart() {
        assert_eq!(
            sample(ContactKey::Email("a@b.co".into())).partition_key(),
            "store_1:e:a@b.co"
        );
        assert_eq!(
            sample(ContactKey::Tracker("a@b.co".into())).partition_key(),
            "store_1:t:a@b.co"
        );
    }

    #[test]
    fn refuses_bad_messages() {
        assert_eq!(EventEnvelope::from_bytes(&mut []), Err(DecodeError::Empty));
        assert_eq!(
            EventEnvelope::from_bytes(&mut b"{".to_vec()),
            Err(DecodeError::Syntax)
        );
        assert_eq!(
            EventEnvelope::from_bytes(&mut br#"{"id": 1}"#.to_vec()),
            Err(DecodeError::Shape)
        );
    }
}
