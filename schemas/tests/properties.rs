//! Property tests: normalisation is idempotent and total, identifiers follow their pattern
//! exactly, neither decoding nor validation panics on arbitrary input, and the rules for
//! U+0000, exact numbers, phone country codes, offsets, leap seconds and invisible characters
//! hold for generated inputs.

use proptest::prelude::*;
use schemas::decode::{number_text, DecodeError};
use schemas::{decode, normalise, Alias, CompiledEventType, EventTypeDefinition};
use simd_json::prelude::*;
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

    #[test]
    fn decimal_is_idempotent_and_keeps_the_value(
        negative in any::<bool>(), int in "[0-9]{1,40}", frac in "[0-9]{0,40}", exp in -60i32..60,
    ) {
        let sign = if negative { "-" } else { "" };
        let raw = format!("{sign}{int}.{frac}e{exp}");
        let canonical = normalise::decimal(&raw).expect("in range");
        prop_assert_eq!(normalise::decimal(&canonical), Ok(canonical.clone()));
        prop_assert!(!canonical.contains(['e', 'E', '+']));
        prop_assert!(!canonical.contains('.') || !canonical.ends_with('0'));
        prop_assert!(canonical != "-0");
        // Same value: both texts read back as the same float.
        let (a, b) = (raw.parse::<f64>().expect("float"), canonical.parse::<f64>().expect("float"));
        prop_assert_eq!(a, b);
    }

    #[test]
    fn decode_keeps_every_digit_of_long_numbers(int in "[1-9][0-9]{15,60}", frac in "[0-9]{0,30}[1-9]") {
        let text = format!("{int}.{frac}");
        let mut buf = format!(r#"{{"n": {text}, "m": [-{text}]}}"#).into_bytes();
        let value = decode(&mut buf).expect("valid JSON");
        prop_assert_eq!(value.get("n").and_then(number_text), Some(text.as_str()));
        let negative = format!("-{text}");
        let m = value.get("m").and_then(|m| m.as_array()).and_then(|m| m.first());
        prop_assert_eq!(m.and_then(number_text), Some(negative.as_str()));
    }

    #[test]
    fn decode_refuses_u0000_wherever_it_is(prefix in "[a-z ]{0,8}", suffix in "[a-z ]{0,8}", in_key in any::<bool>()) {
        let text = format!("{prefix}\\u0000{suffix}");
        let body = if in_key { format!(r#"{{"{text}": 1}}"#) } else { format!(r#"{{"k": ["{text}"]}}"#) };
        let mut buf = body.into_bytes();
        let err = decode(&mut buf).expect_err("U+0000 is refused");
        prop_assert!(matches!(err, DecodeError::Nul { .. }), "{:?}", err);
        prop_assert!(err.violation().is_some());
    }

    #[test]
    fn decode_keeps_any_string_serde_json_writes(s in any::<String>()) {
        prop_assume!(!s.contains('\0'));
        let mut buf = serde_json::to_vec(&serde_json::json!({"s": s})).expect("serialises");
        let value = decode(&mut buf).expect("valid JSON");
        prop_assert_eq!(value.get("s").and_then(|v| v.as_str()), Some(s.as_str()));
    }

    #[test]
    fn phone_with_its_country_code_is_not_prefixed_twice(cc in "[1-9][0-9]{0,2}", nsn in "[1-9][0-9]{8,11}") {
        prop_assume!(cc.len() + nsn.len() <= 15);
        let international = format!("+{cc}{nsn}");
        prop_assert_eq!(normalise::phone(&format!("{cc}{nsn}"), &cc), Some(international.clone()));
        prop_assert_eq!(normalise::phone(&international, &cc), Some(international.clone()));
        prop_assert_eq!(normalise::phone(&format!("00{cc} {nsn}"), &cc), Some(international));
    }

    #[test]
    fn date_refuses_offsets_past_23_59(hours in 24u32..=25, minutes in 0u32..60, negative in any::<bool>()) {
        let sign = if negative { '-' } else { '+' };
        let raw = format!("2024-01-02T10:00:00{sign}{hours:02}:{minutes:02}");
        prop_assert_eq!(normalise::date(&raw), None);
    }

    #[test]
    fn date_refuses_leap_seconds(day in 1u32..=28, hour in 0u32..24, fraction in "(\\.[0-9]{1,9})?", offset in "Z|[+-](0[0-9]|1[0-9]|2[0-3]):[0-5][0-9]") {
        let raw = format!("2016-12-{day:02}T{hour:02}:59:60{fraction}{offset}");
        prop_assert_eq!(normalise::date(&raw), None);
    }

    #[test]
    fn email_refuses_invisible_characters_anywhere(
        local in "[a-z0-9]{1,10}", domain in "[a-z]{1,10}\\.[a-z]{2,4}",
        invisible in prop::sample::select(vec!['\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}', '\u{00AD}', '\u{2062}', '\u{E0020}', '\u{0007}', '\u{00A0}']),
        at in 0usize..32,
    ) {
        let address = format!("{local}@{domain}");
        let at = (1..address.len()).nth(at % (address.len() - 1)).unwrap_or(1);
        let mut raw = address.clone();
        raw.insert(at, invisible);
        prop_assert_eq!(normalise::email(&raw), None, "{:?}", raw);
        prop_assert_eq!(normalise::email(&address), Some(address.clone()));
    }
}
