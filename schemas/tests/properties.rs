//! Property tests: normalisation is idempotent and total, identifiers follow their pattern
//! exactly, and neither decoding nor validation panics on arbitrary input.

use proptest::prelude::*;
use schemas::{decode, normalise, Alias, CompiledEventType, EventTypeDefinition};
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

fn webhook_type() -> CompiledEventType {
    let mut body = br#"{"name": "T", "category": "receive", "alias": "t", "receiveType": "webhook",
      "fields": [
        {"id": "email", "name": "E", "type": "email", "required": true, "isPrimaryKey": true, "jsonPointerPath": "/a/0"},
        {"id": "n", "name": "N", "type": "integer", "required": false, "jsonPointerPath": "/b"},
        {"id": "d", "name": "D", "type": "decimal", "required": false},
        {"id": "t", "name": "T", "type": "date", "required": false},
        {"id": "p", "name": "P", "type": "phone", "required": false, "defaultCountryCode": "1"},
        {"id": "c", "name": "C", "type": "checkbox", "required": false, "options": [{"id": "x", "label": "X"}]},
        {"id": "r", "name": "R", "type": "radio", "required": false, "options": [{"id": "x", "label": "X"}]},
        {"id": "b", "name": "B", "type": "boolean", "required": false},
        {"id": "s", "name": "S", "type": "text", "required": false}
      ]}"#
    .to_vec();
    let value = decode(&mut body).expect("json");
    CompiledEventType::compile(&EventTypeDefinition::parse(&value).expect("valid"))
}

/// JSON-ish values: scalars of every kind, nested a few levels.
fn json_value() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<u64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        "[a-z@.0-9 +:TZ-]{0,24}".prop_map(serde_json::Value::from),
        any::<String>().prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            prop::collection::btree_map("[a-z_]{1,3}|email|_trackerId", inner, 0..8)
                .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #[test]
    fn email_is_idempotent_lower_case_and_total(raw in any::<String>()) {
        if let Some(once) = normalise::email(&raw) {
            prop_assert_eq!(normalise::email(&once), Some(once.clone()));
            prop_assert_eq!(once.to_lowercase(), once);
        }
    }

    #[test]
    fn email_shaped_input_normalises_to_lower_case(local in "[A-Za-z0-9._%+-]{1,20}", domain in "[A-Za-z0-9-]{1,20}\\.[A-Za-z]{2,6}") {
        let raw = format!(" {local}@{domain} ");
        let want = format!("{local}@{domain}").to_lowercase();
        prop_assert_eq!(normalise::email(&raw), Some(want));
    }

    #[test]
    fn phone_is_idempotent(raw in "[+0-9 ().-]{0,24}", cc in "[1-9][0-9]{0,2}") {
        if let Some(once) = normalise::phone(&raw, &cc) {
            prop_assert_eq!(normalise::phone(&once, &cc), Some(once.clone()));
            prop_assert!(once.starts_with('+') && (9..=16).contains(&once.len()));
        }
    }

    #[test]
    fn date_is_idempotent(raw in any::<String>()) {
        if let Some(once) = normalise::date(&raw) {
            prop_assert_eq!(normalise::date(&once), Some(once.clone()));
        }
    }

    #[test]
    fn date_round_trips_through_any_offset(
        secs in 0i64..253_402_300_799, nanos in prop_oneof![Just(0u32), 0u32..1_000_000_000],
        offset_minutes in -(23 * 60 + 59)..=(23 * 60 + 59i32),
    ) {
        let utc = OffsetDateTime::from_unix_timestamp(secs).expect("in range")
            .replace_nanosecond(nanos).expect("valid nanos");
        let offset = UtcOffset::from_whole_seconds(offset_minutes * 60).expect("valid offset");
        let local = utc.to_offset(offset);
        // Offsets can push the local year outside what RFC 3339 can write.
        if let Ok(text) = local.format(&Rfc3339) {
            let want = utc.format(&Rfc3339).expect("utc formats");
            prop_assert_eq!(normalise::date(&text), Some(want.clone()));
            prop_assert_eq!(normalise::date(&want), Some(want));
        }
    }

    #[test]
    fn aliases_follow_the_pattern(good in "[A-Za-z0-9_-]{1,64}", bad_char in "[^A-Za-z0-9_-]", at in 0usize..64) {
        prop_assert!(Alias::parse(&good).is_ok());
        let mut bad = good.clone();
        let at = bad.char_indices().nth(at % good.len()).map_or(0, |(i, _)| i);
        bad.insert_str(at, &bad_char);
        prop_assert!(Alias::parse(&bad).is_err());
    }

    #[test]
    fn decode_never_panics(mut bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = decode(&mut bytes);
    }

    #[test]
    fn decode_never_panics_on_near_json(text in "[\\[\\]{}\",:0-9a-z\\\\ .eE+-]{0,256}") {
        let mut bytes = text.into_bytes();
        let _ = decode(&mut bytes);
    }

    #[test]
    fn validate_never_panics(body in json_value()) {
        let compiled = webhook_type();
        let mut bytes = serde_json::to_vec(&body).expect("serialises");
        let value = decode(&mut bytes).expect("serde_json output is JSON");
        let _ = compiled.validate(&value);
    }
}
