//! Arbitrary bytes through `schemas::decode` and `CompiledEventType::validate` in every receive
//! mode. Beyond "no panic": decode accepts only UTF-8 that serde_json also accepts; an accepted
//! event holds only known fields, each in its normalised form, and re-validates to itself under
//! the strict api type; a refusal always names at least one violation at a valid pointer.

#![no_main]

use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use schemas::{decode, normalise, pointer, CompiledEventType, ContactKey, ReceiveType, Value};
use serde_json::Value as Json;

static TYPES: LazyLock<Vec<CompiledEventType>> = LazyLock::new(|| {
    sluice_fuzz::RECEIVE_TYPES
        .map(sluice_fuzz::compile)
        .to_vec()
});

const IDS: [&str; 9] = [
    "email", "age", "total", "vip", "born", "phone", "size", "tags", "note",
];

fuzz_target!(|data: &[u8]| {
    let mut buf = data.to_vec();
    let Ok(body) = decode(&mut buf) else {
        return;
    };
    assert!(
        std::str::from_utf8(data).is_ok(),
        "decode accepted non-UTF-8"
    );
    assert!(
        serde_json::from_slice::<serde::de::IgnoredAny>(data).is_ok(),
        "decode accepted what serde_json refuses"
    );
    for compiled in TYPES.iter() {
        match compiled.validate(&body) {
            Ok(event) => check_accepted(compiled, &body, &event.contact, &event.fields),
            Err(violations) => {
                assert!(!violations.is_empty(), "refused without a reason");
                for v in &violations {
                    assert!(pointer::parse(&v.path).is_ok(), "bad path {:?}", v.path);
                    assert!(!v.message.is_empty());
                }
            }
        }
    }
});

fn check_accepted(
    compiled: &CompiledEventType,
    body: &Value<'_>,
    contact: &ContactKey,
    fields: &serde_json::Map<String, Json>,
) {
    let mode = compiled.receive_type();
    if mode == ReceiveType::Api {
        let Value::Object(object) = body else {
            panic!("api accepted a body that is not an object");
        };
        // Known keys only; a known key may still be absent from `fields` when it held null.
        assert!(
            object.keys().all(|k| IDS.contains(&k.as_ref())),
            "unknown key accepted"
        );
    }
    match contact {
        ContactKey::Email(email) => {
            assert_eq!(
                fields.get("email").and_then(Json::as_str),
                Some(email.as_str())
            );
        }
        ContactKey::Tracker(tracker) => {
            assert_eq!(
                mode,
                ReceiveType::WebMobileApp,
                "tracker outside the SDK mode"
            );
            assert!((1..=128).contains(&tracker.chars().count()));
        }
    }
    for (id, value) in fields {
        check_normalised(id, value);
    }
    if fields.contains_key("email") {
        revalidate(fields);
    }
}

fn check_normalised(id: &str, value: &Json) {
    let text = value.as_str();
    match id {
        "email" => {
            let email = text.expect("email is a string");
            assert_eq!(normalise::email(email).as_deref(), Some(email));
        }
        "age" => assert!(value.is_i64(), "age {value}"),
        // Decimals are kept as their exact canonical text, which is its own canonical form.
        "total" => {
            let total = text.expect("decimal is a string");
            assert_eq!(normalise::decimal(total).as_deref(), Ok(total));
        }
        "vip" => assert!(value.is_boolean()),
        "born" => {
            let born = text.expect("date is a string");
            assert_eq!(normalise::date(born).as_deref(), Some(born));
        }
        "phone" => {
            let phone = text.expect("phone is a string");
            let again = normalise::phone(phone, sluice_fuzz::COUNTRY_CODE);
            assert_eq!(again.as_deref(), Some(phone));
        }
        "size" => assert!(matches!(text, Some("s" | "l" | "x,l")), "size {value}"),
        "tags" => {
            let tags = value.as_array().expect("checkbox is an array");
            for (i, tag) in tags.iter().enumerate() {
                assert!(matches!(tag.as_str(), Some("a" | "b" | "c d")), "tag {tag}");
                assert!(!tags[..i].contains(tag), "duplicate tag {tag}");
            }
        }
        "note" => assert!(text.is_some_and(|t| t.chars().count() <= 65_536)),
        other => panic!("unknown field {other:?} accepted"),
    }
}

/// Normalised values, sent again as a strict api body, must come back unchanged.
fn revalidate(fields: &serde_json::Map<String, Json>) {
    let mut buf = serde_json::to_vec(fields).expect("serialises");
    let body = decode(&mut buf).expect("normalised fields decode");
    let api = &TYPES[0];
    assert_eq!(
        api.receive_type(),
        ReceiveType::Api,
        "RECEIVE_TYPES starts with api"
    );
    let again = api.validate(&body);
    match again {
        Ok(event) => assert_eq!(&event.fields, fields, "normalising is not idempotent"),
        Err(violations) => panic!("normalised fields refused: {violations:?}"),
    }
}
